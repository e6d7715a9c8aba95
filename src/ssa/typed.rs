//! Values read through the type model: the set of fields a value sets (`field_set`), what
//! changed between two values (`compare`), a configuration merged into a live object
//! (`merge`, list items matched by key as structured-merge-diff matches them) and the removal
//! of owned paths (`remove`). Recursion is bounded by `MAX_VALUE_DEPTH`.

use rustc_hash::FxHashMap as HashMap;

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, PathElement, path_text};
use super::model::{DEDUCED, ListKind, Model, Type, TypeId};

/// Nesting followed in a value: deeper values are one leaf (the JSON decoder refuses deeper
/// bodies long before this).
pub const MAX_VALUE_DEPTH: usize = 256;

/// How a value of a type is walked.
enum Shape<'a> {
    /// Owned as one field: scalars, atomic lists, maps and structs, and mismatched values.
    Leaf,
    Struct {
        id: TypeId,
        fields: &'a HashMap<String, TypeId>,
        other: Option<TypeId>,
    },
    Map(TypeId),
    List(TypeId, &'a ListKind),
}

fn shape<'a>(m: &'a Model, t: TypeId, v: &Value, depth: usize) -> Shape<'a> {
    if depth > MAX_VALUE_DEPTH {
        return Shape::Leaf;
    }
    match (m.get(t), v) {
        (Type::Deduced, Value::Object(_)) => Shape::Map(DEDUCED),
        (
            Type::Struct {
                fields,
                atomic: false,
                other,
            },
            Value::Object(_),
        ) => Shape::Struct {
            id: t,
            fields,
            other: *other,
        },
        (
            Type::Map {
                elem,
                atomic: false,
            },
            Value::Object(_),
        ) => Shape::Map(*elem),
        (Type::List { elem, kind }, Value::Array(_)) if *kind != ListKind::Atomic => {
            Shape::List(*elem, kind)
        }
        _ => Shape::Leaf,
    }
}

/// The type of a field of a struct or map; None for a field a struct does not declare.
fn child_type(s: &Shape<'_>, name: &str) -> Option<TypeId> {
    match s {
        Shape::Struct { fields, other, .. } => fields.get(name).copied().or(*other),
        Shape::Map(elem) => Some(*elem),
        _ => None,
    }
}

/// A list item's path element: its keys (with the schema's defaults), its value, or its
/// index when it cannot be keyed (a live object's bad item).
pub fn item_element(kind: &ListKind, item: &Value) -> Result<PathElement, String> {
    match kind {
        ListKind::Set => Ok(PathElement::Value(item.clone())),
        ListKind::Map(keys) => {
            let Value::Object(o) = item else {
                return Err("expected map item in associative list".into());
            };
            let mut kv = Vec::with_capacity(keys.len());
            for (k, default) in keys {
                match o.get(k).or(default.as_ref()) {
                    Some(v) => kv.push((k.clone(), v.clone())),
                    None => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                        ));
                    }
                }
            }
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(kv))
        }
        ListKind::Atomic => Err("atomic list has no item keys".into()),
    }
}

/// Appends the `fieldsV1` key text of item `i` of a granular list (`PathElement::encode` of
/// its element as `index_items` makes it), without building the element for the common
/// one-key list.
fn write_item_key(kind: &ListKind, item: &Value, i: usize, out: &mut Vec<u8>) {
    /// Keys of a list written without building the element (ports have two).
    const FEW_KEYS: usize = 4;
    if let ListKind::Map(keys) = kind
        && keys.len() <= FEW_KEYS
    {
        let mut kv: [(&str, Option<&Value>); FEW_KEYS] = [("", None); FEW_KEYS];
        for (n, (k, default)) in keys.iter().enumerate() {
            match item.as_object().and_then(|o| o.get(k).or(default.as_ref())) {
                Some(v) => kv[n] = (k, Some(v)),
                // Unkeyable: tracked by index, as `index_items` tracks it.
                None => {
                    let _ = std::io::Write::write_fmt(out, format_args!("i:{i}"));
                    return;
                }
            }
        }
        let kv = &mut kv[..keys.len()];
        kv.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // Distinct key names (always, for a schema's keys) print in order.
        if kv.windows(2).all(|w| w[0].0 < w[1].0) {
            out.extend_from_slice(b"k:{");
            for (n, (k, v)) in kv.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                let _ = serde_json::to_writer(&mut *out, v);
            }
            out.push(b'}');
            return;
        }
    }
    let pe = item_element(kind, item).unwrap_or(PathElement::Index(i));
    out.extend_from_slice(pe.encode().as_bytes());
}

