//! A mutation's value applied to the object, as upstream's patchers apply it:
//! - `JSONPatch`: the expression's list of `JSONPatch{op, path, from, value}` applied as an
//!   RFC 6902 patch (kapi's json-patch, as upstream's v4); an operation that does not apply is
//!   an error, a failed `test` leaves the object as it was;
//! - `ApplyConfiguration`: the expression's `Object{...}` merged into the object with
//!   structured-merge semantics by the kind's type model (`crate::ssa`); an apply
//!   configuration may not set atomic lists, maps or structs (it would replace what it does
//!   not name). No field ownership is recorded for it, as upstream records none.

use serde_json::{Map, Value};

use crate::ssa::Model;
use crate::ssa::model::{DEDUCED, Type, TypeId};
use crate::ssa::typed::Typed;

/// The object after the JSON patch `ops` (the expression's value, as JSON).
pub(super) fn json_patch(obj: &Value, ops: &Value) -> Result<Value, String> {
    let Some(items) = ops.as_array() else {
        return Err("type mismatch: JSONPatchType.expression should evaluate to array".into());
    };
    let mut patch = Vec::with_capacity(items.len());
    for item in items {
        let op = item.as_object().filter(|m| {
            m.get("op").is_some_and(Value::is_string) && m.get("path").is_some_and(Value::is_string)
        });
        let Some(op) = op else {
            return Err(
                "type mismatch: JSONPatchType.expression should evaluate to array of JSONPatch"
                    .into(),
            );
        };
        let mut out = Map::new();
        for field in ["op", "path"] {
            out.insert(field.into(), op[field].clone());
        }
        if let Some(from) = op
            .get("from")
            .filter(|f| f.as_str().is_some_and(|f| !f.is_empty()))
        {
            out.insert("from".into(), from.clone());
        }
        if let Some(value) = op.get("value") {
            out.insert("value".into(), value.clone());
        }
        patch.push(Value::Object(out));
    }
    match crate::api::patch::apply_json_patch(obj.clone(), &Value::Array(patch)) {
        Ok(patched) => Ok(patched),
        Err(e) if e.is_test_failure() => Ok(obj.clone()),
        Err(e) => Err(format!("JSONPath: {}", e.text())),
    }
}

/// The object with the apply configuration `config` merged in, by the type of
/// `api_version`/`kind` in `model`.
pub(super) fn apply_configuration(
    model: &Model,
    (api_version, kind): (&str, &str),
    obj: &Value,
    config: &Value,
) -> Result<Value, String> {
    if !config.is_object() {
        return Err(format!(
            "unsupported return type from ApplyConfiguration expression: {}",
            json_type(config)
        ));
    }
    let root = model.root_for(api_version, kind);
    let mut atomics = Vec::new();
    find_atomics(model, root, config, &mut String::new(), &mut atomics, 0);
    if !atomics.is_empty() {
        return Err(format!(
            "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: {}",
            atomics.join(", ")
        ));
    }
    Typed { model }
        .merge(root, obj, config)
        .map_err(|e| format!("error applying patch: failed to merge patch: {e}"))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null_type",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// The deepest apply configuration searched for atomics (the type model's own bound).
const MAX_DEPTH: usize = crate::ssa::model::MAX_SCHEMA_DEPTH;

/// The paths (`.spec.selector`, `.spec.containers[0].args`) where `v` sets an atomic list,
/// map or struct of type `t`: structs are followed through their named fields, lists through
/// their items; a deduced (untyped) list is atomic.
fn find_atomics(
    model: &Model,
    t: TypeId,
    v: &Value,
    path: &mut String,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match (model.get(t), v) {
        (Type::Struct { fields, atomic, .. }, Value::Object(m)) => {
            if *atomic {
                out.push(path.clone());
            }
            for (k, child) in m {
                if let Some(&ft) = fields.get(k) {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    find_atomics(model, ft, child, path, out, depth + 1);
                    path.truncate(len);
                }
            }
        }
        (Type::Map { atomic: true, .. }, Value::Object(_)) => out.push(path.clone()),
        (Type::List { elem, kind }, Value::Array(items)) => {
            if *kind == crate::ssa::model::ListKind::Atomic {
                out.push(path.clone());
            }
            items_atomics(model, *elem, items, path, out, depth);
        }
        (Type::Deduced, Value::Array(items)) => {
            out.push(path.clone());
            items_atomics(model, DEDUCED, items, path, out, depth);
        }
        _ => {}
    }
}

fn items_atomics(
    model: &Model,
    elem: TypeId,
    items: &[Value],
    path: &mut String,
    out: &mut Vec<String>,
    depth: usize,
) {
    for (i, item) in items.iter().enumerate() {
        let len = path.len();
        path.push_str(&format!("[{i}]"));
        find_atomics(model, elem, item, path, out, depth + 1);
        path.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "a", "image": "a:1"},
                                       {"name": "b", "image": "b:1"}]}})
    }

    #[test]
    fn json_patches_apply_in_order_and_a_failed_test_changes_nothing() {
        let ops = json!([
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "c", "image": "c:1"}},
            {"op": "add", "path": "/spec/containers/0/env", "value": [{"name": "X", "value": "1"}]},
            {"op": "replace", "path": "/metadata/labels/app", "value": "api"},
        ]);
        let out = json_patch(&pod(), &ops).unwrap();
        assert_eq!(out["spec"]["containers"][2]["name"], "c");
        assert_eq!(out["spec"]["containers"][0]["env"][0]["name"], "X");
        assert_eq!(out["metadata"]["labels"]["app"], "api");
        let failed_test = json!([
            {"op": "test", "path": "/metadata/labels/app", "value": "other"},
            {"op": "remove", "path": "/metadata/labels"},
        ]);
        assert_eq!(json_patch(&pod(), &failed_test).unwrap(), pod());
        let err = json_patch(&pod(), &json!([{"op": "remove", "path": "/spec/nope"}])).unwrap_err();
        assert!(err.starts_with("JSONPath: "), "{err}");
        let err = json_patch(&pod(), &json!({"op": "add"})).unwrap_err();
        assert!(err.contains("should evaluate to array"), "{err}");
        let err = json_patch(&pod(), &json!([{"op": "add"}])).unwrap_err();
        assert!(err.contains("array of JSONPatch"), "{err}");
    }

    #[test]
    fn apply_configurations_merge_by_the_kinds_type() {
        let model = Model::builtin();
        let config = json!({"metadata": {"labels": {"team": "a"}},
                            "spec": {"containers": [{"name": "b", "image": "b:2"}]}});
        let out = apply_configuration(&model, ("v1", "Pod"), &pod(), &config).unwrap();
        // Labels merge; containers merge by name, the other one is kept.
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "team": "a"})
        );
        assert_eq!(
            out["spec"]["containers"][0],
            json!({"name": "a", "image": "a:1"})
        );
        assert_eq!(
            out["spec"]["containers"][1],
            json!({"name": "b", "image": "b:2"})
        );
        // Atomic lists may not be set: they would replace what the configuration omits.
        let config = json!({"spec": {"containers": [{"name": "a", "args": ["x"]}]}});
        let err = apply_configuration(&model, ("v1", "Pod"), &pod(), &config).unwrap_err();
        assert_eq!(
            err,
            "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: .spec.containers[0].args"
        );
        let err = apply_configuration(&model, ("v1", "Pod"), &pod(), &json!([1])).unwrap_err();
        assert!(err.contains("unsupported return type"), "{err}");
    }
}
