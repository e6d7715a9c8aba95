//! The YAML reader: one document's parser events (from `saphyr-parser`) folded into a JSON value
//! the way sigs.k8s.io/yaml's `YAMLToJSON` does it: go-yaml v2 types each scalar, merges `<<`
//! keys and expands aliases, then non-string keys become strings and the result is JSON.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Value};

use super::YamlError;
use super::resolve::{self, BINARY_TAG, MERGE_TAG, Resolved};

/// Deepest nesting accepted. Values are walked recursively by their consumers (and dropped
/// recursively by serde_json), so the bound keeps every later walk off the end of the stack.
pub const MAX_DEPTH: usize = 1000;

/// Bytes (scalar text plus a little per node) that alias expansion may add to a document.
/// go-yaml only bounds the ratio of aliased to plain nodes; Go shares strings between copies,
/// Rust clones them, so a long aliased string needs this second bound.
pub const MAX_ALIAS_EXPANSION_BYTES: usize = 64 << 20;

/// Size charged per node on top of its text, roughly a `Value`'s own footprint.
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

fn error(line: usize, message: impl Into<String>) -> YamlError {
    YamlError {
        line,
        message: message.into(),
    }
}

/// Parse the first document of `text` (later ones are ignored, as go-yaml's `Unmarshal` does).
/// `first_line` is the line number of `text`'s first line within the caller's input.
pub(super) fn first_document(text: &str, first_line: usize) -> Result<Value, YamlError> {
    let shift = first_line.saturating_sub(1);
    let mut parser = Parser::new_from_str(text);
    let mut doc = Document::new();
    loop {
        let (event, span) = match parser.next_event() {
            None => return Ok(Value::Null),
            Some(Ok(next)) => next,
            Some(Err(e)) => {
                return Err(error(shift + e.marker().line(), e.info().to_string()));
            }
        };
        let line = shift + span.start.line();
        let result = match event {
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => Ok(()),
            Event::StreamEnd => return Ok(Value::Null),
            Event::DocumentEnd => return doc.finish(),
            Event::Alias(id) => doc.alias(id, line),
            Event::Scalar(text, style, anchor, tag) => {
                doc.scalar(&text, style, anchor, tag.as_deref(), line)
            }
            Event::SequenceStart(anchor, _) => doc.start(anchor, line, true),
            Event::MappingStart(anchor, _) => doc.start(anchor, line, false),
            Event::SequenceEnd | Event::MappingEnd => doc.end(line),
        };
        result?;
    }
}

/// A scalar as go-yaml types it for an `interface{}`.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    BigInt(String),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The JSON value `encoding/json` writes for it, as serde_json reads that text back.
    fn into_value(self, line: usize) -> Result<Value, YamlError> {
        Ok(match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::from(i),
            Scalar::Uint(u) => Value::from(u),
            Scalar::Str(s) => Value::String(s),
            Scalar::Float(f) if f.is_nan() => {
                return Err(error(line, "json: unsupported value: NaN"));
            }
            Scalar::Float(f) if f.is_infinite() => {
                let sign = if f > 0.0 { "+" } else { "-" };
                return Err(error(line, format!("json: unsupported value: {sign}Inf")));
            }
            Scalar::Float(f) => json_number(&resolve::json_float(f), line)?,
            Scalar::BigInt(text) => json_number(&big_decimal(&text, line)?, line)?,
        })
    }

    /// sigs.k8s.io/yaml's conversion of a map key to a JSON object key.
    fn into_key(self, line: usize) -> Result<String, YamlError> {
        let unsupported = |ty: &str, key: &str| {
            error(
                line,
                format!("unsupported map key of type: {ty}, key: {key}"),
            )
        };
        match self {
            Scalar::Str(s) => Ok(s),
            Scalar::Int(i) => Ok(i.to_string()),
            Scalar::Float(f) => Ok(resolve::format_float_key(f)),
            Scalar::Bool(b) => Ok(b.to_string()),
            Scalar::Null => Err(unsupported("<nil>", "<nil>")),
            Scalar::Uint(u) => Err(unsupported("uint64", &u.to_string())),
            Scalar::BigInt(text) => Err(unsupported("*big.Int", &text)),
        }
    }
}

