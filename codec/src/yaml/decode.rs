//! The YAML reader: one document's parser events (from `saphyr-parser`) folded into the tree
//! go-yaml v2 would build (typed keys, `<<` merges, aliases re-decoded under its alias budget),
//! then turned into JSON as sigs.k8s.io/yaml's `YAMLToJSON` does (keys as strings, no NaN).

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Value};

use super::YamlError;
use super::scalar::{Scalar, type_scalar};

/// Deepest nesting accepted. Values are walked recursively by their consumers (and dropped
/// recursively by serde_json), so the bound keeps every later walk off the end of the stack.
pub const MAX_DEPTH: usize = 1000;

/// Bytes (scalar text plus a little per node) that alias expansion may add to a document.
/// go-yaml only bounds the ratio of aliased to plain nodes; Go shares strings between copies,
/// Rust clones them, so a long aliased string needs this second bound.
pub const MAX_ALIAS_EXPANSION_BYTES: usize = 64 << 20;

/// Size charged per node on top of its text, roughly a node's own footprint.
const NODE_BYTES: usize = 32;

/// go-yaml v2's alias budget (decode.go): small documents may be 99% alias expansion, very
/// large ones 10%, scaling linearly in between.
const ALIAS_RATIO_RANGE_LOW: u64 = 400_000;
const ALIAS_RATIO_RANGE_HIGH: u64 = 4_000_000;

fn allowed_alias_ratio(decode_count: u64) -> f64 {
    if decode_count <= ALIAS_RATIO_RANGE_LOW {
        0.99
    } else if decode_count >= ALIAS_RATIO_RANGE_HIGH {
        0.10
    } else {
        let range = (ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW) as f64;
        0.99 - 0.89 * ((decode_count - ALIAS_RATIO_RANGE_LOW) as f64 / range)
    }
}

pub(super) fn error(line: usize, message: impl Into<String>) -> YamlError {
    YamlError {
        line,
        message: message.into(),
    }
}

/// Parse the first document of `text` (later ones are ignored, as go-yaml's `Unmarshal` does).
/// `first_line` is the line number of `text`'s first line within the caller's input.
pub(super) fn first_document(text: &str, first_line: usize) -> Result<Value, YamlError> {
    let shift = first_line.saturating_sub(1);
    let source = Source::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut doc = Document::new();
    loop {
        let (event, span) = match parser.next_event() {
            None => return doc.finish(),
            Some(Ok(next)) => next,
            // go-yaml stops once the first document's root is complete and the token after it
            // scanned: a parse error about the next document never reaches it.
            Some(Err(e)) if doc.root.is_some() && NEXT_DOCUMENT_ERRORS.contains(&e.info()) => {
                return doc.finish();
            }
            Some(Err(e)) => {
                return Err(error(shift + e.marker().line(), e.info().to_string()));
            }
        };
        let line = shift + span.start.line();
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => {}
            Event::StreamEnd | Event::DocumentEnd => return doc.finish(),
            Event::Alias(id) => doc.alias(id, line)?,
            Event::Scalar(text, style, anchor, tag) => {
                let text = source.block_scalar_at_eof(text.into_owned(), style, &span);
                doc.scalar(&text, style, anchor, tag.as_deref(), line)?;
            }
            Event::SequenceStart(anchor, _) => doc.start(anchor, line, true)?,
            Event::MappingStart(anchor, _) => doc.start(anchor, line, false)?,
            Event::SequenceEnd | Event::MappingEnd => doc.end(line)?,
        }
    }
}

/// saphyr-parser's complaints about what follows a document's root (rather than about its
/// tokens), which libyaml would only raise when asked for the next document.
const NEXT_DOCUMENT_ERRORS: [&str; 3] = [
    "did not find expected <document start>",
    "did not find expected <document-start>",
    "missing explicit document end marker before directive",
];

/// What the reader needs to know about the input as a whole.
struct Source {
    chars: usize,
    ends_with_break: bool,
}

