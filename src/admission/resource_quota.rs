//! ResourceQuota, as upstream's plugin and its evaluators: a create (or an update that changes
//! usage) in a namespace with ResourceQuotas is measured against every quota whose scopes
//! select it, and refused (403) when it would take `status.used` past `status.hard`; otherwise
//! the quotas' `status.used` grows by the object's usage before the object is stored (upstream
//! counts at admission too; the resourcequota controller later recomputes usage from what is
//! stored, which also gives back what deletes and failed writes held).
//!
//! Evaluators, as upstream's:
//! - pods: `pods` (not Succeeded or Failed, not past their deletion grace), `count/pods`,
//!   `cpu`/`requests.cpu`, `memory`/`requests.memory`, `ephemeral-storage`/`requests.…`,
//!   `limits.*`, hugepages and extended resources (`requests.<name>`), from the pod's effective
//!   requests and limits (overhead included); a quota on cpu or memory requires every container
//!   to state it; scopes Terminating, NotTerminating, BestEffort, NotBestEffort, PriorityClass,
//!   CrossNamespacePodAffinity (`scopes` and `scopeSelector`);
//! - services: `services`, `services.loadbalancers`, `services.nodeports`;
//! - persistentvolumeclaims: `persistentvolumeclaims`, `requests.storage`, and both per storage
//!   class (`<class>.storageclass.storage.k8s.io/…`);
//! - every other namespaced resource: `count/<resource>[.<group>]` on create (and the legacy
//!   `configmaps`, `secrets`, `replicationcontrollers`, `resourcequotas`).
//!
//! A quota the controller has not processed yet (no `status.hard`) constrains nothing, and one
//! whose `status.used` lacks a constrained resource refuses ("status unknown"), as upstream's.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::quantities::{Qty, add, list, milli_text, pod_total, qty};
use super::{Attributes, Operation, Validating, forbidden};
use crate::api::server::Api;
use crate::api::status::Status;
use crate::storage::StoreError;

pub struct ResourceQuota;

/// Attempts at writing a quota's new usage against other writers of it.
const ATTEMPTS: usize = 16;

/// Usage in milli-units by resource name.
type Usage = BTreeMap<String, i128>;

/// Which evaluator measures the resource.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Evaluator {
    Pods,
    Services,
    Claims,
    /// Object count only (creates).
    Count,
}

fn evaluator(attrs: &Attributes<'_>) -> Option<Evaluator> {
    let res = attrs.resource;
    if !res.namespaced || attrs.subresource.is_some() {
        return None;
    }
    let e = match (res.group.as_str(), res.resource.as_str()) {
        ("", "pods") => Evaluator::Pods,
        ("", "services") => Evaluator::Services,
        ("", "persistentvolumeclaims") => Evaluator::Claims,
        _ => Evaluator::Count,
    };
    match (e, attrs.operation) {
        (_, Operation::Create) => Some(e),
        (Evaluator::Count, _) | (_, Operation::Delete) => None,
        (_, Operation::Update) => Some(e),
    }
}

/// `count/<resource>` (core) or `count/<resource>.<group>`.
fn count_name(attrs: &Attributes<'_>) -> String {
    let res = attrs.resource;
    if res.group.is_empty() {
        format!("count/{}", res.resource)
    } else {
        format!("count/{}.{}", res.resource, res.group)
    }
}

/// The resource names an evaluator tracks, of the quota's `hard` ones.
fn tracks(e: Evaluator, attrs: &Attributes<'_>, name: &str) -> bool {
    let count = count_name(attrs);
    match e {
        Evaluator::Pods => {
            name == "pods"
                || name == count
                || matches!(
                    name,
                    "cpu"
                        | "memory"
                        | "ephemeral-storage"
                        | "limits.cpu"
                        | "limits.memory"
                        | "limits.ephemeral-storage"
                )
                || name.starts_with("requests.")
                || name.starts_with("hugepages-")
        }
        Evaluator::Services => {
            matches!(
                name,
                "services" | "services.loadbalancers" | "services.nodeports"
            ) || name == count
        }
        Evaluator::Claims => {
            matches!(name, "persistentvolumeclaims" | "requests.storage")
                || name == count
                || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
                || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        }
        Evaluator::Count => name == count || legacy_count(attrs) == Some(name),
    }
}

