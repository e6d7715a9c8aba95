//! CustomResourceDefinitions' own write-path rules (upstream's apiextensions `SetDefaults_*`,
//! `PrepareForCreate/Update` and `ValidateCustomResourceDefinition[Update]`): names, group,
//! scope, versions, schemas (structural, defaults, list/map rules via `crate::structural`),
//! subresources, printer columns, selectable fields, conversion, and the update rules.
//! Upstream validates its internal form, where a v1 CRD's per-version schema, subresources,
//! columns and selectable fields move to `spec.*` when all versions agree: the causes' paths
//! follow that form (`spec.validation.openAPIV3Schema...` for a single version).

use crate::jsonptr::At;
use serde_json::{Map, Value, json};

use super::Strategy;
use super::field::{
    duplicate, forbidden, invalid, not_supported, required, required_why, too_many,
};
use super::meta::{name_errors, subdomain_errors};
use super::webhook_rules;
use crate::api::status::Cause;
use crate::structural::crd_schema::{self, field_path};
use crate::structural::node::Node;

/// Upstream's `MaxSelectableFields`.
const MAX_SELECTABLE_FIELDS: usize = 8;
const PRINTER_TYPES: &[&str] = &["boolean", "date", "integer", "number", "string"];
const PRINTER_FORMATS: &[&str] = &[
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const APPROVAL_ANNOTATION: &str = "api-approved.kubernetes.io";

/// The CRD strategy: generation tracking, defaults, stored versions, validation.
#[derive(Debug)]
pub struct CustomResourceDefinitions;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn versions(obj: &Value) -> &[Value] {
    obj.get("spec")
        .map(|sp| list(sp, "versions"))
        .unwrap_or(&[])
}

fn storage_version(obj: &Value) -> Option<String> {
    versions(obj)
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(v, "name").to_string())
}

/// Appends the storage version to `status.storedVersions` when missing (upstream's prepare).
fn record_storage_version(obj: &mut Value) {
    let Some(storage) = storage_version(obj) else {
        return;
    };
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let status = o.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    if let Some(st) = status.as_object_mut() {
        let stored = st.entry("storedVersions").or_insert_with(|| json!([]));
        if !stored.is_array() {
            *stored = json!([]);
        }
        if let Some(a) = stored.as_array_mut()
            && !a.iter().any(|v| v.as_str() == Some(storage.as_str()))
        {
            a.push(Value::from(storage));
        }
    }
}

impl Strategy for CustomResourceDefinitions {
    fn deletion_finalizers(&self) -> &'static [&'static str] {
        // The CRD stays (Terminating) until the controller has deleted its instances.
        &[crate::crd::CLEANUP_FINALIZER]
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        // Upstream starts from an empty status, whose acceptedNames always serialize.
        if let Some(o) = obj.as_object_mut() {
            o.insert(
                "status".into(),
                json!({"acceptedNames": {"plural": "", "kind": ""}}),
            );
        }
        record_storage_version(obj);
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        if let Some(o) = obj.as_object_mut() {
            match old.get("status") {
                Some(st) => o.insert("status".into(), st.clone()),
                None => o.remove("status"),
            };
        }
        record_storage_version(obj);
    }

    fn default(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        validate(obj, None)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        validate(obj, Some(old))
    }

    /// `customresourcedefinitions/status` (upstream's `ValidateUpdateCustomResourceDefinitionStatus`):
    /// only the accepted names.
    fn validate_subresource_update(
        &self,
        sub: &str,
        obj: &Value,
        _old: &Value,
    ) -> Option<Vec<Cause>> {
        if sub != "status" {
            return None;
        }
        let mut out = Vec::new();
        let empty = json!({});
        let accepted = obj.at("/status/acceptedNames").unwrap_or(&empty);
        name_rules(accepted, "status.acceptedNames", &mut out);
        Some(out)
    }
}