impl Source {
    fn new(text: &str) -> Self {
        Source {
            chars: text.chars().count(),
            ends_with_break: text
                .chars()
                .next_back()
                .is_some_and(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')),
        }
    }

    /// A block scalar cut off by the end of input without a final line break keeps no line
    /// break for its last line in libyaml; saphyr-parser counts one, so it is taken back.
    fn block_scalar_at_eof(&self, mut text: String, style: ScalarStyle, span: &Span) -> String {
        let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
        if block && !self.ends_with_break && span.end.index() >= self.chars && text.ends_with('\n')
        {
            text.pop();
        }
        text
    }
}

/// A node as go-yaml holds it in an `interface{}`.
#[derive(Debug, Clone)]
enum Node {
    Scalar(Scalar, usize),
    Sequence(Vec<Node>),
    Mapping(GoMap),
}

/// Go's `map[interface{}]interface{}`: keys compare by type and value, so `1` and `"1"` are
/// different keys and a repeated key replaces the value but keeps the first key.
#[derive(Debug, Clone, Default)]
struct GoMap {
    entries: Vec<(Scalar, usize, Node)>,
    index: HashMap<KeyId, usize>,
}

/// A key's identity under Go's `==` on interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyId {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    /// Bits of the float, with -0 as 0 (they are equal in Go).
    Float(u64),
    Str(String),
    /// NaN (never equal to itself) and big integers (compared as pointers).
    Unique(usize),
}

impl GoMap {
    fn insert(&mut self, key: Scalar, line: usize, value: Node) {
        let id = match &key {
            Scalar::Null => KeyId::Null,
            Scalar::Bool(b) => KeyId::Bool(*b),
            Scalar::Int(i) => KeyId::Int(*i),
            Scalar::Uint(u) => KeyId::Uint(*u),
            Scalar::Float(f) if f.is_nan() => KeyId::Unique(self.entries.len()),
            Scalar::Float(f) => KeyId::Float(if *f == 0.0 { 0 } else { f.to_bits() }),
            Scalar::Str(s) => KeyId::Str(s.clone()),
            Scalar::BigInt(_) => KeyId::Unique(self.entries.len()),
        };
        match self.index.get(&id) {
            Some(&i) => self.entries[i].2 = value,
            None => {
                self.index.insert(id, self.entries.len());
                self.entries.push((key, line, value));
            }
        }
    }

    fn merge(&mut self, other: GoMap) {
        for (key, line, value) in other.entries {
            self.insert(key, line, value);
        }
    }
}

/// What a mapping being built expects next.
enum Slot {
    Key,
    Value(Scalar, usize),
    /// The value of a `<<` key: a mapping, or a sequence of them.
    MergeValue,
}

enum Collection {
    Sequence(Vec<Node>),
    /// A sequence that is the value of a `<<` key: its items are merged, not kept.
    MergeList(Vec<GoMap>),
    Mapping(GoMap, Slot),
}

/// A collection being built.
struct Frame {
    collection: Collection,
    anchor: usize,
    line: usize,
    /// Counters when the collection started, to measure what decoding it cost.
    decodes_at_start: u64,
    bytes_at_start: usize,
    /// Levels of nesting below this frame so far.
    height: usize,
}

/// An anchored node, kept for its aliases, with what go-yaml would spend re-decoding it.
struct Anchored {
    node: Node,
    decodes: u64,
    bytes: usize,
    height: usize,
}

/// A finished node on its way to its parent.
enum Finished {
    Node(Node),
    /// The sequence of mappings under a `<<` key.
    MergeList(Vec<GoMap>),
}

/// One document being decoded.
struct Document {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    /// Anchors whose node is still open: an alias to one would contain itself.
    open_anchors: HashSet<usize>,
    root: Option<Node>,
    /// go-yaml's `decodeCount` and `aliasCount` (the document node counts as one decode).
    decodes: u64,
    aliased_decodes: u64,
    /// Size of everything decoded so far, and the part of it copied by aliases.
    bytes: usize,
    aliased_bytes: usize,
}

