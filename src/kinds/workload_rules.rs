//! Upstream's validation of the workloads that carry a pod template (`pkg/apis/apps/validation`,
//! `pkg/apis/batch/validation`, `ValidatePodTemplate`/`ValidateReplicationController` in core):
//! each kind's selector and that it selects the template, replicas, update strategies, history
//! limits, and the template (`ValidatePodTemplateSpec`: its labels and annotations, its pod spec)
//! with the restart policies the owner allows. StatefulSets' own rules are in
//! `statefulset_rules`.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::field::{
    forbidden, invalid, non_negative, not_supported, not_supported_rendered, required, required_why,
};
use super::meta;
use super::podspec_rules;
use crate::api::status::Cause;

/// Which workload a row is: decides where its template is and what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    ReplicationController,
    Job,
    CronJob,
    PodTemplate,
}

/// Upstream's `ValidateLabelSelector` (label values must be valid): `matchLabels` and each
/// `matchExpressions` requirement.
pub(super) fn label_selector(sel: &Value, field: &str, causes: &mut Vec<Cause>) {
    meta::labels(
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
            "In" | "NotIn" if !has_values => causes.push(required_why(
                format!("{f}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if has_values => causes.push(forbidden(
                format!("{f}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
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

/// A LabelSelector as upstream's `LabelSelectorAsSelector` makes it: `None` when it cannot be
/// converted (an invalid key, value or requirement), else whether it is empty (selects
/// everything). A missing selector selects nothing, which is not empty.
pub(super) enum Selector<'a> {
    Invalid,
    Nothing,
    Everything,
    Some(&'a Value),
}

pub(super) fn selector(sel: Option<&Value>) -> Selector<'_> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Selector::Nothing;
    };
    let mut causes = Vec::new();
    label_selector(sel, "", &mut causes);
    if !causes.is_empty() {
        return Selector::Invalid;
    }
    match crate::authz::aggregate::requirements(sel) {
        0 => Selector::Everything,
        _ => Selector::Some(sel),
    }
}

/// The template's labels don't match: `<at>.metadata.labels` with the labels (or null).
pub(super) fn mismatch(template: Option<&Value>, at: &str) -> Cause {
    invalid(
        format!("{at}.metadata.labels"),
        template
            .and_then(|t| t.at("/metadata/labels"))
            .unwrap_or(&Value::Null),
        "`selector` does not match template `labels`",
    )
}

/// Whether `sel` selects the template's labels (`Nothing` never, `Everything` always).
pub(super) fn selects_template(sel: &Selector<'_>, template: Option<&Value>) -> bool {
    let empty = json!({});
    let labels = template
        .and_then(|t| t.at("/metadata/labels"))
        .unwrap_or(&empty);
    match sel {
        Selector::Nothing => false,
        Selector::Everything | Selector::Invalid => true,
        Selector::Some(s) => selects(s, labels),
    }
}

/// `ValidatePodTemplateSpec` at `at`: labels and annotations (at `<at>.labels` and
/// `<at>.annotations`, as upstream reports them), the pod spec with every restart policy a
/// pod may have, and no ephemeral containers. A template without a restart policy has
/// upstream's default (`default_restart`), which the owner then checks.
pub(super) fn pod_template(
    template: Option<&Value>,
    at: &str,
    default_restart: Option<&str>,
    causes: &mut Vec<Cause>,
) {
    let meta_of = template.and_then(|t| t.get("metadata"));
    meta::labels(
        meta_of.and_then(|m| m.get("labels")),
        &format!("{at}.labels"),
        causes,
    );
    meta::annotations(
        meta_of.and_then(|m| m.get("annotations")),
        &format!("{at}.annotations"),
        causes,
    );
    let spec = template
        .and_then(|t| t.get("spec"))
        .filter(|s| s.is_object());
    let defaulted;
    let spec = match (spec, default_restart) {
        (Some(s), Some(r)) if s.get("restartPolicy").is_none() => {
            let mut s = s.clone();
            s["restartPolicy"] = json!(r);
            defaulted = s;
            Some(&defaulted)
        }
        (None, Some(r)) => {
            defaulted = json!({"restartPolicy": r});
            Some(&defaulted)
        }
        (spec, _) => spec,
    };
    causes.extend(podspec_rules::validate(
        spec,
        &format!("{at}.spec"),
        &["Always", "OnFailure", "Never"],
    ));
    if spec
        .and_then(|s| s.get("ephemeralContainers"))
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty())
    {
        causes.push(forbidden(
            format!("{at}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// What a ReplicaSet-like owner (Deployments, ReplicaSets, DaemonSets, ReplicationControllers,
/// StatefulSets) asks of its template's spec: restart policy Always, no active deadline.
pub(super) fn always_restarts(
    template: Option<&Value>,
    at: &str,
    owner: &str,
    causes: &mut Vec<Cause>,
) {
    let spec = template.and_then(|t| t.get("spec"));
    let policy = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy != "Always" {
        causes.push(not_supported(
            format!("{at}.spec.restartPolicy"),
            &json!(policy),
            &["Always"],
        ));
    }
    if spec
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .is_some_and(|v| !v.is_null())
    {
        causes.push(forbidden(
            format!("{at}.spec.activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
}

/// `ValidatePositiveIntOrPercent`: a number ≥ 0, or `<digits>%`.
pub(super) fn int_or_percent(v: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    match v {
        Some(Value::String(s)) => {
            let digits = s.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                causes.push(invalid(
                    field.to_string(),
                    &json!(s),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
            }
        }
        other => non_negative(other, field.to_string(), causes),
    }
}

/// An int-or-percent's value (`25%` → 25; what does not parse → 0), and whether a percent.
fn int_or_percent_value(v: Option<&Value>) -> (i64, bool) {
    match v {
        Some(Value::String(s)) => match s.strip_suffix('%') {
            Some(d) => (d.parse().unwrap_or(0), true),
            None => (s.parse().unwrap_or(0), false),
        },
        Some(v) => (v.as_i64().unwrap_or(0), false),
        None => (0, false),
    }
}

pub(super) fn not_over_100_percent(v: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    let (n, percent) = int_or_percent_value(v);
    if percent && n > 100 {
        causes.push(invalid(
            field.to_string(),
            v.unwrap_or(&Value::Null),
            "must not be greater than 100%",
        ));
    }
}

/// A strategy as upstream renders its internal struct in a NotSupported error:
/// `{"Type":...,"RollingUpdate":{"MaxUnavailable":...,"MaxSurge":...}}`.
fn strategy_text(strategy: &Value, rolling: &[(&str, &str)]) -> String {
    let ty = strategy.get("type").cloned().unwrap_or(json!(""));
    let ru = match strategy.get("rollingUpdate").filter(|v| v.is_object()) {
        Some(ru) => {
            let fields: Vec<String> = rolling
                .iter()
                .map(|(go, key)| format!("\"{go}\":{}", ru.get(*key).unwrap_or(&Value::Null)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        None => "null".into(),
    };
    format!("{{\"Type\":{ty},\"RollingUpdate\":{ru}}}")
}

fn deployment_strategy(spec: &Value, causes: &mut Vec<Cause>) {
    let Some(strategy) = spec.get("strategy").filter(|s| s.is_object()) else {
        return;
    };
    let ru = strategy.get("rollingUpdate").filter(|v| !v.is_null());
    match strategy.get("type").and_then(Value::as_str).unwrap_or("") {
        "Recreate" => {
            if ru.is_some() {
                causes.push(forbidden(
                    "spec.strategy.rollingUpdate".into(),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let Some(ru) = ru else {
                causes.push(required_why(
                    "spec.strategy.rollingUpdate".into(),
                    "this should be defaulted and never be nil",
                ));
                return;
            };
            let unavailable = ru.get("maxUnavailable");
            let surge = ru.get("maxSurge");
            int_or_percent(
                unavailable,
                "spec.strategy.rollingUpdate.maxUnavailable",
                causes,
            );
            int_or_percent(surge, "spec.strategy.rollingUpdate.maxSurge", causes);
            if int_or_percent_value(unavailable).0 == 0 && int_or_percent_value(surge).0 == 0 {
                causes.push(invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable".into(),
                    unavailable.unwrap_or(&json!(0)),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
            not_over_100_percent(
                unavailable,
                "spec.strategy.rollingUpdate.maxUnavailable",
                causes,
            );
        }
        _ => causes.push(not_supported_rendered(
            "spec.strategy".into(),
            &strategy_text(
                strategy,
                &[
                    ("MaxUnavailable", "maxUnavailable"),
                    ("MaxSurge", "maxSurge"),
                ],
            ),
            &["Recreate", "RollingUpdate"],
        )),
    }
}

fn daemon_set_strategy(spec: &Value, causes: &mut Vec<Cause>) {
    let Some(strategy) = spec.get("updateStrategy").filter(|s| s.is_object()) else {
        return;
    };
    match strategy.get("type").and_then(Value::as_str).unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let Some(ru) = strategy.get("rollingUpdate").filter(|v| !v.is_null()) else {
                causes.push(required("spec.updateStrategy.rollingUpdate".into()));
                return;
            };
            let at = "spec.updateStrategy.rollingUpdate";
            let unavailable = ru.get("maxUnavailable");
            let surge = ru.get("maxSurge");
            int_or_percent(unavailable, &format!("{at}.maxUnavailable"), causes);
            int_or_percent(surge, &format!("{at}.maxSurge"), causes);
            not_over_100_percent(unavailable, &format!("{at}.maxUnavailable"), causes);
            not_over_100_percent(surge, &format!("{at}.maxSurge"), causes);
            let has_unavailable = int_or_percent_value(unavailable).0 != 0;
            let has_surge = int_or_percent_value(surge).0 != 0;
            if has_unavailable && has_surge {
                causes.push(invalid(
                    format!("{at}.maxSurge"),
                    surge.unwrap_or(&Value::Null),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                causes.push(required_why(
                    format!("{at}.maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        _ => causes.push(not_supported_rendered(
            "spec.updateStrategy".into(),
            &strategy_text(
                strategy,
                &[
                    ("MaxUnavailable", "maxUnavailable"),
                    ("MaxSurge", "maxSurge"),
                ],
            ),
            &["RollingUpdate", "OnDelete"],
        )),
    }
}

/// `spec.selector` of an owner that needs one: present, a valid LabelSelector, not empty
/// (`empty selector is invalid for <owner>`).
pub(super) fn required_selector<'a>(
    spec: &'a Value,
    owner: &str,
    causes: &mut Vec<Cause>,
) -> Option<&'a Value> {
    let sel = spec.get("selector").filter(|s| !s.is_null());
    match sel {
        None => causes.push(required("spec.selector".into())),
        Some(s) => {
            label_selector(s, "spec.selector", causes);
            if crate::authz::aggregate::requirements(s) == 0 {
                causes.push(invalid(
                    "spec.selector".into(),
                    s,
                    &format!("empty selector is invalid for {owner}"),
                ));
            }
        }
    }
    sel
}

/// Deployments and ReplicaSets: replicas, the selector (which may not be empty, and must
/// convert before the template is looked at), the template.
fn replica_set_like(obj: &Value, owner: &str, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    non_negative(spec.get("replicas"), "spec.replicas", causes);
    if owner == "ReplicaSet" {
        non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds", causes);
    }
    let sel = required_selector(spec, "deployment", causes);
    let template = spec.get("template").filter(|t| !t.is_null());
    match selector(sel) {
        Selector::Invalid => causes.push(invalid(
            "spec.selector".into(),
            sel.unwrap_or(&Value::Null),
            "invalid label selector",
        )),
        s => {
            if !matches!(s, Selector::Everything) && !selects_template(&s, template) {
                causes.push(mismatch(template, "spec.template"));
            }
            pod_template(template, "spec.template", Some("Always"), causes);
            always_restarts(template, "spec.template", "ReplicaSet", causes);
        }
    }
}

/// The causes of a workload's own rules.
pub fn validate(obj: &Value, workload: Workload) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match workload {
        Workload::Deployment => {
            replica_set_like(obj, "Deployment", &mut causes);
            deployment_strategy(spec, &mut causes);
            non_negative(
                spec.get("minReadySeconds"),
                "spec.minReadySeconds",
                &mut causes,
            );
            non_negative(
                spec.get("revisionHistoryLimit"),
                "spec.revisionHistoryLimit",
                &mut causes,
            );
            if let Some(p) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
                non_negative(Some(&json!(p)), "spec.progressDeadlineSeconds", &mut causes);
                let min_ready = spec
                    .get("minReadySeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if p <= min_ready {
                    causes.push(invalid(
                        "spec.progressDeadlineSeconds".into(),
                        &json!(p),
                        "must be greater than minReadySeconds",
                    ));
                }
            }
        }
        Workload::ReplicaSet => replica_set_like(obj, "ReplicaSet", &mut causes),
        Workload::DaemonSet => {
            let sel = spec.get("selector").filter(|s| !s.is_null());
            if let Some(s) = sel {
                label_selector(s, "spec.selector", &mut causes);
            }
            let template = spec.get("template").filter(|t| !t.is_null());
            let converted = selector(sel);
            if !matches!(converted, Selector::Invalid) && !selects_template(&converted, template) {
                causes.push(mismatch(template, "spec.template"));
            }
            if let Some(s) = sel
                && crate::authz::aggregate::requirements(s) == 0
            {
                causes.push(invalid(
                    "spec.selector".into(),
                    s,
                    "empty selector is invalid for daemonset",
                ));
            }
            pod_template(template, "spec.template", Some("Always"), &mut causes);
            always_restarts(template, "spec.template", "DaemonSet", &mut causes);
            non_negative(
                spec.get("minReadySeconds"),
                "spec.minReadySeconds",
                &mut causes,
            );
            non_negative(
                spec.get("templateGeneration"),
                "spec.templateGeneration",
                &mut causes,
            );
            daemon_set_strategy(spec, &mut causes);
            non_negative(
                spec.get("revisionHistoryLimit"),
                "spec.revisionHistoryLimit",
                &mut causes,
            );
        }
        Workload::StatefulSet => super::statefulset_rules::validate(obj, &mut causes),
        Workload::ReplicationController => {
            non_negative(
                spec.get("minReadySeconds"),
                "spec.minReadySeconds",
                &mut causes,
            );
            let sel = spec
                .get("selector")
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty());
            if sel.is_none() {
                causes.push(required("spec.selector".into()));
            }
            non_negative(spec.get("replicas"), "spec.replicas", &mut causes);
            match spec.get("template").filter(|t| !t.is_null()) {
                None => causes.push(required("spec.template".into())),
                Some(t) => {
                    if let Some(sel) = sel {
                        let selects = sel.iter().all(|(k, v)| {
                            t.at(&format!(
                                "/metadata/labels/{}",
                                k.replace('~', "~0").replace('/', "~1")
                            )) == Some(v)
                        });
                        if !selects {
                            causes.push(mismatch(Some(t), "spec.template"));
                        }
                    }
                    pod_template(Some(t), "spec.template", Some("Always"), &mut causes);
                    always_restarts(
                        Some(t),
                        "spec.template",
                        "ReplicationController",
                        &mut causes,
                    );
                }
            }
        }
        Workload::Job => {
            for f in [
                "parallelism",
                "completions",
                "backoffLimit",
                "activeDeadlineSeconds",
                "ttlSecondsAfterFinished",
            ] {
                non_negative(spec.get(f), format!("spec.{f}"), &mut causes);
            }
            causes.extend(podspec_rules::validate(
                spec.at("/template/spec"),
                "spec.template.spec",
                &["OnFailure", "Never"],
            ));
        }
        Workload::CronJob => {
            let schedule = spec.get("schedule").and_then(Value::as_str).unwrap_or("");
            if schedule.is_empty() {
                causes.push(required("spec.schedule".into()));
            } else if let Err(why) = super::batch::schedule_errors(schedule) {
                causes.push(invalid("spec.schedule".into(), &json!(schedule), &why));
            }
            const POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];
            if let Some(p) = spec.get("concurrencyPolicy").and_then(Value::as_str)
                && !POLICIES.contains(&p)
            {
                causes.push(not_supported(
                    "spec.concurrencyPolicy".into(),
                    &json!(p),
                    POLICIES,
                ));
            }
            for f in [
                "startingDeadlineSeconds",
                "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit",
            ] {
                non_negative(spec.get(f), format!("spec.{f}"), &mut causes);
            }
            causes.extend(podspec_rules::validate(
                spec.at("/jobTemplate/spec/template/spec"),
                "spec.jobTemplate.spec.template.spec",
                &["OnFailure", "Never"],
            ));
        }
        Workload::PodTemplate => {
            pod_template(obj.get("template"), "template", Some("Always"), &mut causes);
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

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
        let causes = validate(&d, Workload::Deployment);
        assert_eq!(
            fields(&causes),
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
    fn an_unconvertible_selector_leaves_the_template_unchecked() {
        let d = json!({"spec": {
            "selector": {"matchLabels": {"app": "Bad Value"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {}},
        }});
        assert_eq!(
            fields(&validate(&d, Workload::ReplicaSet)),
            vec![
                ("spec.selector.matchLabels", "FieldValueInvalid"),
                ("spec.selector", "FieldValueInvalid"),
            ]
        );
        // A DaemonSet checks the template anyway (and says nothing more of the selector).
        assert_eq!(
            fields(&validate(&d, Workload::DaemonSet)),
            vec![
                ("spec.selector.matchLabels", "FieldValueInvalid"),
                ("spec.template.spec.containers", "FieldValueRequired"),
            ]
        );
    }

    #[test]
    fn rolling_updates_take_counts_or_percents() {
        let d = json!({"spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "x%", "maxSurge": -1}},
        }});
        assert_eq!(
            fields(&validate(&d, Workload::Deployment)),
            vec![
                (
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "FieldValueInvalid"
                ),
                ("spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid"),
            ]
        );
        let mut bad = d.clone();
        bad["spec"]["strategy"] =
            json!({"type": "Sideways", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}});
        let causes = validate(&bad, Workload::Deployment);
        assert_eq!(
            causes[0].message,
            "Unsupported value: {\"Type\":\"Sideways\",\"RollingUpdate\":{\"MaxUnavailable\":\"25%\",\"MaxSurge\":1}}: supported values: \"Recreate\", \"RollingUpdate\""
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