fn json_number(text: &str, line: usize) -> Result<Value, YamlError> {
    serde_json::from_str(text).map_err(|_| error(line, format!("number {text} is out of range")))
}

/// Decimal digits of an unsigned integer written with a Go base prefix (0x, 0o, 0b, 0).
/// Values past the float range are refused up front, which also bounds the work.
fn big_decimal(text: &str, line: usize) -> Result<String, YamlError> {
    let (radix, digits) = match text.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16, &text[2..]),
        [b'0', b'o' | b'O', ..] => (8, &text[2..]),
        [b'0', b'b' | b'B', ..] => (2, &text[2..]),
        [b'0', ..] => (8, &text[1..]),
        _ => (10, text),
    };
    let digits = digits.trim_start_matches('0');
    let bits_per_digit = match radix {
        16 => 4.0,
        8 => 3.0,
        2 => 1.0,
        _ => std::f64::consts::LOG2_10,
    };
    if digits.len() as f64 * bits_per_digit > 1100.0 {
        return Err(error(line, format!("number {text} is out of range")));
    }
    // Little-endian limbs in base 10^9.
    const LIMB: u64 = 1_000_000_000;
    let mut limbs: Vec<u64> = vec![0];
    for c in digits.chars() {
        let mut carry = u64::from(c.to_digit(radix).unwrap_or(0));
        for limb in &mut limbs {
            let v = *limb * u64::from(radix) + carry;
            *limb = v % LIMB;
            carry = v / LIMB;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut out = limbs.last().copied().unwrap_or(0).to_string();
    for limb in limbs.iter().rev().skip(1) {
        out.push_str(&format!("{limb:09}"));
    }
    Ok(out)
}

/// Go's `base64.StdEncoding.DecodeString`: padding required, '\r' and '\n' ignored.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let src: Vec<u8> = text.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
    if !src.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let quanta = src.len() / 4;
    for (q, chunk) in src.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quanta) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | value(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// Go's `encoding/json` for a string that is not valid UTF-8: each bad byte becomes U+FFFD.
fn go_lossy_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                bytes = &rest[1..];
            }
        }
    }
}

/// go-yaml's typing of one scalar node; also says whether it is the `<<` merge key.
fn type_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
) -> Result<(Scalar, bool), String> {
    let tag: Option<String> = tag.map(|t| format!("{}{}", t.handle, t.suffix));
    // libyaml's "plain implicit": untagged plain text, or the non-specific tag "!".
    let implicit = (tag.is_none() && style == ScalarStyle::Plain) || tag.as_deref() == Some("!");
    let merge = text == "<<" && (implicit || tag.as_deref() == Some(MERGE_TAG));
    if tag.is_none() && !implicit {
        // Quoted or block text without a tag is always a string.
        return Ok((Scalar::Str(text.to_string()), false));
    }
    let tag = tag.as_deref().unwrap_or("");
    let scalar = match resolve::resolve(tag, text)? {
        Resolved::Unresolved if tag == BINARY_TAG => {
            let bytes = decode_base64(text)
                .ok_or_else(|| "!!binary value contains invalid base64 data".to_string())?;
            Scalar::Str(go_lossy_utf8(&bytes))
        }
        Resolved::Null => Scalar::Null,
        Resolved::Bool(b) => Scalar::Bool(b),
        Resolved::Int(i) => Scalar::Int(i),
        Resolved::Uint(u) => Scalar::Uint(u),
        Resolved::BigInt(s) => Scalar::BigInt(s),
        Resolved::Float(f) => Scalar::Float(f),
        Resolved::Str | Resolved::Timestamp | Resolved::Merge | Resolved::Unresolved => {
            Scalar::Str(text.to_string())
        }
    };
    Ok((scalar, merge))
}

