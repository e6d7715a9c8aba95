//! Sets of field paths, as structured-merge-diff keeps ownership: a tree whose nodes are path
//! elements (`f:` field, `k:` list item by its keys, `v:` set item by value, `i:` index), each
//! either a member (owned itself) or a parent of owned paths, or both (`.`). Encoded and decoded
//! as upstream's `fieldsV1`, with elements in upstream's order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// Nesting a decoded `fieldsV1` may have: an object deeper than any schema is refused rather
/// than followed (the JSON decoder bounds depth below this already).
pub const MAX_FIELDS_DEPTH: usize = 128;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathElement {
    Field(String),
    /// A map list's item: its key fields and values, sorted by field name.
    Key(Vec<(String, Value)>),
    /// A set's item.
    Value(Value),
    Index(usize),
}

impl Eq for PathElement {}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// structured-merge-diff's total order of values: numbers, strings, booleans, lists, maps, null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare_values(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
                let c = kx.cmp(ky).then_with(|| compare_values(vx, vy));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        use PathElement::*;
        let r = |e: &PathElement| match e {
            Field(_) => 0,
            Key(_) => 1,
            Value(_) => 2,
            Index(_) => 3,
        };
        match (self, other) {
            (Field(a), Field(b)) => a.cmp(b),
            (Key(a), Key(b)) => {
                for ((na, va), (nb, vb)) in a.iter().zip(b) {
                    let c = na.cmp(nb).then_with(|| compare_values(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value(a), Value(b)) => compare_values(a, b),
            (Index(a), Index(b)) => a.cmp(b),
            _ => r(self).cmp(&r(other)),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A scalar as structured-merge-diff prints it in a path: strings quoted, the rest as JSON.
fn value_text(v: &Value) -> String {
    v.to_string()
}

impl PathElement {
    /// The `fieldsV1` form: `f:name`, `k:{"key":value}`, `v:value`, `i:index`.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(n) => format!("f:{n}"),
            // Keys sorted by name and distinct (as items are keyed): printed as they are.
            PathElement::Key(kv) if kv.windows(2).all(|w| w[0].0 < w[1].0) => {
                let mut out = b"k:{".to_vec();
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut out, k);
                    out.push(b':');
                    let _ = serde_json::to_writer(&mut out, v);
                }
                out.push(b'}');
                String::from_utf8(out).unwrap_or_default()
            }
            PathElement::Key(kv) => {
                let mut m = Map::new();
                for (k, v) in kv {
                    m.insert(k.clone(), v.clone());
                }
                // Keys sorted by name: a BTreeMap-backed map keeps them so.
                let sorted: BTreeMap<&String, &Value> = m.iter().collect();
                format!(
                    "k:{}",
                    serde_json::to_string(&sorted).unwrap_or_else(|_| "{}".into())
                )
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `fieldsV1` key; None when it is not one.
    pub fn decode(s: &str) -> Option<PathElement> {
        let (tag, rest) = s.split_at_checked(2)?;
        match tag {
            "f:" => Some(PathElement::Field(rest.to_string())),
            "k:" => {
                let Value::Object(m) = serde_json::from_str(rest).ok()? else {
                    return None;
                };
                let mut kv: Vec<(String, Value)> = m.into_iter().collect();
                kv.sort_by(|a, b| a.0.cmp(&b.0));
                Some(PathElement::Key(kv))
            }
            "v:" => serde_json::from_str(rest).ok().map(PathElement::Value),
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }

    /// The form of a conflict's path: `.name`, `[key="v",other=1]`, `[="v"]`, `[3]`.
    pub fn text(&self) -> String {
        match self {
            PathElement::Field(n) => format!(".{n}"),
            PathElement::Key(kv) => {
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_text(v)))
                    .collect();
                format!("[{}]", parts.join(","))
            }
            PathElement::Value(v) => format!("[={}]", value_text(v)),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

/// A path's text as upstream prints it in conflicts (`.spec.containers[name="web"].image`).
pub fn path_text(path: &[PathElement]) -> String {
    path.iter().map(PathElement::text).collect()
}

/// A set of paths: members owned at this level and the sets under each child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    /// Never holds an empty set.
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path` as a member (an empty path adds nothing, as upstream).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    pub fn is_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    pub fn union_with(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            self.children.entry(pe.clone()).or_default().union_with(c);
        }
    }

    /// `union_with` taking `other` by value: its elements move instead of being cloned, and
    /// a subtree this set lacks is put in whole (building a set bottom-up stays linear).
    pub fn union_owned(&mut self, other: FieldSet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.members.extend(other.members);
        for (pe, c) in other.children {
            match self.children.entry(pe) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(c);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().union_owned(c),
            }
        }
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            let c = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !c.is_empty() {
                children.insert(pe.clone(), c);
            }
        }
        FieldSet { members, children }
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let c = c.intersection(o);
                if !c.is_empty() {
                    children.insert(pe.clone(), c);
                }
            }
        }
        FieldSet { members, children }
    }

    /// The paths of `self` not in `other`, and nothing under a member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let c = match other.children.get(pe) {
                Some(o) => c.recursive_difference(o),
                None => c.clone(),
            };
            if !c.is_empty() {
                children.insert(pe.clone(), c);
            }
        }
        FieldSet { members, children }
    }

    /// Every member path, members of a level before its children, in upstream's order.
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `fieldsV1` object: each element as a key, `{}` for a member, its children's object
    /// for a parent, with `".": {}` first when it is both.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode_level(false))
    }

    fn encode_level(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut all: BTreeSet<&PathElement> = self.members.iter().collect();
        all.extend(self.children.keys());
        for pe in all {
            let member = self.members.contains(pe);
            let v = match self.children.get(pe) {
                Some(c) => c.encode_level(member),
                None => Map::new(),
            };
            out.insert(pe.encode(), Value::Object(v));
        }
        out
    }

    /// Parses a `fieldsV1` object; None when it is not one (upstream then drops the entry's
    /// fields: a client's bad managedFields are reset, not an error).
    pub fn from_fields_v1(v: &Value) -> Option<FieldSet> {
        let mut s = FieldSet::new();
        s.decode_level(v, 0)?;
        Some(s)
    }

    /// Decodes one level into `self`; returns whether it held `.`.
    fn decode_level(&mut self, v: &Value, depth: usize) -> Option<bool> {
        if depth > MAX_FIELDS_DEPTH {
            return None;
        }
        let m = v.as_object()?;
        let mut has_self = false;
        for (k, child) in m {
            if k == "." {
                has_self = true;
                continue;
            }
            let pe = PathElement::decode(k)?;
            let mut c = FieldSet::new();
            let member = c.decode_level(child, depth + 1)?;
            if member || c.is_empty() {
                self.members.insert(pe.clone());
            }
            if !c.is_empty() {
                self.children.insert(pe, c);
            }
        }
        Some(has_self)
    }
}

impl FieldSet {
    /// Marks `pe` as a member of this level.
    pub(crate) fn add_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Puts `set` under `pe` (an empty set adds nothing).
    pub(crate) fn add_child(&mut self, pe: PathElement, set: FieldSet) {
        if !set.is_empty() {
            self.children.entry(pe).or_default().union_owned(set);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(n: &str) -> PathElement {
        PathElement::Field(n.into())
    }

    #[test]
    fn fields_v1_round_trips_upstreams_encoding() {
        // A Deployment's managedFields as kubectl-create leaves them (keys in upstream's order).
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
            }}}},
            "f:metadata2": {"f:finalizers": {".": {}, "v:\"a\"": {}}}
        });
        let s = FieldSet::from_fields_v1(&v).unwrap();
        assert_eq!(s.to_fields_v1(), v);
        assert_eq!(
            serde_json::to_string(&s.to_fields_v1()).unwrap(),
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:metadata2":{"f:finalizers":{".":{},"v:\"a\"":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
        );
        assert!(s.has(&[f("metadata"), f("labels")]));
        assert!(s.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!s.has(&[f("metadata")]));
        assert!(FieldSet::from_fields_v1(&json!({"x:bad": {}})).is_none());
        assert!(FieldSet::from_fields_v1(&json!([])).is_none());
    }

    #[test]
    fn key_elements_sort_their_fields_and_print_as_upstream() {
        let k = PathElement::decode(r#"k:{"protocol":"TCP","port":80}"#).unwrap();
        assert_eq!(k.encode(), r#"k:{"port":80,"protocol":"TCP"}"#);
        assert_eq!(k.text(), r#"[port=80,protocol="TCP"]"#);
        assert_eq!(path_text(&[f("data"), f("a")]), ".data.a".to_string());
        // Fields before keys before values before indexes.
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!("x")),
            k.clone(),
            f("z"),
        ];
        v.sort();
        assert_eq!(v[0], f("z"));
        assert_eq!(v[3], PathElement::Index(0));
    }

    #[test]
    fn set_operations_follow_structured_merge_diff() {
        let a = FieldSet::from_fields_v1(&json!({"f:data": {"f:a": {}, "f:b": {}}, "f:x": {}}))
            .unwrap();
        let b = FieldSet::from_fields_v1(&json!({"f:data": {"f:b": {}, "f:c": {}}})).unwrap();
        assert_eq!(
            a.union(&b).to_fields_v1(),
            json!({"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}, "f:x": {}})
        );
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:data": {"f:a": {}}, "f:x": {}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:data": {"f:b": {}}})
        );
        let data = FieldSet::from_fields_v1(&json!({"f:data": {}})).unwrap();
        assert_eq!(a.difference(&data), a);
        assert_eq!(
            a.recursive_difference(&data).to_fields_v1(),
            json!({"f:x": {}})
        );
        assert_eq!(
            a.paths().iter().map(|p| path_text(p)).collect::<Vec<_>>(),
            vec![".x", ".data.a", ".data.b"]
        );
    }
}
