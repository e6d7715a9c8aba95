//! `pods/eviction`, what `kubectl drain` and the kubelet's node-pressure evictions post, as
//! upstream's EvictionREST answers it:
//!
//! - a pod its budget cannot protect (Pending, Succeeded, Failed, or already being deleted) is
//!   deleted at once (with the Eviction's DeleteOptions);
//! - otherwise the PodDisruptionBudget whose selector matches the pod decides: none, the pod is
//!   deleted; more than one, a Failure (upstream does not support it); one whose status the
//!   disruption controller has not caught up with, or that allows no disruption, is 429 with a
//!   `DisruptionBudget` cause; else its `disruptionsAllowed` is decremented and the pod is
//!   recorded in `disruptedPods` (a status write on the budget's revision, retried on
//!   conflict) before the pod is deleted. A pod that is not Ready does not count against a
//!   budget that has its healthy pods (or whose `unhealthyPodEvictionPolicy` is AlwaysAllow);
//!   it is deleted on the revision it was read at.
//!
//! Answers 201 with a Success Status, as upstream.

use super::delete::Options;
use super::*;
use crate::admission::Operation;
use crate::api::request::Verb;

/// Attempts against concurrent writers of the pod or the budget (upstream retries 20 times).
const EVICTION_ATTEMPTS: usize = 20;

/// More pods than this recorded in a budget's `disruptedPods` means the disruption controller
/// is not keeping up: evictions under it are refused (upstream's `MaxDisruptedPodSize`).
const MAX_DISRUPTED_PODS: usize = 2000;

const BUDGET_REFUSAL: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