/// A finished node on its way to its parent.
enum Node {
    Scalar(Scalar),
    /// A sequence or mapping (or a copy of one, from an alias).
    Value(Value),
    /// The sequence of mappings under a `<<` key.
    MergeList(Vec<Map<String, Value>>),
}

/// What a mapping frame expects next.
enum Slot {
    Key,
    Value(String),
    /// The value of a `<<` key: a mapping, or a sequence of them.
    MergeValue,
}

enum Collection {
    Sequence(Vec<Value>),
    /// A sequence that is the value of a `<<` key: its items are merged, not kept.
    MergeList(Vec<Map<String, Value>>),
    Mapping(Map<String, Value>, Slot),
}

/// A collection being built.
struct Frame {
    collection: Collection,
    anchor: usize,
    line: usize,
    /// Counters when the collection started, to measure what it cost.
    decodes_at_start: u64,
    bytes_at_start: usize,
    /// Levels of nesting below this frame so far.
    height: usize,
}

/// An anchored node, kept for its aliases, with what go-yaml would spend re-decoding it.
struct Anchored {
    node: AnchoredNode,
    decodes: u64,
    bytes: usize,
    height: usize,
}

enum AnchoredNode {
    Scalar(Scalar),
    Value(Value),
}

/// The state of one document being decoded.
struct Document {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    /// Anchors whose node is still open: an alias to one would contain itself.
    open_anchors: HashSet<usize>,
    root: Option<Value>,
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
        Ok(self.root.unwrap_or(Value::Null))
    }

    fn check_alias_budget(&self, line: usize) -> Result<(), YamlError> {
        let excessive = self.aliased_decodes > 100
            && self.decodes > 1000
            && self.aliased_decodes as f64 / self.decodes as f64
                > allowed_alias_ratio(self.decodes);
        if excessive || self.aliased_bytes > MAX_ALIAS_EXPANSION_BYTES {
            return Err(error(line, "document contains excessive aliasing"));
        }
        Ok(())
    }

    /// Whether the next node is a key of a mapping, or the value of a `<<` key.
    fn expecting(&self) -> (bool, bool) {
        match self.stack.last() {
            Some(Frame {
                collection: Collection::Mapping(_, Slot::Key),
                ..
            }) => (true, false),
            Some(Frame {
                collection: Collection::Mapping(_, Slot::MergeValue),
                ..
            }) => (false, true),
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
        let (is_key, _) = self.expecting();
        let bytes = NODE_BYTES + text.len();
        self.bytes += bytes;
        // go-yaml never decodes the merge key itself.
        let merge_key = is_key && merge;
        if !merge_key {
            self.decodes += 1;
            self.check_alias_budget(line)?;
        }
        if anchor != 0 {
            let node = AnchoredNode::Scalar(scalar.clone());
            self.anchors.insert(
                anchor,
                Anchored {
                    node,
                    decodes: 1,
                    bytes,
                    height: 0,
                },
            );
        }
        if merge_key {
            return self.merge_key(line);
        }
        self.deliver(Node::Scalar(scalar), 0, line)
    }

    fn merge_key(&mut self, line: usize) -> Result<(), YamlError> {
        if let Some(Frame {
            collection: Collection::Mapping(_, slot),
            ..
        }) = self.stack.last_mut()
        {
            *slot = Slot::MergeValue;
            return Ok(());
        }
        Err(error(line, "merge key outside a mapping"))
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
            (false, _) => Collection::Mapping(Map::new(), Slot::Key),
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
        let node = match frame.collection {
            Collection::Sequence(items) => Node::Value(Value::Array(items)),
            Collection::Mapping(map, Slot::Key) => Node::Value(Value::Object(map)),
            Collection::Mapping(..) => return Err(error(line, "mapping ended without a value")),
            Collection::MergeList(maps) => Node::MergeList(maps),
        };
        if frame.anchor != 0 {
            self.open_anchors.remove(&frame.anchor);
            // Through an alias, a merge list is an ordinary sequence (whose node counts).
            let (value, extra_decode) = match &node {
                Node::Value(value) => (value.clone(), 0),
                Node::MergeList(maps) => {
                    let items = maps.iter().cloned().map(Value::Object).collect();
                    (Value::Array(items), 1)
                }
                Node::Scalar(_) => (Value::Null, 0),
            };
            let anchored = Anchored {
                node: AnchoredNode::Value(value),
                decodes: self.decodes - frame.decodes_at_start + extra_decode,
                bytes: self.bytes - frame.bytes_at_start,
                height,
            };
            self.anchors.insert(frame.anchor, anchored);
        }
        self.deliver(node, height, frame.line)
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
        let node = match &anchored.node {
            AnchoredNode::Scalar(s) => Node::Scalar(s.clone()),
            AnchoredNode::Value(v) => Node::Value(v.clone()),
        };
        self.deliver(node, height, line)
    }

    /// Hand a finished node to the collection it belongs to (or make it the document).
    fn deliver(&mut self, node: Node, height: usize, line: usize) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(match node {
                Node::Scalar(s) => s.into_value(line)?,
                Node::Value(v) => v,
                Node::MergeList(_) => Value::Null,
            });
            return Ok(());
        };
        frame.height = frame.height.max(height);
        match &mut frame.collection {
            Collection::Sequence(items) => items.push(node_value(node, line)?),
            Collection::MergeList(maps) => match node {
                Node::Value(Value::Object(map)) => maps.push(map),
                _ => return Err(want_map(line)),
            },
            Collection::Mapping(map, slot) => match std::mem::replace(slot, Slot::Key) {
                Slot::Key => match node {
                    Node::Scalar(s) => *slot = Slot::Value(s.into_key(line)?),
                    _ => return Err(error(line, "invalid map key: a sequence or mapping")),
                },
                Slot::Value(key) => {
                    map.insert(key, node_value(node, line)?);
                }
                // Merged keys overwrite the ones before the `<<`; later keys overwrite them.
                // In a list, earlier mappings win, so they are applied last.
                Slot::MergeValue => match node {
                    Node::Value(Value::Object(merged)) => map.extend(merged),
                    Node::MergeList(maps) => {
                        for merged in maps.into_iter().rev() {
                            map.extend(merged);
                        }
                    }
                    _ => return Err(want_map(line)),
                },
            },
        }
        Ok(())
    }
}

