//! Kinds whose own behaviour is a handful of upstream `SetDefaults_*` (and, for some, tracking
//! `metadata.generation`): RBAC bindings, HorizontalPodAutoscalers, FlowSchemas and priority
//! levels, PriorityClasses, Secrets, LimitRanges and the storage kinds.

use crate::jsonptr::At;
use base64::Engine;
use serde_json::{Map, Value, json};

use super::podspec::{child, default_claim_spec, existing, items, or_set, or_zero};
use super::{NameRule, Strategy};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// RoleBindings and ClusterRoleBindings: path-segment names; the role reference and User or
/// Group subjects default to the RBAC group.
#[derive(Debug)]
pub struct RoleBindings;

impl Strategy for RoleBindings {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        // RoleRef is a struct upstream: an absent one is defaulted too.
        if let Some(r) = child(o, "roleRef") {
            or_zero(r, "apiGroup", json!(RBAC_GROUP));
        }
        for s in items(o, "subjects") {
            let kind = s.get("kind").and_then(Value::as_str);
            if matches!(kind, Some("User" | "Group")) {
                or_zero(s, "apiGroup", json!(RBAC_GROUP));
            }
        }
    }
}

/// HorizontalPodAutoscalers: one replica at least, and (autoscaling/v2) 80% CPU when no metric
/// is named; an autoscaling/v1 object keeps its `targetCPUUtilizationPercentage` for the
/// conversion. No generation (upstream's HPA strategy does not track one).
#[derive(Debug)]
pub struct HorizontalPodAutoscalers;

impl Strategy for HorizontalPodAutoscalers {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::hpa_rules::validate(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::group_updates::autoscaler(obj, old)
    }

    /// A status update checks the status only.
    fn validate_status_update(
        &self,
        obj: &Value,
        old: &Value,
    ) -> Option<Vec<crate::api::status::Cause>> {
        Some(super::group_updates::autoscaler_status(obj, old))
    }

    fn default(&self, obj: &mut Value) {
        // The strategy serves both versions; only a body that says it is v2 has `metrics`.
        let v2 = obj.get("apiVersion") == Some(&json!("autoscaling/v2"));
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        or_set(s, "minReplicas", json!(1));
        if !v2 {
            return;
        }
        let no_metrics = s
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if no_metrics {
            s.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]),
            );
        }
    }
}

#[derive(Debug)]
pub struct FlowSchemas;

impl Strategy for FlowSchemas {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::flowcontrol_rules::flow_schema(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) {
            or_zero(s, "matchingPrecedence", json!(1000));
        }
    }
}

#[derive(Debug)]
pub struct PriorityLevels;

impl Strategy for PriorityLevels {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::flowcontrol_rules::priority_level(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        if let Some(l) = existing(s, "limited") {
            or_set(l, "nominalConcurrencyShares", json!(30));
            or_set(l, "lendablePercent", json!(0));
        }
        if let Some(e) = existing(s, "exempt") {
            or_set(e, "nominalConcurrencyShares", json!(0));
            or_set(e, "lendablePercent", json!(0));
        }
    }
}

#[derive(Debug)]
pub struct PriorityClasses;

impl Strategy for PriorityClasses {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::small_rules::priority_class(obj)
    }

    /// Upstream's update runs `ValidatePriorityClassUpdate` alone.
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::other_updates::priority_class(obj, old)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            or_set(o, "preemptionPolicy", "PreemptLowerPriority");
        }
    }
}

/// Secrets: type Opaque, and `stringData` folded into `data` (as upstream's conversion does).
#[derive(Debug)]
pub struct Secrets;

impl Strategy for Secrets {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::small_rules::secret(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = super::core_updates::secret(obj, old);
        causes.extend(self.validate_create(obj));
        causes
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        or_zero(o, "type", "Opaque");
        let Some(Value::Object(strings)) = o.remove("stringData") else {
            return;
        };
        if let Some(data) = child(o, "data") {
            let engine = base64::engine::general_purpose::STANDARD;
            for (k, v) in strings {
                let text = v.as_str().unwrap_or_default();
                data.insert(k, json!(engine.encode(text)));
            }
        }
    }
}

/// LimitRanges: a container limit's default comes from its max, its default request from its
/// default, then its min.
#[derive(Debug)]
pub struct LimitRanges;

impl Strategy for LimitRanges {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::small_rules::limit_range(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        for item in items(s, "limits") {
            if item.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            let get = |m: &Map<String, Value>, k: &str| {
                m.get(k)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            let (max, min) = (get(item, "max"), get(item, "min"));
            let mut default = get(item, "default");
            for (k, v) in max {
                default.entry(k).or_insert(v);
            }
            let mut request = get(item, "defaultRequest");
            for (k, v) in default.iter().chain(min.iter()) {
                request.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if !default.is_empty() {
                item.insert("default".into(), Value::Object(default));
            }
            if !request.is_empty() {
                item.insert("defaultRequest".into(), Value::Object(request));
            }
        }
    }
}

#[derive(Debug)]
pub struct StorageClasses;

impl Strategy for StorageClasses {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::storage_rules::storage_class(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = self.validate_create(obj);
        causes.extend(super::storage_updates::storage_class(obj, old));
        causes
    }

    fn default(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            or_set(o, "reclaimPolicy", "Delete");
            or_set(o, "volumeBindingMode", "Immediate");
        }
    }
}

#[derive(Debug)]
pub struct CsiDrivers;

impl Strategy for CsiDrivers {
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::storage_updates::csi_driver(obj, old)
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        or_set(s, "attachRequired", json!(true));
        or_set(s, "podInfoOnMount", json!(false));
        or_set(s, "storageCapacity", json!(false));
        or_set(s, "fsGroupPolicy", "ReadWriteOnceWithFSType");
        let no_modes = s
            .get("volumeLifecycleModes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if no_modes {
            s.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
        }
        or_set(s, "requiresRepublish", json!(false));
        or_set(s, "seLinuxMount", json!(false));
    }
}