impl Ctx<'_> {
    pub(super) async fn evict(&self, body: Value) -> Result<Response, Status> {
        let kind_ok = body["kind"].as_str().is_none_or(|k| k == "Eviction");
        let version_ok = body["apiVersion"]
            .as_str()
            .is_none_or(|v| v == "policy/v1" || v == "policy/v1beta1");
        if !kind_ok || !version_ok {
            return Err(Status::bad_request(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; expected policy/v1 Eviction, got {}/{}",
                body["apiVersion"].as_str().unwrap_or(""),
                body["kind"].as_str().unwrap_or("")
            )));
        }
        let name = self.rr.name.clone().unwrap_or_default();
        if body["metadata"]["name"].as_str().unwrap_or("") != name {
            return Err(Status::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let raw = match body.get("deleteOptions").filter(|o| !o.is_null()) {
            Some(o) => super::write::checked_delete_options(o.clone())?,
            None => json!({}),
        };
        let query_dry_run = self.dry_run()?;
        let body_dry_run = raw.get("dryRun").and_then(Value::as_array);
        if let Some(d) = body_dry_run.filter(|d| !d.is_empty())
            && query_dry_run != d.iter().any(|v| v == "All")
            && self.query.get("dryRun").is_some()
        {
            return Err(Status::internal(format!(
                "Non-matching dry-run options in request and content: [{}] and {}",
                self.query.get("dryRun").unwrap_or(""),
                Value::Array(d.clone())
            )));
        }
        let dry_run = query_dry_run || body_dry_run.is_some_and(|d| d.iter().any(|v| v == "All"));
        let mut opts = Options::read(&raw, dry_run);
        opts.admit = false;
        let rv_given = opts.resource_version.is_some();

        let attrs = self.admission_attrs(Operation::Create, &name, None, dry_run);
        let mut admitted = body.clone();
        self.api
            .admission
            .mutate(self.api, &attrs, Some(&mut admitted))
            .await?;
        self.api
            .admission
            .validate(self.api, &attrs, Some(&admitted))
            .await?;

        let rr = self.pod_request(Verb::Delete, &name);
        let pods = self.res;
        let pod_ctx = self.for_request(pods, &rr);

        // A pod no budget protects goes at once.
        let mut attempt = 0;
        let (pod, current) = loop {
            attempt += 1;
            let current = pod_ctx.current().await?;
            let served = objects::served(pods, &current.value, current.mod_revision)?;
            let pod = objects::to_value(pods, &served)?;
            if !budget_can_be_ignored(&pod) {
                break (pod, current);
            }
            let mut o = opts.clone();
            if enforces_resource_version(&pod) && !rv_given {
                o.resource_version = Some(current.mod_revision.to_string());
            }
            match pod_ctx.delete_object(&name, current, &o).await {
                Ok(_) => return Ok(self.evicted()),
                Err(e) if e.code == 409 && !rv_given && attempt < EVICTION_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        };

        let ns = self.rr.namespace.clone().unwrap_or_default();
        let budgets = self.budgets_of(&pod, &ns)?;
        if budgets.len() > 1 {
            // Upstream answers this with a Failure in a 201.
            let s = Status::new(
                500,
                "",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            );
            let body = objects::encode_status(&s, self.enc, self.pretty);
            return Ok(self.ok(StatusCode::CREATED, body));
        }
        let mut unready_allowed = false;
        let mut budget_name = String::new();
        if let Some((budget, rev)) = budgets.into_iter().next() {
            budget_name = budget["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let status = &budget["status"];
            let int = |f: &str| status[f].as_i64().unwrap_or(0);
            let always_allow =
                budget["spec"]["unhealthyPodEvictionPolicy"].as_str() == Some("AlwaysAllow");
            if !pod_ready(&pod)
                && (always_allow
                    || (int("currentHealthy") >= int("desiredHealthy")
                        && int("desiredHealthy") > 0))
            {
                unready_allowed = true;
            } else {
                self.take_disruption(budget, rev, &name, dry_run).await?;
            }
        }
        let mut o = opts.clone();
        if unready_allowed {
            // Not if the pod became Ready since it was read.
            o.resource_version = Some(current.mod_revision.to_string());
        }
        match pod_ctx.delete_object(&name, current, &o).await {
            Ok(_) => Ok(self.evicted()),
            Err(e) if e.code == 409 && unready_allowed && !rv_given => Err(budget_refusal(
                &format!(
                    "The disruption budget {budget_name} is still being processed by the server."
                ),
                10,
            )),
            Err(e) => Err(e),
        }
    }

    fn evicted(&self) -> Response {
        let status = Status::new(201, "", "");
        self.ok(
            StatusCode::CREATED,
            objects::encode_status(&status, self.enc, self.pretty),
        )
    }

    /// The PodDisruptionBudgets of `ns` whose selector matches the pod, with their revisions.
    fn budgets_of(&self, pod: &Value, ns: &str) -> Result<Vec<(Value, i64)>, Status> {
        let labels = crate::authz::aggregate::label_pairs(&pod["metadata"]["labels"]);
        let budgets = crate::admission::cached_entries(
            self.api,
            "policy",
            "v1",
            "poddisruptionbudgets",
            Some(ns),
        )?;
        Ok(budgets
            .into_iter()
            .filter(|(b, _)| selects(&b["spec"]["selector"], &labels))
            .collect())
    }

    /// Takes one disruption from the budget (upstream's `checkAndDecrement`), retried on a
    /// newer budget when another eviction wrote it first.
    async fn take_disruption(
        &self,
        mut budget: Value,
        mut rev: i64,
        pod_name: &str,
        dry_run: bool,
    ) -> Result<(), Status> {
        let Some(res) = self
            .api
            .registry
            .get("policy", "v1", "poddisruptionbudgets")
        else {
            return Ok(());
        };
        let name = budget["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let ns = budget["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let key = format!("{}{}{ns}/{name}", self.api.prefix, res.key_prefix);
        for _ in 0..EVICTION_ATTEMPTS {
            let status = &budget["status"];
            let int = |f: &str| status[f].as_i64().unwrap_or(0);
            let generation = budget["metadata"]["generation"].as_i64().unwrap_or(0);
            if int("observedGeneration") < generation {
                return Err(budget_refusal(
                    &format!(
                        "The disruption budget {name} is still being processed by the server."
                    ),
                    10,
                ));
            }
            let allowed = int("disruptionsAllowed");
            if allowed < 0 {
                return Err(budget_forbidden(
                    &name,
                    "pdb disruptions allowed is negative",
                ));
            }
            if status["disruptedPods"]
                .as_object()
                .is_some_and(|m| m.len() > MAX_DISRUPTED_PODS)
            {
                return Err(budget_forbidden(
                    &name,
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                ));
            }
            if allowed == 0 {
                return Err(budget_refusal(
                    &format!(
                        "The disruption budget {name} needs {} healthy pods and has {} currently",
                        int("desiredHealthy"),
                        int("currentHealthy")
                    ),
                    0,
                ));
            }
            if dry_run {
                return Ok(());
            }
            let mut next = budget.clone();
            record_disruption(&mut next, pod_name);
            let (value, _) = objects::encode_for_storage(res, &next, FieldValidation::Ignore)?;
            match self.api.store.update(key.as_bytes(), value, rev).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict {
                    current: Some(newer),
                }) => {
                    let served = objects::served(res, &newer.value, newer.mod_revision)?;
                    budget = objects::to_value(res, &served)?;
                    rev = newer.mod_revision;
                }
                Err(e) => return Err(store_error(res, &name, e)),
            }
        }
        Err(Status::timeout(format!(
            "couldn't update PodDisruptionBudget {name:?} due to conflicts"
        )))
    }
}

/// The budget after one eviction: one disruption fewer (the `DisruptionAllowed` condition
/// false when none is left), the pod recorded as disrupted now.
fn record_disruption(budget: &mut Value, pod_name: &str) {
    let now = now_rfc3339();
    let Some(status) = budget
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let allowed = status
        .get("disruptionsAllowed")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        - 1;
    status.insert("disruptionsAllowed".into(), json!(allowed));
    if allowed == 0 {
        let observed = status
            .get("observedGeneration")
            .cloned()
            .unwrap_or(json!(0));
        let conditions = status.entry("conditions").or_insert_with(|| json!([]));
        if let Some(list) = conditions.as_array_mut() {
            let new = json!({"type": "DisruptionAllowed", "status": "False",
                "reason": "InsufficientPods", "message": "", "observedGeneration": observed,
                "lastTransitionTime": now});
            match list.iter_mut().find(|c| c["type"] == "DisruptionAllowed") {
                Some(c) => {
                    if c["status"] != "False" {
                        *c = new;
                    } else {
                        c["reason"] = json!("InsufficientPods");
                        c["observedGeneration"] = new["observedGeneration"].clone();
                    }
                }
                None => list.push(new),
            }
        }
    }
    let disrupted = status.entry("disruptedPods").or_insert_with(|| json!({}));
    if !disrupted.is_object() {
        *disrupted = json!({});
    }
    disrupted[pod_name] = json!(now);
}

/// Upstream's 429 for an eviction its budget refuses, with the `DisruptionBudget` cause.
fn budget_refusal(why: &str, retry_after: i32) -> Status {
    let mut s = Status::new(429, "TooManyRequests", BUDGET_REFUSAL);
    s.causes.push(Cause {
        reason: "DisruptionBudget".into(),
        message: why.into(),
        field: String::new(),
    });
    if retry_after > 0 {
        s.retry_after_seconds = Some(retry_after);
    }
    s
}

fn budget_forbidden(name: &str, why: &str) -> Status {
    let gr = GroupResource {
        group: "policy",
        resource: "poddisruptionbudget",
    };
    Status::forbidden(gr, name, why)
}

/// A budget cannot protect a pod that is not running (Pending, Succeeded, Failed) or is
/// already being deleted.
fn budget_can_be_ignored(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed" | "Pending")
    ) || pod["metadata"]["deletionTimestamp"].is_string()
}

