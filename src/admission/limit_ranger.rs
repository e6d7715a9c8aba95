//! LimitRanger, as upstream's plugin: the LimitRanges of a namespace give new pods' containers
//! their default requests and limits (`defaultRequest`, `default`; the pod is annotated
//! `kubernetes.io/limit-ranger` with what was set), and refuse pods (create) and
//! PersistentVolumeClaims (create, and update of a changed request) outside their `min`, `max`
//! and `maxLimitRequestRatio`, with upstream's 403 messages. LimitRanges are read from the watch
//! cache; a namespace without any costs one snapshot range.
//!
//! Quantities are compared as milli-units in 128 bits (upstream compares exact decimals; the two
//! differ only past 9.2·10^15 units, where the milli-value saturates).

use crate::jsonptr::At;
use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::quantities::{List, Qty, containers, get, list, pod_total};
use super::{Attributes, Mutating, Operation, Validating, forbidden};
use crate::api::server::Api;
use crate::api::status::Status;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

pub struct LimitRanger;

fn min_constraint(
    kind: &str,
    res: &str,
    enforced: &Qty,
    req: &[(String, Qty)],
    lim: &[(String, Qty)],
) -> Option<String> {
    let e = &enforced.text;
    let Some(r) = get(req, res) else {
        return Some(format!(
            "minimum {res} usage per {kind} is {e}.  No request is specified"
        ));
    };
    if enforced.milli > r.milli {
        return Some(format!(
            "minimum {res} usage per {kind} is {e}, but request is {}",
            r.text
        ));
    }
    match get(lim, res) {
        Some(l) if enforced.milli > l.milli => Some(format!(
            "minimum {res} usage per {kind} is {e}, but limit is {}",
            l.text
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    res: &str,
    enforced: &Qty,
    req: &[(String, Qty)],
    lim: &[(String, Qty)],
) -> Option<String> {
    let e = &enforced.text;
    let Some(l) = get(lim, res) else {
        return Some(format!(
            "maximum {res} usage per {kind} is {e}.  No limit is specified"
        ));
    };
    if l.milli > enforced.milli {
        return Some(format!(
            "maximum {res} usage per {kind} is {e}, but limit is {}",
            l.text
        ));
    }
    match get(req, res) {
        Some(r) if r.milli > enforced.milli => Some(format!(
            "maximum {res} usage per {kind} is {e}, but request is {}",
            r.text
        )),
        _ => None,
    }
}

fn max_request_constraint(
    kind: &str,
    res: &str,
    enforced: &Qty,
    req: &[(String, Qty)],
) -> Option<String> {
    let e = &enforced.text;
    match get(req, res) {
        None => Some(format!(
            "maximum {res} usage per {kind} is {e}.  No request is specified"
        )),
        Some(r) if r.milli > enforced.milli => Some(format!(
            "maximum {res} usage per {kind} is {e}, but request is {}",
            r.text
        )),
        _ => None,
    }
}

/// `limit / request` to six decimals, rounded half to even (upstream's `ratioString`).
fn ratio_text(limit: i128, request: i128) -> String {
    let (num, den) = (limit.abs() * 1_000_000, request.abs());
    let (q, r) = (num / den, num % den);
    let q = match (2 * r).cmp(&den) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 1 => q + 1,
        _ => q,
    };
    format!("{}.{:06}", q / 1_000_000, q % 1_000_000)
}

fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &Qty,
    req: &[(String, Qty)],
    lim: &[(String, Qty)],
) -> Option<String> {
    let e = &enforced.text;
    let r = match get(req, res) {
        Some(r) if r.milli != 0 => r,
        _ => {
            return Some(format!(
                "{res} max limit to request ratio per {kind} is {e}, but no request is specified or request is 0"
            ));
        }
    };
    let l = match get(lim, res) {
        Some(l) if l.milli != 0 => l,
        _ => {
            return Some(format!(
                "{res} max limit to request ratio per {kind} is {e}, but no limit is specified or limit is 0"
            ));
        }
    };
    // limit > request × ratio, all in milli-units: limit·1000 > request·ratio.
    if l.milli.abs() * 1000 > r.milli.abs() * enforced.milli {
        return Some(format!(
            "{res} max limit to request ratio per {kind} is {e}, but provided ratio is {}",
            ratio_text(l.milli, r.milli)
        ));
    }
    None
}

/// The containers of `list` in `spec`.
fn resources(c: &Value) -> (List, List) {
    (
        list(&c["resources"]["requests"]),
        list(&c["resources"]["limits"]),
    )
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`: one message as is, several (without
/// repeats) in brackets.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

/// The refusals `item` (one `spec.limits[]` entry) makes of a pod.
fn validate_pod(item: &Value, spec: &Value, errs: &mut Vec<String>) {
    let kind = item["type"].as_str().unwrap_or("");
    let (min, max, ratio) = (
        list(&item["min"]),
        list(&item["max"]),
        list(&item["maxLimitRequestRatio"]),
    );
    let mut check = |req: &[(String, Qty)], lim: &[(String, Qty)]| {
        errs.extend(
            min.iter()
                .filter_map(|(k, v)| min_constraint(kind, k, v, req, lim)),
        );
        errs.extend(
            max.iter()
                .filter_map(|(k, v)| max_constraint(kind, k, v, req, lim)),
        );
        errs.extend(
            ratio
                .iter()
                .filter_map(|(k, v)| ratio_constraint(kind, k, v, req, lim)),
        );
    };
    match kind {
        "Container" => {
            for key in ["containers", "initContainers"] {
                for c in containers(spec, key) {
                    let (req, lim) = resources(c);
                    check(&req, &lim);
                }
            }
        }
        "Pod" => check(&pod_total(spec, "requests"), &pod_total(spec, "limits")),
        _ => {}
    }
}

/// The refusals `item` makes of a claim's storage request; on update a request the stored claim
/// already holds is not checked again.
fn validate_claim(item: &Value, claim: &Value, old: Option<&Value>, errs: &mut Vec<String>) {
    let kind = item["type"].as_str().unwrap_or("");
    if kind != "PersistentVolumeClaim" {
        return;
    }
    let req = list(&claim["spec"]["resources"]["requests"]);
    let old_req = old
        .map(|o| list(&o["spec"]["resources"]["requests"]))
        .unwrap_or_default();
    let unchanged = |k: &str| matches!((get(&req, k), get(&old_req, k)), (Some(a), Some(b)) if a.milli == b.milli);
    for (k, v) in list(&item["min"]) {
        if !unchanged(&k)
            && let Some(e) = min_constraint(kind, &k, &v, &req, &[])
        {
            errs.push(e);
        }
    }
    for (k, v) in list(&item["max"]) {
        if !unchanged(&k)
            && let Some(e) = max_request_constraint(kind, &k, &v, &req)
        {
            errs.push(e);
        }
    }
}

/// Sets the containers' default requests and limits from the Container items; the annotation's
/// text, if anything was set.
fn apply_defaults(ranges: &[Value], pod: &mut Value) {
    let mut requests: Vec<(String, Value)> = Vec::new();
    let mut limits: Vec<(String, Value)> = Vec::new();
    for r in ranges {
        for item in r["spec"]["limits"].as_array().into_iter().flatten() {
            if item["type"] != "Container" {
                continue;
            }
            for (from, into) in [("defaultRequest", &mut requests), ("default", &mut limits)] {
                for (k, v) in item[from].as_object().into_iter().flatten() {
                    match into.iter_mut().find(|(n, _)| n == k) {
                        Some((_, have)) => *have = v.clone(),
                        None => into.push((k.clone(), v.clone())),
                    }
                }
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return;
    }
    let mut notes: Vec<String> = Vec::new();
    for (key, what) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(list) = pod
            .pointer_mut(&format!("/spec/{key}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in list.iter_mut().filter_map(Value::as_object_mut) {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let res = c.entry("resources").or_insert_with(|| json!({}));
            if !res.is_object() {
                *res = json!({});
            }
            let Some(res) = res.as_object_mut() else {
                continue;
            };
            let mut set = |field: &str, defaults: &[(String, Value)]| -> Vec<String> {
                let m = res.entry(field).or_insert_with(|| json!({}));
                if !m.is_object() {
                    *m = json!({});
                }
                let Some(m) = m.as_object_mut() else {
                    return Vec::new();
                };
                let mut names = Vec::new();
                for (k, v) in defaults {
                    if !m.contains_key(k) {
                        m.insert(k.clone(), v.clone());
                        names.push(k.clone());
                    }
                }
                names.sort();
                names
            };
            let set_requests = set("requests", &requests);
            let set_limits = set("limits", &limits);
            for field in ["requests", "limits"] {
                if res
                    .get(field)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    res.remove(field);
                }
            }
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {what} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    let Some(meta) = pod
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
    else {
        return;
    };
    if let Some(meta) = meta.as_object_mut() {
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if !ann.is_object() {
            *ann = json!({});
        }
        if let Some(ann) = ann.as_object_mut() {
            ann.insert(
                ANNOTATION.into(),
                json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
            );
        }
    }
}

/// Which writes the plugin looks at: pod creates, claim creates and updates, not of deleted
/// objects, no subresource.
fn applies(attrs: &Attributes<'_>) -> Option<bool> {
    let res = attrs.resource;
    if !res.group.is_empty() || attrs.subresource.is_some() {
        return None;
    }
    if attrs.old.is_some_and(|o| {
        !o.at("/metadata/deletionTimestamp")
            .unwrap_or(&Value::Null)
            .is_null()
    }) {
        return None;
    }
    match (res.resource.as_str(), attrs.operation) {
        ("pods", Operation::Create) => Some(true),
        ("persistentvolumeclaims", Operation::Create | Operation::Update) => Some(false),
        _ => None,
    }
}

fn ranges(api: &Api, attrs: &Attributes<'_>) -> Result<Vec<Value>, Status> {
    let Some(ns) = attrs.namespace else {
        return Ok(Vec::new());
    };
    super::cached_objects(api, "", "v1", "limitranges", Some(ns))
}

#[async_trait(?Send)]
impl Mutating for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let (Some(obj), Some(true)) = (obj, applies(attrs)) else {
            return Ok(());
        };
        let ranges = ranges(api, attrs)?;
        if !ranges.is_empty() {
            apply_defaults(&ranges, obj);
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl Validating for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        let (Some(obj), Some(is_pod)) = (obj, applies(attrs)) else {
            return Ok(());
        };
        for range in ranges(api, attrs)? {
            let mut errs = Vec::new();
            for item in range["spec"]["limits"].as_array().into_iter().flatten() {
                if is_pod {
                    validate_pod(item, &obj["spec"], &mut errs);
                } else {
                    validate_claim(item, obj, attrs.old, &mut errs);
                }
            }
            if let Some(msg) = aggregate(errs) {
                return Err(forbidden(attrs, &msg));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(items: Value) -> Value {
        json!({"spec": {"limits": items}})
    }

    #[test]
    fn containers_get_the_defaults_they_lack_and_the_pod_says_so() {
        let r = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m"}}]));
        let mut pod = json!({"spec": {
            "containers": [{"name": "a"}, {"name": "b", "resources": {"limits": {"cpu": "1"}}}],
            "initContainers": [{"name": "i"}]}});
        apply_defaults(&[r], &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
        );
        assert_eq!(
            pod["spec"]["containers"][1]["resources"]["limits"],
            json!({"cpu": "1", "memory": "256Mi"})
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu request for container a; cpu, memory limit for container a; \
             cpu request for container b; memory limit for container b; \
             cpu request for init container i; cpu, memory limit for init container i"
        );
    }

    #[test]
    fn min_max_and_ratio_are_refused_with_upstreams_messages() {
        let item = json!({"type": "Container", "min": {"cpu": "100m"}, "max": {"memory": "1Gi"},
                          "maxLimitRequestRatio": {"cpu": "2"}});
        let spec = json!({"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "50m"}, "limits": {"cpu": "200m", "memory": "2Gi"}}}]});
        let mut errs = Vec::new();
        validate_pod(&item, &spec, &mut errs);
        assert_eq!(
            aggregate(errs).as_deref(),
            Some(
                "[minimum cpu usage per Container is 100m, but request is 50m, \
                 maximum memory usage per Container is 1Gi, but limit is 2Gi, \
                 cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]"
            )
        );
        let mut errs = Vec::new();
        validate_pod(
            &json!({"type": "Pod", "max": {"cpu": "1"}}),
            &json!({"containers": [{"resources": {"limits": {"cpu": "600m"}}},
                                   {"resources": {"limits": {"cpu": "600m"}}}]}),
            &mut errs,
        );
        assert_eq!(errs, ["maximum cpu usage per Pod is 1, but limit is 1200m"]);
    }

    #[test]
    fn a_claims_unchanged_request_is_not_checked_again() {
        let item = json!({"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}});
        let claim = json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}});
        let mut errs = Vec::new();
        validate_claim(&item, &claim, None, &mut errs);
        assert_eq!(
            errs,
            ["maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 2Gi"]
        );
        let mut errs = Vec::new();
        validate_claim(&item, &claim, Some(&claim), &mut errs);
        assert!(errs.is_empty());
    }
}
