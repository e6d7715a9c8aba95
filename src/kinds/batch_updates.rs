//! What may change in a Job or CronJob once it exists (upstream's `ValidateJobUpdate`,
//! `ValidateJobStatusUpdate` and `ValidateCronJobUpdate`): a Job's selector, pod template,
//! completion mode, failure and success policies, per-index backoff limit and manager are
//! fixed — except that a suspended Job that never started may move its pods (node affinity,
//! node selector, tolerations, scheduling gates, template labels and annotations), and an
//! Indexed Job may change its completions together with its parallelism.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::field::{invalid, non_negative};

use super::immutable::{immutable, immutable_member, immutable_selector, same};
use super::workload_rules::{Workload, validate};
use crate::api::status::Cause;

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

/// Whether the old Job lets its template's scheduling directives change: suspended, and
/// never started.
fn scheduling_mutable(old: &Value) -> bool {
    let suspended = old.at("/spec/suspend") == Some(&json!(true));
    let started = old.at("/status/startTime").is_some_and(|t| !t.is_null());
    suspended && !started
}

/// `old`'s template with what a suspended Job may change taken from `new`'s.
fn with_scheduling_of(old: &Value, new: &Value) -> Value {
    let mut t = old.clone();
    let Some(o) = t.as_object_mut() else {
        return t;
    };
    let meta = o
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(meta) = meta {
        for key in ["labels", "annotations"] {
            match new.at(&format!("/metadata/{key}")) {
                Some(v) => meta.insert(key.into(), v.clone()),
                None => meta.remove(key),
            };
        }
    }
    let Some(spec) = o.entry("spec").or_insert_with(|| json!({})).as_object_mut() else {
        return t;
    };
    for key in ["nodeSelector", "tolerations", "schedulingGates"] {
        match new.at(&format!("/spec/{key}")) {
            Some(v) => spec.insert(key.into(), v.clone()),
            None => spec.remove(key),
        };
    }
    let new_affinity = new.at("/spec/affinity").filter(|a| !a.is_null());
    let node_affinity = new_affinity.and_then(|a| a.get("nodeAffinity")).cloned();
    match (
        new_affinity,
        spec.get_mut("affinity").and_then(Value::as_object_mut),
    ) {
        // Cleared: allowed when node affinity was all the old template had.
        (None, Some(a)) => {
            a.remove("nodeAffinity");
            if a.values().all(Value::is_null) {
                spec.remove("affinity");
            }
        }
        (Some(_), None) => {
            let mut a = serde_json::Map::new();
            if let Some(n) = node_affinity {
                a.insert("nodeAffinity".into(), n);
            }
            spec.insert("affinity".into(), Value::Object(a));
        }
        (Some(_), Some(a)) => {
            match node_affinity {
                Some(n) => a.insert("nodeAffinity".into(), n),
                None => a.remove("nodeAffinity"),
            };
        }
        (None, None) => {}
    }
    t
}

/// `spec.completions`: fixed, but an Indexed Job may change it in step with its parallelism
/// (elastic Indexed Jobs).
fn completions(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let indexed = new.get("completionMode").and_then(Value::as_str) == Some("Indexed");
    let (n, o) = (new.get("completions"), old.get("completions"));
    if !indexed {
        immutable(n, o, "spec.completions", causes);
        return;
    }
    let Some(n) = n.filter(|n| !n.is_null()) else {
        return;
    };
    if !same(Some(n), o) && Some(n) != new.get("parallelism") {
        causes.push(invalid(
            "spec.completions".into(),
            n,
            "can only be modified in tandem with spec.parallelism",
        ));
    }
}

/// A Job update: the create rules, then what may not change, in upstream's order.
pub fn job(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = validate(new, Workload::Job);
    let (ns, os) = (spec_of(new), spec_of(old));
    completions(ns, os, &mut causes);
    immutable_selector(new, old, &mut causes);
    let new_template = ns.get("template");
    let old_template = match (scheduling_mutable(old), os.get("template"), new_template) {
        (true, Some(o), Some(n)) => Some(with_scheduling_of(o, n)),
        (_, o, _) => o.cloned(),
    };
    immutable(
        new_template,
        old_template.as_ref(),
        "spec.template",
        &mut causes,
    );
    for key in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable_member(ns, os, "spec", key, &mut causes);
    }
    causes
}

