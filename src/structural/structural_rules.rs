//! Upstream's `ValidateStructural` for a CRD schema: the structure every node must have
//! (types, items, no additionalProperties at the root, metadata limits, embedded resources),
//! what allOf/anyOf/oneOf/not may hold, and that they name only specified properties.

use serde_json::{Map, Value};

use super::crd_schema::{child, index, is_zero, key, obj, text, truthy};
use super::node::compile_pattern;
use crate::api::status::Cause;
use crate::kinds::field::{forbidden, invalid, required_why};

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Items,
    Field,
}

/// Upstream's `ValidateStructural`: invariants and completeness, sorted by their text.
pub fn structural_errors(schema: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    invariants(schema, Level::Root, path, &mut out);
    completeness_value(schema, Some(schema), path, path, &mut out);
    out.sort_by(|a, b| {
        format!("{}: {}", a.field, a.message).cmp(&format!("{}: {}", b.field, b.message))
    });
    out
}

fn is_int_or_string_any_of(v: Option<&Value>) -> bool {
    let Some(a) = v.and_then(Value::as_array) else {
        return false;
    };
    a.len() == 2
        && a[0] == serde_json::json!({"type": "integer"})
        && a[1] == serde_json::json!({"type": "string"})
}

fn invariants(s: &Value, lvl: Level, path: &str, out: &mut Vec<Cause>) {
    let Some(m) = obj(s) else { return };
    let ty = text(m, "type");
    let items = m.get("items").filter(|v| v.is_object());
    if ty == "array" && items.is_none() {
        out.push(required_why(child(path, "items"), "must be specified"));
    }
    if let Some(i) = items {
        invariants(i, Level::Items, &child(path, "items"), out);
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            invariants(v, Level::Field, &key(&child(path, "properties"), k), out);
        }
    }
    let additional = m.get("additionalProperties");
    if let Some(a) = additional {
        if lvl == Level::Root {
            out.push(forbidden(
                child(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if a.is_object() {
            invariants(a, Level::Field, &child(path, "additionalProperties"), out);
        }
    }
    let int_or_string = truthy(m, "x-kubernetes-int-or-string");
    let preserve = truthy(m, "x-kubernetes-preserve-unknown-fields");
    let embedded = truthy(m, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        out.push(invalid(
            child(path, "x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        out.push(invalid(
            child(path, "x-kubernetes-embedded-resource"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(m.get("anyOf"));
    let skip_first_all_of_any_of = m
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(|f| is_int_or_string_any_of(f.get("anyOf")));
    value_validation(m, skip_any_of, skip_first_all_of_any_of, path, out);
    let check_metadata = lvl == Level::Root || embedded;
    if embedded && ty != "object" {
        let msg = "must be object if x-kubernetes-embedded-resource is true";
        match ty {
            "" => out.push(required_why(child(path, "type"), msg)),
            t => out.push(invalid(child(path, "type"), &Value::from(t), msg)),
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Items => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(required_why(child(path, "type"), msg));
    }
    if embedded && additional.is_some() {
        out.push(forbidden(
            child(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        out.push(invalid(
            child(path, "type"),
            &Value::from(ty),
            "must be object at the root",
        ));
    }
    let props = m.get("properties").and_then(Value::as_object);
    for name in ["kind", "apiVersion"] {
        if let Some(p) = props.and_then(|p| p.get(name))
            && check_metadata
        {
            let t = p.get("type").and_then(Value::as_str).unwrap_or("");
            if t != "string" {
                out.push(invalid(
                    child(&key(&child(path, "properties"), name), "type"),
                    &Value::from(t),
                    "must be string",
                ));
            }
        }
    }
    if let Some(meta) = props.and_then(|p| p.get("metadata")) {
        metadata_invariants(
            meta,
            check_metadata,
            lvl,
            &key(&child(path, "properties"), "metadata"),
            out,
        );
    }
    if embedded && !preserve && props.is_none_or(|p| p.is_empty()) {
        out.push(required_why(
            child(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// The keys of a Structural node's generic part, extensions and value validations: a
/// root `metadata` may hold none of them beyond `type` and name/generateName properties.
const META_ALLOWED: &[&str] = &["type", "default", "properties"];

fn metadata_invariants(s: &Value, check: bool, lvl: Level, path: &str, out: &mut Vec<Cause>) {
    let Some(m) = obj(s) else { return };
    let ty = text(m, "type");
    if check && ty != "object" {
        out.push(invalid(
            child(path, "type"),
            &Value::from(ty),
            "must be object",
        ));
    }
    if lvl != Level::Root {
        return;
    }
    let props_ok = match m.get("properties").and_then(Value::as_object) {
        None => true,
        Some(p) => p.is_empty() || p.keys().all(|k| k == "name" || k == "generateName"),
    };
    let others = m.iter().any(|(k, v)| {
        !META_ALLOWED.contains(&k.as_str()) && !is_zero(v) && k != "x-kubernetes-validations"
            || (k == "x-kubernetes-validations" && v.as_array().is_some_and(|a| !a.is_empty()))
    });
    if !props_ok || others {
        out.push(forbidden(
            path.to_string(),
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

fn value_validation(
    m: &Map<String, Value>,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
    out: &mut Vec<Cause>,
) {
    if !skip_any_of {
        for (i, v) in m
            .get("anyOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            nested(v, false, &index(&child(path, "anyOf"), i), out);
        }
    }
    for (i, v) in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        nested(
            v,
            skip_first_all_of_any_of && i == 0,
            &index(&child(path, "allOf"), i),
            out,
        );
    }
    for (i, v) in m
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        nested(v, false, &index(&child(path, "oneOf"), i), out);
    }
    if let Some(n) = m.get("not") {
        nested(n, false, &child(path, "not"), out);
    }
    if let Some(p) = m.get("pattern").and_then(Value::as_str)
        && !p.is_empty()
        && let Err(e) = compile_pattern(p)
    {
        out.push(invalid(
            child(path, "pattern"),
            &Value::from(p),
            &format!(
                "must be a valid regular expression, but isn't: {}",
                e.to_string().lines().last().unwrap_or("")
            ),
        ));
    }
}

/// A value validation inside allOf/anyOf/oneOf/not: no generic fields or extensions.
fn nested(v: &Value, skip_any_of: bool, path: &str, out: &mut Vec<Cause>) {
    let Some(m) = obj(v) else { return };
    value_validation(m, skip_any_of, false, path, out);
    if let Some(i) = m.get("items").filter(|i| i.is_object()) {
        nested(i, false, &child(path, "items"), out);
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            nested(p, false, &key(&child(path, "properties"), k), out);
        }
    }
    let rules: &[(&str, &str)] = &[
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    for (k, msg) in rules {
        let Some(val) = m.get(*k) else { continue };
        let set = match *k {
            "default"
            | "x-kubernetes-list-type"
            | "x-kubernetes-map-type"
            | "additionalProperties" => !val.is_null(),
            "x-kubernetes-list-map-keys" | "x-kubernetes-validations" => {
                val.as_array().is_some_and(|a| !a.is_empty())
            }
            _ => !is_zero(val),
        };
        if set {
            out.push(forbidden(child(path, k), msg));
        }
    }
    if m.get("properties")
        .and_then(|p| p.get("metadata"))
        .is_some()
    {
        out.push(forbidden(
            key(&child(path, "properties"), "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Completeness: every property or items a value validation names exists in the structure.
fn completeness_value(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<Cause>,
) {
    let Some(m) = obj(v) else { return };
    let Some(_) = s else {
        out.push(required_why(
            s_path.to_string(),
            &format!("because it is defined in {v_path}"),
        ));
        return;
    };
    if let Some(n) = m.get("not") {
        completeness_nested(n, s, s_path, &child(v_path, "not"), out);
    }
    for kw in ["allOf", "anyOf", "oneOf"] {
        for (i, n) in m
            .get(kw)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            completeness_nested(n, s, s_path, &index(&child(v_path, kw), i), out);
        }
    }
}

fn completeness_nested(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<Cause>,
) {
    let Some(m) = obj(v) else { return };
    let Some(sv) = s else {
        out.push(required_why(
            s_path.to_string(),
            &format!("because it is defined in {v_path}"),
        ));
        return;
    };
    completeness_value(v, s, s_path, v_path, out);
    if let Some(i) = m.get("items") {
        let s_items = sv.get("items").filter(|i| i.is_object());
        completeness_nested(
            i,
            s_items,
            &child(s_path, "items"),
            &child(v_path, "items"),
            out,
        );
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            let sp = &key(&child(s_path, "properties"), k);
            let vp = &key(&child(v_path, "properties"), k);
            match sv.get("properties").and_then(|x| x.get(k)) {
                None => out.push(required_why(
                    sp.clone(),
                    &format!("because it is defined in {vp}"),
                )),
                Some(sf) => completeness_nested(p, Some(sf), sp, vp, out),
            }
        }
    }
}
