//! What an update may not change (upstream's `ValidateImmutableField`), compared as upstream's
//! `apiequality.Semantic` does: a missing field, `null`, an empty list and an empty map are
//! the same value. Each kind's update rules (`Strategy::validate_update`) call these.

use crate::jsonptr::At;
use serde_json::{Map, Value};

use super::field::invalid;
use crate::api::status::Cause;

/// Whether a value is what Go decodes as the zero value of a list, map or pointer.
fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    }
}

/// An object's members; an absent value has none.
fn members<'a>(
    v: Option<&'a Value>,
    none: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match v {
        Some(Value::Object(m)) => Some(m),
        None | Some(Value::Null) => Some(none),
        _ => None,
    }
}

/// Upstream's semantic equality of two decoded values (an object whose members are all
/// empty is taken as absent too: JSON cannot tell a struct from a map).
pub fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    if is_empty(a) && is_empty(b) {
        return true;
    }
    let none = Map::new();
    if let (Some(x), Some(y)) = (members(a, &none), members(b, &none)) {
        return x.keys().chain(y.keys()).all(|k| same(x.get(k), y.get(k)));
    }
    match (a, b) {
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(Some(p), Some(q)))
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `field: Invalid value: <new>: field is immutable` when `new` differs from `old`.
pub fn immutable(new: Option<&Value>, old: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    if !same(new, old) {
        causes.push(invalid(
            field.to_string(),
            new.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

/// `immutable` of the member `key` of two objects, at `<at>.<key>` (or `key` at the top).
pub fn immutable_member(new: &Value, old: &Value, at: &str, key: &str, causes: &mut Vec<Cause>) {
    let field = match at {
        "" => key.to_string(),
        at => format!("{at}.{key}"),
    };
    immutable(new.get(key), old.get(key), &field, causes);
}

/// A LabelSelector as upstream's error messages print it (Go's JSON of `metav1.LabelSelector`:
/// `matchLabels` before `matchExpressions`; a requirement's own keys are already in Go's
/// order when sorted).
pub fn selector_text(sel: Option<&Value>) -> String {
    let Some(sel) = sel.and_then(Value::as_object) else {
        return "null".into();
    };
    let parts: Vec<String> = ["matchLabels", "matchExpressions"]
        .into_iter()
        .filter_map(|key| {
            let v = sel.get(key).filter(|v| !is_empty(Some(v)))?;
            Some(format!("\"{key}\":{v}"))
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// `spec.selector` may not change (apps/v1 workloads, Jobs); the cause prints the new selector
/// as upstream does.
pub fn immutable_selector(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let (n, o) = (new.at("/spec/selector"), old.at("/spec/selector"));
    if !same(n, o) {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: field is immutable", selector_text(n)),
            field: "spec.selector".into(),
        });
    }
}

/// The value at an upstream field path (`spec.validations[1].expression`,
/// `metadata.labels[example.com/x]`) of `obj`.
pub fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = obj;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let key = &inner[..end];
            at = match key.parse::<usize>() {
                Ok(i) => at.get(i)?,
                Err(_) => at.get(key)?,
            };
            rest = &inner[end + 1..];
        } else {
            let name = rest.strip_prefix('.').unwrap_or(rest);
            let end = name.find(['.', '[']).unwrap_or(name.len());
            at = at.get(&name[..end])?;
            rest = &name[end..];
        }
    }
    Some(at)
}

/// Every string in `v` (the expressions an old object already stored).
pub fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings_in(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings_in(x, out)),
        _ => {}
    }
}

/// Upstream's ratcheting of CEL expressions: one the old object already stored is not
/// compiled again (it is checked with the stored-expressions environment, which accepts
/// what an older server did). Drops the causes of `new`'s expressions found in `old`.
pub fn ratchet_expressions(new: &Value, old: &Value, causes: Vec<Cause>) -> Vec<Cause> {
    let mut stored = Vec::new();
    strings_in(old, &mut stored);
    causes
        .into_iter()
        .filter(|c| {
            let last = c.field.rsplit('.').next().unwrap_or("");
            let is_expression = c.reason == "FieldValueInvalid"
                && last.to_ascii_lowercase().ends_with("expression");
            let stored_already = value_at(new, &c.field)
                .and_then(Value::as_str)
                .is_some_and(|e| stored.iter().any(|s| s == e));
            !(is_expression && stored_already)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_lists_maps_and_nulls_are_the_same_value() {
        assert!(same(Some(&json!({"a": [], "b": null})), None));
        assert!(!same(Some(&json!({"a": [1]})), None));
        assert!(same(
            Some(&json!({"x": 1, "l": {}})),
            Some(&json!({"x": 1}))
        ));
        assert!(!same(Some(&json!({"x": 1})), Some(&json!({"x": 2}))));
        assert!(!same(Some(&json!(0)), None));
    }

    #[test]
    fn a_changed_field_is_immutable_with_its_new_value() {
        let mut causes = Vec::new();
        immutable(
            Some(&json!(3)),
            Some(&json!(2)),
            "spec.completions",
            &mut causes,
        );
        immutable(None, Some(&json!("x")), "spec.managedBy", &mut causes);
        assert_eq!(causes[0].message, "Invalid value: 3: field is immutable");
        assert_eq!(causes[1].message, "Invalid value: null: field is immutable");
        assert_eq!(causes[1].reason, "FieldValueInvalid");
    }

    #[test]
    fn a_selector_prints_match_labels_first() {
        let mut causes = Vec::new();
        let new = json!({"spec": {"selector": {"matchExpressions": [
            {"key": "k", "operator": "Exists"}], "matchLabels": {"app": "b"}}}});
        let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}}});
        immutable_selector(&new, &old, &mut causes);
        assert_eq!(
            causes[0].message,
            "Invalid value: {\"matchLabels\":{\"app\":\"b\"},\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"Exists\"}]}: field is immutable"
        );
    }

    #[test]
    fn field_paths_resolve_to_values() {
        let v = json!({"spec": {"validations": [{"expression": "a"}, {"expression": "b"}]},
                       "metadata": {"labels": {"x.io/y": "z"}}});
        assert_eq!(
            value_at(&v, "spec.validations[1].expression"),
            Some(&json!("b"))
        );
        assert_eq!(value_at(&v, "metadata.labels[x.io/y]"), Some(&json!("z")));
        assert_eq!(value_at(&v, "spec.missing[0]"), None);
    }
}
