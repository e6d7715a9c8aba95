//! Upstream's validation of the storage kinds (`pkg/apis/storage/validation` and the
//! PersistentVolume part of `pkg/apis/core/validation`): PersistentVolumes, StorageClasses,
//! VolumeAttachments, VolumeAttributesClasses and CSIStorageCapacities.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::claim_rules::{access_modes, positive_quantity};
use super::field::{forbidden, invalid, not_supported, not_supported_rendered};
use super::field::{required, required_why, too_long, too_many};
use super::json_read::{str_at, strs};
use super::meta::{qualified_name_errors, subdomain_errors};
use crate::api::status::Cause;

/// A PersistentVolume's sources, in upstream's order.
const PV_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cinder",
    "cephfs",
    "iscsi",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

fn subdomain(v: &str, field: &str, causes: &mut Vec<Cause>) {
    for msg in subdomain_errors(v) {
        causes.push(invalid(field.to_string(), &json!(v), msg));
    }
}

/// `ValidateCSIDriverName`: set, at most 63 bytes, a DNS subdomain once lower-cased.
fn csi_driver_name(name: &str, field: &str, causes: &mut Vec<Cause>) {
    if name.is_empty() {
        causes.push(required(field.to_string()));
    }
    if name.len() > 63 {
        causes.push(too_long(field.to_string(), 63));
    }
    for msg in subdomain_errors(&name.to_lowercase()) {
        causes.push(invalid(field.to_string(), &json!(name), msg));
    }
}

/// `validateProvisioner`: set, and a qualified name once lower-cased.
fn provisioner(name: &str, field: &str, causes: &mut Vec<Cause>) {
    if name.is_empty() {
        causes.push(required(field.to_string()));
        return;
    }
    let lower = name.to_lowercase();
    for msg in qualified_name_errors(&lower) {
        causes.push(invalid(field.to_string(), &json!(lower), &msg));
    }
}

/// `validateParameters`: at most 512 of them, 256 KiB in all, no empty key.
fn parameters(params: Option<&Value>, allow_empty: bool, causes: &mut Vec<Cause>) {
    let empty = serde_json::Map::new();
    let params = params.and_then(Value::as_object).unwrap_or(&empty);
    if params.len() > MAX_PARAMETERS {
        causes.push(too_many("parameters".into(), params.len(), MAX_PARAMETERS));
    }
    let mut total = 0;
    for (k, v) in params {
        if k.is_empty() {
            causes.push(invalid(
                "parameters".into(),
                &json!(k),
                "field can not be empty.",
            ));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > MAX_PARAMETERS_SIZE {
        causes.push(too_long("parameters".into(), MAX_PARAMETERS_SIZE));
    }
    if !allow_empty && params.is_empty() {
        causes.push(required_why(
            "parameters".into(),
            "must contain at least one key/value pair",
        ));
    }
}

pub fn storage_class(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    provisioner(str_at(obj, "provisioner"), "provisioner", &mut causes);
    parameters(obj.get("parameters"), true, &mut causes);
    let policy = str_at(obj, "reclaimPolicy");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Retain") {
        causes.push(not_supported(
            "reclaimPolicy".into(),
            &json!(policy),
            &["Delete", "Retain"],
        ));
    }
    match obj.get("volumeBindingMode").filter(|v| !v.is_null()) {
        None => causes.push(required("volumeBindingMode".into())),
        Some(m) if !matches!(m.as_str(), Some("Immediate" | "WaitForFirstConsumer")) => {
            causes.push(not_supported(
                "volumeBindingMode".into(),
                m,
                &["Immediate", "WaitForFirstConsumer"],
            ));
        }
        Some(_) => {}
    }
    causes
}

pub fn volume_attributes_class(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    provisioner(str_at(obj, "driverName"), "driverName", &mut causes);
    parameters(obj.get("parameters"), false, &mut causes);
    causes
}

pub fn volume_attachment(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    // An empty attacher is only missing.
    let attacher = str_at(spec, "attacher");
    match attacher {
        "" => causes.push(required("spec.attacher".into())),
        a => csi_driver_name(a, "spec.attacher", &mut causes),
    }
    let source = spec.get("source").unwrap_or(&empty);
    let pv = source.get("persistentVolumeName").filter(|v| !v.is_null());
    let inline = source.get("inlineVolumeSpec").filter(|v| !v.is_null());
    let both = "must specify exactly one of inlineVolumeSpec and persistentVolumeName";
    match (pv, inline) {
        (None, None) => causes.push(required_why("spec.source".into(), both)),
        (Some(_), Some(_)) => causes.push(forbidden("spec.source".into(), both)),
        (Some(name), None) => {
            let name = name.as_str().unwrap_or("");
            let f = "spec.source.persistentVolumeName";
            if name.is_empty() {
                let why = "must specify non empty persistentVolumeName";
                causes.push(required_why(f.into(), why));
            }
            subdomain(name, f, &mut causes);
        }
        (None, Some(_)) => {}
    }
    subdomain(str_at(spec, "nodeName"), "spec.nodeName", &mut causes);
    causes
}

pub fn csi_storage_capacity(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(sel) = obj.get("nodeTopology").filter(|v| v.is_object()) {
        super::workload_rules::label_selector(sel, "nodeTopology", &mut causes);
    }
    subdomain(
        str_at(obj, "storageClassName"),
        "storageClassName",
        &mut causes,
    );
    for key in ["capacity", "maximumVolumeSize"] {
        let Some(q) = obj.get(key).and_then(Value::as_str) else {
            continue;
        };
        if kapi_codec::goscalar::quantity_milli_value(q).is_ok_and(|v| v < 0) {
            let msg = "must be greater than or equal to 0";
            causes.push(invalid(key.into(), &json!(q), msg));
        }
    }
    causes
}

/// A map of quantities as Go's JSON prints it (keys sorted), `null` when absent.
fn render_quantities(v: Option<&Value>) -> String {
    let Some(m) = v.and_then(Value::as_object) else {
        return "null".into();
    };
    let mut pairs: Vec<_> = m.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, q)| format!("{}:{}", json!(k), json!(q.as_str().unwrap_or(""))))
        .collect();
    format!("{{{}}}", body.join(","))
}

