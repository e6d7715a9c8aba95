//! Upstream's validation of the workloads that carry a pod template (`pkg/apis/apps/validation`,
//! `pkg/apis/batch/validation`, `ValidatePodTemplate`/`ValidateReplicationController` in core):
//! the selector and that it selects the template, replicas, the template's labels, and the
//! template's pod spec with the restart policies the owner allows.

use serde_json::{Value, json};

use super::meta;
use super::podspec_rules::{self, invalid, required};
use crate::api::status::Cause;

/// Which workload a row is: decides where its template is and what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Deployments, ReplicaSets, DaemonSets: `spec.selector` (a LabelSelector) and
    /// `spec.template`, restartPolicy Always.
    Apps,
    /// StatefulSets: as `Apps`, but the selector may not be empty and the template's labels
    /// are checked at `spec.template.labels`.
    StatefulSet,
    /// ReplicationControllers: `spec.selector` is a plain map; the template's labels are its
    /// default.
    ReplicationController,
    /// Jobs: the selector is generated; restartPolicy OnFailure or Never.
    Job,
    /// CronJobs: a schedule and a job template.
    CronJob,
    /// PodTemplates: `template` at the top level.
    PodTemplate,
}

/// Label keys and values of a map at `field` (template labels, matchLabels).
pub(super) fn labels(map: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    let Some(m) = map.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in m {
        for msg in meta::qualified_name_errors(k) {
            causes.push(invalid(field.to_string(), &json!(k), &msg));
        }
        let v = v.as_str().unwrap_or("");
        for msg in meta::label_value_errors(v) {
            causes.push(invalid(field.to_string(), &json!(v), msg));
        }
    }
}

/// Upstream's `ValidateLabelSelector` (label values must be valid): `matchLabels` and each
/// `matchExpressions` requirement.
pub(super) fn label_selector(sel: &Value, field: &str, causes: &mut Vec<Cause>) {
    labels(
        sel.get("matchLabels"),
        &format!("{field}.matchLabels"),
        causes,
    );
    for (i, e) in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = format!("{field}.matchExpressions[{i}]");
        let values = e.get("values").and_then(Value::as_array);
        let has_values = values.is_some_and(|v| !v.is_empty());
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" | "NotIn" if !has_values => causes.push(super::podspec_rules::required_why(
                format!("{f}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if has_values => causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message:
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                        .into(),
                field: format!("{f}.values"),
            }),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => causes.push(invalid(
                format!("{f}.operator"),
                &json!(op),
                "not a valid selector operator",
            )),
        }
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        for msg in meta::qualified_name_errors(key) {
            causes.push(invalid(format!("{f}.key"), &json!(key), &msg));
        }
        for (j, v) in values.into_iter().flatten().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in meta::label_value_errors(v) {
                causes.push(invalid(format!("{f}.values[{j}]"), &json!(v), msg));
            }
        }
    }
}

/// Whether a LabelSelector selects `labels` (matchLabels and matchExpressions).
fn selects(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let by_expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|es| {
            es.iter().all(|e| {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e.get("operator").and_then(Value::as_str) {
                    Some("In") => get(key).is_some_and(|v| values.contains(&v)),
                    Some("NotIn") => get(key).is_none_or(|v| !values.contains(&v)),
                    Some("Exists") => get(key).is_some(),
                    Some("DoesNotExist") => get(key).is_none(),
                    _ => false,
                }
            })
        });
    by_labels && by_expressions
}

fn non_negative(obj: &Value, pointer: &str, field: &str, causes: &mut Vec<Cause>) {
    if let Some(n) = obj.pointer(pointer).and_then(Value::as_i64)
        && n < 0
    {
        causes.push(invalid(
            field.into(),
            &json!(n),
            "must be greater than or equal to 0",
        ));
    }
}

