//! Upstream's validation of HorizontalPodAutoscalers (`pkg/apis/autoscaling/validation`):
//! replica bounds, the scale target reference, and (autoscaling/v2) each metric's source and
//! target. `behavior` is not checked yet.

use serde_json::{Value, json};

use super::meta::path_segment_errors;
use super::podspec_rules::{invalid, not_supported, required, required_why};
use crate::api::status::Cause;

const SOURCE_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

fn forbidden(field: String, why: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {why}"),
        field,
    }
}

/// `ValidateCrossVersionObjectReference`: kind and name path segments, a grouped apiVersion.
fn target_ref(r: &Value, causes: &mut Vec<Cause>) {
    for f in ["kind", "name"] {
        let v = r[f].as_str().unwrap_or("");
        if v.is_empty() {
            causes.push(required(format!("spec.scaleTargetRef.{f}")));
        }
        for e in path_segment_errors(v).into_iter().filter(|_| !v.is_empty()) {
            causes.push(invalid(format!("spec.scaleTargetRef.{f}"), &json!(v), &e));
        }
    }
    let api = r["apiVersion"].as_str().unwrap_or("");
    let field = "spec.scaleTargetRef.apiVersion".to_string();
    match api.matches('/').count() {
        0 => causes.push(invalid(
            field,
            &json!(api),
            "apiVersion must specify API group",
        )),
        1 if api.starts_with('/') => causes.push(invalid(
            field,
            &json!(api),
            "apiVersion must specify API group",
        )),
        1 => {}
        _ => causes.push(invalid(
            field,
            &json!(api),
            &format!("unexpected GroupVersion string: {api}"),
        )),
    }
}

fn positive_quantity(v: &Value, field: String, causes: &mut Vec<Cause>) {
    if v.is_null() {
        return;
    }
    let milli = v
        .as_str()
        .and_then(|s| kapi_codec::goscalar::quantity_milli_value(s).ok())
        .unwrap_or(0);
    if milli <= 0 {
        causes.push(invalid(field, v, "must be positive"));
    }
}

/// `validateMetricTarget`.
fn metric_target(t: &Value, field: &str, causes: &mut Vec<Cause>) {
    let ty = t["type"].as_str().unwrap_or("");
    if ty.is_empty() {
        causes.push(required_why(
            format!("{field}.type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(ty, "Utilization" | "Value" | "AverageValue") {
        causes.push(invalid(
            format!("{field}.type"),
            &json!(ty),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    positive_quantity(&t["value"], format!("{field}.value"), causes);
    positive_quantity(&t["averageValue"], format!("{field}.averageValue"), causes);
    if let Some(u) = t["averageUtilization"].as_i64()
        && u < 1
    {
        causes.push(invalid(
            format!("{field}.averageUtilization"),
            &json!(u),
            "must be greater than 0",
        ));
    }
}

/// A Resource or ContainerResource source: a name and an average target.
fn resource_source(src: &Value, field: &str, causes: &mut Vec<Cause>) {
    if src["name"].as_str().unwrap_or("").is_empty() {
        causes.push(required_why(
            format!("{field}.name"),
            "must specify a resource name",
        ));
    }
    let target = &src["target"];
    metric_target(target, &format!("{field}.target"), causes);
    let utilization = !target["averageUtilization"].is_null();
    let average = !target["averageValue"].is_null();
    if !utilization && !average {
        causes.push(required_why(
            format!("{field}.target.averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if utilization && average {
        causes.push(forbidden(
            format!("{field}.target.averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
}

/// `validateMetricSpec`, for the sources kapi checks in depth (resources); the others get
/// their presence checked.
fn metric(m: &Value, field: &str, causes: &mut Vec<Cause>) {
    let ty = m["type"].as_str().unwrap_or("");
    if ty.is_empty() {
        causes.push(required_why(
            format!("{field}.type"),
            "must specify a metric source type",
        ));
    }
    if !SOURCE_TYPES.contains(&ty) {
        causes.push(not_supported(
            format!("{field}.type"),
            &json!(ty),
            SOURCE_TYPES,
        ));
    }
    let present: Vec<&str> = [
        "object",
        "pods",
        "resource",
        "containerResource",
        "external",
    ]
    .into_iter()
    .filter(|k| m.get(*k).is_some_and(|v| !v.is_null()))
    .collect();
    if present.len() == 1 {
        match present[0] {
            "resource" => resource_source(&m["resource"], &format!("{field}.resource"), causes),
            "containerResource" => resource_source(
                &m["containerResource"],
                &format!("{field}.containerResource"),
                causes,
            ),
            _ => {}
        }
    }
    let expected = match ty {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "External" => "external",
        _ => "",
    };
    if !expected.is_empty() && !present.contains(&expected) {
        causes.push(required_why(
            format!("{field}.{expected}"),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        for p in present.iter().filter(|p| **p != expected) {
            causes.push(forbidden(
                format!("{field}.{p}"),
                "must populate the given metric source only",
            ));
        }
    }
}

/// Every cause of an HPA's spec (either version).
pub fn validate(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    let min = spec["minReplicas"].as_i64();
    if let Some(m) = min
        && m < 1
    {
        causes.push(invalid(
            "spec.minReplicas".into(),
            &json!(m),
            "must be greater than or equal to 1",
        ));
    }
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    if max == 0 {
        causes.push(required_why(
            "spec.maxReplicas".into(),
            "must be set and greater than 0",
        ));
    } else if max < 1 {
        causes.push(invalid(
            "spec.maxReplicas".into(),
            &json!(max),
            "must be greater than or equal to 1",
        ));
    }
    if max < min.unwrap_or(1) {
        causes.push(invalid(
            "spec.maxReplicas".into(),
            &json!(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    target_ref(&spec["scaleTargetRef"], &mut causes);
    for (i, m) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
        metric(m, &format!("spec.metrics[{i}]"), &mut causes);
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(obj: Value) -> Vec<(String, String)> {
        crate::kinds::cause_fields(validate(&obj))
    }

    #[test]
    fn replicas_and_the_target_are_checked() {
        let good = json!({"spec": {"minReplicas": 1, "maxReplicas": 3,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}});
        assert!(fields(good).is_empty());
        let bad = json!({"spec": {"minReplicas": 1,
            "scaleTargetRef": {"apiVersion": "v1", "kind": "Deployment"}}});
        let f: Vec<String> = fields(bad).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            f,
            [
                "spec.maxReplicas",
                "spec.maxReplicas",
                "spec.scaleTargetRef.name",
                "spec.scaleTargetRef.apiVersion"
            ]
        );
    }

    #[test]
    fn a_resource_metric_needs_a_name_and_an_average_target() {
        let hpa = json!({"spec": {"minReplicas": 1, "maxReplicas": 3,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "metrics": [{"type": "Resource", "resource": {"target": {"type": "Utilization"}}}]}});
        assert_eq!(
            fields(hpa),
            [
                (
                    "spec.metrics[0].resource.name".to_string(),
                    "FieldValueRequired".to_string()
                ),
                (
                    "spec.metrics[0].resource.target.averageUtilization".to_string(),
                    "FieldValueRequired".to_string()
                )
            ]
        );
        let hpa = json!({"spec": {"minReplicas": 1, "maxReplicas": 3,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "metrics": [{"type": "Resource"}]}});
        assert_eq!(
            fields(hpa),
            [(
                "spec.metrics[0].resource".to_string(),
                "FieldValueRequired".to_string()
            )]
        );
    }
}
