//! Upstream's StatefulSet validation (`ValidateStatefulSetSpec` and
//! `ValidatePodTemplateSpecForStatefulSet`): pod management and update strategy, claim
//! retention, each claim template's spec, replicas, ordinals, the service name, the selector
//! (which may not be empty), and the template — validated as the controller will run it: with
//! its hostname and subdomain cleared and each claim template as a volume ahead of the
//! template's own volumes (a template volume named like a claim is dropped).

use crate::jsonptr::At;
use std::collections::HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::field::{forbidden, invalid, non_negative, not_supported, required};
use super::meta::{self, name_errors};
use super::workload_rules::{
    Selector, mismatch, pod_template, required_selector, selector, selects_template,
};
use crate::api::status::Cause;

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn update_strategy(spec: &Value, causes: &mut Vec<Cause>) {
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let ru = strategy.get("rollingUpdate").filter(|v| !v.is_null());
    match str_at(strategy, "type") {
        "" => causes.push(required("spec.updateStrategy".into())),
        "OnDelete" => {
            if let Some(ru) = ru {
                causes.push(invalid(
                    "spec.updateStrategy.rollingUpdate".into(),
                    ru,
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            let Some(ru) = ru else { return };
            let at = "spec.updateStrategy.rollingUpdate";
            non_negative(ru.get("partition"), format!("{at}.partition"), causes);
            let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) else {
                return;
            };
            let field = format!("{at}.maxUnavailable");
            let before = causes.len();
            match mu {
                Value::String(s) => {
                    let digits = s.strip_suffix('%').unwrap_or("");
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        causes.push(invalid(
                            field.clone(),
                            mu,
                            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                        ));
                    }
                }
                other => non_negative(Some(other), field.clone(), causes),
            }
            let (value, percent) = match mu {
                Value::String(s) => (
                    s.strip_suffix('%')
                        .and_then(|d| d.parse::<i64>().ok())
                        .unwrap_or(-1),
                    true,
                ),
                other => (other.as_i64().unwrap_or(-1), false),
            };
            if causes.len() == before && value == 0 {
                causes.push(invalid(field.clone(), mu, "cannot be 0"));
            }
            if percent && value > 100 {
                causes.push(invalid(field, mu, "must not be greater than 100%"));
            }
        }
        _ => causes.push(invalid(
            "spec.updateStrategy".into(),
            strategy,
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
}

/// The template the controller runs: hostname and subdomain cleared, each distinct claim
/// template a volume (first-appearance order), then the template's other volumes.
fn effective_template(template: &Value, claims: &[Value]) -> Value {
    let mut t = template.clone();
    let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) else {
        return t;
    };
    spec.remove("hostname");
    spec.remove("subdomain");
    if claims.is_empty() {
        return t;
    }
    let mut names = Vec::new();
    for c in claims {
        let name = c.at("/metadata/name").and_then(Value::as_str).unwrap_or("");
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let claimed: HashSet<&str> = names.iter().copied().collect();
    let mut volumes: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "persistentVolumeClaim": {"claimName": n}}))
        .collect();
    let own = spec.get("volumes").and_then(Value::as_array);
    volumes.extend(
        own.into_iter()
            .flatten()
            .filter(|v| !claimed.contains(str_at(v, "name")))
            .cloned(),
    );
    spec.insert("volumes".into(), Value::Array(volumes));
    t
}

/// The causes of a StatefulSet's own rules, in upstream's order.
pub fn validate(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match str_at(spec, "podManagementPolicy") {
        "" => causes.push(required("spec.podManagementPolicy".into())),
        "OrderedReady" | "Parallel" => {}
        p => causes.push(invalid(
            "spec.podManagementPolicy".into(),
            &json!(p),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    update_strategy(spec, causes);
    if let Some(r) = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|v| v.is_object())
    {
        for k in ["whenDeleted", "whenScaled"] {
            let v = str_at(r, k);
            if !["Retain", "Delete"].contains(&v) {
                causes.push(not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{k}"),
                    &json!(v),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    let claims: &[Value] = spec
        .get("volumeClaimTemplates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, c) in claims.iter().enumerate() {
        super::claim_rules::spec(
            c.get("spec"),
            &format!("spec.volumeClaimTemplates[{i}].spec"),
            causes,
        );
    }
    non_negative(spec.get("replicas"), "spec.replicas", causes);
    non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds", causes);
    non_negative(spec.at("/ordinals/start"), "spec.ordinals.start", causes);
    let service = str_at(spec, "serviceName");
    if !service.is_empty() {
        for msg in name_errors(NameRule::Label, service, false) {
            causes.push(invalid("spec.serviceName".into(), &json!(service), &msg));
        }
    }
    let sel = required_selector(spec, "statefulset", causes);
    let template = spec.get("template").filter(|t| !t.is_null());
    match selector(sel) {
        Selector::Invalid => causes.push(invalid(
            "spec.selector".into(),
            sel.unwrap_or(&Value::Null),
            "",
        )),
        converted => {
            let effective = template.map(|t| effective_template(t, claims));
            let effective = effective.as_ref();
            if !matches!(converted, Selector::Everything)
                && !selects_template(&converted, effective)
            {
                causes.push(mismatch(effective, "spec.template"));
            }
            pod_template(effective, "spec.template", Some("Always"), causes);
            // Upstream checks the template's labels and annotations a second time.
            let meta_of = effective.and_then(|t| t.get("metadata"));
            meta::labels(
                meta_of.and_then(|m| m.get("labels")),
                "spec.template.labels",
                causes,
            );
            meta::annotations(
                meta_of.and_then(|m| m.get("annotations")),
                "spec.template.annotations",
                causes,
            );
        }
    }
    let template_spec = template.and_then(|t| t.get("spec"));
    let policy = template_spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy != "Always" {
        causes.push(not_supported(
            "spec.template.spec.restartPolicy".into(),
            &json!(policy),
            &["Always"],
        ));
    }
    if template_spec
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .is_some_and(|v| !v.is_null())
    {
        causes.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds".into(),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

    fn sts() -> Value {
        json!({"spec": {
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "replicas": 1,
            "serviceName": "rich",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "restartPolicy": "Always",
                "volumes": [{"name": "cfg", "configMap": {"name": "c"}}],
                "containers": [{"name": "app", "image": "x",
                                "volumeMounts": [{"name": "cfg", "mountPath": "/c"},
                                                 {"name": "data", "mountPath": "/d"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        }})
    }

    #[test]
    fn claim_templates_are_volumes_ahead_of_the_templates_own() {
        let mut causes = Vec::new();
        validate(&sts(), &mut causes);
        assert_eq!(fields(&causes), vec![]);
        // The template's first volume is the second the controller runs.
        let mut bad = sts();
        bad["spec"]["template"]["spec"]["volumes"][0]["name"] = json!("");
        let mut causes = Vec::new();
        validate(&bad, &mut causes);
        assert_eq!(
            fields(&causes),
            vec![
                ("spec.template.spec.volumes[1].name", "FieldValueRequired"),
                (
                    "spec.template.spec.containers[0].volumeMounts[0].name",
                    "FieldValueNotFound"
                ),
            ]
        );
        // A claim without a name is a volume without one.
        let mut bad = sts();
        bad["spec"]["volumeClaimTemplates"][0]["metadata"] = json!({});
        let mut causes = Vec::new();
        validate(&bad, &mut causes);
        assert_eq!(
            fields(&causes),
            vec![
                (
                    "spec.template.spec.volumes[0].persistentVolumeClaim.claimName",
                    "FieldValueRequired"
                ),
                ("spec.template.spec.volumes[0].name", "FieldValueRequired"),
                (
                    "spec.template.spec.containers[0].volumeMounts[1].name",
                    "FieldValueNotFound"
                ),
            ]
        );
    }

    #[test]
    fn an_unconvertible_selector_skips_the_template() {
        let mut bad = sts();
        bad["spec"]["selector"] = json!({"matchLabels": {"app": "Bad Value"}});
        bad["spec"]["template"]["spec"]["containers"] = json!([]);
        let mut causes = Vec::new();
        validate(&bad, &mut causes);
        assert_eq!(
            fields(&causes),
            vec![
                ("spec.selector.matchLabels", "FieldValueInvalid"),
                ("spec.selector", "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            causes[1].message,
            "Invalid value: {\"matchLabels\":{\"app\":\"Bad Value\"}}"
        );
    }
}
