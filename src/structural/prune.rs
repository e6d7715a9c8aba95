//! Pruning (upstream's `pruning.PruneWithOptions`): members a structural schema does not
//! specify are dropped from a custom resource on its way in, and their paths are returned for
//! `fieldValidation` (Strict: 400, Warn: warnings). `x-kubernetes-preserve-unknown-fields`
//! keeps them; embedded resources and the root keep `apiVersion`, `kind` and `metadata`.

use serde_json::Value;

use super::node::{Additional, Node};

const META_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// The ObjectMeta members an embedded resource's `metadata` may hold (the JSON names of
/// `metav1.ObjectMeta`, in Go's order); others are dropped as a strict decode would.
pub(crate) const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// How deep a prune walks below the schema (lists of lists the schema does not specify);
/// deeper values are left as they are. The decoder's own nesting limit is lower still.
const MAX_WALK_DEPTH: usize = 2 * super::node::MAX_SCHEMA_DEPTH;

/// What a walk carries: the path so far (upstream's `ParentPath` joined), the unknown paths,
/// and how deep it is.
struct Walk {
    path: String,
    unknown: Vec<String>,
    depth: usize,
}

impl Walk {
    fn key(&mut self, k: &str) -> usize {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(k);
        len
    }

    fn index(&mut self, i: usize) -> usize {
        let len = self.path.len();
        self.path.push_str(&format!("[{i}]"));
        len
    }

    fn record(&mut self, k: &str) {
        let len = self.key(k);
        self.unknown.push(self.path.clone());
        self.path.truncate(len);
    }
}

/// Prunes `obj` (a resource root) under `root`, returning the unknown paths sorted as upstream.
pub fn prune_root(obj: &mut Value, root: &Node) -> Vec<String> {
    let mut walk = Walk {
        path: String::new(),
        unknown: Vec::new(),
        depth: 0,
    };
    // The root is always treated as an embedded resource.
    prune(obj, Some(root), true, &mut walk);
    walk.unknown.sort();
    walk.unknown
}

/// Prunes a value under a node (a schema's `default`), `embedded` when the node is a resource.
pub fn prune_value(x: &mut Value, s: &Node, embedded: bool) -> Vec<String> {
    let mut walk = Walk {
        path: String::new(),
        unknown: Vec::new(),
        depth: 0,
    };
    prune(x, Some(s), embedded, &mut walk);
    walk.unknown
}

/// The schema an unknown member falls under when the node has additionalProperties:
/// `Some(schema)`, or `Some(None)` for a bare boolean (upstream prunes under a nil schema).
fn additional(s: &Node) -> Option<Option<&Node>> {
    match &s.additional {
        Some(Additional::Schema(n)) => Some(Some(n)),
        Some(Additional::Allows(_)) => Some(None),
        None => None,
    }
}

fn prune(x: &mut Value, s: Option<&Node>, is_root: bool, walk: &mut Walk) {
    if walk.depth > MAX_WALK_DEPTH {
        return;
    }
    walk.depth += 1;
    prune_node(x, s, is_root, walk);
    walk.depth -= 1;
}

fn prune_node(x: &mut Value, s: Option<&Node>, is_root: bool, walk: &mut Walk) {
    if let Some(s) = s
        && s.preserve_unknown
    {
        skip_prune(x, s, is_root, walk);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    walk.record(&k);
                }
                map.clear();
                return;
            };
            let embedded = s.embedded || is_root;
            let mut drop = Vec::new();
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    if embedded && !is_root && k == "metadata" {
                        prune_embedded_meta(v, walk);
                    }
                    continue;
                }
                if let Some(prop) = s.properties.get(k) {
                    let len = walk.key(k);
                    prune(v, Some(prop), false, walk);
                    walk.path.truncate(len);
                } else if let Some(add) = additional(s) {
                    let len = walk.key(k);
                    prune(v, add, false, walk);
                    walk.path.truncate(len);
                } else {
                    if !META_FIELDS.contains(&k.as_str()) || !walk.path.is_empty() {
                        walk.record(k);
                    }
                    drop.push(k.clone());
                }
            }
            for k in drop {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            let item = s.and_then(|s| s.items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                let len = walk.index(i);
                prune(v, item, false, walk);
                walk.path.truncate(len);
            }
        }
        _ => {}
    }
}

