//! The rules a CRD version's `openAPIV3Schema` must follow (upstream's
//! `validateCustomResourceDefinitionValidation`): structural (`ValidateStructural`), defaults
//! valid and pruned (`ValidateDefaults`), and the OpenAPI keyword rules
//! (`ValidateCustomResourceDefinitionOpenAPISchema`). Called by the CRD strategy
//! (`crate::kinds::crds`) with the field path of the schema.

use serde_json::{Map, Value};

use super::node::{MAX_SCHEMA_DEPTH, Node, compile_pattern};
use super::{embedded, prune, validate};
use crate::api::status::Cause;
use crate::kinds::field::{forbidden, invalid, not_supported, required_why};

fn child(p: &str, k: &str) -> String {
    format!("{p}.{k}")
}

fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}

fn index(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}

fn obj(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn truthy(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// The fields a root schema may have when the status subresource is on (upstream's Go field
/// names, in its message), with their JSON keys.
const ALLOWED_AT_STATUS_ROOT: &[(&str, &str)] = &[
    ("Description", "description"),
    ("Type", "type"),
    ("Format", "format"),
    ("Title", "title"),
    ("Maximum", "maximum"),
    ("ExclusiveMaximum", "exclusiveMaximum"),
    ("Minimum", "minimum"),
    ("ExclusiveMinimum", "exclusiveMinimum"),
    ("MaxLength", "maxLength"),
    ("MinLength", "minLength"),
    ("Pattern", "pattern"),
    ("MaxItems", "maxItems"),
    ("MinItems", "minItems"),
    ("UniqueItems", "uniqueItems"),
    ("MultipleOf", "multipleOf"),
    ("Required", "required"),
    ("Items", "items"),
    ("Properties", "properties"),
    ("ExternalDocs", "externalDocs"),
    ("Example", "example"),
    (
        "XPreserveUnknownFields",
        "x-kubernetes-preserve-unknown-fields",
    ),
    ("XValidations", "x-kubernetes-validations"),
];

/// JSONSchemaProps' JSON keys in its Go field order (which disallowed one is named first).
const FIELD_ORDER: &[&str] = &[
    "id",
    "$schema",
    "$ref",
    "description",
    "type",
    "nullable",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

const OPENAPI_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
const RULE_REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// Whether a JSON value is Go's zero value for its field (false, 0, "", absent).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// How deep a schema nests, counting every sub-schema keyword; stops past the bound.
fn depth(v: &Value, d: usize) -> usize {
    if d > MAX_SCHEMA_DEPTH {
        return d;
    }
    let Some(m) = v.as_object() else {
        return d;
    };
    let mut deepest = d;
    for (k, sub) in m {
        let children: Vec<&Value> = match k.as_str() {
            "properties" | "patternProperties" | "definitions" | "dependencies" => sub
                .as_object()
                .map(|o| o.values().collect())
                .unwrap_or_default(),
            "allOf" | "anyOf" | "oneOf" => sub
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            "items" => match sub {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            },
            "not" | "additionalProperties" | "additionalItems" => vec![sub],
            _ => Vec::new(),
        };
        for c in children {
            deepest = deepest.max(depth(c, d + 1));
        }
    }
    deepest
}

/// The schema rules of one version (`fld` is `spec.validation` or `spec.versions[i].schema`).
pub fn validate_schema(schema: &Value, status_enabled: bool, fld: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let path = child(fld, "openAPIV3Schema");
    let Some(m) = obj(schema) else {
        return out;
    };
    if depth(schema, 0) > MAX_SCHEMA_DEPTH {
        out.push(forbidden(
            path,
            &format!("must not nest more than {MAX_SCHEMA_DEPTH} levels"),
        ));
        return out;
    }
    if status_enabled {
        for k in FIELD_ORDER {
            let Some(v) = m.get(*k) else { continue };
            if is_zero(v) {
                continue;
            }
            if *k == "type" {
                if v.as_str() != Some("object") {
                    out.push(invalid(
                        child(&path, "type"),
                        v,
                        "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                    ));
                    break;
                }
                continue;
            }
            if !ALLOWED_AT_STATUS_ROOT.iter().any(|(_, j)| j == k) {
                let names: Vec<&str> = ALLOWED_AT_STATUS_ROOT.iter().map(|(g, _)| *g).collect();
                out.push(invalid(
                    path.clone(),
                    schema,
                    &format!(
                        "only [{}] fields are allowed at the root of the schema if the status subresource is enabled",
                        names.join(" ")
                    ),
                ));
                break;
            }
        }
    }
    if truthy(m, "nullable") {
        out.push(forbidden(
            child(&path, "nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let structural = structural_errors(schema, &path);
    if structural.is_empty() {
        let node = Node::parse(schema, 0);
        defaults(&node, &path, &mut out);
    } else {
        out.extend(structural);
    }
    let mut schema_errors = Vec::new();
    let mut rule_spots = Vec::new();
    openapi_rules(
        schema,
        &path,
        &Context::root(),
        &mut schema_errors,
        &mut rule_spots,
    );
    out.extend(schema_errors);
    out
}

/// Where `x-kubernetes-validations` rules sit: the h-cel checker compiles each (with its
/// schema node and path) and appends its causes after the schema errors, as upstream's
/// `CELErrors` follow its `SchemaErrors`.
#[derive(Debug, Clone)]
pub struct RuleSpot {
    /// `<schema path>.x-kubernetes-validations`.
    pub path: String,
    pub schema: Value,
}

/// The rule spots of a schema, for the CEL checker (only when the schema has no other
/// errors, as upstream compiles rules only on a structural schema without schema errors).
pub fn rule_spots(schema: &Value, fld: &str) -> Vec<RuleSpot> {
    let mut errs = Vec::new();
    let mut spots = Vec::new();
    openapi_rules(
        schema,
        &child(fld, "openAPIV3Schema"),
        &Context::root(),
        &mut errs,
        &mut spots,
    );
    spots
}

// ---- ValidateStructural ----

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

// ---- ValidateDefaults ----

fn defaults(s: &Node, path: &str, out: &mut Vec<Cause>) {
    defaults_at(s, path, true, false, out);
}

fn defaults_at(s: &Node, path: &str, is_root: bool, inside_meta: bool, out: &mut Vec<Cause>) {
    let inside_meta = inside_meta && !s.embedded;
    if let Some(d) = &s.default
        && !inside_meta
    {
        let field = child(path, "default");
        let mut pruned = d.clone();
        prune::prune_value(&mut pruned, s, s.embedded);
        let mut errs = Vec::new();
        if &pruned != d {
            errs.push(invalid(field.clone(), d, "must not have unknown fields"));
        }
        out.extend(errs);
        let mut meta = Vec::new();
        if s.embedded {
            embedded::validate(&field, s, d, &mut meta);
        }
        if !meta.is_empty() {
            out.extend(meta);
        } else {
            // Default values' x-kubernetes-validations rules: the h-cel checker's spot.
            out.extend(validate::validate_at(s, d, &field));
        }
    }
    if let Some(items) = s.items.as_deref() {
        defaults_at(items, &child(path, "items"), false, inside_meta, out);
    }
    for (k, sub) in &s.properties {
        let sub_meta = inside_meta
            || ((s.embedded || is_root)
                && matches!(k.as_str(), "metadata" | "apiVersion" | "kind"));
        defaults_at(
            sub,
            &key(&child(path, "properties"), k),
            false,
            sub_meta,
            out,
        );
    }
}

// ---- ValidateCustomResourceDefinitionOpenAPISchema ----

/// What a schema node's position imposes on it (upstream's `specStandardValidatorV3`).
#[derive(Clone)]
struct Context {
    allow_defaults: bool,
    defaults_reason: String,
    inside_resource_meta: bool,
    is_root: bool,
}

impl Context {
    fn root() -> Context {
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

fn openapi_rules(
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
                "object" => {
                    if i.get("x-kubernetes-map-type").and_then(Value::as_str) != Some("atomic") {
                        out.push(invalid(
                            child(&child(path, "items"), "x-kubernetes-map-type"),
                            item_list.unwrap_or(&Value::Null),
                            msg,
                        ));
                    }
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

/// Upstream's `cel.ValidFieldPath`: a JSON path (`.a.b`, `['a.b']`) resolved through
/// properties and additionalProperties; the field path (`a.b`, `a[k]`) and the schema it
/// names, or the error text.
pub fn field_path<'a>(
    json_path: &str,
    root: &'a Node,
    allow_array: bool,
) -> Result<(String, &'a Node), String> {
    let mut tokens = Vec::new();
    let b = json_path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            let mut j = i + 1;
            while j < b.len() && !(b[j] == b'\'' && b[j - 1] != b'\\') {
                j += 1;
            }
            let end = (j + 1).min(b.len());
            tokens.push(&json_path[i..end]);
            i = end;
        } else if matches!(b[i], b'.' | b'[' | b']') {
            tokens.push(&json_path[i..i + 1]);
            i += 1;
        } else {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b'.' | b'[' | b']' | b'\'') {
                j += 1;
            }
            tokens.push(&json_path[i..j]);
            i = j;
        }
    }
    let mut path = String::new();
    let mut node = root;
    let mut it = tokens.into_iter();
    let step = |name: &str, node: &mut &'a Node, path: &mut String| -> Result<(), String> {
        if !node.properties.is_empty() {
            match node.properties.get(name) {
                Some(n) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                    *node = n;
                    Ok(())
                }
                None => Err("does not refer to a valid field".into()),
            }
        } else if let Some(super::node::Additional::Schema(n)) = &node.additional {
            path.push_str(&format!("[{name}]"));
            *node = n;
            Ok(())
        } else {
            Err("does not refer to a valid field".into())
        }
    };
    while let Some(tok) = it.next() {
        match tok {
            "[" => {
                if !allow_array {
                    return Err("array notation is not allowed".into());
                }
                let t = it.next().ok_or("unexpected end of JSON path")?;
                if t.len() < 2 || !t.starts_with('\'') || !t.ends_with('\'') {
                    return Err(format!("expected single quoted string but got {t}"));
                }
                let name = t[1..t.len() - 1].replace("\\'", "'");
                step(&name, &mut node, &mut path)?;
                match it.next() {
                    Some("]") => {}
                    Some(t) => return Err(format!("expected ] but got {t}")),
                    None => return Err("unexpected end of JSON path".into()),
                }
            }
            "." => {
                let t = it.next().ok_or("unexpected end of JSON path")?;
                step(t, &mut node, &mut path)?;
            }
            t => return Err(format!("expected [ or . but got: {t}")),
        }
    }
    Ok((path, node))
}

#[cfg(test)]
mod tests;