/// Items of a granular list by their path elements (the first of duplicates wins), in order.
fn index_items<'v>(
    kind: &ListKind,
    items: &'v [Value],
    strict: bool,
    at: &[PathElement],
) -> Result<Vec<(PathElement, &'v Value)>, String> {
    let mut out = Vec::with_capacity(items.len());
    let mut seen = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let pe = match item_element(kind, item) {
            Ok(pe) => pe,
            Err(e) if strict => return Err(format!("{}: element {i}: {e}", path_text(at))),
            Err(_) => PathElement::Index(i),
        };
        if seen.insert(pe.clone()) {
            out.push((pe, item));
        } else if strict {
            return Err(format!(
                "{}: duplicate entries for key {}",
                path_text(at),
                pe.text()
            ));
        }
    }
    Ok(out)
}

/// What a created object's fields lose on the way to its managedFields: the fields its
/// endpoint resets (with all below them) and the server-owned ones (members only), each at
/// the level being walked.
#[derive(Clone, Copy)]
struct Prune<'a> {
    ignored: Option<&'a FieldSet>,
    strip: Option<&'a FieldSet>,
}

/// A list's items by element: searched in place when few (most lists, and a create's zero
/// object has none), through a map when many.
enum ItemIndex<'i, 'v> {
    Few(&'i [(PathElement, &'v Value)]),
    Many(std::collections::BTreeMap<&'i PathElement, &'v Value>),
}

impl<'i, 'v> ItemIndex<'i, 'v> {
    fn new(items: &'i [(PathElement, &'v Value)]) -> Self {
        match items.len() {
            0..=16 => ItemIndex::Few(items),
            _ => ItemIndex::Many(items.iter().map(|(p, v)| (p, *v)).collect()),
        }
    }

    fn get(&self, pe: &PathElement) -> Option<&'v Value> {
        match self {
            ItemIndex::Few(items) => items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v),
            ItemIndex::Many(m) => m.get(pe).copied(),
        }
    }
}

/// The added path's stack of list item keys: (start, end, item index) of each key in `keys`.
#[derive(Default)]
struct Scratch {
    keys: Vec<u8>,
    order: Vec<(usize, usize, usize)>,
}

/// Scratch key bytes kept between creates.
const MAX_SCRATCH_KEYS: usize = 64 * 1024;

/// Runs `f` with this thread's scratch stack, empty (the added path's walks do not nest).
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = Default::default();
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.keys.clear();
        scratch.order.clear();
        let out = f(scratch);
        // A large object's keys are not kept past it.
        if scratch.keys.capacity() > MAX_SCRATCH_KEYS {
            *scratch = Scratch::default();
        }
        out
    })
}

/// Appends `s` escaped inside a JSON string as serde_json escapes it: `"`, `\\` and the
/// control characters, the common ones short (`\\n`), the rest as `\\u00XX`.
fn escape_into(s: &[u8], out: &mut Vec<u8>) {
    if !s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(s);
        return;
    }
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// One level of `fieldsV1` being written: whether an entry is out already (a comma goes
/// before the next), and its list items, written apart to be sorted by their keys.
#[derive(Default)]
struct Level {
    written: bool,
    /// Each item's key (unescaped: what a map of them sorts by) and its printed entry.
    items: Vec<(String, Vec<u8>)>,
}

impl Level {
    /// Appends the level's list items in the order of their keys, as a map of them prints.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (_, item) in self.items.drain(..) {
            if self.written {
                out.push(b',');
            }
            out.extend_from_slice(&item);
            self.written = true;
        }
    }
}

