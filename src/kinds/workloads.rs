//! The workload kinds that carry a pod template: Deployments, StatefulSets, DaemonSets,
//! ReplicaSets, ReplicationControllers and PodTemplates. Their defaults are upstream's
//! `SetDefaults_*` of `pkg/apis/apps/v1` and `core/v1` plus the shared pod spec ones; all track
//! `metadata.generation`.

use crate::jsonptr::At;
use serde_json::{Map, Value, json};

use super::Strategy;
use super::podspec::{
    child, default_claim_spec, default_template, existing, items, or_set, or_zero,
};
use super::workload_rules::Workload;
use crate::api::status::Cause;

/// A workload's `validate_update` (the `apps_updates` rule `$rule`) and its status rules.
macro_rules! update_rules {
    ($rule:ident, $workload:expr) => {
        /// Compared with the stored object as today's defaults make it (as upstream decodes
        /// it), so a default added since it was written is no change.
        fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
            let mut old = old.clone();
            self.default(&mut old);
            super::apps_updates::$rule(obj, &old, $workload)
        }

        fn validate_status_update(&self, obj: &Value, old: &Value) -> Option<Vec<Cause>> {
            Some(super::apps_updates::status(obj, old, $workload))
        }
    };
}

/// The annotation upstream keeps a DaemonSet's template generation in.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn spec_of(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    child(obj.as_object_mut()?, "spec")
}

fn default_spec_template(spec: &mut Map<String, Value>) {
    if let Some(t) = existing(spec, "template") {
        default_template(t);
    }
}

#[derive(Debug)]
pub struct Deployments;

impl Strategy for Deployments {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::Deployment)
    }

    update_rules!(selector_fixed, Workload::Deployment);

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = spec_of(obj) else { return };
        or_set(s, "replicas", json!(1));
        if let Some(st) = child(s, "strategy") {
            or_zero(st, "type", "RollingUpdate");
            if st.get("type") == Some(&json!("RollingUpdate"))
                && let Some(ru) = child(st, "rollingUpdate")
            {
                or_set(ru, "maxUnavailable", "25%");
                or_set(ru, "maxSurge", "25%");
            }
        }
        or_set(s, "revisionHistoryLimit", json!(10));
        or_set(s, "progressDeadlineSeconds", json!(600));
        default_spec_template(s);
    }
}

#[derive(Debug)]
pub struct StatefulSets;

impl Strategy for StatefulSets {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::StatefulSet)
    }

    update_rules!(stateful_set, Workload::StatefulSet);

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = spec_of(obj) else { return };
        or_zero(s, "podManagementPolicy", "OrderedReady");
        if let Some(us) = child(s, "updateStrategy") {
            let unset = matches!(us.get("type"), None | Some(Value::Null))
                || us.get("type") == Some(&json!(""));
            if unset {
                us.insert("type".into(), json!("RollingUpdate"));
                or_set(us, "rollingUpdate", json!({}));
            }
            if us.get("type") == Some(&json!("RollingUpdate"))
                && let Some(ru) = existing(us, "rollingUpdate")
            {
                or_set(ru, "partition", json!(0));
            }
        }
        if let Some(p) = child(s, "persistentVolumeClaimRetentionPolicy") {
            or_zero(p, "whenDeleted", "Retain");
            or_zero(p, "whenScaled", "Retain");
        }
        or_set(s, "replicas", json!(1));
        or_set(s, "revisionHistoryLimit", json!(10));
        for claim in items(s, "volumeClaimTemplates") {
            or_zero(claim, "apiVersion", "v1");
            or_zero(claim, "kind", "PersistentVolumeClaim");
            if let Some(cs) = child(claim, "spec") {
                default_claim_spec(cs);
            }
            if let Some(st) = child(claim, "status") {
                or_zero(st, "phase", "Pending");
            }
        }
        default_spec_template(s);
    }
}

#[derive(Debug)]
pub struct DaemonSets;

