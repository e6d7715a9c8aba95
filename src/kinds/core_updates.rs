//! What may change in the core group's objects once they exist (upstream's
//! `Validate<Kind>Update` in `pkg/apis/core/validation`), for the kinds whose update rules are
//! more than their create rules: claims and volumes, Secrets and ConfigMaps marked immutable,
//! nodes, resource quotas, and the namespace subresources. Each function gives the update's own
//! causes; the strategies add the create rules where upstream runs them too.

use crate::jsonptr::At;
use serde_json::{Map, Value};

use super::field::{duplicate, forbidden, immutable, invalid, pruned, same};
use crate::api::status::Cause;

const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";
const STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
const CLAIM_SPEC_FORBIDDEN: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

fn spec_of(obj: &Value) -> Map<String, Value> {
    obj.get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.at(pointer).and_then(Value::as_str).unwrap_or("")
}

fn present<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    obj.at(pointer).filter(|v| !v.is_null())
}

/// The spec members that differ, as the "diff" part of a Forbidden message.
fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> String {
    super::pod_updates::spec_diff(&Value::Object(old.clone()), &Value::Object(new.clone()))
}

/// A spec as upstream's structs see it (`pruned`).
fn pruned_map(m: Map<String, Value>) -> Map<String, Value> {
    match pruned(&Value::Object(m)) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A quantity's milli-value (None when it does not parse: validation reports it).
fn milli(q: Option<&Value>) -> Option<i64> {
    let s = match q? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    kapi_codec::goscalar::quantity_milli_value(&s).ok()
}

/// `ValidatePersistentVolumeClaimUpdate`, beyond the create rules: the spec is fixed but for
/// the volume name (set once), the storage request of a bound claim (grown, or shrunk no
/// lower than the capacity, to recover from a failed expansion) and the attributes class.
pub fn claim(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let (mut new_spec, mut old_spec) = (spec_of(new), spec_of(old));
    if str_at(old, "/spec/volumeName").is_empty() {
        match new_spec.get("volumeName") {
            Some(v) => old_spec.insert("volumeName".into(), v.clone()),
            None => old_spec.remove("volumeName"),
        };
    }
    let annotation = |obj: &Value| {
        obj.at("/metadata/annotations")
            .and_then(|a| a.get(STORAGE_CLASS_ANNOTATION))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let class = |obj: &Value| {
        present(obj, "/spec/storageClassName")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (old_ann, new_ann) = (annotation(old), annotation(new));
    let (old_class, new_class) = (class(old), class(new));
    // A claim may move from the beta annotation to the field, naming the same class.
    let from_annotation = old_ann.is_some()
        && old_class.is_none()
        && new_class.is_some()
        && new_class == old_ann
        && (new_ann.is_none() || new_ann == old_ann);
    if from_annotation {
        new_spec.remove("storageClassName");
    } else {
        if new_ann.as_deref().unwrap_or("") != old_ann.as_deref().unwrap_or("") {
            causes.push(immutable(
                format!("metadata.annotations.{STORAGE_CLASS_ANNOTATION}"),
                Some(&Value::from(new_ann.unwrap_or_default())),
            ));
        }
        // A claim without a class may be given one (matching its annotation, if any).
        let from_nil = new_class.is_some()
            && old_class.is_none()
            && (old_ann.is_none() || new_class == old_ann);
        if from_nil {
            new_spec.remove("storageClassName");
        }
    }
    let bound = str_at(new, "/status/phase") == "Bound";
    if bound
        && let Some(requests) = new_spec
            .get_mut("resources")
            .and_then(|r| r.get_mut("requests"))
            .and_then(Value::as_object_mut)
    {
        match old.at("/spec/resources/requests/storage") {
            Some(q) => requests.insert("storage".into(), q.clone()),
            None => requests.remove("storage"),
        };
    }
    for spec in [&mut new_spec, &mut old_spec] {
        spec.remove("volumeAttributesClassName");
    }
    if let Some(v) = present(old, "/spec/volumeAttributesClassName") {
        new_spec.insert("volumeAttributesClassName".into(), v.clone());
        old_spec.insert("volumeAttributesClassName".into(), v.clone());
    }
    let (new_spec, old_spec) = (pruned_map(new_spec), pruned_map(old_spec));
    if new_spec != old_spec {
        causes.push(forbidden(
            "spec".into(),
            &format!("{CLAIM_SPEC_FORBIDDEN}\n{}", diff(&old_spec, &new_spec)),
        ));
    }
    let size = |obj: &Value, p: &str| milli(obj.at(p)).unwrap_or(0);
    let new_size = size(new, "/spec/resources/requests/storage");
    if new_size < size(old, "/spec/resources/requests/storage")
        && new_size <= size(old, "/status/capacity/storage")
    {
        causes.push(forbidden(
            "spec.resources.requests.storage".into(),
            "field can not be less than status.capacity",
        ));
    }
    volume_mode(new, old, &mut causes);
    if present(old, "/spec/volumeAttributesClassName").is_some() {
        match present(new, "/spec/volumeAttributesClassName").and_then(Value::as_str) {
            None => causes.push(forbidden(
                "spec.volumeAttributesClassName".into(),
                "update from non-nil value to nil is forbidden",
            )),
            Some("") => causes.push(forbidden(
                "spec.volumeAttributesClassName".into(),
                "update from non-nil value to an empty string is forbidden",
            )),
            Some(_) => {}
        }
    }
    causes
}

/// `volumeMode` may not change (upstream reports it at the bare field name).
fn volume_mode(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let (n, o) = (
        present(new, "/spec/volumeMode"),
        present(old, "/spec/volumeMode"),
    );
    if n != o {
        causes.push(immutable("volumeMode".into(), n));
    }
}

/// The members of a volume's spec that are not its source (`PersistentVolumeSource` is
/// everything else: the one volume plugin it names).
const VOLUME_SPEC_NOT_SOURCE: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

/// `ValidatePersistentVolumeUpdate`, beyond the create rules: the volume source is fixed (a
/// CSI volume may be given its expansion secret once), so are its mode and its node affinity
/// once set; an attributes class once set stays set.
pub fn volume(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let source = |obj: &Value| {
        let mut s = spec_of(obj);
        s.retain(|k, _| !VOLUME_SPEC_NOT_SOURCE.contains(&k.as_str()));
        s
    };
    let (mut new_source, old_source) = (source(new), source(old));
    let secret_added = present(old, "/spec/csi").is_some()
        && present(old, "/spec/csi/controllerExpandSecretRef").is_none()
        && present(new, "/spec/csi/controllerExpandSecretRef").is_some();
    if secret_added && let Some(csi) = new_source.get_mut("csi").and_then(Value::as_object_mut) {
        csi.remove("controllerExpandSecretRef");
    }
    let (new_source, old_source) = (pruned_map(new_source), pruned_map(old_source));
    if new_source != old_source {
        causes.push(forbidden(
            "spec.persistentvolumesource".into(),
            &format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                diff(&old_source, &new_source)
            ),
        ));
    }
    volume_mode(new, old, &mut causes);
    if let Some(affinity) = present(old, "/spec/nodeAffinity")
        && !same(present(new, "/spec/nodeAffinity"), Some(affinity))
    {
        causes.push(immutable(
            "nodeAffinity".into(),
            present(new, "/spec/nodeAffinity"),
        ));
    }
    if present(old, "/spec/volumeAttributesClassName").is_some()
        && present(new, "/spec/volumeAttributesClassName").is_none()
    {
        causes.push(forbidden(
            "spec.volumeAttributesClassName".into(),
            "update from non-nil value to nil is forbidden",
        ));
    }
    causes
}

fn is_immutable(obj: &Value) -> bool {
    obj.get("immutable").and_then(Value::as_bool) == Some(true)
}

/// `immutable: true` freezes `keys` and itself (Secrets: `data`; ConfigMaps: `data` and
/// `binaryData`).
fn frozen(new: &Value, old: &Value, keys: &[&str], causes: &mut Vec<Cause>) {
    if !is_immutable(old) {
        return;
    }
    if !is_immutable(new) {
        causes.push(forbidden("immutable".into(), IMMUTABLE_WHEN_SET));
    }
    for k in keys {
        // An empty map and an absent one are the same data (`same`).
        if !same(new.get(*k), old.get(*k)) {
            causes.push(forbidden((*k).into(), IMMUTABLE_WHEN_SET));
        }
    }
}

/// `ValidateSecretUpdate`, beyond the create rules: the type is fixed, and an immutable
/// Secret's data (its `stringData` is already folded into `data`).
pub fn secret(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if new.get("type") != old.get("type") {
        causes.push(immutable("type".into(), present(new, "/type")));
    }
    frozen(new, old, &["data"], &mut causes);
    causes
}

/// `ValidateConfigMapUpdate`, beyond the create rules: an immutable ConfigMap's data.
pub fn config_map(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    frozen(new, old, &["data", "binaryData"], &mut causes);
    causes
}

/// `ValidateNodeUpdate`, beyond the create rules: pod CIDRs and the provider ID are set once,
/// the external ID never changes, and a node's addresses are distinct.
pub fn node(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let addresses = new.at("/status/addresses").and_then(Value::as_array);
    let mut seen = Vec::new();
    for (i, a) in addresses.into_iter().flatten().enumerate() {
        let key = (str_at(a, "/type"), str_at(a, "/address"));
        if seen.contains(&key) {
            let shown = serde_json::json!({"Type": key.0, "Address": key.1});
            causes.push(duplicate(format!("status.addresses[{i}]"), &shown));
        }
        seen.push(key);
    }
    let cidrs = |obj: &Value| {
        obj.at("/spec/podCIDRs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_cidrs, new_cidrs) = (cidrs(old), cidrs(new));
    let cidr_msg = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            causes.push(forbidden("spec.podCIDRs".into(), cidr_msg));
        } else {
            for (o, n) in old_cidrs.iter().zip(&new_cidrs) {
                if o != n {
                    causes.push(forbidden("spec.podCIDRs".into(), cidr_msg));
                }
            }
        }
    }
    let old_provider = str_at(old, "/spec/providerID");
    if !old_provider.is_empty() && old_provider != str_at(new, "/spec/providerID") {
        causes.push(forbidden(
            "spec.providerID".into(),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if str_at(new, "/spec/externalID") != str_at(old, "/spec/externalID") {
        causes.push(forbidden("spec.externalID".into(), "may not be updated"));
    }
    causes
}

/// `ValidateResourceQuotaUpdate`: the set of scopes is fixed.
pub fn resource_quota(new: &Value, old: &Value) -> Vec<Cause> {
    fn scopes(obj: &Value) -> Vec<&str> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut s = super::json_read::strs(spec, "scopes");
        s.sort_unstable();
        s.dedup();
        s
    }
    if scopes(new) == scopes(old) {
        return Vec::new();
    }
    vec![immutable(
        "spec.scopes".into(),
        present(new, "/spec/scopes"),
    )]
}

/// A namespace finalizer's name (`validateFinalizerName`): a qualified name, and a bare name
/// only if it is a standard one (`kubernetes`).
pub fn namespace_finalizers(obj: &Value, indexed: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let list = obj.at("/spec/finalizers").and_then(Value::as_array);
    for (i, f) in list.into_iter().flatten().enumerate() {
        let name = f.as_str().unwrap_or("");
        let field = match indexed {
            true => format!("spec.finalizers[{i}]"),
            false => "spec.finalizers".to_string(),
        };
        for msg in super::meta::qualified_name_errors(name) {
            causes.push(invalid(field.clone(), f, &msg));
        }
        if !name.contains('/') && name != "kubernetes" {
            causes.push(invalid(
                field,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    causes
}

/// `ValidateNamespaceStatusUpdate`: the phase follows the deletion timestamp.
pub fn namespace_status(new: &Value) -> Vec<Cause> {
    let deleting = present(new, "/metadata/deletionTimestamp").is_some();
    let phase = present(new, "/status/phase")
        .cloned()
        .unwrap_or(Value::from(""));
    let (want, msg) = match deleting {
        false => (
            "Active",
            "may only be 'Active' if `deletionTimestamp` is empty",
        ),
        true => (
            "Terminating",
            "may only be 'Terminating' if `deletionTimestamp` is not empty",
        ),
    };
    if phase == want {
        return Vec::new();
    }
    vec![invalid("status.Phase".into(), &phase, msg)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(causes: &[Cause]) -> Vec<(&str, &str, &str)> {
        causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str(), c.message.as_str()))
            .collect()
    }

    fn pvc(spec: Value, phase: &str) -> Value {
        json!({"metadata": {"name": "c"}, "spec": spec, "status": {"phase": phase}})
    }

    #[test]
    fn a_bound_claim_may_grow_its_request_and_nothing_else() {
        let spec = json!({"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": "1Gi"}}});
        let old = pvc(spec.clone(), "Bound");
        let mut grown = spec.clone();
        grown["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(claim(&pvc(grown.clone(), "Bound"), &old).is_empty());
        // Not bound: the request is part of the fixed spec.
        let causes = claim(&pvc(grown, "Pending"), &pvc(spec.clone(), "Pending"));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec");
        assert_eq!(causes[0].reason, "FieldValueForbidden");
        assert_eq!(
            causes[0].message,
            format!(
                "Forbidden: {CLAIM_SPEC_FORBIDDEN}\n  spec.resources: {{\"requests\":{{\"storage\":\"1Gi\"}}}} -> {{\"requests\":{{\"storage\":\"2Gi\"}}}}"
            )
        );
        let mut other = spec.clone();
        other["accessModes"] = json!(["ReadWriteMany"]);
        other["volumeMode"] = json!("Block");
        let fields: Vec<_> = claim(&pvc(other, "Bound"), &old)
            .into_iter()
            .map(|c| (c.field, c.message))
            .collect();
        assert_eq!(fields[0].0, "spec");
        assert_eq!(
            fields[1],
            (
                "volumeMode".to_string(),
                "Invalid value: \"Block\": field is immutable".to_string()
            )
        );
    }

    #[test]
    fn a_claim_shrinks_no_lower_than_its_capacity_and_keeps_its_class() {
        let spec = json!({"accessModes": ["ReadWriteOnce"], "volumeName": "pv1",
            "volumeAttributesClassName": "gold",
            "resources": {"requests": {"storage": "2Gi"}}});
        let mut old = pvc(spec.clone(), "Bound");
        old["status"]["capacity"] = json!({"storage": "1Gi"});
        let mut new = old.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("1Gi");
        new["spec"]["volumeAttributesClassName"] = json!("silver");
        assert_eq!(
            messages(&claim(&new, &old)),
            vec![(
                "spec.resources.requests.storage",
                "FieldValueForbidden",
                "Forbidden: field can not be less than status.capacity"
            )]
        );
        new["spec"]["resources"]["requests"]["storage"] = json!("1536Mi");
        new["spec"]["volumeAttributesClassName"] = json!("");
        assert_eq!(
            messages(&claim(&new, &old)),
            vec![(
                "spec.volumeAttributesClassName",
                "FieldValueForbidden",
                "Forbidden: update from non-nil value to an empty string is forbidden"
            )]
        );
    }

    #[test]
    fn a_claims_volume_name_and_class_are_set_once() {
        let spec = json!({"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}});
        let old = pvc(spec.clone(), "Pending");
        let mut set = old.clone();
        set["spec"]["volumeName"] = json!("pv1");
        set["spec"]["storageClassName"] = json!("fast");
        assert!(claim(&set, &old).is_empty());
        let mut changed = set.clone();
        changed["spec"]["volumeName"] = json!("pv2");
        let causes = claim(&changed, &set);
        assert_eq!(causes.len(), 1);
        assert!(
            causes[0]
                .message
                .contains("spec.volumeName: \"pv1\" -> \"pv2\"")
        );
    }

    #[test]
    fn a_volume_source_mode_and_affinity_are_fixed() {
        let old = json!({"spec": {"capacity": {"storage": "1Gi"}, "volumeMode": "Filesystem",
            "csi": {"driver": "d", "volumeHandle": "h"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}});
        let mut ok = old.clone();
        ok["spec"]["capacity"]["storage"] = json!("2Gi");
        ok["spec"]["csi"]["controllerExpandSecretRef"] = json!({"name": "s", "namespace": "n"});
        assert!(volume(&ok, &old).is_empty());
        let mut bad = old.clone();
        bad["spec"]["csi"]["volumeHandle"] = json!("h2");
        bad["spec"]["volumeMode"] = json!("Block");
        bad["spec"]["nodeAffinity"] = Value::Null;
        let causes = volume(&bad, &old);
        let got = messages(&causes);
        assert_eq!(got[0].0, "spec.persistentvolumesource");
        assert!(got[0].2.starts_with(
            "Forbidden: spec.persistentvolumesource is immutable after creation\n  spec.csi:"
        ));
        assert_eq!(
            &got[1..],
            &[
                (
                    "volumeMode",
                    "FieldValueInvalid",
                    "Invalid value: \"Block\": field is immutable"
                ),
                (
                    "nodeAffinity",
                    "FieldValueInvalid",
                    "Invalid value: null: field is immutable"
                ),
            ]
        );
    }

    #[test]
    fn immutable_secrets_and_config_maps_are_frozen() {
        let old = json!({"type": "Opaque", "immutable": true, "data": {"a": "eA=="}});
        assert!(secret(&old, &old).is_empty());
        let new = json!({"type": "kubernetes.io/tls", "immutable": false, "data": {}});
        assert_eq!(
            messages(&secret(&new, &old)),
            vec![
                (
                    "type",
                    "FieldValueInvalid",
                    "Invalid value: \"kubernetes.io/tls\": field is immutable"
                ),
                (
                    "immutable",
                    "FieldValueForbidden",
                    "Forbidden: field is immutable when `immutable` is set"
                ),
                (
                    "data",
                    "FieldValueForbidden",
                    "Forbidden: field is immutable when `immutable` is set"
                ),
            ]
        );
        let old = json!({"immutable": true, "data": {"a": "x"}});
        let new = json!({"immutable": true, "data": {"a": "x"}, "binaryData": {"b": "eA=="}});
        assert_eq!(
            messages(&config_map(&new, &old)),
            vec![(
                "binaryData",
                "FieldValueForbidden",
                "Forbidden: field is immutable when `immutable` is set"
            )]
        );
        // Not immutable: anything goes, and it may become immutable.
        let mutable = json!({"data": {"a": "x"}});
        assert!(config_map(&old, &mutable).is_empty());
    }

    #[test]
    fn node_cidrs_and_provider_id_are_set_once() {
        let old = json!({"spec": {"podCIDRs": ["10.0.0.0/24"], "providerID": "p1"}});
        let fresh = json!({"spec": {}});
        assert!(node(&old, &fresh).is_empty());
        let new = json!({"spec": {"podCIDRs": ["10.0.1.0/24"], "providerID": "p2",
            "externalID": "x"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                                     {"type": "InternalIP", "address": "10.0.0.1"}]}});
        assert_eq!(
            messages(&node(&new, &old)),
            vec![
                (
                    "status.addresses[1]",
                    "FieldValueDuplicate",
                    "Duplicate value: {\"Address\":\"10.0.0.1\",\"Type\":\"InternalIP\"}"
                ),
                (
                    "spec.podCIDRs",
                    "FieldValueForbidden",
                    "Forbidden: node updates may not change podCIDR except from \"\" to valid"
                ),
                (
                    "spec.providerID",
                    "FieldValueForbidden",
                    "Forbidden: node updates may not change providerID except from \"\" to valid"
                ),
                (
                    "spec.externalID",
                    "FieldValueForbidden",
                    "Forbidden: may not be updated"
                ),
            ]
        );
    }

    #[test]
    fn quota_scopes_and_namespace_phases() {
        let old = json!({"spec": {"scopes": ["BestEffort"]}});
        let reordered = json!({"spec": {"scopes": ["BestEffort", "BestEffort"]}});
        assert!(resource_quota(&reordered, &old).is_empty());
        let new = json!({"spec": {"scopes": ["NotBestEffort"]}});
        assert_eq!(
            messages(&resource_quota(&new, &old)),
            vec![(
                "spec.scopes",
                "FieldValueInvalid",
                "Invalid value: [\"NotBestEffort\"]: field is immutable"
            )]
        );
        let ns = json!({"status": {"phase": "Terminating"}});
        assert_eq!(
            messages(&namespace_status(&ns)),
            vec![(
                "status.Phase",
                "FieldValueInvalid",
                "Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
            )]
        );
        let ns = json!({"spec": {"finalizers": ["kubernetes", "bad"]}});
        assert_eq!(
            messages(&namespace_finalizers(&ns, true)),
            vec![(
                "spec.finalizers[1]",
                "FieldValueInvalid",
                "Invalid value: \"bad\": name is neither a standard finalizer name nor is it fully qualified"
            )]
        );
    }
}
