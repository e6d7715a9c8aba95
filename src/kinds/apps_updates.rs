//! What may change in an apps/v1 object once it exists (upstream's `Validate<Kind>Update` and
//! the apps strategies' `ValidateUpdate`): a Deployment's, ReplicaSet's or DaemonSet's
//! selector never changes (apps/v1 made it immutable); a StatefulSet's spec changes only in
//! the fields upstream lists; a ControllerRevision's data is fixed. Status updates check the
//! status counters only (`Validate<Kind>StatusUpdate`).

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::field::{forbidden, invalid, non_negative};
use super::immutable::{immutable, immutable_selector, same};
use super::workload_rules::{Workload, validate};
use crate::api::status::Cause;

/// The spec fields of a StatefulSet an update may change (Kubernetes 1.36).
const STATEFUL_SET_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

const STATEFUL_SET_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

/// Deployments, ReplicaSets and DaemonSets: the create rules, and the selector stays.
pub fn selector_fixed(new: &Value, old: &Value, workload: Workload) -> Vec<Cause> {
    let mut causes = validate(new, workload);
    immutable_selector(new, old, &mut causes);
    causes
}

/// A StatefulSet: the spec rules, and nothing outside `STATEFUL_SET_MUTABLE` changes. (It
/// takes the workload as the other apps update rules do, so one strategy macro calls all.)
pub fn stateful_set(new: &Value, old: &Value, _: Workload) -> Vec<Cause> {
    let mut causes = validate(new, Workload::StatefulSet);
    let without_mutable = |obj: &Value| {
        let mut spec = obj.get("spec").cloned().unwrap_or(json!({}));
        if let Some(s) = spec.as_object_mut() {
            for k in STATEFUL_SET_MUTABLE {
                s.remove(*k);
            }
        }
        spec
    };
    if !same(Some(&without_mutable(new)), Some(&without_mutable(old))) {
        causes.push(forbidden("spec".into(), STATEFUL_SET_FORBIDDEN));
    }
    causes
}

/// A ControllerRevision: its create rules, and its data is fixed.
pub fn controller_revision(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = super::small_rules::controller_revision(new);
    immutable(new.get("data"), old.get("data"), "data", &mut causes);
    causes
}

