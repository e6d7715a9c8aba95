//! Conversion between a resource's served version and its storage version, for the built-in
//! resources that upstream stores in another version: events.k8s.io/v1 Events (stored as core
//! v1 Events), autoscaling/v1 HorizontalPodAutoscalers (stored as autoscaling/v2), and
//! MutatingAdmissionPolicies (stored as admissionregistration.k8s.io/v1beta1, same shape), and
//! the served beta and alpha versions (`beta_conversion`).
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
    ) || super::beta_conversion::supported(from, to)
        || (from.1 == "CustomResourceDefinition"
            && to.1 == "CustomResourceDefinition"
            && matches!(
                (from.0, to.0),
                ("apiextensions.k8s.io/v1beta1", "apiextensions.k8s.io/v1")
                    | ("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1")
            ))
        || (from.1 == to.1
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
        ("apiextensions.k8s.io/v1beta1", "apiextensions.k8s.io/v1") => crd_v1beta1_to_v1(&mut out),
        ("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1") => crd_v1_to_v1beta1(&mut out),
        (from, to) => super::beta_conversion::convert_fields(&mut out, from, to),
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

/// Printer columns: v1beta1 names the path `JSONPath`, v1 `jsonPath`.
fn rename_json_path(columns: &mut Value, from: &str, to: &str) {
    if let Some(cs) = columns.as_array_mut() {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(p) = c.remove(from) {
                c.insert(to.into(), p);
            }
        }
    }
}

/// A v1beta1 CRD (as upstream's storage holds it) in v1: the top-level schema, subresources
/// and printer columns go to every version that has none of its own; the webhook conversion's
/// settings move under `webhook`; `version` and a false `preserveUnknownFields` go.
fn crd_v1beta1_to_v1(o: &mut Map<String, Value>) {
    let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let version = spec.remove("version");
    let validation = spec.remove("validation");
    let subresources = spec.remove("subresources");
    let mut columns = spec.remove("additionalPrinterColumns");
    if let Some(c) = columns.as_mut() {
        rename_json_path(c, "JSONPath", "jsonPath");
    }
    if spec.get("preserveUnknownFields") == Some(&Value::Bool(false)) {
        spec.remove("preserveUnknownFields");
    }
    if !spec.get("versions").is_some_and(Value::is_array)
        && let Some(v) = version
    {
        spec.insert(
            "versions".into(),
            json!([{"name": v, "served": true, "storage": true}]),
        );
    }
    if let Some(versions) = spec.get_mut("versions").and_then(Value::as_array_mut) {
        for v in versions.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(c) = v.get_mut("additionalPrinterColumns") {
                rename_json_path(c, "JSONPath", "jsonPath");
            }
            if let Some(val) = &validation
                && !v.contains_key("schema")
            {
                v.insert("schema".into(), val.clone());
            }
            if let Some(sub) = &subresources
                && !v.contains_key("subresources")
            {
                v.insert("subresources".into(), sub.clone());
            }
            if let Some(c) = &columns
                && !v.contains_key("additionalPrinterColumns")
            {
                v.insert("additionalPrinterColumns".into(), c.clone());
            }
        }
    }
    if let Some(conv) = spec.get_mut("conversion").and_then(Value::as_object_mut) {
        let client = conv.remove("webhookClientConfig");
        let reviews = conv.remove("conversionReviewVersions");
        if client.is_some() || reviews.is_some() {
            let mut webhook = Map::new();
            if let Some(c) = client {
                webhook.insert("clientConfig".into(), c);
            }
            if let Some(r) = reviews {
                webhook.insert("conversionReviewVersions".into(), r);
            }
            conv.insert("webhook".into(), Value::Object(webhook));
        }
    }
}

/// A v1 CRD as upstream's storage writes it in v1beta1: `version` the first version's name,
/// schema, subresources and printer columns hoisted to the top when every version has the
/// same, `preserveUnknownFields` written, the webhook's settings flattened.
fn crd_v1_to_v1beta1(o: &mut Map<String, Value>) {
    let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(first) = versions.first().and_then(|v| v["name"].as_str()) {
        spec.insert("version".into(), json!(first));
    }
    let mut versions = versions;
    for (field, top) in [
        ("schema", "validation"),
        ("subresources", "subresources"),
        ("additionalPrinterColumns", "additionalPrinterColumns"),
    ] {
        let first = versions.first().and_then(|v| v.get(field)).cloned();
        if let Some(first) = first
            && versions.iter().all(|v| v.get(field) == Some(&first))
        {
            for v in versions.iter_mut().filter_map(Value::as_object_mut) {
                v.remove(field);
            }
            let mut first = first;
            if field == "additionalPrinterColumns" {
                rename_json_path(&mut first, "jsonPath", "JSONPath");
            }
            spec.insert(top.into(), first);
        }
    }
    for v in versions.iter_mut().filter_map(Value::as_object_mut) {
        if let Some(c) = v.get_mut("additionalPrinterColumns") {
            rename_json_path(c, "jsonPath", "JSONPath");
        }
    }
    spec.insert("versions".into(), Value::Array(versions));
    if !spec.contains_key("preserveUnknownFields") {
        spec.insert("preserveUnknownFields".into(), json!(false));
    }
    if let Some(conv) = spec.get_mut("conversion").and_then(Value::as_object_mut)
        && let Some(Value::Object(mut webhook)) = conv.remove("webhook")
    {
        if let Some(c) = webhook.remove("clientConfig") {
            conv.insert("webhookClientConfig".into(), c);
        }
        if let Some(r) = webhook.remove("conversionReviewVersions") {
            conv.insert("conversionReviewVersions".into(), r);
        }
    }
}