pub fn persistent_volume(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let modes = strs(spec, "accessModes");
    if modes.is_empty() {
        causes.push(required("spec.accessModes".into()));
    }
    access_modes(&modes, "spec.accessModes", &mut causes);
    let capacity = spec.get("capacity").and_then(Value::as_object);
    if capacity.is_none_or(|c| c.is_empty()) {
        causes.push(required("spec.capacity".into()));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        causes.push(not_supported_rendered(
            "spec.capacity".into(),
            &render_quantities(spec.get("capacity")),
            &["storage"],
        ));
    }
    for (k, q) in capacity.into_iter().flatten() {
        positive_quantity(q, format!("spec.capacity[{k}]"), &mut causes);
    }
    let class = str_at(spec, "storageClassName");
    if !class.is_empty() {
        subdomain(class, "spec.storageClassName", &mut causes);
    }
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str)
        && !matches!(mode, "Block" | "Filesystem")
    {
        causes.push(not_supported(
            "spec.volumeMode".into(),
            &json!(mode),
            &["Block", "Filesystem"],
        ));
    }
    let policy = str_at(spec, "persistentVolumeReclaimPolicy");
    if !RECLAIM_POLICIES.contains(&policy) {
        causes.push(not_supported(
            "spec.persistentVolumeReclaimPolicy".into(),
            &json!(policy),
            RECLAIM_POLICIES,
        ));
    }
    volume_source(spec, &mut causes);
    let host_path = spec.at("/hostPath/path").and_then(Value::as_str);
    if host_path.is_some_and(|p| p.trim_end_matches('/').is_empty() && !p.is_empty())
        && policy == "Recycle"
    {
        causes.push(forbidden(
            "spec.persistentVolumeReclaimPolicy".into(),
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    causes
}

/// Exactly one source, with its own rules for the ones pods share and the simple others.
fn volume_source(spec: &Value, causes: &mut Vec<Cause>) {
    let mut found = 0;
    for kind in PV_SOURCES {
        let Some(src) = spec.get(*kind).filter(|s| !s.is_null()) else {
            continue;
        };
        let f = format!("spec.{kind}");
        if found > 0 {
            causes.push(forbidden(f, "may not specify more than 1 volume type"));
            continue;
        }
        found += 1;
        match *kind {
            "hostPath" | "nfs" => super::podspec_rules::volume_source(kind, src, &f, causes),
            "local" if str_at(src, "path").is_empty() => {
                causes.push(required(format!("{f}.path")));
            }
            "csi" => {
                csi_driver_name(str_at(src, "driver"), &format!("{f}.driver"), causes);
                if str_at(src, "volumeHandle").is_empty() {
                    causes.push(required(format!("{f}.volumeHandle")));
                }
            }
            _ => {}
        }
    }
    if found == 0 {
        causes.push(required_why("spec".into(), "must specify a volume type"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons;

    #[test]
    fn a_volume_needs_storage_capacity_modes_and_one_source() {
        let pv = json!({"spec": {"capacity": {}, "accessModes": ["Odd"],
            "persistentVolumeReclaimPolicy": "Retain"}});
        let causes = persistent_volume(&pv);
        assert_eq!(
            causes[2].message,
            "Unsupported value: {}: supported values: \"storage\""
        );
        assert_eq!(
            field_reasons(&causes),
            vec![
                ("spec.accessModes", "FieldValueNotSupported"),
                ("spec.capacity", "FieldValueRequired"),
                ("spec.capacity", "FieldValueNotSupported"),
                ("spec", "FieldValueRequired"),
            ]
        );
    }

    #[test]
    fn an_attachment_names_a_csi_driver_and_one_source() {
        let va = json!({"spec": {"attacher": "x".repeat(64), "nodeName": "n", "source": {}}});
        let causes = volume_attachment(&va);
        assert_eq!(causes[0].message, "Too long: may not be more than 63 bytes");
        assert_eq!(
            field_reasons(&causes),
            vec![
                ("spec.attacher", "FieldValueTooLong"),
                ("spec.source", "FieldValueRequired"),
            ]
        );
    }

    #[test]
    fn a_storage_class_provisioner_is_a_qualified_name() {
        let sc = json!({"provisioner": "Bad_Name!", "volumeBindingMode": "Later"});
        let causes = storage_class(&sc);
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"bad_name!\"")
        );
        assert_eq!(
            field_reasons(&causes),
            vec![
                ("provisioner", "FieldValueInvalid"),
                ("volumeBindingMode", "FieldValueNotSupported"),
            ]
        );
    }
}