/// Upstream's v1 `SetDefaults_CustomResourceDefinition`: singular and listKind from the kind,
/// conversion `None`, a webhook service's port 443, the storage version as stored.
pub fn set_defaults(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if names
                .get("singular")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                names.insert("singular".into(), Value::from(kind.to_lowercase()));
            }
            if names
                .get("listKind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
                && !kind.is_empty()
            {
                names.insert("listKind".into(), Value::from(format!("{kind}List")));
            }
        }
        let conversion = spec.entry("conversion").or_insert_with(|| json!({}));
        if conversion.is_null() {
            *conversion = json!({});
        }
        if let Some(c) = conversion.as_object_mut() {
            if !c.contains_key("strategy") {
                c.insert("strategy".into(), json!("None"));
            }
            if let Some(svc) = c
                .get_mut("webhook")
                .and_then(|w| w.get_mut("clientConfig"))
                .and_then(|cc| cc.get_mut("service"))
                .and_then(Value::as_object_mut)
                && !svc.contains_key("port")
            {
                svc.insert("port".into(), json!(443));
            }
        }
    }
    let stored_empty = obj
        .at("/status/storedVersions")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if stored_empty && storage_version(obj).is_some() {
        record_storage_version(obj);
    }
}

/// The internal form's per-version or hoisted parts of a v1 spec (see the module header).
struct Hoisted<'a> {
    /// `spec.validation`, when every version's schema is the same.
    validation: Option<&'a Value>,
    subresources: Option<&'a Value>,
    columns: Option<&'a Value>,
    selectable: Option<&'a Value>,
    schema_hoisted: bool,
    subresources_hoisted: bool,
    columns_hoisted: bool,
    selectable_hoisted: bool,
}

fn hoist(vs: &[Value]) -> Hoisted<'_> {
    let same = |k: &str| -> bool {
        let first = vs.first().and_then(|v| v.get(k));
        vs.iter().all(|v| v.get(k) == first)
    };
    let first = |k: &str| vs.first().and_then(|v| v.get(k)).filter(|v| !v.is_null());
    let nonempty = !vs.is_empty();
    Hoisted {
        validation: if nonempty && same("schema") {
            first("schema")
        } else {
            None
        },
        subresources: if nonempty && same("subresources") {
            first("subresources")
        } else {
            None
        },
        columns: if nonempty && same("additionalPrinterColumns") {
            first("additionalPrinterColumns")
        } else {
            None
        },
        selectable: if nonempty && same("selectableFields") {
            first("selectableFields")
        } else {
            None
        },
        schema_hoisted: nonempty && same("schema"),
        subresources_hoisted: nonempty && same("subresources"),
        columns_hoisted: nonempty && same("additionalPrinterColumns"),
        selectable_hoisted: nonempty && same("selectableFields"),
    }
}

fn dns1035(v: &str) -> Vec<String> {
    name_errors(super::NameRule::Label1035, v, false)
}

/// The value upstream prints for `spec.versions` (a Go struct dump there; JSON here).
fn versions_value(vs: &[Value]) -> Value {
    Value::Array(vs.to_vec())
}