fn node_value(node: Node, line: usize) -> Result<Value, YamlError> {
    match node {
        Node::Scalar(s) => s.into_value(line),
        Node::Value(v) => Ok(v),
        Node::MergeList(_) => Err(want_map(line)),
    }
}

fn want_map(line: usize) -> YamlError {
    error(
        line,
        "map merge requires map or sequence of maps as the value",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_follows_go_std_encoding() {
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGVs\nbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64(""), Some(Vec::new()));
        assert_eq!(decode_base64("aGVsbG8"), None);
        assert_eq!(decode_base64("aG=sbG8="), None);
        assert_eq!(decode_base64("aGVsbG8=aGVs"), None);
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        assert_eq!(go_lossy_utf8(b"a\xe2\x82b"), "a\u{FFFD}\u{FFFD}b");
        assert_eq!(go_lossy_utf8(b"\xff"), "\u{FFFD}");
    }

    #[test]
    fn big_integers_convert_to_decimal() {
        assert_eq!(
            big_decimal("0x10000000000000000", 1).unwrap(),
            "18446744073709551616"
        );
        assert_eq!(
            big_decimal("0o2000000000000000000000", 1).unwrap(),
            "18446744073709551616"
        );
        assert!(big_decimal(&format!("0x{}", "f".repeat(300)), 1).is_err());
    }
}