/// The pre-`count/` names of object counts.
fn legacy_count(attrs: &Attributes<'_>) -> Option<&'static str> {
    if !attrs.resource.group.is_empty() {
        return None;
    }
    match attrs.resource.resource.as_str() {
        "configmaps" => Some("configmaps"),
        "secrets" => Some("secrets"),
        "replicationcontrollers" => Some("replicationcontrollers"),
        "resourcequotas" => Some("resourcequotas"),
        _ => None,
    }
}

fn put(u: &mut Usage, name: &str, milli: i128) {
    *u.entry(name.to_string()).or_insert(0) += milli;
}

fn milli_of(v: &Value) -> i128 {
    qty(v).map_or(0, |q| q.milli)
}

/// What `obj` uses, by its evaluator.
fn usage(e: Evaluator, attrs: &Attributes<'_>, obj: &Value) -> Usage {
    let mut u = Usage::new();
    put(&mut u, &count_name(attrs), 1000);
    match e {
        Evaluator::Pods => pod_usage(obj, &mut u),
        Evaluator::Services => {
            put(&mut u, "services", 1000);
            let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            let ports = obj["spec"]["ports"].as_array().map_or(0, Vec::len) as i128;
            match ty {
                "LoadBalancer" => {
                    put(&mut u, "services.loadbalancers", 1000);
                    if obj["spec"]["allocateLoadBalancerNodePorts"] != false {
                        put(&mut u, "services.nodeports", ports * 1000);
                    }
                }
                "NodePort" => put(&mut u, "services.nodeports", ports * 1000),
                _ => {}
            }
        }
        Evaluator::Claims => {
            put(&mut u, "persistentvolumeclaims", 1000);
            let storage = milli_of(&obj["spec"]["resources"]["requests"]["storage"]);
            put(&mut u, "requests.storage", storage);
            if let Some(class) = obj["spec"]["storageClassName"]
                .as_str()
                .filter(|c| !c.is_empty())
            {
                let prefix = format!("{class}.storageclass.storage.k8s.io/");
                put(&mut u, &format!("{prefix}persistentvolumeclaims"), 1000);
                put(&mut u, &format!("{prefix}requests.storage"), storage);
            }
        }
        Evaluator::Count => {
            if let Some(legacy) = legacy_count(attrs) {
                put(&mut u, legacy, 1000);
            }
        }
    }
    u
}

/// Whether a pod counts against compute quota: not finished, not past its deletion grace.
fn pod_counts(pod: &Value) -> bool {
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    let deadline = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| kapi_codec::goscalar::parse_rfc3339(t).ok())
        .map(|(s, _)| s);
    match (
        deadline,
        pod["metadata"]["deletionGracePeriodSeconds"].as_i64(),
    ) {
        (Some(ts), Some(grace)) => crate::api::rest::unix_now() <= ts + grace,
        _ => true,
    }
}

/// The pod's requests and limits with its overhead (upstream's PodRequests/PodLimits).
fn pod_resources(spec: &Value, which: &str) -> Vec<(String, Qty)> {
    let mut total = pod_total(spec, which);
    let overhead = list(&spec["overhead"]);
    if which == "requests" {
        add(&mut total, &overhead);
    } else {
        let present: Vec<(String, Qty)> = overhead
            .into_iter()
            .filter(|(k, _)| total.iter().any(|(t, _)| t == k))
            .collect();
        add(&mut total, &present);
    }
    total
}

fn extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

fn pod_usage(pod: &Value, u: &mut Usage) {
    if !pod_counts(pod) {
        return;
    }
    put(u, "pods", 1000);
    let spec = &pod["spec"];
    let requests = pod_resources(spec, "requests");
    let limits = pod_resources(spec, "limits");
    for (k, q) in &requests {
        match k.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                put(u, k, q.milli);
                put(u, &format!("requests.{k}"), q.milli);
            }
            k if k.starts_with("hugepages-") => {
                put(u, k, q.milli);
                put(u, &format!("requests.{k}"), q.milli);
            }
            k if extended(k) => put(u, &format!("requests.{k}"), q.milli),
            _ => {}
        }
    }
    for (k, q) in &limits {
        if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
            put(u, &format!("limits.{k}"), q.milli);
        }
    }
}

