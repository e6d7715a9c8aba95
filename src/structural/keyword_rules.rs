//! Upstream's `ValidateCustomResourceDefinitionOpenAPISchema`: the OpenAPI keywords a CRD
//! schema may use where it uses them (no $ref, defaults only outside resource meta, list and
//! map types with their keys), and the text of its `x-kubernetes-validations` rules before
//! the CEL checker compiles them.

use serde_json::{Map, Value};

use super::crd_schema::{RuleSpot, child, field_path, index, key, obj, text, truthy};
use super::node::Node;
use crate::api::status::Cause;
use crate::kinds::field::{forbidden, invalid, not_supported, required_why};

const OPENAPI_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
const RULE_REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// What a schema node's position imposes on it (upstream's `specStandardValidatorV3`).
#[derive(Clone)]
pub(super) struct Context {
    allow_defaults: bool,
    defaults_reason: String,
    inside_resource_meta: bool,
    is_root: bool,
}

impl Context {
    pub(super) fn root() -> Context {
        Context {
            allow_defaults: true,
            defaults_reason: String::new(),
            inside_resource_meta: false,
            is_root: true,
        }
    }

    fn below(&self) -> Context {
        Context {
            is_root: false,
            ..self.clone()
        }
    }

    fn without_defaults(&self, reason: &str) -> Context {
        Context {
            allow_defaults: false,
            defaults_reason: reason.to_string(),
            ..self.below()
        }
    }
}