impl Document {
    fn new() -> Self {
        Document {
            stack: Vec::new(),
            anchors: HashMap::new(),
            open_anchors: HashSet::new(),
            root: None,
            decodes: 1,
            aliased_decodes: 0,
            bytes: 0,
            aliased_bytes: 0,
        }
    }

    fn finish(self) -> Result<Value, YamlError> {
        match self.root {
            None => Ok(Value::Null),
            Some(root) => {
                let mut deferred = None;
                let value = to_json(root, &mut deferred)?;
                deferred.map_or(Ok(value), Err)
            }
        }
    }

    fn check_alias_budget(&self, line: usize) -> Result<(), YamlError> {
        let ratio = self.aliased_decodes as f64 / self.decodes as f64;
        let excessive = self.aliased_decodes > 100
            && self.decodes > 1000
            && ratio > allowed_alias_ratio(self.decodes);
        if excessive || self.aliased_bytes > MAX_ALIAS_EXPANSION_BYTES {
            return Err(error(line, "document contains excessive aliasing"));
        }
        Ok(())
    }

    /// Whether the next node is a mapping key, and whether it is the value of a `<<` key.
    fn expecting(&self) -> (bool, bool) {
        match self.stack.last().map(|f| &f.collection) {
            Some(Collection::Mapping(_, Slot::Key)) => (true, false),
            Some(Collection::Mapping(_, Slot::MergeValue)) => (false, true),
            _ => (false, false),
        }
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        line: usize,
    ) -> Result<(), YamlError> {
        let (scalar, merge) = type_scalar(text, style, tag).map_err(|m| error(line, m))?;
        let bytes = NODE_BYTES + text.len();
        self.bytes += bytes;
        let node = Node::Scalar(scalar, line);
        if anchor != 0 {
            let anchored = Anchored {
                node: node.clone(),
                decodes: 1,
                bytes,
                height: 0,
            };
            self.anchors.insert(anchor, anchored);
        }
        let (is_key, _) = self.expecting();
        if is_key && merge {
            // go-yaml never decodes the merge key itself; it merges the value that follows.
            if let Some(Frame {
                collection: Collection::Mapping(_, slot),
                ..
            }) = self.stack.last_mut()
            {
                *slot = Slot::MergeValue;
            }
            return Ok(());
        }
        self.decodes += 1;
        self.check_alias_budget(line)?;
        self.deliver(Finished::Node(node), 0, line)
    }