/// Upstream's constraint: a quota on cpu or memory needs every container to state it.
fn pod_constraints(pod: &Value, required: &[String]) -> Option<String> {
    const VALIDATED: &[&str] = &[
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ];
    let required: Vec<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| VALIDATED.contains(r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for key in ["containers", "initContainers"] {
        for c in pod["spec"][key].as_array().into_iter().flatten() {
            let has = |field: &str, res: &str| c["resources"][field].get(res).is_some();
            for r in &required {
                let stated = match *r {
                    "cpu" | "requests.cpu" => has("requests", "cpu"),
                    "memory" | "requests.memory" => has("requests", "memory"),
                    "limits.cpu" => has("limits", "cpu"),
                    _ => has("limits", "memory"),
                };
                if !stated {
                    missing
                        .entry(r)
                        .or_default()
                        .push(c["name"].as_str().unwrap_or("").to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .into_iter()
        .map(|(r, mut names)| {
            names.sort();
            names.dedup();
            format!("{r} for: {}", names.join(","))
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

fn best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|key| {
        pod["spec"][*key].as_array().into_iter().flatten().all(|c| {
            ["requests", "limits"].iter().all(|f| {
                c["resources"][*f].get("cpu").is_none()
                    && c["resources"][*f].get("memory").is_none()
            })
        })
    })
}

fn cross_namespace_affinity(pod: &Value) -> bool {
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let a = &pod["spec"]["affinity"][*kind];
        let required = a["requiredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .into_iter()
            .flatten();
        let preferred = a["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| &w["podAffinityTerm"]);
        required.chain(preferred).any(|t| {
            t["namespaces"].as_array().is_some_and(|n| !n.is_empty())
                || !t["namespaceSelector"].is_null()
        })
    })
}

/// A pod with a deadline (`activeDeadlineSeconds`) terminates by itself.
fn terminating(pod: &Value) -> bool {
    pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|d| d >= 0)
}

/// Whether one scope requirement selects the pod.
fn scope_selects(pod: &Value, scope: &str, op: &str, values: &[&str]) -> bool {
    let class = pod["spec"]["priorityClassName"].as_str().unwrap_or("");
    let holds = match scope {
        "Terminating" => terminating(pod),
        "NotTerminating" => !terminating(pod),
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        "CrossNamespacePodAffinity" => cross_namespace_affinity(pod),
        "PriorityClass" => {
            return match op {
                "In" => values.contains(&class),
                "NotIn" => !values.contains(&class),
                "DoesNotExist" => class.is_empty(),
                _ => !class.is_empty(),
            };
        }
        _ => false,
    };
    if op == "DoesNotExist" { !holds } else { holds }
}

/// Whether the quota's scopes select the object (only pods have scopes).
fn quota_selects(quota: &Value, e: Evaluator, obj: &Value) -> bool {
    let scopes: Vec<&str> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let exprs: Vec<&Value> = quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if scopes.is_empty() && exprs.is_empty() {
        return true;
    }
    if e != Evaluator::Pods {
        return false;
    }
    scopes.iter().all(|s| scope_selects(obj, s, "Exists", &[]))
        && exprs.iter().all(|x| {
            let values: Vec<&str> = x["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            scope_selects(
                obj,
                x["scopeName"].as_str().unwrap_or(""),
                x["operator"].as_str().unwrap_or(""),
                &values,
            )
        })
}

/// `milli` written in the format of `like` (binary suffixes stay binary, as upstream's sums
/// keep their first operand's format).
fn text_like(milli: i128, like: &str) -> String {
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        .iter()
        .any(|s| like.ends_with(s));
    if binary && milli % 1000 == 0 && (milli / 1000) % 1024 == 0 {
        let raw = format!("{}Ki", milli / 1000 / 1024);
        let mut out = Vec::new();
        if kapi_codec::goscalar::canonical_quantity(&raw, &mut out).is_ok() {
            return String::from_utf8(out).unwrap_or(raw);
        }
    }
    milli_text(milli)
}

/// `k=v` pairs, sorted, comma-separated (upstream's prettyPrint).
fn pretty(pairs: &[(String, String)]) -> String {
    let mut pairs = pairs.to_vec();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Checks one quota against the change; the quota with its new usage to write, or `None` when
/// the change uses nothing it constrains.
fn check(
    attrs: &Attributes<'_>,
    e: Evaluator,
    quota: &Value,
    obj: &Value,
    delta: &Usage,
) -> Result<Option<Value>, Status> {
    let name = quota["metadata"]["name"].as_str().unwrap_or("");
    let hard = &quota["status"]["hard"];
    let used = &quota["status"]["used"];
    let constrained: Vec<String> = hard
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| tracks(e, attrs, k))
        .collect();
    if constrained.is_empty() {
        return Ok(None);
    }
    if e == Evaluator::Pods
        && let Some(why) = pod_constraints(obj, &constrained)
    {
        return Err(forbidden(attrs, &format!("failed quota: {name}: {why}")));
    }
    let mut unknown: Vec<&str> = constrained
        .iter()
        .filter(|k| used.get(k.as_str()).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(forbidden(
            attrs,
            &format!(
                "status unknown for quota: {name}, resources: {}",
                unknown.join(",")
            ),
        ));
    }
    let changed: Vec<&String> = constrained
        .iter()
        .filter(|k| delta.get(k.as_str()).is_some_and(|d| *d != 0))
        .collect();
    if changed.is_empty() {
        return Ok(None);
    }
    let mut exceeded = Vec::new();
    let mut new_used = used.clone();
    for k in changed {
        let d = delta[k.as_str()];
        let have = milli_of(&used[k.as_str()]);
        let limit = milli_of(&hard[k.as_str()]);
        let like = hard[k.as_str()].as_str().unwrap_or("");
        if d > 0 && have + d > limit {
            exceeded.push(k.clone());
        }
        new_used[k.as_str()] = json!(text_like((have + d).max(0), like));
    }
    if !exceeded.is_empty() {
        let pick = |m: &dyn Fn(&str) -> String| -> String {
            pretty(
                &exceeded
                    .iter()
                    .map(|k| (k.clone(), m(k)))
                    .collect::<Vec<_>>(),
            )
        };
        let text = |v: &Value, k: &str| {
            qty(&v[k])
                .map(|q| q.text)
                .unwrap_or_else(|| v[k].as_str().unwrap_or("").to_string())
        };
        let requested = pick(&|k| text_like(delta[k], hard[k].as_str().unwrap_or("")));
        let used_text = pick(&|k| text(used, k));
        let limited = pick(&|k| text(hard, k));
        return Err(forbidden(
            attrs,
            &format!(
                "exceeded quota: {name}, requested: {requested}, used: {used_text}, limited: {limited}"
            ),
        ));
    }
    let mut updated = quota.clone();
    updated["status"]["used"] = new_used;
    Ok(Some(updated))
}

/// The namespace's quotas with their revisions.
fn quotas(api: &Api, ns: &str) -> Result<Vec<(Value, i64)>, Status> {
    super::cached_entries(api, "", "v1", "resourcequotas", Some(ns))
}

#[async_trait(?Send)]
impl Validating for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        let (Some(e), Some(obj), Some(ns)) = (evaluator(attrs), obj, attrs.namespace) else {
            return Ok(());
        };
        if quotas(api, ns)?.is_empty() {
            return Ok(());
        }
        // The namespace has quotas: count against their latest usage, not a lagging cache's.
        api.catch_up_cache().await?;
        let found = quotas(api, ns)?;
        let mut delta = usage(e, attrs, obj);
        if let Some(old) = attrs.old {
            for (k, v) in usage(e, attrs, old) {
                put(&mut delta, &k, -v);
            }
        }
        if delta.values().all(|v| *v == 0) {
            return Ok(());
        }
        let Some(res) = api.registry.get("", "v1", "resourcequotas") else {
            return Ok(());
        };
        // Check every quota first, then record the usage in each.
        let mut writes = Vec::new();
        for (quota, rev) in found {
            if !quota_selects(&quota, e, obj) {
                continue;
            }
            if let Some(updated) = check(attrs, e, &quota, obj, &delta)? {
                writes.push((updated, rev));
            }
        }
        if attrs.dry_run {
            return Ok(());
        }
        for (mut updated, mut rev) in writes {
            let name = updated["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let key = format!("{}{}{ns}/{name}", api.prefix, res.key_prefix);
            for attempt in 0.. {
                let (value, _) = crate::api::objects::encode_for_storage(
                    res,
                    &updated,
                    kapi_codec::FieldValidation::Ignore,
                )?;
                match api.store.update(key.as_bytes(), value, rev).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict {
                        current: Some(newer),
                    }) if attempt + 1 < ATTEMPTS => {
                        // Another write counted first: check again on its usage.
                        let served =
                            crate::api::objects::served(res, &newer.value, newer.mod_revision)?;
                        let quota = crate::api::objects::to_value(res, &served)?;
                        rev = newer.mod_revision;
                        match check(attrs, e, &quota, obj, &delta)? {
                            Some(u) => updated = u,
                            None => break,
                        }
                    }
                    Err(StoreError::NotFound | StoreError::Conflict { current: None }) => break,
                    Err(_) => {
                        return Err(Status::internal(format!(
                            "resource quota evaluation timed out: {name}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_usage_counts_its_effective_requests_and_limits() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                                         "limits": {"cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"cpu": "250m", "nvidia.com/gpu": "1"}}}],
            "overhead": {"cpu": "100m"}}});
        let mut u = Usage::new();
        pod_usage(&pod, &mut u);
        assert_eq!(u["pods"], 1000);
        assert_eq!(u["requests.cpu"], 600);
        assert_eq!(u["cpu"], 600);
        assert_eq!(u["requests.memory"], 64 * 1024 * 1024 * 1000);
        assert_eq!(u["limits.cpu"], 1100);
        assert_eq!(u["requests.nvidia.com/gpu"], 1000);
        let mut done = pod.clone();
        done["status"] = json!({"phase": "Succeeded"});
        let mut u = Usage::new();
        pod_usage(&done, &mut u);
        assert!(u.is_empty());
    }

    #[test]
    fn cpu_quotas_need_every_container_to_state_cpu() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b"}]}});
        assert_eq!(
            pod_constraints(&pod, &["requests.cpu".into(), "limits.memory".into()]).unwrap(),
            "must specify limits.memory for: a,b; requests.cpu for: b"
        );
        assert!(pod_constraints(&pod, &["pods".into()]).is_none());
    }

    #[test]
    fn scopes_select_pods_as_upstream() {
        let be = json!({"spec": {"containers": [{"name": "a"}], "priorityClassName": "high"}});
        let q = |spec: Value| json!({"spec": spec});
        assert!(quota_selects(
            &q(json!({"scopes": ["BestEffort"]})),
            Evaluator::Pods,
            &be
        ));
        assert!(!quota_selects(
            &q(json!({"scopes": ["NotBestEffort"]})),
            Evaluator::Pods,
            &be
        ));
        assert!(!quota_selects(
            &q(json!({"scopes": ["Terminating"]})),
            Evaluator::Pods,
            &be
        ));
        let by_class = q(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}));
        assert!(quota_selects(&by_class, Evaluator::Pods, &be));
        assert!(!quota_selects(&by_class, Evaluator::Services, &be));
    }

    #[test]
    fn sums_keep_binary_suffixes() {
        assert_eq!(text_like(2 * 1024 * 1024 * 1024 * 1000, "1Gi"), "2Gi");
        assert_eq!(text_like(1500, "2"), "1500m");
        assert_eq!(text_like(3000, "10"), "3");
    }
}