/// PersistentVolumes: DELETE answers with the object; reclaim policy Retain, filesystem
/// mode, a Pending phase.
#[derive(Debug)]
pub struct PersistentVolumes;

impl Strategy for PersistentVolumes {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::storage_rules::persistent_volume(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = self.validate_create(obj);
        causes.extend(super::core_updates::volume(obj, old));
        causes
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(s) = child(o, "spec") {
            or_zero(s, "persistentVolumeReclaimPolicy", "Retain");
            or_set(s, "volumeMode", "Filesystem");
            if let Some(h) = existing(s, "hostPath") {
                or_set(h, "type", "");
            }
        }
        if let Some(st) = child(o, "status") {
            or_zero(st, "phase", "Pending");
        }
    }
}

/// PersistentVolumeClaims: DELETE answers with the object; filesystem mode, a Pending phase.
#[derive(Debug)]
pub struct PersistentVolumeClaims;

impl Strategy for PersistentVolumeClaims {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = Vec::new();
        super::claim_rules::spec(obj.get("spec"), "spec", &mut causes);
        causes
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = self.validate_create(obj);
        causes.extend(super::core_updates::claim(obj, old));
        causes
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(s) = child(o, "spec") {
            default_claim_spec(s);
        }
        if let Some(st) = child(o, "status") {
            or_zero(st, "phase", "Pending");
        }
    }
}

/// ResourceClaims and their templates (`template`: the claim spec sits under `spec.spec`): a
/// device request for exactly some devices asks for one unless it says otherwise.
#[derive(Debug)]
pub struct ResourceClaims {
    pub template: bool,
}

impl Strategy for ResourceClaims {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        match self.template {
            true => super::resource_rules::claim_spec(obj.at("/spec/spec"), "spec.spec"),
            false => super::resource_rules::claim_spec(obj.get("spec"), "spec"),
        }
    }

    /// The spec is fixed, and so not validated again.
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::other_updates::claim_spec(obj, old)
    }

    fn default(&self, obj: &mut Value) {
        let Some(mut s) = obj.as_object_mut().and_then(|o| existing(o, "spec")) else {
            return;
        };
        if self.template {
            let Some(inner) = existing(s, "spec") else {
                return;
            };
            s = inner;
        }
        let Some(devices) = existing(s, "devices") else {
            return;
        };
        for r in items(devices, "requests") {
            if let Some(e) = existing(r, "exactly") {
                default_exact_request(e);
            }
            for sub in items(r, "firstAvailable") {
                default_exact_request(sub);
            }
        }
    }
}

fn default_exact_request(e: &mut Map<String, Value>) {
    or_zero(e, "allocationMode", "ExactCount");
    if e.get("allocationMode") == Some(&json!("ExactCount")) {
        or_zero(e, "count", json!(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_role_refs_and_user_subjects_default_to_the_rbac_group() {
        let mut b = json!({"roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "u"},
                         {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]});
        RoleBindings.default(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(b["subjects"][0]["apiGroup"], RBAC_GROUP);
        assert!(b["subjects"][1].get("apiGroup").is_none());
    }

    #[test]
    fn an_hpa_without_metrics_targets_80_percent_cpu() {
        let mut h = json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 3}});
        HorizontalPodAutoscalers.default(&mut h);
        assert_eq!(h["spec"]["minReplicas"], 1);
        assert_eq!(
            h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
    }

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let mut s = json!({"data": {"a": "eA=="}, "stringData": {"b": "v"}});
        Secrets.default(&mut s);
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({"a": "eA==", "b": "dg=="}));
        assert!(s.get("stringData").is_none());
    }

    #[test]
    fn a_container_limit_range_defaults_from_max_and_min() {
        let mut l = json!({"spec": {"limits": [{"type": "Container",
            "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}});
        LimitRanges.default(&mut l);
        let item = &l["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "2"}));
        assert_eq!(item["defaultRequest"], json!({"cpu": "2", "memory": "1Mi"}));
    }

    #[test]
    fn an_exact_device_request_asks_for_one_device() {
        let mut c = json!({"spec": {"spec": {"devices": {"requests": [
            {"name": "r", "exactly": {"deviceClassName": "gpu"}}]}}}});
        ResourceClaims { template: true }.default(&mut c);
        let e = &c["spec"]["spec"]["devices"]["requests"][0]["exactly"];
        assert_eq!(e["allocationMode"], "ExactCount");
        assert_eq!(e["count"], 1);
    }

    #[test]
    fn a_persistent_volume_is_retained_and_pending() {
        let mut p = json!({"spec": {"hostPath": {"path": "/x"}}});
        PersistentVolumes.default(&mut p);
        assert_eq!(p["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(p["spec"]["volumeMode"], "Filesystem");
        assert_eq!(p["spec"]["hostPath"]["type"], "");
        assert_eq!(p["status"]["phase"], "Pending");
    }
}