/// A status counter, 0 when unset.
fn count(status: &Value, key: &str) -> i64 {
    status.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// `status.<key>` may not exceed `status.<bound>`.
fn at_most(status: &Value, key: &str, bound: &str, causes: &mut Vec<Cause>) {
    let (v, b) = (count(status, key), count(status, bound));
    if v > b {
        let msg = match bound {
            "replicas" => "cannot be greater than status.replicas",
            _ => "cannot be greater than readyReplicas",
        };
        causes.push(invalid(format!("status.{key}"), &json!(v), msg));
    }
}

/// `status.collisionCount` only grows.
fn collisions_kept(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let n = new.at("/status/collisionCount").and_then(Value::as_i64);
    let o = old.at("/status/collisionCount").and_then(Value::as_i64);
    if let Some(o) = o
        && n.is_none_or(|n| n < o)
    {
        causes.push(invalid(
            "status.collisionCount".into(),
            &json!(n.unwrap_or(0)),
            "cannot be decremented",
        ));
    }
}

/// A status update of an apps/v1 workload (`Validate<Kind>StatusUpdate`): counters not
/// negative, none above the replicas it counts, the collision count never lower.
pub fn status(new: &Value, old: &Value, workload: Workload) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let s = new.get("status").unwrap_or(&empty);
    let nonneg = |keys: &[&str], causes: &mut Vec<Cause>| {
        for k in keys {
            non_negative(s.get(*k), format!("status.{k}"), causes);
        }
    };
    match workload {
        Workload::Deployment => {
            nonneg(
                &[
                    "observedGeneration",
                    "replicas",
                    "updatedReplicas",
                    "readyReplicas",
                    "availableReplicas",
                    "unavailableReplicas",
                    "collisionCount",
                ],
                &mut causes,
            );
            for k in ["updatedReplicas", "readyReplicas", "availableReplicas"] {
                at_most(s, k, "replicas", &mut causes);
            }
            at_most(s, "availableReplicas", "readyReplicas", &mut causes);
            collisions_kept(new, old, &mut causes);
        }
        Workload::ReplicaSet => {
            nonneg(
                &[
                    "replicas",
                    "fullyLabeledReplicas",
                    "readyReplicas",
                    "availableReplicas",
                    "observedGeneration",
                ],
                &mut causes,
            );
            for k in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
                at_most(s, k, "replicas", &mut causes);
            }
            at_most(s, "availableReplicas", "readyReplicas", &mut causes);
        }
        Workload::StatefulSet => {
            nonneg(
                &[
                    "replicas",
                    "readyReplicas",
                    "currentReplicas",
                    "updatedReplicas",
                    "availableReplicas",
                    "observedGeneration",
                    "collisionCount",
                ],
                &mut causes,
            );
            for k in [
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
            ] {
                at_most(s, k, "replicas", &mut causes);
            }
            if count(s, "availableReplicas") > count(s, "readyReplicas") {
                causes.push(invalid(
                    "status.availableReplicas".into(),
                    &json!(count(s, "availableReplicas")),
                    "cannot be greater than status.readyReplicas",
                ));
            }
            collisions_kept(new, old, &mut causes);
        }
        Workload::DaemonSet => {
            nonneg(
                &[
                    "currentNumberScheduled",
                    "numberMisscheduled",
                    "desiredNumberScheduled",
                    "numberReady",
                    "observedGeneration",
                    "updatedNumberScheduled",
                    "numberAvailable",
                    "numberUnavailable",
                    "collisionCount",
                ],
                &mut causes,
            );
            collisions_kept(new, old, &mut causes);
        }
        _ => {}
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

    fn deployment() -> Value {
        json!({"spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "x"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        }})
    }

    #[test]
    fn a_deployment_may_change_replicas_and_image_but_not_its_selector() {
        let old = deployment();
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(5);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_eq!(
            fields(&selector_fixed(&new, &old, Workload::Deployment)),
            vec![]
        );
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
        let causes = selector_fixed(&new, &old, Workload::Deployment);
        assert_eq!(
            fields(&causes),
            vec![("spec.selector", "FieldValueInvalid")]
        );
        assert_eq!(
            causes[0].message,
            "Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"x\"}}: field is immutable"
        );
    }

    #[test]
    fn a_daemon_set_keeps_its_selector_and_still_checks_its_template() {
        let old = deployment();
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        assert_eq!(
            fields(&selector_fixed(&new, &old, Workload::DaemonSet)),
            vec![
                ("spec.template.metadata.labels", "FieldValueInvalid"),
                ("spec.selector", "FieldValueInvalid"),
            ]
        );
    }

    fn stateful() -> Value {
        json!({"spec": {
            "replicas": 1, "serviceName": "db", "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "c", "image": "pg"}]}},
        }})
    }

    #[test]
    fn a_stateful_set_changes_only_the_listed_spec_fields() {
        let old = stateful();
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        new["spec"]["minReadySeconds"] = json!(5);
        new["spec"]["revisionHistoryLimit"] = json!(3);
        new["spec"]["ordinals"] = json!({"start": 2});
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("pg:2");
        assert_eq!(
            fields(&stateful_set(&new, &old, Workload::StatefulSet)),
            vec![]
        );
        new["spec"]["serviceName"] = json!("other");
        let causes = stateful_set(&new, &old, Workload::StatefulSet);
        assert_eq!(fields(&causes), vec![("spec", "FieldValueForbidden")]);
        assert_eq!(
            causes[0].message,
            format!("Forbidden: {STATEFUL_SET_FORBIDDEN}")
        );
        let mut claims = old.clone();
        claims["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "d"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}]);
        assert_eq!(
            fields(&stateful_set(&claims, &old, Workload::StatefulSet)),
            vec![("spec", "FieldValueForbidden")]
        );
    }

    #[test]
    fn a_controller_revision_keeps_its_data() {
        let old = json!({"data": {"spec": 1}, "revision": 1});
        let mut new = old.clone();
        new["revision"] = json!(2);
        assert_eq!(fields(&controller_revision(&new, &old)), vec![]);
        new["data"] = json!({"spec": 2});
        let causes = controller_revision(&new, &old);
        assert_eq!(fields(&causes), vec![("data", "FieldValueInvalid")]);
        assert_eq!(
            causes[0].message,
            "Invalid value: {\"spec\":2}: field is immutable"
        );
    }

    #[test]
    fn status_counters_stay_within_replicas_and_collisions_only_grow() {
        let old = json!({"status": {"collisionCount": 2}});
        let new = json!({"status": {"replicas": 1, "readyReplicas": 2, "availableReplicas": 2,
                                    "collisionCount": 1, "updatedReplicas": -1}});
        let causes = status(&new, &old, Workload::Deployment);
        assert_eq!(
            fields(&causes),
            vec![
                ("status.updatedReplicas", "FieldValueInvalid"),
                ("status.readyReplicas", "FieldValueInvalid"),
                ("status.availableReplicas", "FieldValueInvalid"),
                ("status.collisionCount", "FieldValueInvalid"),
            ]
        );
        assert_eq!(causes[3].message, "Invalid value: 1: cannot be decremented");
        assert_eq!(
            causes[1].message,
            "Invalid value: 2: cannot be greater than status.replicas"
        );
    }
}