/// A child of a node: a field by name, or a list item by its element (and, once printed,
/// its `fieldsV1` key).
enum Child<'v> {
    Field(&'v str),
    Item(PathElement),
    Keyed(PathElement, &'v str),
}

impl Child<'_> {
    fn element(self) -> PathElement {
        match self {
            Child::Field(k) => PathElement::Field(k.to_string()),
            Child::Item(pe) | Child::Keyed(pe, _) => pe,
        }
    }

    fn element_ref(&self) -> std::borrow::Cow<'_, PathElement> {
        match self {
            Child::Field(k) => std::borrow::Cow::Owned(PathElement::Field(k.to_string())),
            Child::Item(pe) | Child::Keyed(pe, _) => std::borrow::Cow::Borrowed(pe),
        }
    }

    /// The `fieldsV1` key as a JSON string, escaped as serde_json escapes.
    fn write_key(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        match self {
            Child::Field(k) => {
                out.extend_from_slice(b"f:");
                escape_into(k.as_bytes(), out);
            }
            Child::Item(pe) => escape_into(pe.encode().as_bytes(), out),
            Child::Keyed(_, key) => escape_into(key.as_bytes(), out),
        }
        out.push(b'"');
    }
}

/// Reads values through one model.
pub struct Typed<'m> {
    pub model: &'m Model,
}

