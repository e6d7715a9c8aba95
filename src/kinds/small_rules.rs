//! Upstream's validation of kinds whose own rules are a few lines each: Nodes (taints, pod
//! CIDRs), LimitRanges, PodDisruptionBudgets, PriorityClasses, RuntimeClasses, Leases and
//! IngressClasses (their controller).

use crate::jsonptr::At;
use std::collections::HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::field::{duplicate, forbidden, invalid, not_supported, required, required_why};
use super::json_read::{str_at, strs};
use super::meta::{label_value_errors, name_errors, qualified_name_errors, subdomain_errors};
use crate::api::status::Cause;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
/// `HighestUserDefinablePriority`.
const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
const SYSTEM_PRIORITIES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

fn qualified(v: &str, field: &str, causes: &mut Vec<Cause>) {
    for msg in qualified_name_errors(v) {
        causes.push(invalid(field.to_string(), &json!(v), &msg));
    }
}

pub fn node(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let mut seen = HashSet::new();
    let taints = spec.get("taints").and_then(Value::as_array);
    for (i, t) in taints.into_iter().flatten().enumerate() {
        // Upstream's path for a node's taints.
        let f = format!("metadata.taints[{i}]");
        let (key, value, effect) = (str_at(t, "key"), str_at(t, "value"), str_at(t, "effect"));
        qualified(key, &format!("{f}.key"), &mut causes);
        let errs = label_value_errors(value);
        if !errs.is_empty() {
            causes.push(invalid(
                format!("{f}.value"),
                &json!(value),
                &errs.join(";"),
            ));
        }
        if effect.is_empty() {
            causes.push(required(format!("{f}.effect")));
        } else if !TAINT_EFFECTS.contains(&effect) {
            causes.push(not_supported(
                format!("{f}.effect"),
                &json!(effect),
                TAINT_EFFECTS,
            ));
        }
        if !seen.insert((effect, key)) {
            let added = t.get("timeAdded").cloned().unwrap_or(Value::Null);
            let rendered = format!(
                "{{\"Key\":{},\"Value\":{},\"Effect\":{},\"TimeAdded\":{added}}}",
                json!(key),
                json!(value),
                json!(effect)
            );
            let mut c = duplicate(f, &json!(""));
            c.message = format!(
                "Duplicate value: {rendered}: taints must be unique by key and effect pair"
            );
            causes.push(c);
        }
    }
    let cidrs = strs(spec, "podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        super::ip_rules::cidr(c, &format!("spec.podCIDRs[{i}]"), false, &mut causes);
    }
    if cidrs.len() > 1 {
        let families: Vec<Option<bool>> = cidrs
            .iter()
            .map(|c| super::ip_rules::parse_cidr(c).map(|(ip, _)| ip.is_ipv4()))
            .collect();
        let dual =
            cidrs.len() == 2 && families.iter().all(Option::is_some) && families[0] != families[1];
        if !dual {
            let msg = "may specify no more than one CIDR for each IP family";
            causes.push(invalid("spec.podCIDRs".into(), &json!(cidrs), msg));
        }
    }
    causes
}

pub fn limit_range(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut types = HashSet::new();
    let limits = obj.at("/spec/limits").and_then(Value::as_array);
    for (i, l) in limits.into_iter().flatten().enumerate() {
        let f = format!("spec.limits[{i}]");
        let ty = str_at(l, "type");
        let tf = format!("{f}.type");
        let before = causes.len();
        qualified(ty, &tf, &mut causes);
        if causes.len() == before
            && !ty.contains('/')
            && !matches!(ty, "Pod" | "Container" | "PersistentVolumeClaim")
        {
            let msg = "must be a standard limit type or fully qualified";
            causes.push(invalid(tf.clone(), &json!(ty), msg));
        }
        if !types.insert(ty) {
            causes.push(duplicate(tf, &json!(ty)));
        }
        let has = |k: &str| {
            l.get(k)
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        };
        if ty == "Pod" {
            for k in ["default", "defaultRequest"] {
                if has(k) {
                    let why = "may not be specified when `type` is 'Pod'";
                    causes.push(forbidden(format!("{f}.{k}"), why));
                }
            }
        }
        if ty == "PersistentVolumeClaim" {
            let storage = |k: &str| l.at(&format!("/{k}/storage")).is_some();
            if !storage("min") && !storage("max") {
                let why =
                    "either minimum or maximum storage value is required, but neither was provided";
                causes.push(required_why(format!("{f}.limits"), why));
            }
        }
        limit_bounds(l, &f, &mut causes);
    }
    causes
}

