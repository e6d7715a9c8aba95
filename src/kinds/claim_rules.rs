//! Upstream's PersistentVolumeClaim spec validation (`ValidatePersistentVolumeClaimSpec`),
//! shared by PersistentVolumeClaims, StatefulSets' claim templates and ephemeral volumes:
//! access modes, the storage request, class names, volume mode, data sources.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::NameRule;
use super::field::{forbidden, invalid, not_supported, required, required_why};
use super::json_read::strs;
use super::meta::{name_errors, subdomain_errors};
use crate::api::status::Cause;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn class_name(v: &Value, key: &str, at: &str, causes: &mut Vec<Cause>) {
    let name = str_at(v, key);
    if !name.is_empty() {
        for msg in subdomain_errors(name) {
            causes.push(invalid(format!("{at}.{key}"), &json!(name), msg));
        }
    }
}

/// Access modes (of a claim or a volume): each a known mode, ReadWriteOncePod alone.
pub(super) fn access_modes(modes: &[&str], field: &str, causes: &mut Vec<Cause>) {
    let mut once_pod = false;
    let mut others = false;
    for m in modes {
        match *m {
            "ReadWriteOncePod" => once_pod = true,
            m if ACCESS_MODES.contains(&m) => others = true,
            m => causes.push(not_supported(field.to_string(), &json!(m), ACCESS_MODES)),
        }
    }
    if once_pod && others {
        causes.push(forbidden(
            field.to_string(),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// `ValidatePositiveQuantityValue`: a quantity above zero (reported in canonical form).
pub(super) fn positive_quantity(q: &Value, field: String, causes: &mut Vec<Cause>) {
    let text = q
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| q.to_string());
    let positive = kapi_codec::goscalar::quantity_milli_value(&text).is_ok_and(|v| v > 0);
    if !positive {
        let mut canonical = Vec::new();
        let text = match kapi_codec::goscalar::canonical_quantity(&text, &mut canonical) {
            Ok(_) => String::from_utf8(canonical).unwrap_or(text),
            Err(_) => text,
        };
        causes.push(invalid(field, &json!(text), "must be greater than zero"));
    }
}

/// A `TypedLocalObjectReference` / `TypedObjectReference` data source at `f`.
fn data_source(ds: &Value, f: &str, causes: &mut Vec<Cause>) {
    if str_at(ds, "name").is_empty() {
        causes.push(required(format!("{f}.name")));
    }
    let kind = str_at(ds, "kind");
    if kind.is_empty() {
        causes.push(required(format!("{f}.kind")));
    }
    let group = str_at(ds, "apiGroup");
    if group.is_empty() {
        if !kind.is_empty() && kind != "PersistentVolumeClaim" {
            causes.push(invalid(
                f.to_string(),
                &json!(kind),
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ));
        }
    } else {
        for msg in subdomain_errors(group) {
            causes.push(invalid(format!("{f}.apiGroup"), &json!(group), msg));
        }
    }
}

/// The claim spec at `at` (`spec`, `spec.volumeClaimTemplates[0].spec`, ...); a missing spec
/// is an empty one.
pub fn spec(spec: Option<&Value>, at: &str, causes: &mut Vec<Cause>) {
    let empty = json!({});
    let spec = spec.filter(|s| s.is_object()).unwrap_or(&empty);
    let modes = strs(spec, "accessModes");
    if modes.is_empty() {
        causes.push(required_why(
            format!("{at}.accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = spec.get("selector").filter(|v| v.is_object()) {
        super::workload_rules::label_selector(sel, &format!("{at}.selector"), causes);
    }
    access_modes(&modes, &format!("{at}.accessModes"), causes);
    match spec.at("/resources/requests/storage") {
        None | Some(Value::Null) => causes.push(required(format!("{at}.resources[storage]"))),
        Some(q) => positive_quantity(q, format!("{at}.resources[storage]"), causes),
    }
    class_name(spec, "storageClassName", at, causes);
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str)
        && !["Block", "Filesystem"].contains(&mode)
    {
        causes.push(not_supported(
            format!("{at}.volumeMode"),
            &json!(mode),
            &["Block", "Filesystem"],
        ));
    }
    let ds = spec.get("dataSource").filter(|v| v.is_object());
    let dsr = spec.get("dataSourceRef").filter(|v| v.is_object());
    if let Some(ds) = ds {
        data_source(ds, &format!("{at}.dataSource"), causes);
    }
    if let Some(dsr) = dsr {
        data_source(dsr, &format!("{at}.dataSourceRef"), causes);
        let ns = str_at(dsr, "namespace");
        if !ns.is_empty() {
            for msg in name_errors(NameRule::Label, ns, false) {
                causes.push(invalid(
                    format!("{at}.dataSourceRef.namespace"),
                    &json!(ns),
                    &msg,
                ));
            }
        }
        match ds {
            Some(_) if !ns.is_empty() => causes.push(invalid(
                at.to_string(),
                &json!(""),
                "may not be specified when dataSourceRef.namespace is specified",
            )),
            Some(ds)
                if ["apiGroup", "kind", "name"]
                    .iter()
                    .any(|k| str_at(ds, k) != str_at(dsr, k)) =>
            {
                causes.push(invalid(
                    at.to_string(),
                    &json!(""),
                    "must match dataSourceRef",
                ))
            }
            _ => {}
        }
    }
    class_name(spec, "volumeAttributesClassName", at, causes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_needs_access_modes_and_storage() {
        let mut causes = Vec::new();
        spec(None, "spec", &mut causes);
        let fields: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("spec.accessModes", "FieldValueRequired"),
                ("spec.resources[storage]", "FieldValueRequired")
            ]
        );
        let mut causes = Vec::new();
        spec(
            Some(
                &json!({"accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "X"],
                         "resources": {"requests": {"storage": "0"}}, "volumeMode": ""}),
            ),
            "spec",
            &mut causes,
        );
        let reasons: Vec<&str> = causes.iter().map(|c| c.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "FieldValueNotSupported",
                "FieldValueForbidden",
                "FieldValueInvalid",
                "FieldValueNotSupported"
            ]
        );
    }
}
