//! Jobs and CronJobs: the selector and labels a Job gets from its uid unless it asks for a
//! manual selector (upstream's job strategy `generateSelector`), and `SetDefaults_Job` /
//! `SetDefaults_CronJob` of `pkg/apis/batch/v1` with the shared pod template defaults.

use crate::jsonptr::At;
use serde_json::{Map, Value, json};

use super::Strategy;
use super::podspec::{child, default_template, existing, items, or_set, or_zero};

/// The longest CronJob name: a Job it makes is named `<name>-<timestamp>` (11 more
/// characters) and must stay a 63-character DNS label.
const MAX_CRON_JOB_NAME: usize = 52;

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

    /// Compared with the stored Job as today's defaults make it (as upstream decodes it).
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut old = old.clone();
        self.default(&mut old);
        super::batch_updates::job(obj, &old)
    }

    /// A status update checks the status only.
    fn validate_status_update(
        &self,
        obj: &Value,
        old: &Value,
    ) -> Option<Vec<crate::api::status::Cause>> {
        Some(super::batch_updates::job_status(obj, old))
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    /// Unless `manualSelector` is true: the template is labelled with the job's uid and name,
    /// and the selector, when absent, selects the uid.
    fn prepare_for_create(&self, obj: &mut Value) {
        if obj.at("/spec/manualSelector") == Some(&json!(true)) {
            return;
        }
        let uid = obj.at("/metadata/uid").and_then(Value::as_str);
        let name = obj.at("/metadata/name").and_then(Value::as_str);
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
            .at("/spec/template/metadata/labels")
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
    or_set(s, "completionMode", "NonIndexed");
    or_set(s, "suspend", json!(false));
    let has_failure_policy = !unset(s, "podFailurePolicy");
    if let Some(pfp) = existing(s, "podFailurePolicy") {
        for rule in items(pfp, "rules") {
            for cond in items(rule, "onPodConditions") {
                or_set(cond, "status", "True");
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
        default_job_template(t);
    }
}

/// A Job's pod template gets the pod defaults but no restart policy: upstream refuses a Job
/// that names none (`valid values: "OnFailure", "Never"`) rather than defaulting it to Always.
fn default_job_template(t: &mut Map<String, Value>) {
    let had_policy = t
        .get("spec")
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty());
    default_template(t);
    if !had_policy && let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("restartPolicy");
    }
}

#[derive(Debug)]
pub struct CronJobs;

impl Strategy for CronJobs {
    /// The spec rules, and a name short enough for the Jobs it makes (`<name>-<11 digits>`
    /// must be a DNS label); only on create, so older long-named CronJobs can still change.
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes =
            super::workload_rules::validate(obj, super::workload_rules::Workload::CronJob);
        let name = obj.at("/metadata/name").and_then(Value::as_str);
        if let Some(name) = name.filter(|n| n.len() > MAX_CRON_JOB_NAME) {
            causes.push(super::field::invalid(
                "metadata.name".into(),
                &json!(name),
                "must be no more than 52 characters",
            ));
        }
        causes
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::batch_updates::cron_job(obj, old)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        or_zero(s, "concurrencyPolicy", "Allow");
        or_set(s, "suspend", json!(false));
        or_set(s, "successfulJobsHistoryLimit", json!(3));
        or_set(s, "failedJobsHistoryLimit", json!(1));
        if let Some(t) = existing(s, "jobTemplate")
            .and_then(|jt| existing(jt, "spec"))
            .and_then(|js| existing(js, "template"))
        {
            default_job_template(t);
        }
    }
}

/// A CronJob's schedule as upstream parses it (robfig/cron's standard parser: five fields, or
/// a `@` descriptor); the error is upstream's text.
pub(super) fn schedule_errors(schedule: &str) -> Result<(), String> {
    if schedule.contains("TZ") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    if let Some(d) = schedule.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {schedule}")),
        };
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u64, u64, &[&str], u64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            cron_range(expr, min, max, names, first)?;
        }
    }
    Ok(())
}

fn cron_int(expr: &str) -> Result<u64, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!("failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": invalid syntax")
    })?;
    u64::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {expr}"))
}

fn cron_range(expr: &str, min: u64, max: u64, names: &[&str], first: u64) -> Result<(), String> {
    let int_or_name = |s: &str| match names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        Some(i) => Ok(i as u64 + first),
        None => cron_int(s),
    };
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        (min, max)
    } else {
        let start = int_or_name(low_high[0])?;
        match low_high.len() {
            1 => (start, start),
            2 => (start, int_or_name(low_high[1])?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = cron_int(range_and_step[1])?;
            if low_high.len() == 1 {
                end = max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
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
    fn a_stored_job_is_compared_as_todays_defaults_make_it() {
        let mut stored = job();
        Jobs.prepare_for_create(&mut stored);
        let mut new = stored.clone();
        Jobs.default(&mut new);
        assert_ne!(new["spec"]["template"], stored["spec"]["template"]);
        assert!(Jobs.validate_update(&new, &stored).is_empty());
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
        let fields: Vec<String> = Jobs
            .validate_update(&new, &stored)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["spec.template"]);
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
    fn a_cron_job_name_fits_its_jobs_names_on_create_only() {
        let cj = json!({"metadata": {"name": "n".repeat(53)}, "spec": {"schedule": "@daily",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        let causes = CronJobs.validate_create(&cj);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.name");
        assert!(
            causes[0]
                .message
                .ends_with(": must be no more than 52 characters")
        );
        assert!(CronJobs.validate_update(&cj, &cj).is_empty());
    }

    #[test]
    fn schedules_parse_as_robfig_cron() {
        assert_eq!(schedule_errors("*/5 1-3 * jan-mar mon,fri"), Ok(()));
        assert_eq!(schedule_errors("@hourly"), Ok(()));
        assert_eq!(
            schedule_errors("Invalid_Value!"),
            Err("expected exactly 5 fields, found 1: [Invalid_Value!]".into())
        );
        assert_eq!(
            schedule_errors("61 * * * *"),
            Err("end of range (61) above maximum (59): 61".into())
        );
        assert_eq!(
            schedule_errors("x * * * *"),
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax".into())
        );
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