/// The Go field order of the objects a JSON storage version is written with that kapi has no
/// schema for (apiextensions.k8s.io/v1beta1 CustomResourceDefinitions), by the key path of
/// the object (`[]` the root, `["spec"]`, `["spec", "versions", "*"]`).
fn go_order(path: &[&str]) -> Option<&'static [&'static str]> {
    Some(match path {
        [] => &["kind", "apiVersion", "metadata", "spec", "status"],
        ["metadata"] => crate::structural::prune::OBJECT_META_FIELDS,
        ["metadata", "managedFields", "*"] => &[
            "manager",
            "operation",
            "apiVersion",
            "time",
            "fieldsType",
            "fieldsV1",
            "subresource",
        ],
        ["spec"] => &[
            "group",
            "version",
            "names",
            "scope",
            "validation",
            "subresources",
            "versions",
            "additionalPrinterColumns",
            "selectableFields",
            "conversion",
            "preserveUnknownFields",
        ],
        ["spec", "names"] | ["status", "acceptedNames"] => &[
            "plural",
            "singular",
            "shortNames",
            "kind",
            "listKind",
            "categories",
        ],
        ["spec", "versions", "*"] => &[
            "name",
            "served",
            "storage",
            "deprecated",
            "deprecationWarning",
            "schema",
            "subresources",
            "additionalPrinterColumns",
            "selectableFields",
        ],
        ["spec", "conversion"] => &[
            "strategy",
            "webhookClientConfig",
            "conversionReviewVersions",
        ],
        ["status"] => &["conditions", "acceptedNames", "storedVersions"],
        ["status", "conditions", "*"] => {
            &["type", "status", "lastTransitionTime", "reason", "message"]
        }
        _ => return None,
    })
}

/// Writes `v` as compact JSON with the keys of known objects in Go order (`go_order`), others
/// sorted (as Go writes maps).
pub fn write_go_order(v: &Value, out: &mut Vec<u8>) {
    fn walk<'a>(v: &'a Value, path: &mut Vec<&'a str>, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                out.push(b'{');
                let mut keys: Vec<&String> = m.keys().collect();
                if let Some(order) = go_order(path) {
                    keys.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
                }
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).unwrap_or_default());
                    out.push(b':');
                    path.push(k);
                    walk(&m[k.as_str()], path, out);
                    path.pop();
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    path.push("*");
                    walk(x, path, out);
                    path.pop();
                }
                out.push(b']');
            }
            other => out.extend(serde_json::to_vec(other).unwrap_or_default()),
        }
    }
    walk(v, &mut Vec::new(), out);
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
    fn crds_convert_between_v1beta1_storage_and_v1() {
        let stored = json!({"apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.stable.example.com"},
            "spec": {"group": "stable.example.com", "version": "v1", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "validation": {"openAPIV3Schema": {"type": "object"}},
                "additionalPrinterColumns": [{"name": "Color", "type": "string", "JSONPath": ".spec.color"}],
                "versions": [{"name": "v1", "served": true, "storage": true}],
                "conversion": {"strategy": "None"}, "preserveUnknownFields": false}});
        let v1 = convert(
            &stored,
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        )
        .unwrap();
        assert_eq!(
            v1["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["type"],
            "object"
        );
        assert_eq!(
            v1["spec"]["versions"][0]["additionalPrinterColumns"][0]["jsonPath"],
            ".spec.color"
        );
        assert!(v1["spec"].get("version").is_none());
        assert!(v1["spec"].get("validation").is_none());
        assert!(v1["spec"].get("preserveUnknownFields").is_none());
        let back = convert(
            &v1,
            ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
        )
        .unwrap();
        assert_eq!(back, stored);
        let mut text = Vec::new();
        write_go_order(&back, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1beta1","metadata":{"name":"widgets.stable.example.com"},"spec":{"group":"stable.example.com","version":"v1","names":{"plural":"widgets","kind":"Widget"},"scope":"Namespaced","validation":"#),
            "{text}"
        );
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
