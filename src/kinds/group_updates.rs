//! Update rules of the small groups' kinds (upstream's `Validate<Kind>Update` and status
//! updates): a PodDisruptionBudget's spec may change (1.15+) and keeps a selector it stored
//! with label values no longer valid; an HPA keeps a minimum of 0 replicas it already had;
//! their status updates check the status counters.

use crate::jsonptr::At;
use serde_json::Value;

use super::field::non_negative;
use super::workload_rules::label_selector;
use crate::api::status::Cause;

/// Whether a stored selector had label values the create rules refuse now.
fn selector_had_bad_values(old: &Value) -> bool {
    let Some(sel) = old.at("/spec/selector").filter(|s| s.is_object()) else {
        return false;
    };
    let mut causes = Vec::new();
    label_selector(sel, "spec.selector", &mut causes);
    !causes.is_empty()
}

/// A PodDisruptionBudget update: the create rules; a selector the stored object already had
/// with invalid label values is not refused for them (`AllowInvalidLabelValueInSelector`).
pub fn disruption_budget(new: &Value, old: &Value) -> Vec<Cause> {
    let causes = super::small_rules::disruption_budget(new);
    if !selector_had_bad_values(old) {
        return causes;
    }
    causes
        .into_iter()
        .filter(|c| {
            let label_value = c.field.starts_with("spec.selector.")
                && (c.field.ends_with("matchLabels") || c.field.contains("].values["));
            !label_value
        })
        .collect()
}

/// A PodDisruptionBudget status update: its counters are not negative.
pub fn disruption_budget_status(new: &Value, _old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for key in [
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
    ] {
        non_negative(
            new.at(&format!("/status/{key}")),
            format!("status.{key}"),
            &mut causes,
        );
    }
    causes
}

/// An HPA update: the create rules, except that a minimum of 0 replicas the stored object
/// already had stays allowed (upstream lowers the bound to 0 for it).
pub fn autoscaler(new: &Value, old: &Value) -> Vec<Cause> {
    let causes = super::hpa_rules::validate(new);
    let old_zero = old.at("/spec/minReplicas").and_then(Value::as_i64) == Some(0);
    let new_zero = new.at("/spec/minReplicas").and_then(Value::as_i64) == Some(0);
    if !(old_zero && new_zero) {
        return causes;
    }
    causes
        .into_iter()
        .filter(|c| c.field != "spec.minReplicas")
        .collect()
}

/// An HPA status update: the replica counts are not negative. Upstream names the second
/// field `status.desiredReplicasa` (a typo it has kept); clients see that path.
pub fn autoscaler_status(new: &Value, _old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    non_negative(
        new.at("/status/currentReplicas"),
        "status.currentReplicas",
        &mut causes,
    );
    non_negative(
        new.at("/status/desiredReplicas"),
        "status.desiredReplicasa",
        &mut causes,
    );
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;
    use serde_json::json;

    #[test]
    fn a_budget_keeps_a_stored_selector_with_old_label_values() {
        let old = json!({"spec": {"minAvailable": 1,
            "selector": {"matchLabels": {"app": "bad value"}}}});
        let mut new = old.clone();
        new["spec"]["minAvailable"] = json!(2);
        assert_eq!(
            fields(&super::super::small_rules::disruption_budget(&new)),
            vec![("spec.selector.matchLabels", "FieldValueInvalid")]
        );
        assert_eq!(fields(&disruption_budget(&new, &old)), vec![]);
        let clean = json!({"spec": {"selector": {"matchLabels": {"app": "x"}}}});
        assert_eq!(fields(&disruption_budget(&new, &clean)).len(), 1);
        new["spec"]["minAvailable"] = json!("120%");
        assert_eq!(
            fields(&disruption_budget(&new, &old)),
            vec![("spec.minAvailable", "FieldValueInvalid")]
        );
        let status = json!({"status": {"disruptionsAllowed": -1, "expectedPods": 1}});
        assert_eq!(
            fields(&disruption_budget_status(&status, &old)),
            vec![("status.disruptionsAllowed", "FieldValueInvalid")]
        );
    }

    #[test]
    fn an_autoscaler_keeps_a_zero_minimum_it_had() {
        let hpa = |min: i64| {
            json!({"spec": {"minReplicas": min, "maxReplicas": 3,
                "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}}})
        };
        assert_eq!(
            fields(&autoscaler(&hpa(0), &hpa(1))),
            vec![("spec.minReplicas", "FieldValueInvalid")]
        );
        assert_eq!(fields(&autoscaler(&hpa(0), &hpa(0))), vec![]);
        let status = json!({"status": {"currentReplicas": -1, "desiredReplicas": -2}});
        assert_eq!(
            fields(&autoscaler_status(&status, &hpa(1))),
            vec![
                ("status.currentReplicas", "FieldValueInvalid"),
                ("status.desiredReplicasa", "FieldValueInvalid"),
            ]
        );
    }
}