/// The causes of a workload's own rules.
pub fn validate(obj: &Value, workload: Workload) -> Vec<Cause> {
    let mut causes = Vec::new();
    match workload {
        Workload::Apps | Workload::StatefulSet => {
            let stateful = workload == Workload::StatefulSet;
            non_negative(obj, "/spec/replicas", "spec.replicas", &mut causes);
            let template_labels = obj.pointer("/spec/template/metadata/labels");
            let mismatch = || {
                invalid(
                    "spec.template.metadata.labels".into(),
                    template_labels.unwrap_or(&Value::Null),
                    "`selector` does not match template `labels`",
                )
            };
            match obj.pointer("/spec/selector").filter(|s| !s.is_null()) {
                // No selector selects nothing: the template cannot match it either.
                None => {
                    causes.push(required("spec.selector".into()));
                    causes.push(mismatch());
                }
                Some(selector) => {
                    labels(
                        selector.get("matchLabels"),
                        "spec.selector.matchLabels",
                        &mut causes,
                    );
                    let requirements = crate::authz::aggregate::requirements(selector);
                    if stateful && requirements == 0 {
                        causes.push(invalid(
                            "spec.selector".into(),
                            selector,
                            "empty selector is invalid for statefulset",
                        ));
                    }
                    let empty = json!({});
                    if requirements > 0 && !selects(selector, template_labels.unwrap_or(&empty)) {
                        causes.push(mismatch());
                    }
                }
            }
            labels(
                template_labels,
                if stateful {
                    "spec.template.labels"
                } else {
                    "spec.template.metadata.labels"
                },
                &mut causes,
            );
            // A template without a restart policy has Always (upstream's defaults give every
            // template spec one).
            let spec = obj.pointer("/spec/template/spec");
            let defaulted;
            let spec = match spec {
                Some(s) if s.get("restartPolicy").is_some() => Some(s),
                Some(s) => {
                    let mut s = s.clone();
                    s["restartPolicy"] = json!("Always");
                    defaulted = s;
                    Some(&defaulted)
                }
                None => {
                    defaulted = json!({"restartPolicy": "Always"});
                    Some(&defaulted)
                }
            };
            causes.extend(podspec_rules::validate(
                spec,
                "spec.template.spec",
                &["Always"],
            ));
        }
        Workload::ReplicationController => {
            non_negative(obj, "/spec/replicas", "spec.replicas", &mut causes);
            labels(
                obj.pointer("/spec/template/metadata/labels"),
                "spec.template.labels",
                &mut causes,
            );
            causes.extend(podspec_rules::validate(
                obj.pointer("/spec/template/spec"),
                "spec.template.spec",
                &["Always"],
            ));
        }
        Workload::Job => {
            for f in ["parallelism", "completions", "backoffLimit"] {
                non_negative(
                    obj,
                    &format!("/spec/{f}"),
                    &format!("spec.{f}"),
                    &mut causes,
                );
            }
            causes.extend(podspec_rules::validate(
                obj.pointer("/spec/template/spec"),
                "spec.template.spec",
                &["OnFailure", "Never"],
            ));
        }
        Workload::CronJob => {
            if obj
                .pointer("/spec/schedule")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                causes.push(required("spec.schedule".into()));
            }
            causes.extend(podspec_rules::validate(
                obj.pointer("/spec/jobTemplate/spec/template/spec"),
                "spec.jobTemplate.spec.template.spec",
                &["OnFailure", "Never"],
            ));
        }
        Workload::PodTemplate => {
            causes.extend(podspec_rules::validate(
                obj.pointer("/template/spec"),
                "template.spec",
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_whose_selector_misses_its_template_is_refused() {
        let d = json!({"spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "nginx"}]},
            },
        }});
        let causes = validate(&d, Workload::Apps);
        let fields: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("spec.replicas", "FieldValueInvalid"),
                ("spec.template.metadata.labels", "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            causes[1].message,
            "Invalid value: {\"app\":\"api\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn expressions_select_as_upstream() {
        let labels = json!({"tier": "web", "env": "prod"});
        let sel = json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ]});
        assert!(selects(&sel, &labels));
        let sel = json!({"matchExpressions": [{"key": "canary", "operator": "Exists"}]});
        assert!(!selects(&sel, &labels));
    }
}