/// Whether deleting the pod must be on the revision it was read at (a running pod that could
/// become Ready in between).
fn enforces_resource_version(pod: &Value) -> bool {
    !matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) && !pod["metadata"]["deletionTimestamp"].is_string()
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Whether a budget's LabelSelector selects `labels`; a selector with no requirement
/// selects nothing (upstream: "it should match nothing, not everything").
fn selects(selector: &Value, labels: &[(String, String)]) -> bool {
    crate::authz::aggregate::requirements(selector) > 0
        && crate::authz::aggregate::selector_matches(selector, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_selects_only_with_requirements() {
        let labels = vec![("app".to_string(), "web".to_string())];
        assert!(selects(&json!({"matchLabels": {"app": "web"}}), &labels));
        assert!(!selects(&json!({"matchLabels": {"app": "db"}}), &labels));
        assert!(!selects(&json!({"matchLabels": {}}), &labels));
        assert!(!selects(&json!({}), &labels));
        assert!(selects(
            &json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
            &labels
        ));
    }

    #[test]
    fn an_eviction_takes_a_disruption_and_records_the_pod() {
        let mut b = json!({"status": {"disruptionsAllowed": 2, "observedGeneration": 1}});
        record_disruption(&mut b, "p1");
        assert_eq!(b["status"]["disruptionsAllowed"], 1);
        assert!(b["status"]["disruptedPods"]["p1"].is_string());
        assert!(b["status"].get("conditions").is_none());
        record_disruption(&mut b, "p2");
        assert_eq!(b["status"]["disruptionsAllowed"], 0);
        let c = &b["status"]["conditions"][0];
        assert_eq!(c["type"], "DisruptionAllowed");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "InsufficientPods");
    }

    #[test]
    fn pods_not_running_or_deleting_are_not_protected() {
        assert!(budget_can_be_ignored(
            &json!({"status": {"phase": "Pending"}})
        ));
        assert!(budget_can_be_ignored(
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                    "status": {"phase": "Running"}})
        ));
        assert!(!budget_can_be_ignored(
            &json!({"status": {"phase": "Running"}})
        ));
        assert!(enforces_resource_version(
            &json!({"status": {"phase": "Pending"}})
        ));
        assert!(!enforces_resource_version(
            &json!({"status": {"phase": "Failed"}})
        ));
    }
}