/// The min ≤ default request ≤ default ≤ max order of each resource, ratios of at least 1.
fn limit_bounds(l: &Value, f: &str, causes: &mut Vec<Cause>) {
    let q = |k: &str, r: &str| {
        let text = l.get(k)?.get(r)?.as_str()?.to_string();
        let milli = kapi_codec::goscalar::quantity_milli_value(&text).ok()?;
        Some((text, milli))
    };
    let mut keys: Vec<String> = Vec::new();
    for k in [
        "max",
        "min",
        "default",
        "defaultRequest",
        "maxLimitRequestRatio",
    ] {
        for r in l.get(k).and_then(Value::as_object).into_iter().flatten() {
            if !keys.contains(r.0) {
                keys.push(r.0.clone());
            }
        }
    }
    for r in &keys {
        let (min, max, def, req) = (
            q("min", r),
            q("max", r),
            q("default", r),
            q("defaultRequest", r),
        );
        let mut check = |a: &Option<(String, i64)>,
                         b: &Option<(String, i64)>,
                         at: &str,
                         report_b: bool,
                         what: (&str, &str)| {
            if let (Some(a), Some(b)) = (a, b)
                && a.1 > b.1
            {
                let shown = if report_b { &b.0 } else { &a.0 };
                let msg = format!(
                    "{} value {} is greater than {} value {}",
                    what.0, a.0, what.1, b.0
                );
                causes.push(invalid(format!("{f}.{at}[{r}]"), &json!(shown), &msg));
            }
        };
        check(&min, &max, "min", false, ("min", "max"));
        check(
            &min,
            &req,
            "defaultRequest",
            true,
            ("min", "default request"),
        );
        check(
            &req,
            &max,
            "defaultRequest",
            false,
            ("default request", "max"),
        );
        check(
            &req,
            &def,
            "defaultRequest",
            false,
            ("default request", "default limit"),
        );
        check(&min, &def, "default", false, ("min", "default"));
        check(&def, &max, "default", true, ("default", "max"));
        if let Some((text, milli)) = q("maxLimitRequestRatio", r)
            && milli < 1000
        {
            let msg = format!("ratio {text} is less than 1");
            causes.push(invalid(
                format!("{f}.maxLimitRequestRatio[{r}]"),
                &json!(text),
                &msg,
            ));
        }
    }
}