/// Whether a Job status has the condition `ty` with status True.
fn condition_true(status: &Value, ty: &str) -> bool {
    let conditions = status.get("conditions").and_then(Value::as_array);
    conditions.into_iter().flatten().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(ty)
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// A Job status update (`ValidateJobStatusUpdate`, with the transition checks upstream runs
/// since the Job's `managedBy` let other controllers write it): counters not negative and
/// not going back, no more ready pods than active ones, a finished Job with a start time and
/// no active pods, a completion time exactly when Complete, and set once; terminal conditions
/// stay. Each transition is checked when what it is about changed, as upstream.
pub fn job_status(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let null = Value::Null;
    let (status, old_status) = (
        new.get("status").unwrap_or(&null),
        old.get("status").unwrap_or(&null),
    );
    for key in ["active", "succeeded", "failed", "ready", "terminating"] {
        non_negative(status.get(key), format!("status.{key}"), &mut causes);
    }
    let present = |s: &Value, key: &str| s.get(key).filter(|v| !v.is_null()).cloned();
    let changed = |key: &str| present(status, key) != present(old_status, key);
    let count = |s: &Value, key: &str| s.get(key).and_then(Value::as_i64).unwrap_or(0);
    let complete = condition_true(status, "Complete");
    let finished = complete || condition_true(status, "Failed");
    let old_complete = condition_true(old_status, "Complete");
    let old_finished = old_complete || condition_true(old_status, "Failed");
    let (complete_changed, finished_changed) = (complete != old_complete, finished != old_finished);
    let completion = present(status, "completionTime");
    if (complete_changed || changed("completionTime")) && completion.is_some() && !complete {
        causes.push(invalid(
            "status.completionTime".into(),
            completion.as_ref().unwrap_or(&null),
            "cannot set completionTime when there is no Complete=True condition",
        ));
    }
    if (complete_changed || changed("completionTime")) && completion.is_none() && complete {
        causes.push(super::field::required_why(
            "status.completionTime".into(),
            "completionTime is required for Complete jobs",
        ));
    }
    if (finished_changed || changed("active")) && finished && count(status, "active") > 0 {
        causes.push(invalid(
            "status.active".into(),
            &json!(count(status, "active")),
            "active>0 is invalid for finished job",
        ));
    }
    if (finished_changed || changed("startTime"))
        && finished
        && present(status, "startTime").is_none()
    {
        causes.push(super::field::required_why(
            "status.startTime".into(),
            "startTime is required for finished job",
        ));
    }
    if let Some(ready) = status.get("ready").and_then(Value::as_i64)
        && (changed("ready") || changed("active"))
        && ready > count(status, "active")
    {
        causes.push(invalid(
            "status.ready".into(),
            &json!(ready),
            "cannot set more ready pods than active",
        ));
    }
    for ty in ["Failed", "Complete", "FailureTarget"] {
        if condition_true(old_status, ty) && !condition_true(status, ty) {
            causes.push(super::field::invalid_omitted(
                "status.conditions".into(),
                &format!("cannot disable the terminal {ty}=True condition"),
            ));
        }
    }
    if count(status, "failed") < count(old_status, "failed") {
        causes.push(invalid(
            "status.failed".into(),
            &json!(count(status, "failed")),
            "cannot decrease the failed counter",
        ));
    }
    // An Indexed Job whose completions follow its parallelism may be scaled down.
    let spec = spec_of(new);
    let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
    let elastic = indexed && spec.get("completions") == spec.get("parallelism");
    if !elastic && count(status, "succeeded") < count(old_status, "succeeded") {
        causes.push(invalid(
            "status.succeeded".into(),
            &json!(count(status, "succeeded")),
            "cannot decrease the succeeded counter",
        ));
    }
    let old_completion = present(old_status, "completionTime");
    if let (Some(n), Some(o)) = (&completion, &old_completion)
        && n != o
    {
        causes.push(invalid(
            "status.completionTime".into(),
            n,
            "completionTime cannot be mutated",
        ));
    }
    let suspended = spec.get("suspend") == Some(&json!(true));
    if present(old_status, "startTime").is_some() && changed("startTime") && !suspended {
        causes.push(super::field::required_why(
            "status.startTime".into(),
            "startTime cannot be removed for unsuspended job",
        ));
    }
    causes
}

/// A CronJob update: the create rules; a schedule that already named a time zone (`TZ=`,
/// refused on create since the `timeZone` field) keeps being accepted.
pub fn cron_job(new: &Value, old: &Value) -> Vec<Cause> {
    let causes = validate(new, Workload::CronJob);
    let had_tz = old
        .at("/spec/schedule")
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains("TZ"));
    if !had_tz {
        return causes;
    }
    causes
        .into_iter()
        .filter(|c| !(c.field == "spec.schedule" && c.message.contains("cannot use TZ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

    fn job_of(suspend: bool) -> Value {
        json!({"metadata": {"name": "j"}, "spec": {
            "suspend": suspend, "parallelism": 2, "completions": 2,
            "completionMode": "NonIndexed", "backoffLimit": 6,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
            "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u"}},
                         "spec": {"restartPolicy": "Never",
                                  "containers": [{"name": "c", "image": "busybox"}]}},
        }})
    }

    #[test]
    fn a_running_job_keeps_its_template_completions_and_selector() {
        let old = job_of(false);
        let mut new = old.clone();
        new["spec"]["parallelism"] = json!(5);
        new["spec"]["backoffLimit"] = json!(1);
        assert_eq!(fields(&job(&new, &old)), vec![]);
        new["spec"]["completions"] = json!(3);
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        new["spec"]["selector"] = json!({"matchLabels": {"x": "y"}});
        new["spec"]["managedBy"] = json!("example.com/controller");
        assert_eq!(
            fields(&job(&new, &old)),
            vec![
                ("spec.completions", "FieldValueInvalid"),
                ("spec.selector", "FieldValueInvalid"),
                ("spec.template", "FieldValueInvalid"),
                ("spec.managedBy", "FieldValueInvalid"),
            ]
        );
        let causes = job(&new, &old);
        assert_eq!(causes[0].message, "Invalid value: 3: field is immutable");
        assert_eq!(
            causes[3].message,
            "Invalid value: \"example.com/controller\": field is immutable"
        );
    }

    #[test]
    fn a_suspended_job_that_never_started_may_move_its_pods() {
        let old = job_of(true);
        let mut new = old.clone();
        let t = &mut new["spec"]["template"];
        t["spec"]["nodeSelector"] = json!({"zone": "a"});
        t["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
        t["spec"]["schedulingGates"] = json!([{"name": "wait"}]);
        t["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "z", "operator": "Exists"}]}]}}});
        t["metadata"]["annotations"] = json!({"a": "b"});
        assert_eq!(fields(&job(&new, &old)), vec![]);
        // Not the containers, though.
        let mut image = new.clone();
        image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
        assert_eq!(
            fields(&job(&image, &old)),
            vec![("spec.template", "FieldValueInvalid")]
        );
        // And not once it has started.
        let mut started = old.clone();
        started["status"] = json!({"startTime": "2026-01-01T00:00:00Z"});
        assert_eq!(
            fields(&job(&new, &started)),
            vec![("spec.template", "FieldValueInvalid")]
        );
    }

    #[test]
    fn an_indexed_job_scales_completions_with_parallelism() {
        let mut old = job_of(false);
        old["spec"]["completionMode"] = json!("Indexed");
        let mut new = old.clone();
        new["spec"]["completions"] = json!(4);
        new["spec"]["parallelism"] = json!(4);
        assert_eq!(fields(&job(&new, &old)), vec![]);
        new["spec"]["parallelism"] = json!(3);
        let causes = job(&new, &old);
        assert_eq!(
            fields(&causes),
            vec![("spec.completions", "FieldValueInvalid")]
        );
        assert_eq!(
            causes[0].message,
            "Invalid value: 4: can only be modified in tandem with spec.parallelism"
        );
        let mut mode = old.clone();
        mode["spec"]["completionMode"] = json!("NonIndexed");
        assert_eq!(
            fields(&job(&mode, &old)),
            vec![("spec.completionMode", "FieldValueInvalid")]
        );
    }

    #[test]
    fn job_status_counters_and_transitions() {
        let done = |time: &str| {
            json!({"status": {"startTime": "2026-01-01T00:00:00Z", "completionTime": time,
                "succeeded": 2,
                "conditions": [{"type": "Complete", "status": "True"}]}})
        };
        let old = done("2026-01-01T00:01:00Z");
        assert_eq!(fields(&job_status(&old, &json!({}))), vec![]);
        let mut new = done("2026-01-01T00:02:00Z");
        new["status"]["active"] = json!(-1);
        new["status"]["succeeded"] = json!(1);
        let causes = job_status(&new, &old);
        assert_eq!(
            fields(&causes),
            vec![
                ("status.active", "FieldValueInvalid"),
                ("status.succeeded", "FieldValueInvalid"),
                ("status.completionTime", "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            causes[2].message,
            "Invalid value: \"2026-01-01T00:02:00Z\": completionTime cannot be mutated"
        );
        // Complete stays Complete, and needs its completion time; a finished Job runs nothing.
        let undone = json!({"status": {"startTime": "2026-01-01T00:00:00Z", "succeeded": 2,
            "active": 1, "ready": 2}});
        let causes = job_status(&undone, &old);
        assert_eq!(
            fields(&causes),
            vec![
                ("status.ready", "FieldValueInvalid"),
                ("status.conditions", "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            causes[1].message,
            "Invalid value: cannot disable the terminal Complete=True condition"
        );
        let mut early = done("2026-01-01T00:01:00Z");
        early["status"]["completionTime"] = Value::Null;
        early["status"]["active"] = json!(1);
        assert_eq!(
            fields(&job_status(&early, &json!({"status": {"active": 1}}))),
            vec![
                ("status.completionTime", "FieldValueRequired"),
                ("status.active", "FieldValueInvalid"),
            ]
        );
    }

    #[test]
    fn a_cron_job_that_had_a_tz_schedule_keeps_it() {
        let cj = |schedule: &str| {
            json!({"spec": {"schedule": schedule, "concurrencyPolicy": "Allow",
                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}]}}}}}})
        };
        let old = cj("TZ=UTC 0 * * * *");
        assert_eq!(fields(&cron_job(&old, &old)), vec![]);
        let plain = cj("0 * * * *");
        assert_eq!(
            fields(&cron_job(&old, &plain)),
            vec![("spec.schedule", "FieldValueInvalid")]
        );
        assert_eq!(fields(&cron_job(&cj("bad"), &old)).len(), 1);
    }
}
