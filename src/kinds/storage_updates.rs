//! What may change in storage.k8s.io objects once they exist (upstream's
//! `pkg/apis/storage/validation` `Validate<Kind>Update`): a StorageClass's provisioner,
//! parameters, reclaim policy and binding mode are fixed, so is a VolumeAttachment's spec, a
//! CSIDriver's attach and lifecycle modes, each driver a CSINode lists, a
//! VolumeAttributesClass's driver and parameters, and what a CSIStorageCapacity measures.
//! Each function gives the update's own causes; the strategies add the create rules.

use crate::jsonptr::At;
use serde_json::Value;

use super::field::{forbidden, immutable, invalid, same};
use crate::api::status::Cause;

fn present<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    obj.at(pointer).filter(|v| !v.is_null())
}

fn forbidden_change(new: &Value, old: &Value, key: &str, causes: &mut Vec<Cause>) {
    // An empty map and an absent one are the same (`same`).
    let differs = !same(new.get(key), old.get(key));
    if differs {
        causes.push(forbidden(
            key.into(),
            &format!("updates to {key} are forbidden."),
        ));
    }
}

/// `ValidateStorageClassUpdate`.
pub fn storage_class(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for key in ["parameters", "provisioner", "reclaimPolicy"] {
        forbidden_change(new, old, key, &mut causes);
    }
    let mode = present(new, "/volumeBindingMode");
    if mode != present(old, "/volumeBindingMode") {
        causes.push(immutable("volumeBindingMode".into(), mode));
    }
    causes
}

/// `ValidateVolumeAttributesClassUpdate`, before its create rules.
pub fn volume_attributes_class(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for key in ["driverName", "parameters"] {
        forbidden_change(new, old, key, &mut causes);
    }
    causes
}

/// `ValidateVolumeAttachmentUpdate`: the spec is read-only.
pub fn volume_attachment(new: &Value, old: &Value) -> Vec<Cause> {
    let spec = present(new, "/spec");
    if same(spec, present(old, "/spec")) {
        return Vec::new();
    }
    vec![immutable("spec".into(), spec)]
}

/// `ValidateCSIDriverUpdate`: whether volumes are attached, and the lifecycle modes
/// (upstream's path says `attachedRequired`).
pub fn csi_driver(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, path) in [
        ("attachRequired", "spec.attachedRequired"),
        ("volumeLifecycleModes", "spec.volumeLifecycleModes"),
    ] {
        let n = present(new, &format!("/spec/{key}"));
        if !same(n, present(old, &format!("/spec/{key}"))) {
            causes.push(immutable(path.into(), n));
        }
    }
    causes
}

/// `ValidateCSINodeUpdate`: a driver the node already lists does not change (but for its
/// allocatable count, which upstream lets the kubelet update).
pub fn csi_node(new: &Value, old: &Value) -> Vec<Cause> {
    let drivers = |obj: &Value| -> Vec<Value> {
        obj.at("/spec/drivers")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|d| {
                        let mut d = d.clone();
                        if let Some(m) = d.as_object_mut() {
                            m.remove("allocatable");
                        }
                        d
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let name = |d: &Value| d.get("name").cloned();
    let (old_drivers, new_drivers) = (drivers(old), drivers(new));
    let mut causes = Vec::new();
    for o in &old_drivers {
        for n in new_drivers.iter().filter(|n| name(n) == name(o)) {
            if !same(Some(n), Some(o)) {
                causes.push(immutable("spec.drivers".into(), Some(n)));
            }
        }
    }
    causes
}

/// `ValidateCSIStorageCapacityUpdate`: the topology and class it measures are fixed.
pub fn csi_storage_capacity(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let topology = present(new, "/nodeTopology");
    if !same(topology, present(old, "/nodeTopology")) {
        let shown = topology.cloned().unwrap_or(Value::Null);
        causes.push(invalid("nodeTopology".into(), &shown, "field is immutable"));
    }
    let class = new
        .get("storageClassName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if class
        != old
            .get("storageClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
    {
        causes.push(immutable(
            "storageClassName".into(),
            Some(&Value::from(class)),
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::kinds::cause_triples as messages;

    fn one(field: &str, reason: &str, message: &str) -> Vec<(String, String, String)> {
        vec![(field.into(), reason.into(), message.into())]
    }

    #[test]
    fn a_storage_class_keeps_what_it_provisions_with() {
        let old = json!({"provisioner": "p", "parameters": {"a": "1"},
            "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"});
        let mut ok = old.clone();
        ok["allowVolumeExpansion"] = json!(true);
        assert!(storage_class(&ok, &old).is_empty());
        let new = json!({"provisioner": "q", "parameters": {},
            "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            messages(storage_class(&new, &old)),
            vec![
                (
                    "parameters".into(),
                    "FieldValueForbidden".into(),
                    "Forbidden: updates to parameters are forbidden.".into()
                ),
                (
                    "provisioner".into(),
                    "FieldValueForbidden".into(),
                    "Forbidden: updates to provisioner are forbidden.".into()
                ),
                (
                    "reclaimPolicy".into(),
                    "FieldValueForbidden".into(),
                    "Forbidden: updates to reclaimPolicy are forbidden.".into()
                ),
                (
                    "volumeBindingMode".into(),
                    "FieldValueInvalid".into(),
                    "Invalid value: \"WaitForFirstConsumer\": field is immutable".into()
                ),
            ]
        );
    }

    #[test]
    fn attachments_drivers_and_classes_are_fixed() {
        let old = json!({"spec": {"attacher": "a", "nodeName": "n",
            "source": {"persistentVolumeName": "pv"}}});
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!("m");
        assert_eq!(
            messages(volume_attachment(&new, &old)),
            one(
                "spec",
                "FieldValueInvalid",
                &format!("Invalid value: {}: field is immutable", new["spec"])
            )
        );
        let old = json!({"spec": {"attachRequired": true, "volumeLifecycleModes": ["Persistent"]}});
        let new = json!({"spec": {"attachRequired": false, "volumeLifecycleModes": ["Persistent"],
            "podInfoOnMount": true}});
        assert_eq!(
            messages(csi_driver(&new, &old)),
            one(
                "spec.attachedRequired",
                "FieldValueInvalid",
                "Invalid value: false: field is immutable"
            )
        );
        let old = json!({"driverName": "d", "parameters": {"iops": "10"}});
        let new = json!({"driverName": "e", "parameters": {"iops": "10"}});
        assert_eq!(
            messages(volume_attributes_class(&new, &old)),
            one(
                "driverName",
                "FieldValueForbidden",
                "Forbidden: updates to driverName are forbidden."
            )
        );
    }

    #[test]
    fn a_csi_node_keeps_its_drivers_but_may_add_some() {
        let old = json!({"spec": {"drivers": [{"name": "d", "nodeID": "n1",
            "allocatable": {"count": 1}}]}});
        let new = json!({"spec": {"drivers": [
            {"name": "d", "nodeID": "n1", "allocatable": {"count": 2}},
            {"name": "e", "nodeID": "n1"}]}});
        assert!(csi_node(&new, &old).is_empty());
        let new = json!({"spec": {"drivers": [{"name": "d", "nodeID": "n2"}]}});
        assert_eq!(
            messages(csi_node(&new, &old)),
            one(
                "spec.drivers",
                "FieldValueInvalid",
                "Invalid value: {\"name\":\"d\",\"nodeID\":\"n2\"}: field is immutable"
            )
        );
    }
}