pub fn disruption_budget(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let (min, max) = (
        spec.get("minAvailable").filter(|v| !v.is_null()),
        spec.get("maxUnavailable").filter(|v| !v.is_null()),
    );
    if min.is_some() && max.is_some() {
        let msg = "minAvailable and maxUnavailable cannot be both set";
        let mut c = invalid("spec".into(), &json!(""), msg);
        c.message = format!("Invalid value: {spec}: {msg}");
        causes.push(c);
    }
    for (key, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if v.is_some() {
            let f = format!("spec.{key}");
            super::workload_rules::int_or_percent(v, &f, &mut causes);
            super::workload_rules::not_over_100_percent(v, &f, &mut causes);
        }
    }
    if let Some(sel) = spec.get("selector").filter(|v| v.is_object()) {
        super::workload_rules::label_selector(sel, "spec.selector", &mut causes);
    }
    if let Some(p) = spec
        .get("unhealthyPodEvictionPolicy")
        .and_then(Value::as_str)
        && !matches!(p, "AlwaysAllow" | "IfHealthyBudget")
    {
        causes.push(not_supported(
            "spec.unhealthyPodEvictionPolicy".into(),
            &json!(p),
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
    causes
}

pub fn priority_class(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = obj
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    if name.starts_with("system-") {
        let error = match SYSTEM_PRIORITIES.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((_, v)) if *v != value => {
                Some(format!("value of {name} PriorityClass must be {v}"))
            }
            Some(_) => None,
        };
        if let Some(e) = error {
            let why = format!(
                "priority class names with 'system-' prefix are reserved for system use only. error: {e}"
            );
            causes.push(forbidden("metadata.name".into(), &why));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        let why =
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}");
        causes.push(forbidden("value".into(), &why));
    }
    match obj.get("preemptionPolicy").and_then(Value::as_str) {
        Some("") => causes.push(required("preemptionPolicy".into())),
        Some(p) if !matches!(p, "PreemptLowerPriority" | "Never") => {
            causes.push(not_supported(
                "preemptionPolicy".into(),
                &json!(p),
                &["PreemptLowerPriority", "Never"],
            ));
        }
        _ => {}
    }
    causes
}

pub fn runtime_class(obj: &Value) -> Vec<Cause> {
    let handler = str_at(obj, "handler");
    if handler.is_empty() {
        return vec![required("handler".into())];
    }
    name_errors(NameRule::Label, handler, false)
        .into_iter()
        .map(|msg| invalid("handler".into(), &json!(handler), &msg))
        .collect()
}

pub fn lease(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    if let Some(d) = spec.get("leaseDurationSeconds").and_then(Value::as_i64)
        && d <= 0
    {
        causes.push(invalid(
            "spec.leaseDurationSeconds".into(),
            &json!(d),
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.get("leaseTransitions").and_then(Value::as_i64)
        && t < 0
    {
        let msg = "must be greater than or equal to 0";
        causes.push(invalid("spec.leaseTransitions".into(), &json!(t), msg));
    }
    let strategy = spec.get("strategy").and_then(Value::as_str);
    if let Some(s) = strategy {
        if !s.contains('/') {
            if s != "OldestEmulationVersion" {
                causes.push(not_supported(
                    "spec.strategy".into(),
                    &json!(s),
                    &["OldestEmulationVersion"],
                ));
            }
        } else {
            qualified(s, "spec.strategy", &mut causes);
        }
    }
    let preferred = str_at(spec, "preferredHolder");
    if !preferred.is_empty() && strategy.is_none_or(str::is_empty) {
        let why = "may only be specified if `strategy` is defined";
        causes.push(forbidden("spec.preferredHolder".into(), why));
    }
    causes
}

/// `IsDomainPrefixedPath` of an IngressClass's controller (at most 250 bytes).
pub fn ingress_class(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let f = "spec.controller";
    let c = obj
        .at("/spec/controller")
        .and_then(Value::as_str)
        .unwrap_or("");
    if c.len() > 250 {
        causes.push(super::field::too_long(f.into(), 250));
    }
    causes.extend(domain_prefixed_path(f, c));
    causes
}

/// Upstream's `IsDomainPrefixedPath`: `<DNS subdomain>/<path>` at `f`.
pub fn domain_prefixed_path(f: &str, c: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if c.is_empty() {
        causes.push(required(f.into()));
        return causes;
    }
    let Some((host, path)) = c
        .split_once('/')
        .filter(|(h, p)| !h.is_empty() && !p.is_empty())
    else {
        let msg = "must be a domain-prefixed path (such as \"acme.io/foo\")";
        causes.push(invalid(f.into(), &json!(c), msg));
        return causes;
    };
    for msg in subdomain_errors(host) {
        causes.push(invalid(f.into(), &json!(host), msg));
    }
    let ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
    if !ok {
        let msg = "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')";
        causes.push(invalid(f.into(), &json!(path), msg));
    }
    causes
}

/// ControllerRevisions: data is given, the revision is not negative
/// (`ValidateControllerRevision`).
pub fn controller_revision(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if obj.get("data").is_none_or(Value::is_null) {
        causes.push(super::field::required_why(
            "data".into(),
            "data is mandatory",
        ));
    }
    super::field::non_negative(obj.get("revision"), "revision", &mut causes);
    causes
}

/// Secrets: the keys a type requires, and valid data keys (`ValidateSecret`).
pub fn secret(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let data = obj.get("data").and_then(Value::as_object);
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let key_field = |k: &str| format!("data[{k}]");
    for k in data.into_iter().flat_map(|d| d.keys()) {
        for msg in super::meta::config_map_key_errors(k) {
            causes.push(super::field::invalid(
                key_field(k),
                &serde_json::json!(k),
                msg,
            ));
        }
    }
    let required: &[&str] = match obj.get("type").and_then(Value::as_str).unwrap_or("") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            &["username", "password"]
        }
        "kubernetes.io/service-account-token" => {
            let named = obj
                .at("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !named {
                causes.push(super::field::required(
                    "metadata.annotations[kubernetes.io/service-account.name]".into(),
                ));
            }
            &[]
        }
        _ => &[],
    };
    for k in required {
        if !has(k) {
            causes.push(super::field::required(key_field(k)));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons;

    #[test]
    fn node_taints_are_unique_by_key_and_effect() {
        let n = json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"},
            {"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": ""}]}});
        let causes = node(&n);
        assert_eq!(
            causes[0].message,
            "Duplicate value: {\"Key\":\"k\",\"Value\":\"\",\"Effect\":\"NoSchedule\",\"TimeAdded\":null}: taints must be unique by key and effect pair"
        );
        assert_eq!(
            field_reasons(&causes),
            vec![
                ("metadata.taints[1]", "FieldValueDuplicate"),
                ("metadata.taints[2].effect", "FieldValueRequired"),
            ]
        );
    }

    #[test]
    fn small_kinds_check_their_few_fields() {
        let causes = lease(&json!({"spec": {"leaseDurationSeconds": 0}}));
        assert_eq!(
            causes[0].message,
            "Invalid value: 0: must be greater than 0"
        );
        assert_eq!(
            field_reasons(&runtime_class(&json!({"handler": "Bad_Handler"}))),
            vec![("handler", "FieldValueInvalid")]
        );
        assert_eq!(
            field_reasons(&priority_class(&json!({"metadata": {"name": "p"},
                "value": 2_000_000_000, "preemptionPolicy": ""}))),
            vec![
                ("value", "FieldValueForbidden"),
                ("preemptionPolicy", "FieldValueRequired")
            ]
        );
        assert_eq!(
            field_reasons(&limit_range(&json!({"spec": {"limits": [
                {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
                {"type": "Container"}]}}))),
            vec![
                ("spec.limits[0].min[cpu]", "FieldValueInvalid"),
                ("spec.limits[1].type", "FieldValueDuplicate"),
            ]
        );
    }
}
