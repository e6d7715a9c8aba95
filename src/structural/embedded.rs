//! Embedded resources (`x-kubernetes-embedded-resource`, upstream's `objectmeta.Validate`):
//! each needs `apiVersion` and `kind`, and its `metadata` follows ObjectMeta's rules (names
//! as path segments, labels, annotations), with paths below the embedding field.

use serde_json::{Value, json};

use super::node::{Additional, Node};
use crate::api::status::Cause;
use crate::kinds::NameRule;
use crate::kinds::field::{invalid, required};

/// Walks an instance under `s`; the resource root itself is not checked (the lead's meta
/// rules do it).
pub fn validate(path: &str, s: &Node, x: &Value, out: &mut Vec<Cause>) {
    if s.too_deep {
        return;
    }
    match x {
        Value::Object(m) => {
            if s.embedded {
                resource(path, m, out);
            }
            for (k, v) in m {
                if let Some(prop) = s.properties.get(k) {
                    validate(&child(path, k), prop, v, out);
                } else if let Some(Additional::Schema(add)) = &s.additional {
                    validate(&format!("{path}[{k}]"), add, v, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    validate(&format!("{path}[{i}]"), item, v, out);
                }
            }
        }
        _ => {}
    }
}

fn child(path: &str, k: &str) -> String {
    match path {
        "" => k.to_string(),
        _ => format!("{path}.{k}"),
    }
}

fn resource(path: &str, m: &serde_json::Map<String, Value>, out: &mut Vec<Cause>) {
    if !m.contains_key("apiVersion") {
        out.push(required(child(path, "apiVersion")));
    }
    if !m.contains_key("kind") {
        out.push(required(child(path, "kind")));
    }
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" => match v.as_str() {
                None => out.push(invalid(child(path, k), v, "must be a string")),
                Some("") => out.push(invalid(child(path, k), v, "must not be empty")),
                Some(gv) if gv.matches('/').count() > 1 => out.push(invalid(
                    child(path, k),
                    v,
                    &format!("unexpected GroupVersion string: {gv}"),
                )),
                Some(_) => {}
            },
            "kind" => match v.as_str() {
                None => out.push(invalid(child(path, k), v, "must be a string")),
                Some("") => out.push(invalid(child(path, k), v, "must not be empty")),
                Some(kind) => {
                    let errs = crate::kinds::meta::name_errors(
                        NameRule::Label1035,
                        &kind.to_lowercase(),
                        false,
                    );
                    if !errs.is_empty() {
                        out.push(invalid(
                            child(path, k),
                            v,
                            &format!(
                                "may have mixed case, but should otherwise match: {}",
                                errs.join(",")
                            ),
                        ));
                    }
                }
            },
            "metadata" => metadata(&child(path, k), v, out),
            _ => {}
        }
    }
}

fn metadata(path: &str, v: &Value, out: &mut Vec<Cause>) {
    let Some(meta) = v.as_object() else {
        out.push(invalid(
            path.to_string(),
            v,
            "json: cannot unmarshal into Go value of type v1.ObjectMeta",
        ));
        return;
    };
    let mut meta = meta.clone();
    // Upstream validates a nameless embedded object as if it were named.
    if meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        meta.insert("name".into(), json!("fakename"));
    }
    let obj = json!({ "metadata": meta });
    for mut c in crate::kinds::meta::validate(&obj, NameRule::PathSegment) {
        c.field = format!(
            "{path}{}",
            c.field.strip_prefix("metadata").unwrap_or(&c.field)
        );
        out.push(c);
    }
    if let Some(ns) = meta.get("namespace").and_then(Value::as_str)
        && !ns.is_empty()
    {
        for msg in crate::kinds::meta::name_errors(NameRule::Label, ns, false) {
            out.push(invalid(format!("{path}.namespace"), &json!(ns), &msg));
        }
    }
}