/// What changed from one value to another, as sets of paths.
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Typed<'_> {
    /// The fields `v` sets: leaves, list items and empty maps are members. `strict` refuses
    /// list items without their keys and duplicates (an apply configuration), else such items
    /// are tracked by index (a live object).
    pub fn field_set(&self, t: TypeId, v: &Value, strict: bool) -> Result<FieldSet, String> {
        let mut at = Vec::new();
        self.set_of(t, v, strict, &mut at, 0)
    }

    fn set_of(
        &self,
        t: TypeId,
        v: &Value,
        strict: bool,
        at: &mut Vec<PathElement>,
        depth: usize,
    ) -> Result<FieldSet, String> {
        let mut out = FieldSet::new();
        let s = shape(self.model, t, v, depth);
        match (&s, v) {
            (Shape::Struct { .. } | Shape::Map(_), Value::Object(o)) => {
                for (k, cv) in o {
                    let Some(ct) = child_type(&s, k) else {
                        continue;
                    };
                    let pe = PathElement::Field(k.clone());
                    at.push(pe.clone());
                    let sub = self.set_of(ct, cv, strict, at, depth + 1)?;
                    at.pop();
                    let empty_map = cv.as_object().is_some_and(Map::is_empty);
                    if sub.is_empty()
                        && (cv.is_null()
                            || empty_map
                            || matches!(shape(self.model, ct, cv, depth + 1), Shape::Leaf))
                    {
                        out.add_member(pe);
                    } else {
                        out.add_child(pe, sub);
                    }
                }
            }
            (Shape::List(elem, kind), Value::Array(items)) => {
                for (pe, item) in index_items(kind, items, strict, at)? {
                    at.push(pe.clone());
                    let sub = self.set_of(*elem, item, strict, at, depth + 1)?;
                    at.pop();
                    out.add_member(pe.clone());
                    out.add_child(pe, sub);
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// What changed from `old` to `new` (objects of type `t`).
    pub fn compare(&self, t: TypeId, old: &Value, new: &Value) -> Comparison {
        let mut c = Comparison::default();
        self.compare_at(t, Some(old), Some(new), &mut c, 0);
        c
    }

    /// Compares the children of one node into `c` (relative sets); returns whether the node is
    /// a leaf (the caller records it as one field).
    fn compare_at(
        &self,
        t: TypeId,
        old: Option<&Value>,
        new: Option<&Value>,
        c: &mut Comparison,
        depth: usize,
    ) -> bool {
        !self.child_pairs(t, old, new, depth, &mut |child, ct, ov, nv| {
            self.compare_child(child.element(), ct, ov, nv, c, depth);
        })
    }

    /// Visits the children two values of type `t` are compared by, with their type, old's
    /// and new's: old's first, then those only new has. A null beside a list or map is an
    /// empty one (a nil slice of a zero Go object); what Go would leave out of a typed object
    /// is not there to compare. False when the node is a leaf (either value is one, or one is
    /// a list and the other a map): nothing is visited.
    fn child_pairs<'v>(
        &self,
        t: TypeId,
        old: Option<&'v Value>,
        new: Option<&'v Value>,
        depth: usize,
        visit: &mut dyn FnMut(Child<'v>, TypeId, Option<&'v Value>, Option<&'v Value>),
    ) -> bool {
        let (old, new) = match (old, new) {
            (Some(Value::Null), Some(n)) if n.is_object() || n.is_array() => (None, Some(n)),
            (Some(o), Some(Value::Null)) if o.is_object() || o.is_array() => (Some(o), None),
            other => other,
        };
        let so = old.map(|v| shape(self.model, t, v, depth));
        let sn = new.map(|v| shape(self.model, t, v, depth));
        let leaf = |s: &Option<Shape<'_>>| matches!(s, Some(Shape::Leaf));
        let same_kind = match (old, new) {
            (Some(o), Some(n)) => o.is_object() == n.is_object() && o.is_array() == n.is_array(),
            _ => true,
        };
        if leaf(&so) || leaf(&sn) || !same_kind {
            return false;
        }
        let s = sn.or(so).unwrap_or(Shape::Leaf);
        match &s {
            Shape::Struct { .. } | Shape::Map(_) => {
                static EMPTY: std::sync::LazyLock<Map<String, Value>> =
                    std::sync::LazyLock::new(Map::new);
                let om = old.and_then(Value::as_object).unwrap_or(&EMPTY);
                let nm = new.and_then(Value::as_object).unwrap_or(&EMPTY);
                let struct_id = match &s {
                    Shape::Struct { id, .. } => Some(*id),
                    _ => None,
                };
                // A member's own value, unless Go would leave it out.
                let kept = |k: &str, v: &'v Value| match struct_id {
                    Some(id) if self.model.omitted(id, k, v) => None,
                    _ => Some(v),
                };
                // Both maps' keys in one sorted pass (each map iterates sorted): the
                // children come in key order, as `fieldsV1` lists them.
                let (mut oi, mut ni) = (om.iter().peekable(), nm.iter().peekable());
                loop {
                    let (k, ov, nv) = match (oi.peek(), ni.peek()) {
                        (None, None) => break,
                        (Some((ok, _)), Some((nk, _))) if ok == nk => {
                            let ((k, ov), (_, nv)) = (oi.next().unwrap(), ni.next().unwrap());
                            (k, Some(ov), Some(nv))
                        }
                        (Some((ok, _)), Some((nk, _))) if ok < nk => {
                            let (k, ov) = oi.next().unwrap();
                            (k, Some(ov), None)
                        }
                        (Some(_), None) => {
                            let (k, ov) = oi.next().unwrap();
                            (k, Some(ov), None)
                        }
                        _ => {
                            let (k, nv) = ni.next().unwrap();
                            (k, None, Some(nv))
                        }
                    };
                    let Some(ct) = child_type(&s, k) else {
                        continue;
                    };
                    let (ov, nv) = (ov.and_then(|v| kept(k, v)), nv.and_then(|v| kept(k, v)));
                    if ov.is_some() || nv.is_some() {
                        visit(Child::Field(k), ct, ov, nv);
                    }
                }
            }
            Shape::List(elem, kind) => {
                let items = |v: Option<&'v Value>| {
                    let items = v.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                    index_items(kind, items, false, &[]).unwrap_or_default()
                };
                let (oi, ni) = (items(old), items(new));
                let (on, nn) = (ItemIndex::new(&oi), ItemIndex::new(&ni));
                for (pe, ov) in &oi {
                    visit(Child::Item(pe.clone()), *elem, Some(*ov), nn.get(pe));
                }
                for (pe, nv) in ni {
                    if on.get(&pe).is_none() {
                        visit(Child::Item(pe), *elem, None, Some(nv));
                    }
                }
            }
            Shape::Leaf => return false,
        }
        true
    }

    fn compare_child(
        &self,
        pe: PathElement,
        t: TypeId,
        old: Option<&Value>,
        new: Option<&Value>,
        c: &mut Comparison,
        depth: usize,
    ) {
        let mut sub = Comparison::default();
        let leaf = self.compare_at(t, old, new, &mut sub, depth + 1);
        if leaf {
            match (old, new) {
                (None, Some(_)) => c.added.add_member(pe),
                (Some(_), None) => c.removed.add_member(pe),
                (Some(o), Some(n)) if o != n => c.modified.add_member(pe),
                _ => {}
            }
            return;
        }
        match (old, new) {
            (None, Some(_)) => c.added.add_member(pe.clone()),
            (Some(_), None) => c.removed.add_member(pe.clone()),
            _ => {}
        }
        c.added.add_child(pe.clone(), sub.added);
        c.modified.add_child(pe.clone(), sub.modified);
        c.removed.add_child(pe, sub.removed);
    }

    /// The `fieldsV1` of what a create sets, as compact JSON (serde_json's escapes): what
    /// `compare(t, zero, new)` adds or modifies, less `ignored` (and all under its members)
    /// and less `strip`'s members — `FieldSet::to_fields_v1` of that set, printed. One walk
    /// that builds no sets and no tree: every create pays for it (`benches/write.rs`), and
    /// they were most of a pod create's CPU. Empty when nothing is owned.
    pub fn created_fields_v1(
        &self,
        t: TypeId,
        zero: &Value,
        new: &Value,
        ignored: &FieldSet,
        strip: &FieldSet,
    ) -> Vec<u8> {
        // Sized as the largest printed here lately (a controller's pods are alike).
        thread_local! {
            static LAST_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(1024) };
        }
        let mut out = Vec::with_capacity(LAST_LEN.get().clamp(256, 64 * 1024) + 64);
        out.push(b'{');
        let mut level = Level::default();
        self.created_at(
            t,
            Some(zero),
            Some(new),
            Prune {
                ignored: Some(ignored),
                strip: Some(strip),
            },
            &mut out,
            &mut level,
            0,
        );
        level.finish(&mut out);
        if out.len() == 1 {
            out.clear();
        } else {
            out.push(b'}');
        }
        // A high-water mark that decays: other kinds' smaller entries between a
        // controller's pods do not shrink it at once.
        LAST_LEN.set(out.len().max(LAST_LEN.get() * 7 / 8));
        out
    }

    /// `compare_at` of a create, writing the added and modified children of one node into
    /// `out` (fields in order, list items into `level` to be sorted); returns whether the node
    /// is a leaf.
    #[allow(clippy::too_many_arguments)]
    fn created_at(
        &self,
        t: TypeId,
        old: Option<&Value>,
        new: Option<&Value>,
        prune: Prune<'_>,
        out: &mut Vec<u8>,
        level: &mut Level,
        depth: usize,
    ) -> bool {
        // A child the new value lacks is removed: nothing of it is added.
        !self.child_pairs(t, old, new, depth, &mut |child, ct, ov, nv| {
            if let Some(nv) = nv {
                match child {
                    Child::Field(_) => {
                        self.created_child(child, ct, ov, nv, prune, out, level, depth)
                    }
                    // A list's items print in the order of their keys' text: each is
                    // written apart, then sorted.
                    Child::Item(pe) => {
                        let key = pe.encode();
                        let mut item = Vec::new();
                        let mut alone = Level::default();
                        let child = Child::Keyed(pe, &key);
                        self.created_child(child, ct, ov, nv, prune, &mut item, &mut alone, depth);
                        if !item.is_empty() {
                            level.items.push((key, item));
                        }
                    }
                    // Only ever made below, for an item being written.
                    Child::Keyed(..) => {}
                }
            }
        })
    }

    /// Writes `"key":{…}` for one child when it is owned or has owned children.
    #[allow(clippy::too_many_arguments)]
    fn created_child(
        &self,
        child: Child<'_>,
        t: TypeId,
        old: Option<&Value>,
        new: &Value,
        prune: Prune<'_>,
        out: &mut Vec<u8>,
        level: &mut Level,
        depth: usize,
    ) {
        // The prune sets are a few fields near the root: deeper, nothing is looked up.
        let (below, stripped) = match (prune.ignored, prune.strip) {
            (None, None) => (prune, false),
            (ignored, strip) => {
                let pe = child.element_ref();
                if ignored.is_some_and(|i| i.is_member(&pe)) {
                    return;
                }
                let below = Prune {
                    ignored: ignored.and_then(|i| i.child(&pe)),
                    strip: strip.and_then(|s| s.child(&pe)),
                };
                (below, strip.is_some_and(|s| s.is_member(&pe)))
            }
        };
        // A node the zero object lacks, with nothing below to prune: all of it is added.
        let unpruned = !stripped && below.ignored.is_none() && below.strip.is_none();
        if old.is_none() && unpruned {
            self.added_child(&child, t, new, out, &mut level.written, depth);
            return;
        }
        // One the zero object holds as null: its children are all added.
        if unpruned
            && old.is_some_and(Value::is_null)
            && self.filled_child(&child, t, new, out, &mut level.written, depth)
        {
            return;
        }
        let mark = out.len();
        if level.written {
            out.push(b',');
        }
        child.write_key(out);
        out.extend_from_slice(b":{");
        let body = out.len();
        // A node new to the object is owned itself: `.` first, kept if it has children.
        let added = old.is_none() && !stripped;
        if added {
            out.extend_from_slice(b"\".\":{}");
        }
        let children = out.len();
        let mut inner = Level {
            written: added,
            items: Vec::new(),
        };
        let leaf = self.created_at(t, old, Some(new), below, out, &mut inner, depth + 1);
        inner.finish(out);
        let parent = out.len() > children;
        let member = match (leaf, old) {
            (_, None) => true,
            (true, Some(o)) => o != new,
            (false, Some(_)) => false,
        } && !stripped;
        if !parent {
            out.truncate(body);
        }
        if !member && !parent {
            out.truncate(mark);
            return;
        }
        out.push(b'}');
        level.written = true;
    }

    /// The entry of a node new to the object (`created_child` of a node `old` lacks, nothing
    /// pruned): `"key":{}` for a leaf or a node without children, else `"key":{".":{},…}`
    /// with every child added. The fast path of a create: no merge with an old value, list
    /// items keyed into one scratch buffer (shared by the whole walk, used as a stack) and
    /// written in key order.
    fn added_child(
        &self,
        child: &Child<'_>,
        t: TypeId,
        v: &Value,
        out: &mut Vec<u8>,
        written: &mut bool,
        depth: usize,
    ) {
        if *written {
            out.push(b',');
        }
        *written = true;
        child.write_key(out);
        with_scratch(|scratch| self.added_body(t, v, out, scratch, depth + 1));
    }

    /// The entry of a node the zero object holds as null (a nil slice or map) and the new
    /// object fills, nothing pruned: not owned itself (no `.`), every child added; nothing
    /// when it has no children. False when `new` is not walked into (a leaf, owned whole).
    fn filled_child(
        &self,
        child: &Child<'_>,
        t: TypeId,
        new: &Value,
        out: &mut Vec<u8>,
        written: &mut bool,
        depth: usize,
    ) -> bool {
        if matches!(shape(self.model, t, new, depth + 1), Shape::Leaf) {
            return false;
        }
        let mark = out.len();
        if *written {
            out.push(b',');
        }
        child.write_key(out);
        out.extend_from_slice(b":{");
        let children = out.len();
        with_scratch(|scratch| self.added_children(t, new, out, scratch, depth + 1));
        if out.len() == children {
            out.truncate(mark);
            return true;
        }
        // Each child was written after a comma: the first needs none.
        out.remove(children);
        out.push(b'}');
        *written = true;
        true
    }

    /// `:{…}` of a node new to the object (its key written already).
    fn added_body(
        &self,
        t: TypeId,
        v: &Value,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        depth: usize,
    ) {
        out.extend_from_slice(b":{");
        let body = out.len();
        out.extend_from_slice(b"\".\":{}");
        let children = out.len();
        self.added_children(t, v, out, scratch, depth);
        if out.len() == children {
            out.truncate(body);
        }
        out.push(b'}');
    }

    /// The children of a node new to the object, each after a comma.
    fn added_children(
        &self,
        t: TypeId,
        v: &Value,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        depth: usize,
    ) {
        let s = shape(self.model, t, v, depth);
        match (&s, v) {
            (Shape::Struct { .. } | Shape::Map(_), Value::Object(m)) => {
                let struct_id = match &s {
                    Shape::Struct { id, .. } => Some(*id),
                    _ => None,
                };
                for (k, cv) in m {
                    let Some(ct) = child_type(&s, k) else {
                        continue;
                    };
                    if struct_id.is_some_and(|id| self.model.omitted(id, k, cv)) {
                        continue;
                    }
                    out.extend_from_slice(b",\"f:");
                    escape_into(k.as_bytes(), out);
                    out.push(b'"');
                    self.added_body(ct, cv, out, scratch, depth + 1);
                }
            }
            (Shape::List(elem, kind), Value::Array(items)) => {
                // Each item's key text on the scratch stack; items in the order of their keys
                // (most lists are in it already), the first of duplicates kept (as
                // `index_items` keeps it).
                let (keys_base, order_base) = (scratch.keys.len(), scratch.order.len());
                for (i, item) in items.iter().enumerate() {
                    let start = scratch.keys.len();
                    write_item_key(kind, item, i, &mut scratch.keys);
                    scratch.order.push((start, scratch.keys.len(), i));
                }
                let keys = &scratch.keys;
                let by_key = |a: &(usize, usize, usize), b: &(usize, usize, usize)| {
                    keys[a.0..a.1].cmp(&keys[b.0..b.1]).then(a.2.cmp(&b.2))
                };
                let order = &mut scratch.order[order_base..];
                if !order.is_sorted_by(|a, b| by_key(a, b).is_le()) {
                    order.sort_unstable_by(by_key);
                }
                let end = scratch.order.len();
                let mut last: Option<(usize, usize)> = None;
                for n in order_base..end {
                    let (start, stop, i) = scratch.order[n];
                    if last.is_some_and(|(a, b)| scratch.keys[a..b] == scratch.keys[start..stop]) {
                        continue;
                    }
                    last = Some((start, stop));
                    out.extend_from_slice(b",\"");
                    escape_into(&scratch.keys[start..stop], out);
                    out.push(b'"');
                    self.added_body(*elem, &items[i], out, scratch, depth + 1);
                }
                scratch.keys.truncate(keys_base);
                scratch.order.truncate(order_base);
            }
            _ => {}
        }
    }

    /// `config` merged into `live`: config's values win, granular maps and structs merge by
    /// field, sets and map lists by item (the order structured-merge-diff gives: live's items
    /// in place, config's items in config's order), everything else is replaced.
    pub fn merge(&self, t: TypeId, live: &Value, config: &Value) -> Result<Value, String> {
        self.merge_at(t, live, config, &mut Vec::new(), 0)
    }

    fn merge_at(
        &self,
        t: TypeId,
        live: &Value,
        config: &Value,
        at: &mut Vec<PathElement>,
        depth: usize,
    ) -> Result<Value, String> {
        let sl = shape(self.model, t, live, depth);
        let sc = shape(self.model, t, config, depth);
        match (&sl, &sc, live, config) {
            (
                Shape::Struct { .. } | Shape::Map(_),
                Shape::Struct { .. } | Shape::Map(_),
                Value::Object(lm),
                Value::Object(cm),
            ) => {
                let mut out = lm.clone();
                for (k, cv) in cm {
                    let ct = child_type(&sc, k).unwrap_or(DEDUCED);
                    let merged = match lm.get(k) {
                        Some(lv) => {
                            at.push(PathElement::Field(k.clone()));
                            let m = self.merge_at(ct, lv, cv, at, depth + 1)?;
                            at.pop();
                            m
                        }
                        None => cv.clone(),
                    };
                    out.insert(k.clone(), merged);
                }
                Ok(Value::Object(out))
            }
            (Shape::List(elem, kind), Shape::List(..), Value::Array(li), Value::Array(ci)) => {
                self.merge_list(*elem, kind, li, ci, at, depth)
            }
            _ => {
                // Validate the configuration's items even when it replaces the live value.
                if let (Shape::List(_, kind), Value::Array(ci)) = (&sc, config) {
                    index_items(kind, ci, true, at)?;
                }
                Ok(config.clone())
            }
        }
    }

    fn merge_list(
        &self,
        elem: TypeId,
        kind: &ListKind,
        live: &[Value],
        config: &[Value],
        at: &mut Vec<PathElement>,
        depth: usize,
    ) -> Result<Value, String> {
        let lhs = index_items(kind, live, false, at)?;
        let rhs = index_items(kind, config, true, at)?;
        let in_rhs: std::collections::BTreeMap<&PathElement, &Value> =
            rhs.iter().map(|(p, v)| (p, *v)).collect();
        let in_lhs: std::collections::BTreeMap<&PathElement, &Value> =
            lhs.iter().map(|(p, v)| (p, *v)).collect();
        // Items both have, in the configuration's order: they are placed in that order.
        let shared: Vec<&PathElement> = rhs
            .iter()
            .map(|(p, _)| p)
            .filter(|p| in_lhs.contains_key(p))
            .collect();
        let mut next_shared = 0usize;
        let mut done = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(lhs.len() + rhs.len());
        let (mut l, mut r) = (0usize, 0usize);
        let merge_item = |this: &Self,
                          pe: &PathElement,
                          lv: Option<&Value>,
                          rv: Option<&Value>,
                          at: &mut Vec<PathElement>|
         -> Result<Value, String> {
            at.push(pe.clone());
            let v = match (lv, rv) {
                (Some(lv), Some(rv)) => this.merge_at(elem, lv, rv, at, depth + 1)?,
                (Some(v), None) | (None, Some(v)) => v.clone(),
                (None, None) => Value::Null,
            };
            at.pop();
            Ok(v)
        };
        while l < lhs.len() || r < rhs.len() {
            if l < lhs.len() && r < rhs.len() {
                let pe = &lhs[l].0;
                if *pe == rhs[r].0 {
                    done.insert(pe.clone());
                    out.push(merge_item(self, pe, Some(lhs[l].1), Some(rhs[r].1), at)?);
                    l += 1;
                    r += 1;
                    if shared.get(next_shared) == Some(&pe) {
                        next_shared += 1;
                    }
                    continue;
                }
                if in_rhs.contains_key(pe) && shared.get(next_shared).is_some_and(|s| *s != pe) {
                    l += 1;
                    continue;
                }
            }
            if l < lhs.len() {
                let pe = &lhs[l].0;
                if !in_rhs.contains_key(pe) {
                    out.push(lhs[l].1.clone());
                    l += 1;
                    continue;
                }
                if done.contains(pe) {
                    l += 1;
                    continue;
                }
            }
            if r < rhs.len() {
                let pe = &rhs[r].0;
                done.insert(pe.clone());
                out.push(merge_item(
                    self,
                    pe,
                    in_lhs.get(pe).copied(),
                    Some(rhs[r].1),
                    at,
                )?);
                if shared.get(next_shared) == Some(&pe) {
                    next_shared += 1;
                }
                r += 1;
            }
        }
        Ok(Value::Array(out))
    }

    /// Removes from `v` every member of `set` (a whole field, list item or value).
    pub fn remove(&self, t: TypeId, v: &mut Value, set: &FieldSet) {
        self.remove_at(t, v, set, 0)
    }

    fn remove_at(&self, t: TypeId, v: &mut Value, set: &FieldSet, depth: usize) {
        let (elem_or_fields, kind) = match shape(self.model, t, v, depth) {
            Shape::Leaf => return,
            Shape::List(elem, kind) => (Err(elem), Some(kind.clone())),
            s => (Ok(s), None),
        };
        match (elem_or_fields, v) {
            (Ok(s), Value::Object(o)) => {
                let types: Vec<(String, TypeId)> = o
                    .keys()
                    .map(|k| (k.clone(), child_type(&s, k).unwrap_or(DEDUCED)))
                    .collect();
                for (k, ct) in types {
                    let pe = PathElement::Field(k.clone());
                    if set.is_member(&pe) {
                        o.remove(&k);
                    } else if let (Some(sub), Some(cv)) = (set.child(&pe), o.get_mut(&k)) {
                        self.remove_at(ct, cv, sub, depth + 1);
                    }
                }
            }
            (Err(elem), Value::Array(items)) => {
                let Some(kind) = kind else { return };
                let mut keep = Vec::with_capacity(items.len());
                for (i, mut item) in std::mem::take(items).into_iter().enumerate() {
                    let pe = item_element(&kind, &item).unwrap_or(PathElement::Index(i));
                    if set.is_member(&pe) {
                        continue;
                    }
                    if let Some(sub) = set.child(&pe) {
                        self.remove_at(elem, &mut item, sub, depth + 1);
                    }
                    keep.push(item);
                }
                *items = keep;
            }
            _ => {}
        }
    }
}

/// The paths to prune after an apply: what the manager applied last time (`last`) and no
/// manager owns now (`owned`, the new applied set included). Struct fields count as owned
/// when anything under them is (structured-merge-diff's `EnsureNamedFieldsAreMembers`).
pub fn to_prune(last: &FieldSet, owned: &FieldSet) -> FieldSet {
    let mut out = FieldSet::new();
    let empty = FieldSet::new();
    let mut elements: Vec<&PathElement> = last.members().collect();
    elements.extend(last.children().map(|(pe, _)| pe));
    elements.sort();
    elements.dedup();
    for pe in elements {
        let named = matches!(pe, PathElement::Field(_));
        let in_last = last.is_member(pe) || (named && last.child(pe).is_some());
        let is_owned = owned.is_member(pe) || (named && owned.child(pe).is_some());
        if in_last && !is_owned {
            out.add_member(pe.clone());
        } else if let Some(lc) = last.child(pe) {
            out.add_child(pe.clone(), to_prune(lc, owned.child(pe).unwrap_or(&empty)));
        }
    }
    out
}