fn skip_prune(x: &mut Value, s: &Node, is_root: bool, walk: &mut Walk) {
    if s.too_deep {
        return;
    }
    match x {
        Value::Object(map) => {
            let embedded = s.embedded || is_root;
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    if !is_root && k == "metadata" {
                        prune_embedded_meta(v, walk);
                    }
                    continue;
                }
                if let Some(prop) = s.properties.get(k) {
                    let len = walk.key(k);
                    prune(v, Some(prop), false, walk);
                    walk.path.truncate(len);
                } else if let Some(add) = additional(s) {
                    let len = walk.key(k);
                    prune(v, add, false, walk);
                    walk.path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.items.as_deref() {
                for (i, v) in items.iter_mut().enumerate() {
                    let len = walk.index(i);
                    skip_prune(v, item, false, walk);
                    walk.path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// An embedded resource's `metadata`: members ObjectMeta does not have are dropped and
/// reported as `<path>.metadata.<member>` (upstream's objectmeta coercion).
fn prune_embedded_meta(meta: &mut Value, walk: &mut Walk) {
    let Some(map) = meta.as_object_mut() else {
        return;
    };
    let drop: Vec<String> = map
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in drop {
        let len = walk.key("metadata");
        walk.record(&k);
        walk.path.truncate(len);
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pruned(schema: Value, mut obj: Value) -> (Value, Vec<String>) {
        let node = Node::parse(&schema, 0);
        let paths = prune_root(&mut obj, &node);
        (obj, paths)
    }

    #[test]
    fn unknown_fields_are_dropped_and_named_in_sorted_order() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}}
            }}
        }});
        let (obj, paths) = pruned(
            schema,
            json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
                   "spec": {"size": 1, "zeta": 1, "foo": {"bar": 1},
                            "list": [{"a": "x", "b": 2}]}, "status": {}}),
        );
        assert_eq!(
            paths,
            vec!["spec.foo", "spec.list[0].b", "spec.zeta", "status"]
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
                   "spec": {"size": 1, "list": [{"a": "x"}]}})
        );
    }

    #[test]
    fn preserve_unknown_fields_keeps_members_but_prunes_specified_ones() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "known": {"type": "object", "properties": {"a": {"type": "string"}}}
            }}
        }});
        let (obj, paths) = pruned(
            schema,
            json!({"spec": {"free": {"x": 1}, "known": {"a": "1", "b": 2}}}),
        );
        assert_eq!(paths, vec!["spec.known.b"]);
        assert_eq!(
            obj,
            json!({"spec": {"free": {"x": 1}, "known": {"a": "1"}}})
        );
    }

    #[test]
    fn embedded_resources_keep_type_and_object_meta() {
        let schema = json!({"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {
                "spec": {"type": "object"}
            }},
            "nested": {"type": "object", "properties": {}}
        }});
        let (obj, paths) = pruned(
            schema,
            json!({"template": {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "p", "bogus": 1}, "spec": {"x": 1}},
                   "nested": {"kind": "x", "metadata": {}}}),
        );
        assert_eq!(
            paths,
            vec![
                "nested.kind",
                "nested.metadata",
                "template.metadata.bogus",
                "template.spec.x"
            ]
        );
        assert_eq!(
            obj,
            json!({"template": {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "p"}, "spec": {}}, "nested": {}})
        );
    }

    #[test]
    fn additional_properties_schemas_prune_each_value() {
        let schema = json!({"type": "object", "properties": {
            "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}}
        }});
        let (obj, paths) = pruned(schema, json!({"m": {"k1": {"a": "x", "b": 1}}}));
        assert_eq!(paths, vec!["m.k1.b"]);
        assert_eq!(obj, json!({"m": {"k1": {"a": "x"}}}));
    }
}