/// `ValidateCustomResourceDefinition` (old: None) or `...Update`.
pub fn validate(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let group = s(spec, "group");
    let names = spec.get("names").unwrap_or(&empty);
    if old.is_none() {
        let name = obj
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name != format!("{}.{group}", s(names, "plural")) {
            out.push(invalid(
                "metadata.name".into(),
                &Value::from(name),
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
    }
    spec_rules(spec, old.and_then(|o| o.get("spec")), &mut out);
    if let Some(old_spec) = old.and_then(|o| o.get("spec")) {
        update_rules(spec, old_spec, old, &mut out);
    }
    let accepted = obj.at("/status/acceptedNames").unwrap_or(&empty);
    name_rules(accepted, "status.acceptedNames", &mut out);
    stored_versions(obj, &mut out);
    api_approval(obj, old, &mut out);
    let preserve = spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true);
    let old_preserve = old
        .and_then(|o| o.at("/spec/preserveUnknownFields"))
        .and_then(Value::as_bool)
        == Some(true);
    if preserve && !old_preserve {
        out.push(invalid(
            "spec.preserveUnknownFields".into(),
            &Value::Bool(true),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    out
}

fn spec_rules(spec: &Value, _old: Option<&Value>, out: &mut Vec<Cause>) {
    let group = s(spec, "group");
    if group.is_empty() {
        out.push(required("spec.group".into()));
    } else {
        let errs = subdomain_errors(group);
        if !errs.is_empty() {
            out.push(invalid(
                "spec.group".into(),
                &Value::from(group),
                &errs.join(","),
            ));
        } else if group.split('.').count() < 2 {
            out.push(invalid(
                "spec.group".into(),
                &Value::from(group),
                "should be a domain with at least one dot",
            ));
        }
    }
    match s(spec, "scope") {
        "" => out.push(required("spec.scope".into())),
        "Cluster" | "Namespaced" => {}
        other => out.push(not_supported(
            "spec.scope".into(),
            &Value::from(other),
            &["Cluster", "Namespaced"],
        )),
    }
    let vs = versions(&json!({"spec": spec.clone()})).to_vec();
    let h = hoist(&vs);
    if h.validation
        .and_then(|v| v.get("openAPIV3Schema"))
        .is_none()
    {
        for (i, v) in vs.iter().enumerate() {
            if v.at("/schema/openAPIV3Schema").is_none_or(Value::is_null) {
                out.push(required(format!(
                    "spec.versions[{i}].schema.openAPIV3Schema"
                )));
            }
        }
    }
    let preserve = spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true);
    if preserve
        && vs
            .iter()
            .any(|v| schema_has_defaults(v.at("/schema/openAPIV3Schema")))
    {
        out.push(invalid(
            "spec.preserveUnknownFields".into(),
            &Value::Bool(true),
            "must be false in order to use defaults in the schema",
        ));
    }
    let any_status = |subs: Option<&Value>| {
        subs.and_then(|s| s.get("status"))
            .is_some_and(|s| !s.is_null())
    };
    let mut storage = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in vs.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = s(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        if seen.contains(&name) {
            unique = false;
        } else {
            seen.push(name);
        }
        let errs = dns1035(name);
        if !errs.is_empty() {
            out.push(invalid(
                format!("{path}.name"),
                &Value::from(name),
                &errs.join(","),
            ));
        }
        let subs = if h.subresources_hoisted {
            h.subresources
        } else {
            v.get("subresources")
        };
        version_rules(v, &path, any_status(subs), &h, out);
    }
    if !unique {
        out.push(invalid(
            "spec.versions".into(),
            &versions_value(&vs),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        out.push(invalid(
            "spec.versions".into(),
            &versions_value(&vs),
            "must have exactly one version marked as storage version",
        ));
    }
    if let Some(first) = vs.first().map(|v| s(v, "name")).filter(|n| !n.is_empty()) {
        let errs = dns1035(first);
        if !errs.is_empty() {
            out.push(invalid(
                "spec.version".into(),
                &Value::from(first),
                &errs.join(","),
            ));
        }
    }
    let names = spec.get("names").cloned().unwrap_or(json!({}));
    for k in ["plural", "singular", "kind", "listKind"] {
        if s(&names, k).is_empty() {
            out.push(required(format!("spec.names.{k}")));
        }
    }
    name_rules(&names, "spec.names", out);
    if let Some(v) = h.validation {
        let status = vs.iter().any(|v| {
            let subs = if h.subresources_hoisted {
                h.subresources
            } else {
                v.get("subresources")
            };
            any_status(subs)
        });
        schema_rules(v, "spec.validation", status, out);
    }
    if let Some(subs) = h.subresources {
        subresource_rules(subs, "spec.subresources", out);
    }
    if let Some(cols) = h.columns {
        for (i, c) in cols.as_array().into_iter().flatten().enumerate() {
            column_rules(c, &format!("spec.additionalPrinterColumns[{i}]"), out);
        }
    }
    if let Some(sel) = h
        .selectable
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        match h.validation.and_then(|v| v.get("openAPIV3Schema")) {
            None => out.push(invalid(
                "spec.selectableFields".into(),
                &Value::from(""),
                "may only be set when validations.schema is included",
            )),
            Some(schema) => selectable_rules(sel, schema, "spec.selectableFields", out),
        }
    }
    let conversion = spec.get("conversion").filter(|c| !c.is_null());
    if let Some(c) = conversion {
        let strategy = s(c, "strategy");
        if preserve && strategy != "None" {
            out.push(invalid(
                "spec.conversion.strategy".into(),
                &Value::from(strategy),
                "must be None if spec.preserveUnknownFields is true",
            ));
        }
        conversion_rules(c, out);
    }
}

fn schema_has_defaults(s: Option<&Value>) -> bool {
    match s {
        Some(Value::Object(m)) => {
            m.get("default").is_some_and(|d| !d.is_null())
                || m.values().any(|v| match v {
                    Value::Object(o) => {
                        o.values().any(|x| schema_has_defaults(Some(x)))
                            || schema_has_defaults(Some(v))
                    }
                    Value::Array(a) => a.iter().any(|x| schema_has_defaults(Some(x))),
                    _ => false,
                })
        }
        _ => false,
    }
}

fn version_rules(v: &Value, path: &str, status: bool, h: &Hoisted, out: &mut Vec<Cause>) {
    let deprecated = v.get("deprecated").and_then(Value::as_bool) == Some(true);
    if let Some(w) = v.get("deprecationWarning").and_then(Value::as_str) {
        let field = format!("{path}.deprecationWarning");
        let mut errs = Vec::new();
        if !deprecated {
            errs.push("can only be set for deprecated versions".to_string());
        } else {
            if w.len() > 256 {
                errs.push("must be <= 256 characters long".into());
            }
            if w.is_empty() {
                errs.push("must not be an empty string".into());
            }
            if let Some((i, _)) = w.char_indices().find(|(_, c)| c.is_control()) {
                errs.push(format!(
                    "must only contain printable UTF-8 characters; control character found at index {i}"
                ));
            }
        }
        for e in errs {
            out.push(invalid(field.clone(), &Value::from(w), &e));
        }
    }
    if !h.schema_hoisted
        && let Some(schema) = v.get("schema").filter(|s| !s.is_null())
    {
        schema_rules(schema, &format!("{path}.schema"), status, out);
    }
    if !h.subresources_hoisted
        && let Some(subs) = v.get("subresources").filter(|s| !s.is_null())
    {
        subresource_rules(subs, &format!("{path}.subresources"), out);
    }
    if !h.columns_hoisted {
        for (i, c) in list(v, "additionalPrinterColumns").iter().enumerate() {
            column_rules(c, &format!("{path}.additionalPrinterColumns[{i}]"), out);
        }
    }
    let sel = list(v, "selectableFields");
    if !h.selectable_hoisted && !sel.is_empty() {
        match v.at("/schema/openAPIV3Schema").filter(|s| !s.is_null()) {
            None => out.push(invalid(
                format!("{path}.selectableFields"),
                &Value::from(""),
                "may only be set when `version.schema.openAPIV3Schema` is not included",
            )),
            Some(schema) => selectable_rules(sel, schema, &format!("{path}.selectableFields"), out),
        }
    }
}

/// One schema (`fld` is `spec.validation` or `spec.versions[i].schema`).
fn schema_rules(v: &Value, fld: &str, status: bool, out: &mut Vec<Cause>) {
    let Some(schema) = v.get("openAPIV3Schema").filter(|s| !s.is_null()) else {
        return;
    };
    out.extend(crd_schema::validate_schema(schema, status, fld));
    // x-kubernetes-validations: every rule compiled, its errors after the schema's (those the
    // schema's own checks already named once).
    for c in rule_errors(schema, fld) {
        if !out
            .iter()
            .any(|o| o.field == c.field && o.reason == c.reason)
        {
            out.push(c);
        }
    }
}

/// The CEL rule compilation errors of a schema.
fn rule_errors(schema: &Value, fld: &str) -> Vec<Cause> {
    crate::cel::rules::CrdRules::compile(schema, &format!("{fld}.openAPIV3Schema"))
        .err()
        .unwrap_or_default()
}

fn name_rules(names: &Value, path: &str, out: &mut Vec<Cause>) {
    for k in ["plural", "singular"] {
        let v = s(names, k);
        let errs = dns1035(v);
        if !v.is_empty() && !errs.is_empty() {
            out.push(invalid(
                format!("{path}.{k}"),
                &Value::from(v),
                &errs.join(","),
            ));
        }
    }
    for k in ["kind", "listKind"] {
        let v = s(names, k);
        let errs = dns1035(&v.to_lowercase());
        if !v.is_empty() && !errs.is_empty() {
            out.push(invalid(
                format!("{path}.{k}"),
                &Value::from(v),
                &format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    for (i, sn) in list(names, "shortNames").iter().enumerate() {
        let v = sn.as_str().unwrap_or("");
        let errs = dns1035(v);
        if !errs.is_empty() {
            out.push(invalid(
                format!("{path}.shortNames[{i}]"),
                &Value::from(v),
                &errs.join(","),
            ));
        }
    }
    let kind = s(names, "kind");
    if !kind.is_empty() && kind == s(names, "listKind") {
        out.push(invalid(
            format!("{path}.listKind"),
            &Value::from(kind),
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in list(names, "categories").iter().enumerate() {
        let v = c.as_str().unwrap_or("");
        let errs = dns1035(v);
        if !errs.is_empty() {
            out.push(invalid(
                format!("{path}.categories[{i}]"),
                &Value::from(v),
                &errs.join(","),
            ));
        }
    }
}

fn simple_json_path(v: &str, field: &str, out: &mut Vec<Cause>) -> bool {
    let msg = if v.is_empty() {
        Some("must not be empty")
    } else if !v.starts_with('.') {
        Some("must be a simple json path starting with .")
    } else {
        None
    };
    if let Some(m) = msg {
        out.push(invalid(field.to_string(), &Value::from(v), m));
        return false;
    }
    true
}

fn subresource_rules(subs: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(scale) = subs.get("scale").filter(|s| !s.is_null()) else {
        return;
    };
    for (k, prefix, msg) in [
        (
            "specReplicasPath",
            ".spec.",
            "should be a json path under .spec",
        ),
        (
            "statusReplicasPath",
            ".status.",
            "should be a json path under .status",
        ),
    ] {
        let field = format!("{path}.scale.{k}");
        let v = s(scale, k);
        if v.is_empty() {
            out.push(required(field));
        } else if simple_json_path(v, &field, out) && !v.starts_with(prefix) {
            out.push(invalid(field, &Value::from(v), msg));
        }
    }
    let sel = s(scale, "labelSelectorPath");
    if !sel.is_empty() {
        let field = format!("{path}.scale.labelSelectorPath");
        if simple_json_path(sel, &field, out)
            && !sel.starts_with(".spec.")
            && !sel.starts_with(".status.")
        {
            out.push(invalid(
                field,
                &Value::from(sel),
                "should be a json path under either .spec or .status",
            ));
        }
    }
}

fn column_rules(c: &Value, path: &str, out: &mut Vec<Cause>) {
    if s(c, "name").is_empty() {
        out.push(required(format!("{path}.name")));
    }
    let types = format!("must be one of {}", PRINTER_TYPES.join(","));
    match s(c, "type") {
        "" => out.push(required_why(format!("{path}.type"), &types)),
        t if !PRINTER_TYPES.contains(&t) => {
            out.push(invalid(format!("{path}.type"), &Value::from(t), &types))
        }
        _ => {}
    }
    let format = s(c, "format");
    if !format.is_empty() && !PRINTER_FORMATS.contains(&format) {
        out.push(invalid(
            format!("{path}.format"),
            &Value::from(format),
            &format!("must be one of {}", PRINTER_FORMATS.join(",")),
        ));
    }
    let jp = s(c, "jsonPath");
    if jp.is_empty() {
        out.push(required(format!("{path}.JSONPath")));
    } else {
        simple_json_path(jp, &format!("{path}.JSONPath"), out);
    }
}

fn selectable_rules(fields: &[Value], schema: &Value, path: &str, out: &mut Vec<Cause>) {
    let root = Node::parse(schema, 0);
    let mut unique: Vec<String> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let field = format!("{path}[{i}].jsonPath");
        let jp = s(f, "jsonPath");
        if jp.is_empty() {
            out.push(required(field));
            continue;
        }
        let (p, node) = match field_path(jp, &root, false) {
            Ok(found) => found,
            Err(e) => {
                out.push(invalid(
                    field,
                    &Value::from(jp),
                    &format!("is an invalid path: {e}"),
                ));
                continue;
            }
        };
        if p == "metadata" || p.starts_with("metadata.") || p.starts_with("metadata[") {
            out.push(invalid(
                field.clone(),
                &Value::from(jp),
                "must not point to fields in metadata",
            ));
        }
        if !matches!(node.ty.as_str(), "string" | "boolean" | "integer") {
            out.push(invalid(
                field.clone(),
                &Value::from(jp),
                "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
            ));
        }
        if unique.contains(&p) {
            out.push(duplicate(field, &Value::from(jp)));
        } else {
            unique.push(p);
        }
    }
    if unique.len() > MAX_SELECTABLE_FIELDS {
        out.push(too_many(
            path.to_string(),
            unique.len(),
            MAX_SELECTABLE_FIELDS,
        ));
    }
}

fn conversion_rules(c: &Value, out: &mut Vec<Cause>) {
    let path = "spec.conversion";
    let strategy = s(c, "strategy");
    match strategy {
        "" => out.push(required(format!("{path}.strategy"))),
        "None" | "Webhook" => {}
        other => out.push(not_supported(
            format!("{path}.strategy"),
            &Value::from(other),
            &["None", "Webhook"],
        )),
    }
    let webhook = c.get("webhook").filter(|w| !w.is_null());
    let client = webhook
        .and_then(|w| w.get("clientConfig"))
        .filter(|c| !c.is_null());
    let review: Vec<&str> = webhook
        .map(|w| {
            list(w, "conversionReviewVersions")
                .iter()
                .filter_map(Value::as_str)
                .collect()
        })
        .unwrap_or_default();
    if strategy == "Webhook" {
        let cc_path = format!("{path}.webhookClientConfig");
        match client {
            None => out.push(required_why(
                cc_path,
                "required when strategy is set to Webhook",
            )),
            Some(cc) => {
                let url = cc.get("url").and_then(Value::as_str);
                let svc = cc.get("service").filter(|s| !s.is_null());
                match (url, svc) {
                    (Some(_), Some(_)) | (None, None) => out.push(required_why(
                        cc_path,
                        "exactly one of url or service is required",
                    )),
                    (Some(u), None) => webhook_rules::url(&format!("{cc_path}.url"), u, out),
                    (None, Some(svc)) => {
                        webhook_rules::service(&format!("{cc_path}.service"), svc, out)
                    }
                }
            }
        }
        let field = format!("{path}.conversionReviewVersions");
        if review.is_empty() {
            out.push(required(field));
        } else {
            let mut seen = Vec::new();
            let mut accepted = false;
            for (i, v) in review.iter().enumerate() {
                if seen.contains(v) {
                    out.push(invalid(
                        format!("{field}[{i}]"),
                        &Value::from(*v),
                        "duplicate version",
                    ));
                    continue;
                }
                seen.push(*v);
                for e in dns1035(v) {
                    out.push(invalid(format!("{field}[{i}]"), &Value::from(*v), &e));
                }
                accepted |= REVIEW_VERSIONS.contains(v);
            }
            if !accepted {
                out.push(invalid(
                    field,
                    &Value::from(review.clone()),
                    &format!(
                        "must include at least one of {}",
                        REVIEW_VERSIONS.join(", ")
                    ),
                ));
            }
        }
    } else {
        if client.is_some() {
            out.push(forbidden(
                format!("{path}.webhookClientConfig"),
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !review.is_empty() {
            out.push(forbidden(
                format!("{path}.conversionReviewVersions"),
                "should not be set when strategy is not set to Webhook",
            ));
        }
    }
}

fn established(obj: &Value) -> bool {
    list(obj.get("status").unwrap_or(&Value::Null), "conditions")
        .iter()
        .any(|c| s(c, "type") == "Established" && s(c, "status") == "True")
}

fn immutable(new: &Value, old: &Value, field: &str, out: &mut Vec<Cause>) {
    if new != old {
        let mut c = invalid(field.to_string(), new, "field is immutable");
        c.message = format!("Invalid value: {new}: field is immutable");
        out.push(c);
    }
}

fn update_rules(spec: &Value, old_spec: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let at = |v: &Value, p: &str| v.at(p).cloned().unwrap_or(Value::from(""));
    if old.is_some_and(established) {
        immutable(
            &at(spec, "/scope"),
            &at(old_spec, "/scope"),
            "spec.scope",
            out,
        );
        immutable(
            &at(spec, "/names/kind"),
            &at(old_spec, "/names/kind"),
            "spec.names.kind",
            out,
        );
    }
    immutable(
        &at(spec, "/group"),
        &at(old_spec, "/group"),
        "spec.group",
        out,
    );
    immutable(
        &at(spec, "/names/plural"),
        &at(old_spec, "/names/plural"),
        "spec.names.plural",
        out,
    );
}

fn stored_versions(obj: &Value, out: &mut Vec<Cause>) {
    let field = "status.storedVersions";
    let stored: Vec<&str> = obj
        .at("/status/storedVersions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let value = Value::from(stored.clone());
    if stored.is_empty() {
        out.push(invalid(
            field.into(),
            &value,
            "must have at least one stored version",
        ));
        return;
    }
    // Upstream keeps the last index of each stored name.
    let mut left: Vec<(usize, &str)> = Vec::new();
    for (i, n) in stored.iter().enumerate() {
        left.retain(|(_, m)| m != n);
        left.push((i, n));
    }
    for v in versions(obj) {
        let name = s(v, "name");
        let found = left.iter().position(|(_, n)| *n == name);
        if v.get("storage").and_then(Value::as_bool) == Some(true) && found.is_none() {
            out.push(invalid(
                field.into(),
                &value,
                &format!("must have the storage version {name}"),
            ));
        }
        if let Some(p) = found {
            left.remove(p);
        }
    }
    for (i, v) in left {
        out.push(invalid(
            format!("{field}[{i}]"),
            &Value::from(v),
            &format!("missing from spec.versions; {v} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {v} and removes {v} from status.storedVersions"),
        ));
    }
}

/// `validateAPIApproval`: groups under k8s.io and kubernetes.io need the approval annotation.
fn api_approval(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let group = obj.at("/spec/group").and_then(Value::as_str).unwrap_or("");
    let protected = group == "k8s.io"
        || group.ends_with(".k8s.io")
        || group == "kubernetes.io"
        || group.ends_with(".kubernetes.io");
    if !protected {
        return;
    }
    let state = |o: &Value| -> (u8, String) {
        let a = o
            .at("/metadata/annotations")
            .and_then(Value::as_object)
            .and_then(|m: &Map<String, Value>| m.get(APPROVAL_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let scheme_host = a
            .split_once("://")
            .is_some_and(|(s, rest)| !s.is_empty() && !rest.is_empty() && !rest.starts_with('/'));
        if a.is_empty() {
            (
                0,
                format!(
                    "protected groups must have approval annotation \"{APPROVAL_ANNOTATION}\", see https://github.com/kubernetes/enhancements/pull/1111"
                ),
            )
        } else if a.starts_with("unapproved") {
            (1, String::new())
        } else if scheme_host {
            (2, String::new())
        } else {
            (
                3,
                format!(
                    "protected groups must have approval annotation \"{APPROVAL_ANNOTATION}\" with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
                ),
            )
        }
    };
    let (new_state, reason) = state(obj);
    if old.is_some_and(|o| state(o).0 == new_state) {
        return;
    }
    let field = format!("metadata.annotations[{APPROVAL_ANNOTATION}]");
    match new_state {
        0 => out.push(required_why(field, &reason)),
        3 => {
            let v = obj
                .at("/metadata/annotations")
                .and_then(|a| a.get(APPROVAL_ANNOTATION))
                .cloned()
                .unwrap_or(Value::from(""));
            out.push(invalid(field, &v, &reason));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
