//! Conversion between a resource's served version and its storage version, for the built-in
//! resources that upstream stores in another version: events.k8s.io/v1 Events (stored as core
//! v1 Events), autoscaling/v1 HorizontalPodAutoscalers (stored as autoscaling/v2), and
//! MutatingAdmissionPolicies (stored as admissionregistration.k8s.io/v1beta1, same shape).
//! Works on JSON trees; only these few kinds take this path.

use serde_json::{Map, Value, json};

/// Field renames between events.k8s.io/v1 (left) and core v1 (right) Events.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Whether `from` → `to` (apiVersion, kind) is a conversion this module knows.
pub fn supported(from: (&str, &str), to: (&str, &str)) -> bool {
    matches!(
        (from, to),
        (("events.k8s.io/v1", "Event"), ("v1", "Event"))
            | (("v1", "Event"), ("events.k8s.io/v1", "Event"))
            | (
                ("autoscaling/v1", "HorizontalPodAutoscaler"),
                ("autoscaling/v2", "HorizontalPodAutoscaler")
            )
            | (
                ("autoscaling/v2", "HorizontalPodAutoscaler"),
                ("autoscaling/v1", "HorizontalPodAutoscaler")
            )
    ) || (from.1 == to.1
        && from.0.starts_with("admissionregistration.k8s.io/")
        && to.0.starts_with("admissionregistration.k8s.io/")
        && matches!(
            from.1,
            "MutatingAdmissionPolicy" | "MutatingAdmissionPolicyBinding"
        ))
}

fn rename(obj: &mut Map<String, Value>, pairs: &[(&str, &str)], forward: bool) {
    for (a, b) in pairs {
        let (from, to) = if forward { (a, b) } else { (b, a) };
        if let Some(v) = obj.remove(*from) {
            obj.insert(to.to_string(), v);
        }
    }
}

/// Converts `obj` (with its apiVersion and kind) to `to`; None when not supported.
pub fn convert(obj: &Value, to: (&str, &str)) -> Option<Value> {
    let from_av = obj.get("apiVersion")?.as_str()?.to_string();
    let from_kind = obj.get("kind")?.as_str()?.to_string();
    if !supported((&from_av, &from_kind), to) {
        return None;
    }
    let mut out = obj.as_object()?.clone();
    match (from_av.as_str(), to.0) {
        ("events.k8s.io/v1", "v1") => rename(&mut out, EVENT_FIELDS, true),
        ("v1", "events.k8s.io/v1") => rename(&mut out, EVENT_FIELDS, false),
        ("autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(&mut out),
        ("autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(&mut out),
        _ => {}
    }
    out.insert("apiVersion".into(), json!(to.0));
    out.insert("kind".into(), json!(to.1));
    Some(Value::Object(out))
}

/// autoscaling/v1 keeps only a CPU utilization target; it becomes v2's Resource metric.
fn hpa_v1_to_v2(o: &mut Map<String, Value>) {
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut)
        && let Some(target) = spec.remove("targetCPUUtilizationPercentage")
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]),
        );
    }
    if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut)
        && let Some(current) = status.remove("currentCPUUtilizationPercentage")
    {
        status.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}]),
        );
    }
}

fn cpu_metric<'a>(metrics: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    metrics?.as_array()?.iter().find_map(|m| {
        (m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            .then(|| m["resource"][field].get("averageUtilization"))
            .flatten()
    })
}

fn hpa_v2_to_v1(o: &mut Map<String, Value>) {
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
        let target = cpu_metric(spec.get("metrics"), "target").cloned();
        spec.remove("metrics");
        spec.remove("behavior");
        if let Some(t) = target {
            spec.insert("targetCPUUtilizationPercentage".into(), t);
        }
    }
    if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
        let current = cpu_metric(status.get("currentMetrics"), "current").cloned();
        status.remove("currentMetrics");
        status.remove("conditions");
        if let Some(c) = current {
            status.insert("currentCPUUtilizationPercentage".into(), c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_convert_both_ways() {
        let e = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started",
            "reportingController": "kubelet", "eventTime": "2026-01-01T00:00:00.000000Z"});
        let core = convert(&e, ("v1", "Event")).unwrap();
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "kubelet");
        assert!(core.get("note").is_none());
        assert_eq!(convert(&core, ("events.k8s.io/v1", "Event")).unwrap(), e);
    }

    #[test]
    fn hpa_cpu_targets_convert_both_ways() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "spec": {"maxReplicas": 5, "targetCPUUtilizationPercentage": 70}});
        let v2 = convert(&v1, ("autoscaling/v2", "HorizontalPodAutoscaler")).unwrap();
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        assert_eq!(
            convert(&v2, ("autoscaling/v1", "HorizontalPodAutoscaler")).unwrap(),
            v1
        );
        assert!(convert(&v1, ("v1", "Pod")).is_none());
    }
}
