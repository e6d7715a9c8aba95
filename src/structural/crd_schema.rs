//! The rules a CRD version's `openAPIV3Schema` must follow (upstream's
//! `validateCustomResourceDefinitionValidation`): structural (`ValidateStructural`), defaults
//! valid and pruned (`ValidateDefaults`), and the OpenAPI keyword rules
//! (`ValidateCustomResourceDefinitionOpenAPISchema`, in `keyword_rules`). Called by the CRD
//! strategy (`crate::kinds::crds`) with the field path of the schema; the structural rules are
//! in `structural_rules`.

use serde_json::{Map, Value};

use super::keyword_rules::{Context, openapi_rules};
use super::node::{MAX_SCHEMA_DEPTH, Node};
use super::structural_rules::structural_errors;
use super::{embedded, prune, validate};
use crate::api::status::Cause;
use crate::kinds::field::{forbidden, invalid};

pub(super) fn child(p: &str, k: &str) -> String {
    format!("{p}.{k}")
}

pub(super) fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}

pub(super) fn index(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}

pub(super) fn obj(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

pub(super) fn text<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn truthy(m: &Map<String, Value>, k: &str) -> bool {
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

/// Whether a JSON value is Go's zero value for its field (false, 0, "", absent).
pub(super) fn is_zero(v: &Value) -> bool {
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