fn standard(m: &Map<String, Value>, path: &str, cx: &Context, out: &mut Vec<Cause>) {
    let ty = text(m, "type");
    if !ty.is_empty() && !OPENAPI_TYPES.contains(&ty) {
        out.push(not_supported(
            child(path, "type"),
            &Value::from(ty),
            OPENAPI_TYPES,
        ));
    }
    if m.get("default").is_some_and(|d| !d.is_null()) && !cx.allow_defaults {
        let mut detail = "must not be set".to_string();
        if !cx.defaults_reason.is_empty() {
            detail = format!("{detail} {}", cx.defaults_reason);
        }
        out.push(forbidden(child(path, "default"), &detail));
    }
    if !text(m, "id").is_empty() {
        out.push(forbidden(child(path, "id"), "id is not supported"));
    }
    let unsupported: &[(&str, &str)] = &[
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ];
    for (k, msg) in unsupported {
        let present = match m.get(*k) {
            Some(Value::Object(o)) if *k == "patternProperties" || *k == "definitions" => {
                !o.is_empty()
            }
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        if present {
            out.push(forbidden(child(path, k), msg));
        }
    }
    if ty == "null" {
        out.push(forbidden(
            child(path, "type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if m.get("items")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        out.push(forbidden(
            child(path, "items"),
            "items must be a schema object and not an array",
        ));
    }
    if cx.inside_resource_meta && truthy(m, "x-kubernetes-embedded-resource") {
        out.push(forbidden(
            child(path, "x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
}

pub(super) fn openapi_rules(
    s: &Value,
    path: &str,
    cx: &Context,
    out: &mut Vec<Cause>,
    spots: &mut Vec<RuleSpot>,
) {
    let Some(m) = obj(s) else { return };
    standard(m, path, cx, out);
    if truthy(m, "uniqueItems") {
        out.push(forbidden(
            child(path, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let props = m
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty());
    if let Some(a) = m.get("additionalProperties").filter(|a| !a.is_null()) {
        if props.is_some() && (a == &Value::Bool(false) || a.is_object()) {
            out.push(forbidden(
                child(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let sub = match cx.inside_resource_meta {
            true => cx.without_defaults("inside additionalProperties applying to object metadata"),
            false => cx.below(),
        };
        if a.is_object() {
            openapi_rules(a, &child(path, "additionalProperties"), &sub, out, spots);
        }
    }
    let embedded = truthy(m, "x-kubernetes-embedded-resource");
    for (k, p) in props.into_iter().flatten() {
        let mut sub = cx.below();
        if (cx.is_root || embedded) && matches!(k.as_str(), "metadata" | "kind" | "apiVersion") {
            sub.inside_resource_meta = true;
            if cx.is_root {
                sub = sub.without_defaults(&format!("in top-level {k}"));
            }
        }
        openapi_rules(p, &key(&child(path, "properties"), k), &sub, out, spots);
    }
    if let Some(n) = m.get("not") {
        openapi_rules(n, &child(path, "not"), &cx.below(), out, spots);
    }
    for kw in ["allOf", "oneOf", "anyOf"] {
        for (i, n) in m
            .get(kw)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            openapi_rules(n, &index(&child(path, kw), i), &cx.below(), out, spots);
        }
    }
    for (k, n) in m
        .get("definitions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        openapi_rules(
            n,
            &key(&child(path, "definitions"), k),
            &cx.below(),
            out,
            spots,
        );
    }
    match m.get("items") {
        Some(i @ Value::Object(_)) => {
            openapi_rules(i, &child(path, "items"), &cx.below(), out, spots)
        }
        Some(Value::Array(a)) => {
            for (i, n) in a.iter().enumerate() {
                openapi_rules(n, &index(&child(path, "items"), i), &cx.below(), out, spots);
            }
        }
        _ => {}
    }
    for (k, n) in m
        .get("dependencies")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if n.is_object() {
            openapi_rules(
                n,
                &key(&child(path, "dependencies"), k),
                &cx.below(),
                out,
                spots,
            );
        }
    }
    if m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        out.push(invalid(
            child(path, "x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        ));
    }
    list_and_map_rules(m, path, out);
    rules(m, s, path, out, spots);
}

fn list_and_map_rules(m: &Map<String, Value>, path: &str, out: &mut Vec<Cause>) {
    let ty = text(m, "type");
    let map_type = m.get("x-kubernetes-map-type").and_then(Value::as_str);
    let list_type = m.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys: Vec<&str> = m
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let items = m.get("items");
    let item = items.filter(|i| i.is_object());
    let item_ty = item
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(mt) = map_type {
        if ty != "object" {
            let msg = "must be object if x-kubernetes-map-type is specified";
            match ty {
                "" => out.push(required_why(child(path, "type"), msg)),
                t => out.push(invalid(child(path, "type"), &Value::from(t), msg)),
            }
        }
        if mt != "atomic" && mt != "granular" {
            out.push(not_supported(
                child(path, "x-kubernetes-map-type"),
                &Value::from(mt),
                &["atomic", "granular"],
            ));
        }
    }
    if let Some(lt) = list_type {
        if ty != "array" {
            let msg = "must be array if x-kubernetes-list-type is specified";
            match ty {
                "" => out.push(required_why(child(path, "type"), msg)),
                t => out.push(invalid(child(path, "type"), &Value::from(t), msg)),
            }
        } else if lt == "set"
            && let Some(i) = item
        {
            let msg = "must be atomic as item of a list with x-kubernetes-list-type=set";
            let item_list = i.get("x-kubernetes-list-type");
            match item_ty {
                "array" => {
                    if let Some(l) = item_list.and_then(Value::as_str)
                        && l != "atomic"
                    {
                        out.push(invalid(
                            child(&child(path, "items"), "x-kubernetes-list-type"),
                            &Value::from(l),
                            msg,
                        ));
                    }
                }
                "object"
                    if i.get("x-kubernetes-map-type").and_then(Value::as_str) != Some("atomic") =>
                {
                    out.push(invalid(
                        child(&child(path, "items"), "x-kubernetes-map-type"),
                        item_list.unwrap_or(&Value::Null),
                        msg,
                    ));
                }
                _ => {}
            }
        }
        if !matches!(lt, "atomic" | "set" | "map") {
            out.push(not_supported(
                child(path, "x-kubernetes-list-type"),
                &Value::from(lt),
                &["atomic", "set", "map"],
            ));
        }
    }
    if !keys.is_empty() {
        let msg = "must be map if x-kubernetes-list-map-keys is non-empty";
        match list_type {
            None => out.push(required_why(child(path, "x-kubernetes-list-type"), msg)),
            Some("map") => {}
            Some(l) => out.push(invalid(
                child(path, "x-kubernetes-list-type"),
                &Value::from(l),
                msg,
            )),
        }
    }
    if list_type == Some("map") {
        if keys.is_empty() {
            out.push(required_why(
                child(path, "x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match items {
            None => out.push(required_why(
                child(path, "items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(i) if !i.is_object() => out.push(invalid(
                child(path, "items"),
                i,
                "must only have a single schema if x-kubernetes-list-type is map",
            )),
            _ => {}
        }
        if let Some(i) = item {
            if item_ty != "object" {
                out.push(invalid(
                    child(&child(path, "items"), "type"),
                    &Value::from(item_ty),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            } else {
                let all_keys = Value::from(keys.clone());
                let mut seen = Vec::new();
                for k in &keys {
                    match i.get("properties").and_then(|p| p.get(*k)) {
                        Some(p) => {
                            let t = p.get("type").and_then(Value::as_str).unwrap_or("");
                            if t == "array" || t == "object" {
                                out.push(invalid(
                                    child(&key(&child(&child(path, "items"), "properties"), k), "type"),
                                    &Value::from(item_ty),
                                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                ));
                            }
                        }
                        None => out.push(invalid(
                            child(path, "x-kubernetes-list-map-keys"),
                            &all_keys,
                            "entries must all be names of item properties",
                        )),
                    }
                    if seen.contains(k) {
                        out.push(invalid(
                            child(path, "x-kubernetes-list-map-keys"),
                            &all_keys,
                            "must not contain duplicate entries",
                        ));
                    }
                    seen.push(*k);
                }
            }
        }
    }
    // validateMapListKeysMapSet.
    if let (Some(i), Some(lt @ ("set" | "map"))) = (item, list_type) {
        if truthy(i.as_object().unwrap_or(&Map::new()), "nullable") {
            out.push(forbidden(
                child(&child(path, "items"), "nullable"),
                &format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            let required: Vec<&str> = i
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for k in &keys {
                let Some(p) = i.get("properties").and_then(|p| p.get(*k)) else {
                    continue;
                };
                let base = key(&child(&child(path, "items"), "properties"), k);
                if !required.contains(k) && p.get("default").is_none_or(Value::is_null) {
                    out.push(required_why(
                        child(&base, "default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if p.get("nullable").and_then(Value::as_bool).unwrap_or(false) {
                    out.push(forbidden(
                        child(&base, "nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
}

fn has_newlines(s: &str) -> bool {
    s.contains('\n') || s.contains('\r')
}

fn rules(
    m: &Map<String, Value>,
    s: &Value,
    path: &str,
    out: &mut Vec<Cause>,
    spots: &mut Vec<RuleSpot>,
) {
    let Some(list) = m.get("x-kubernetes-validations").and_then(Value::as_array) else {
        return;
    };
    if list.is_empty() {
        return;
    }
    let before = out.len();
    let node = Node::parse(s, 0);
    for (i, r) in list.iter().enumerate() {
        let base = index(&child(path, "x-kubernetes-validations"), i);
        let empty = Map::new();
        let r = r.as_object().unwrap_or(&empty);
        let rule = text(r, "rule");
        let message = text(r, "message");
        let (rule_t, msg_t) = (rule.trim(), message.trim());
        if rule_t.is_empty() {
            out.push(required_why(child(&base, "rule"), "rule is not specified"));
        } else if !message.is_empty() && msg_t.is_empty() {
            out.push(invalid(
                child(&base, "message"),
                &Value::from(message),
                "must be non-empty if specified",
            ));
        } else if has_newlines(msg_t) {
            out.push(invalid(
                child(&base, "message"),
                &Value::from(message),
                "must not contain line breaks",
            ));
        } else if has_newlines(rule_t) && msg_t.is_empty() {
            out.push(required_why(
                child(&base, "message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        let expr = text(r, "messageExpression");
        if !expr.is_empty() && expr.trim().is_empty() {
            out.push(required_why(
                child(&base, "messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = r.get("reason").and_then(Value::as_str)
            && !RULE_REASONS.contains(&reason)
        {
            out.push(not_supported(
                child(&base, "reason"),
                &Value::from(reason),
                RULE_REASONS,
            ));
        }
        let fp = text(r, "fieldPath");
        if !fp.is_empty() && fp.trim().is_empty() {
            out.push(invalid(
                child(&base, "fieldPath"),
                &Value::from(fp),
                "must be non-empty if specified",
            ));
        }
        if has_newlines(fp) {
            out.push(invalid(
                child(&base, "fieldPath"),
                &Value::from(fp),
                "must not contain line breaks",
            ));
        }
        if !fp.is_empty() && field_path(fp, &node, true).is_err() {
            out.push(invalid(
                child(&base, "fieldPath"),
                &Value::from(fp),
                "must be a valid path",
            ));
        }
    }
    if out.len() == before {
        spots.push(RuleSpot {
            path: child(path, "x-kubernetes-validations"),
            schema: s.clone(),
        });
    }
}