    fn start(&mut self, anchor: usize, line: usize, sequence: bool) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(line, format!("exceeded max depth of {MAX_DEPTH}")));
        }
        let (is_key, merge_value) = self.expecting();
        if is_key {
            return Err(error(line, "invalid map key: a sequence or mapping"));
        }
        let collection = match (sequence, merge_value) {
            (true, true) => Collection::MergeList(Vec::new()),
            (true, false) => Collection::Sequence(Vec::new()),
            (false, _) => Collection::Mapping(GoMap::default(), Slot::Key),
        };
        let decodes_at_start = self.decodes;
        let bytes_at_start = self.bytes;
        // go-yaml does not decode the sequence under a `<<` key as a node of its own.
        if !matches!(collection, Collection::MergeList(_)) {
            self.decodes += 1;
            self.check_alias_budget(line)?;
        }
        self.bytes += NODE_BYTES;
        if anchor != 0 {
            self.open_anchors.insert(anchor);
        }
        self.stack.push(Frame {
            collection,
            anchor,
            line,
            decodes_at_start,
            bytes_at_start,
            height: 0,
        });
        Ok(())
    }

    fn end(&mut self, line: usize) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Err(error(line, "unbalanced end of collection"));
        };
        let height = frame.height + 1;
        let finished = match frame.collection {
            Collection::Sequence(items) => Finished::Node(Node::Sequence(items)),
            Collection::Mapping(map, Slot::Key) => Finished::Node(Node::Mapping(map)),
            Collection::Mapping(..) => return Err(error(line, "mapping ended without a value")),
            Collection::MergeList(maps) => Finished::MergeList(maps),
        };
        if frame.anchor != 0 {
            self.open_anchors.remove(&frame.anchor);
            // Through an alias, a merge list is an ordinary sequence, whose node counts.
            let (node, extra_decode) = match &finished {
                Finished::Node(node) => (node.clone(), 0),
                Finished::MergeList(maps) => {
                    let items = maps.iter().cloned().map(Node::Mapping).collect();
                    (Node::Sequence(items), 1)
                }
            };
            let anchored = Anchored {
                node,
                decodes: self.decodes - frame.decodes_at_start + extra_decode,
                bytes: self.bytes - frame.bytes_at_start,
                height,
            };
            self.anchors.insert(frame.anchor, anchored);
        }
        self.deliver(finished, height, frame.line)
    }

    fn alias(&mut self, id: usize, line: usize) -> Result<(), YamlError> {
        if self.open_anchors.contains(&id) {
            return Err(error(line, "anchor value contains itself"));
        }
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(error(line, "unknown anchor referenced"));
        };
        if self.stack.len() + anchored.height > MAX_DEPTH {
            return Err(error(line, format!("exceeded max depth of {MAX_DEPTH}")));
        }
        // The alias node, then the anchored node decoded again, all of it "aliased".
        self.decodes += 1 + anchored.decodes;
        self.aliased_decodes += anchored.decodes;
        self.bytes += anchored.bytes;
        self.aliased_bytes += anchored.bytes;
        self.check_alias_budget(line)?;
        let height = anchored.height;
        let node = anchored.node.clone();
        self.deliver(Finished::Node(node), height, line)
    }

    /// Hand a finished node to the collection it belongs to (or make it the document's root).
    fn deliver(&mut self, finished: Finished, height: usize, line: usize) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            if let Finished::Node(node) = finished {
                self.root = Some(node);
            }
            return Ok(());
        };
        frame.height = frame.height.max(height);
        match (&mut frame.collection, finished) {
            (Collection::Sequence(items), Finished::Node(node)) => items.push(node),
            (Collection::MergeList(maps), Finished::Node(Node::Mapping(map))) => maps.push(map),
            (Collection::Mapping(map, slot), finished) => {
                match (std::mem::replace(slot, Slot::Key), finished) {
                    (Slot::Key, Finished::Node(Node::Scalar(key, key_line))) => {
                        *slot = Slot::Value(key, key_line);
                    }
                    (Slot::Key, _) => {
                        return Err(error(line, "invalid map key: a sequence or mapping"));
                    }
                    (Slot::Value(key, key_line), Finished::Node(node)) => {
                        map.insert(key, key_line, node);
                    }
                    // Merged keys replace those before the `<<`; later keys replace them.
                    // In a list, earlier mappings win, so they are merged last.
                    (Slot::MergeValue, Finished::Node(Node::Mapping(merged))) => map.merge(merged),
                    (Slot::MergeValue, Finished::MergeList(list)) => {
                        for merged in list.into_iter().rev() {
                            map.merge(merged);
                        }
                    }
                    _ => return Err(want_map(line)),
                }
            }
            _ => return Err(want_map(line)),
        }
        Ok(())
    }
}

fn want_map(line: usize) -> YamlError {
    error(
        line,
        "map merge requires map or sequence of maps as the value",
    )
}

/// sigs.k8s.io/yaml's `convertToJSONableObject` then `json.Marshal`: keys become strings (an
/// unsupported key fails at once); values `encoding/json` refuses (NaN, infinities) fail only
/// if the conversion got through, so the first is kept in `deferred`.
fn to_json(node: Node, deferred: &mut Option<YamlError>) -> Result<Value, YamlError> {
    Ok(match node {
        Node::Scalar(scalar, line) => match scalar.into_value(line) {
            Ok(value) => value,
            Err(e) => {
                deferred.get_or_insert(e);
                Value::Null
            }
        },
        Node::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(|item| to_json(item, deferred))
                .collect::<Result<_, _>>()?,
        ),
        Node::Mapping(map) => {
            let mut object = Map::new();
            for (key, line, value) in map.entries {
                let key = key.into_key(line)?;
                object.insert(key, to_json(value, deferred)?);
            }
            Value::Object(object)
        }
    })
}
