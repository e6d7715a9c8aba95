//! Jobs and CronJobs: the selector and labels a Job gets from its uid unless it asks for a
//! manual selector (upstream's job strategy `generateSelector`), and `SetDefaults_Job` /
//! `SetDefaults_CronJob` of `pkg/apis/batch/v1` with the shared pod template defaults.

use serde_json::{Map, Value, json};

use super::Strategy;
use super::podspec::{child, default_template, existing, items, or_set, or_zero};

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";

#[derive(Debug)]
pub struct Jobs;

impl Strategy for Jobs {
    /// batch/v1 orphans a Job's pods unless the client asks otherwise (kept for old clients).
    fn default_gc_policy(&self) -> super::GcPolicy {
        super::GcPolicy::OrphanDependents
    }

    fn default_orphan_warning(&self) -> Option<&'static str> {
        Some(
            "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning",
        )
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::Job)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    /// Unless `manualSelector` is true: the template is labelled with the job's uid and name,
    /// and the selector, when absent, selects the uid.
    fn prepare_for_create(&self, obj: &mut Value) {
        if obj.pointer("/spec/manualSelector") == Some(&json!(true)) {
            return;
        }
        let uid = obj.pointer("/metadata/uid").and_then(Value::as_str);
        let name = obj.pointer("/metadata/name").and_then(Value::as_str);
        let (Some(uid), Some(name)) = (uid.map(str::to_string), name.map(str::to_string)) else {
            return;
        };
        let Some(spec) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        if let Some(labels) = child(spec, "template")
            .and_then(|t| child(t, "metadata"))
            .and_then(|m| child(m, "labels"))
        {
            for (k, v) in [
                (LEGACY_CONTROLLER_UID, &uid),
                (CONTROLLER_UID, &uid),
                (LEGACY_JOB_NAME, &name),
                (JOB_NAME, &name),
            ] {
                labels.entry(k).or_insert_with(|| json!(v));
            }
        }
        or_set(
            spec,
            "selector",
            json!({"matchLabels": {CONTROLLER_UID: uid}}),
        );
    }

    fn default(&self, obj: &mut Value) {
        let template_labels = obj
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .filter(|l| !l.is_empty())
            .cloned();
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(labels) = template_labels
            && let Some(meta) = child(o, "metadata")
        {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            if empty {
                meta.insert("labels".into(), Value::Object(labels));
            }
        }
        let Some(s) = child(o, "spec") else { return };
        default_job_spec(s);
        or_set(s, "manualSelector", json!(false));
    }
}

/// `SetDefaults_Job`'s spec part.
fn default_job_spec(s: &mut Map<String, Value>) {
    let unset = |s: &Map<String, Value>, k: &str| matches!(s.get(k), None | Some(Value::Null));
    if unset(s, "completions") && unset(s, "parallelism") {
        s.insert("completions".into(), json!(1));
        s.insert("parallelism".into(), json!(1));
    }
    or_set(s, "parallelism", json!(1));
    let per_index = !unset(s, "backoffLimitPerIndex");
    or_set(
        s,
        "backoffLimit",
        json!(if per_index { i64::from(i32::MAX) } else { 6 }),
    );
    or_set(s, "completionMode", json!("NonIndexed"));
    or_set(s, "suspend", json!(false));
    let has_failure_policy = !unset(s, "podFailurePolicy");
    if let Some(pfp) = existing(s, "podFailurePolicy") {
        for rule in items(pfp, "rules") {
            for cond in items(rule, "onPodConditions") {
                or_set(cond, "status", json!("True"));
            }
        }
    }
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    or_set(s, "podReplacementPolicy", json!(replacement));
    if let Some(t) = existing(s, "template") {
        default_template(t);
    }
}

#[derive(Debug)]
pub struct CronJobs;

impl Strategy for CronJobs {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::workload_rules::validate(obj, super::workload_rules::Workload::CronJob)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        or_zero(s, "concurrencyPolicy", json!("Allow"));
        or_set(s, "suspend", json!(false));
        or_set(s, "successfulJobsHistoryLimit", json!(3));
        or_set(s, "failedJobsHistoryLimit", json!(1));
        if let Some(t) = existing(s, "jobTemplate")
            .and_then(|jt| existing(jt, "spec"))
            .and_then(|js| existing(js, "template"))
        {
            default_template(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Value {
        json!({"metadata": {"name": "j", "uid": "u-1"},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                              "restartPolicy": "Never"}}}})
    }

    #[test]
    fn a_job_selects_its_own_uid_and_labels_itself_from_its_template() {
        let mut j = job();
        Jobs.prepare_for_create(&mut j);
        Jobs.default(&mut j);
        let want = json!({"controller-uid": "u-1", CONTROLLER_UID: "u-1",
                          "job-name": "j", JOB_NAME: "j"});
        assert_eq!(j["spec"]["template"]["metadata"]["labels"], want);
        assert_eq!(j["metadata"]["labels"], want);
        assert_eq!(
            j["spec"]["selector"],
            json!({"matchLabels": {CONTROLLER_UID: "u-1"}})
        );
        let s = &j["spec"];
        assert_eq!(
            (&s["completions"], &s["parallelism"]),
            (&json!(1), &json!(1))
        );
        assert_eq!(s["backoffLimit"], 6);
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["manualSelector"], false);
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
    }

    #[test]
    fn a_manual_selector_job_is_not_labelled() {
        let mut j = job();
        j["spec"]["manualSelector"] = json!(true);
        Jobs.prepare_for_create(&mut j);
        assert!(j["spec"].get("selector").is_none());
    }

    #[test]
    fn parallelism_alone_leaves_completions_unset() {
        let mut j = job();
        j["spec"]["parallelism"] = json!(3);
        Jobs.default(&mut j);
        assert!(j["spec"].get("completions").is_none());
        assert_eq!(j["spec"]["parallelism"], 3);
    }

    #[test]
    fn a_cron_job_gets_its_policies_and_history_limits() {
        let mut c = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {
            "template": {"spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}}});
        CronJobs.default(&mut c);
        let s = &c["spec"];
        assert_eq!(s["concurrencyPolicy"], "Allow");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["successfulJobsHistoryLimit"], 3);
        assert_eq!(s["failedJobsHistoryLimit"], 1);
        let pod = &s["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    }
}