impl Strategy for DaemonSets {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::DaemonSet)
    }

    update_rules!(selector_fixed, Workload::DaemonSet);

    fn tracks_generation(&self) -> bool {
        true
    }

    /// The template generation starts at 1, kept in its deprecated annotation.
    fn prepare_for_create(&self, obj: &mut Value) {
        let Some(meta) = obj.as_object_mut().and_then(|o| child(o, "metadata")) else {
            return;
        };
        if let Some(a) = child(meta, "annotations") {
            a.insert(TEMPLATE_GENERATION.into(), json!("1"));
        }
    }

    /// The template generation is kept, and bumped when the template changes.
    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        let old_gen = old
            .at(&format!("/metadata/annotations/{TEMPLATE_GENERATION}"))
            .and_then(Value::as_str)
            .and_then(|g| g.parse::<i64>().ok());
        let Some(old_gen) = old_gen else { return };
        let changed = obj.at("/spec/template") != old.at("/spec/template");
        let generation = if changed { old_gen + 1 } else { old_gen };
        let Some(meta) = obj.as_object_mut().and_then(|o| child(o, "metadata")) else {
            return;
        };
        if let Some(a) = child(meta, "annotations") {
            a.insert(TEMPLATE_GENERATION.into(), json!(generation.to_string()));
        }
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = spec_of(obj) else { return };
        if let Some(us) = child(s, "updateStrategy") {
            or_zero(us, "type", "RollingUpdate");
            if us.get("type") == Some(&json!("RollingUpdate"))
                && let Some(ru) = child(us, "rollingUpdate")
            {
                or_set(ru, "maxUnavailable", json!(1));
                or_set(ru, "maxSurge", json!(0));
            }
        }
        or_set(s, "revisionHistoryLimit", json!(10));
        default_spec_template(s);
    }
}

#[derive(Debug)]
pub struct ReplicaSets;

impl Strategy for ReplicaSets {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::ReplicaSet)
    }

    update_rules!(selector_fixed, Workload::ReplicaSet);

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = spec_of(obj) else { return };
        or_set(s, "replicas", json!(1));
        default_spec_template(s);
    }
}

#[derive(Debug)]
pub struct ReplicationControllers;

impl Strategy for ReplicationControllers {
    /// core/v1 orphans a controller's pods unless the client asks otherwise, as before the
    /// garbage collector existed.
    fn default_gc_policy(&self) -> super::GcPolicy {
        super::GcPolicy::OrphanDependents
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::ReplicationController)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    /// `SetDefaults_ReplicationController`: the selector and the object's labels default to
    /// the template's labels.
    fn default(&self, obj: &mut Value) {
        let labels = obj
            .at("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .filter(|l| !l.is_empty())
            .cloned();
        if let Some(labels) = &labels {
            let empty = |v: Option<&Value>| v.and_then(Value::as_object).is_none_or(Map::is_empty);
            if let Some(o) = obj.as_object_mut() {
                if let Some(meta) = child(o, "metadata")
                    && empty(meta.get("labels"))
                {
                    meta.insert("labels".into(), json!(labels));
                }
                if let Some(s) = child(o, "spec")
                    && empty(s.get("selector"))
                {
                    s.insert("selector".into(), json!(labels));
                }
            }
        }
        let Some(s) = spec_of(obj) else { return };
        or_set(s, "replicas", json!(1));
        default_spec_template(s);
    }
}

#[derive(Debug)]
pub struct PodTemplates;

impl Strategy for PodTemplates {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::PodTemplate)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(t) = obj.as_object_mut().and_then(|o| existing(o, "template")) {
            default_template(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpl() -> Value {
        json!({"metadata": {"labels": {"app": "x"}},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    #[test]
    fn a_deployment_gets_its_strategy_limits_and_template_defaults() {
        let mut d = json!({"spec": {"selector": {}, "template": tmpl()}});
        Deployments.default(&mut d);
        let s = &d["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(
            s["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        assert_eq!(s["template"]["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(
            s["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }

    #[test]
    fn a_recreate_deployment_gets_no_rolling_update() {
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}, "template": tmpl()}});
        Deployments.default(&mut d);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn a_statefulset_gets_partition_retention_and_claim_template_defaults() {
        let mut d = json!({"spec": {"template": tmpl(),
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}});
        StatefulSets.default(&mut d);
        let s = &d["spec"];
        assert_eq!(s["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let c = &s["volumeClaimTemplates"][0];
        assert_eq!(c["apiVersion"], "v1");
        assert_eq!(c["kind"], "PersistentVolumeClaim");
        assert_eq!(c["spec"]["volumeMode"], "Filesystem");
        assert_eq!(c["status"]["phase"], "Pending");
    }

    #[test]
    fn a_daemonset_starts_at_template_generation_one_and_bumps_it_on_template_change() {
        let mut d = json!({"metadata": {}, "spec": {"template": tmpl()}});
        DaemonSets.prepare_for_create(&mut d);
        DaemonSets.default(&mut d);
        assert_eq!(d["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        let old = d.clone();
        let mut new = d.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        DaemonSets.prepare_for_update(&mut new, &old);
        assert_eq!(new["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
    }

    #[test]
    fn a_replication_controller_takes_selector_and_labels_from_its_template() {
        let mut d = json!({"metadata": {}, "spec": {"template": tmpl()}});
        ReplicationControllers.default(&mut d);
        assert_eq!(d["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(d["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(d["spec"]["replicas"], 1);
    }
}
