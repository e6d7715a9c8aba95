//! Upstream's pod spec validation (`ValidatePodSpec` and what it calls in
//! `pkg/apis/core/validation`), the part kapi checks so far, shared by pods and every pod
//! template (workloads, jobs, pod templates): containers and init containers (names, images,
//! ports, env, volume mounts, pull policy, probes' named ports), volumes, restart and DNS
//! policies, tolerations, affinity topology keys. Causes carry upstream's field paths and
//! reasons; `at` is the spec's path (`spec`, `spec.template.spec`, ...).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::meta::name_errors;
use crate::api::status::Cause;

pub fn required(field: String) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field,
    }
}

pub fn required_why(field: String, why: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: format!("Required value: {why}"),
        field,
    }
}

pub fn invalid(field: String, value: &Value, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value}: {msg}"),
        field,
    }
}

pub fn not_supported(field: String, value: &Value, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ),
        field,
    }
}

pub fn duplicate(field: String, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {value}"),
        field,
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A DNS-1123 label name at `field`: required, then the label rule.
fn label_name(v: &Value, key: &str, field: String, causes: &mut Vec<Cause>) {
    let name = str_at(v, key);
    if name.is_empty() {
        causes.push(required(field));
        return;
    }
    for msg in name_errors(NameRule::Label, name, false) {
        causes.push(invalid(field.clone(), &json!(name), &msg));
    }
}

/// Upstream's `IsValidPortName`, as a named port (probe, target) is checked.
pub(super) fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

/// A probe's or handler's port: a number in range, or a valid port name.
fn port_ref(port: &Value, field: String, causes: &mut Vec<Cause>) {
    match port {
        Value::Number(n) => {
            let p = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&p) {
                causes.push(invalid(
                    field,
                    port,
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
        Value::String(s) => {
            for msg in port_name_errors(s) {
                causes.push(invalid(field.clone(), port, msg));
            }
        }
        _ => {}
    }
}

fn probe(p: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    let Some(p) = p.filter(|p| p.is_object()) else {
        return;
    };
    for handler in ["tcpSocket", "httpGet", "grpc"] {
        if let Some(port) = p.get(handler).and_then(|h| h.get("port")) {
            port_ref(port, format!("{field}.{handler}.port"), causes);
        }
    }
}

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn containers(
    list: &[Value],
    at: &str,
    volumes: &HashSet<&str>,
    names: &mut HashSet<String>,
    causes: &mut Vec<Cause>,
) {
    for (i, c) in list.iter().enumerate() {
        let f = format!("{at}[{i}]");
        let name = str_at(c, "name");
        if !name.is_empty() && !names.insert(name.to_string()) {
            causes.push(duplicate(format!("{f}.name"), &json!(name)));
        } else {
            label_name(c, "name", format!("{f}.name"), causes);
        }
        if str_at(c, "image").trim().is_empty() {
            causes.push(required(format!("{f}.image")));
        }
        if let Some(policy) = c.get("imagePullPolicy").and_then(Value::as_str)
            && !PULL_POLICIES.contains(&policy)
        {
            causes.push(not_supported(
                format!("{f}.imagePullPolicy"),
                &json!(policy),
                PULL_POLICIES,
            ));
        }
        let ports = c.get("ports").and_then(Value::as_array);
        for (j, p) in ports.into_iter().flatten().enumerate() {
            let port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&port) {
                causes.push(invalid(
                    format!("{f}.ports[{j}].containerPort"),
                    &json!(port),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            if let Some(proto) = p.get("protocol").and_then(Value::as_str)
                && !PROTOCOLS.contains(&proto)
            {
                causes.push(not_supported(
                    format!("{f}.ports[{j}].protocol"),
                    &json!(proto),
                    PROTOCOLS,
                ));
            }
        }
        let env = c.get("env").and_then(Value::as_array);
        for (j, e) in env.into_iter().flatten().enumerate() {
            if str_at(e, "name").is_empty() {
                causes.push(required(format!("{f}.env[{j}].name")));
            }
            if let Some(field_ref) = e.pointer("/valueFrom/fieldRef")
                && str_at(field_ref, "fieldPath").is_empty()
            {
                causes.push(required(format!(
                    "{f}.env[{j}].valueFrom.fieldRef.fieldPath"
                )));
            }
        }
        let mounts = c.get("volumeMounts").and_then(Value::as_array);
        for (j, m) in mounts.into_iter().flatten().enumerate() {
            let name = str_at(m, "name");
            if name.is_empty() {
                causes.push(required(format!("{f}.volumeMounts[{j}].name")));
            } else if !volumes.contains(name) {
                causes.push(Cause {
                    reason: "FieldValueNotFound".into(),
                    message: format!("Not found: {}", json!(name)),
                    field: format!("{f}.volumeMounts[{j}].name"),
                });
            }
            if str_at(m, "mountPath").is_empty() {
                causes.push(required(format!("{f}.volumeMounts[{j}].mountPath")));
            }
        }
        for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
            probe(c.get(p), &format!("{f}.{p}"), causes);
        }
        // --allow-privileged=false (upstream's default) refuses privileged containers.
        if c.pointer("/securityContext/privileged") == Some(&Value::Bool(true))
            && !crate::flags::settings().allow_privileged
        {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: disallowed by cluster policy".into(),
                field: format!("{f}.securityContext.privileged"),
            });
        }
    }
}

/// The pod spec at `at`; `restart_policies` are the ones its owner allows (a pod: all three;
/// a Deployment's template: Always; a Job's: OnFailure and Never).
pub fn validate(spec: Option<&Value>, at: &str, restart_policies: &[&str]) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = spec.unwrap_or(&empty);
    // Volumes first: the mounts refer to them.
    let mut volume_names = HashSet::new();
    let vols = spec.get("volumes").and_then(Value::as_array);
    for (i, v) in vols.into_iter().flatten().enumerate() {
        let f = format!("{at}.volumes[{i}]");
        let name = str_at(v, "name");
        if !name.is_empty() && !volume_names.insert(name) {
            causes.push(duplicate(format!("{f}.name"), &json!(name)));
        } else {
            label_name(v, "name", format!("{f}.name"), &mut causes);
        }
        for source in ["configMap", "secret"] {
            let key = if source == "secret" {
                "secretName"
            } else {
                "name"
            };
            if let Some(s) = v.get(source)
                && str_at(s, key).is_empty()
            {
                causes.push(required(format!("{f}.{source}.{key}")));
            }
        }
    }
    let mut names = HashSet::new();
    let init = spec.get("initContainers").and_then(Value::as_array);
    if let Some(init) = init {
        containers(
            init,
            &format!("{at}.initContainers"),
            &volume_names,
            &mut names,
            &mut causes,
        );
    }
    match spec.get("containers").and_then(Value::as_array) {
        Some(cs) if !cs.is_empty() => containers(
            cs,
            &format!("{at}.containers"),
            &volume_names,
            &mut names,
            &mut causes,
        ),
        _ => causes.push(required(format!("{at}.containers"))),
    }
    match spec.get("restartPolicy").and_then(Value::as_str) {
        None | Some("") => {
            let list: Vec<String> = restart_policies
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect();
            causes.push(required_why(
                format!("{at}.restartPolicy"),
                &format!("valid values: {}", list.join(", ")),
            ));
        }
        Some(p) if !restart_policies.contains(&p) => causes.push(not_supported(
            format!("{at}.restartPolicy"),
            &json!(p),
            restart_policies,
        )),
        Some(_) => {}
    }
    const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if let Some(p) = spec.get("dnsPolicy").and_then(Value::as_str)
        && !DNS_POLICIES.contains(&p)
    {
        causes.push(not_supported(
            format!("{at}.dnsPolicy"),
            &json!(p),
            DNS_POLICIES,
        ));
    }
    let tolerations = spec.get("tolerations").and_then(Value::as_array);
    for (i, t) in tolerations.into_iter().flatten().enumerate() {
        let f = format!("{at}.tolerations[{i}]");
        let key = str_at(t, "key");
        match t.get("operator").and_then(Value::as_str) {
            Some("Exists") => {}
            None | Some("") | Some("Equal") if key.is_empty() => causes.push(invalid(
                format!("{f}.operator"),
                &json!(str_at(t, "operator")),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            )),
            None | Some("") | Some("Equal") => {}
            Some(other) => causes.push(not_supported(
                format!("{f}.operator"),
                &json!(other),
                &["Equal", "Exists"],
            )),
        }
        if let Some(e) = t.get("effect").and_then(Value::as_str)
            && !e.is_empty()
            && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e)
        {
            causes.push(not_supported(
                format!("{f}.effect"),
                &json!(e),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let preferred = spec
            .pointer(&format!(
                "/affinity/{kind}/preferredDuringSchedulingIgnoredDuringExecution"
            ))
            .and_then(Value::as_array);
        for (i, term) in preferred.into_iter().flatten().enumerate() {
            let f = format!(
                "{at}.affinity.{kind}.preferredDuringSchedulingIgnoredDuringExecution[{i}].podAffinityTerm.topologyKey"
            );
            topology_key(term.pointer("/podAffinityTerm/topologyKey"), f, &mut causes);
        }
        let required_terms = spec
            .pointer(&format!(
                "/affinity/{kind}/requiredDuringSchedulingIgnoredDuringExecution"
            ))
            .and_then(Value::as_array);
        for (i, term) in required_terms.into_iter().flatten().enumerate() {
            let f = format!(
                "{at}.affinity.{kind}.requiredDuringSchedulingIgnoredDuringExecution[{i}].topologyKey"
            );
            topology_key(term.get("topologyKey"), f, &mut causes);
        }
    }
    causes
}

fn topology_key(key: Option<&Value>, field: String, causes: &mut Vec<Cause>) {
    let k = key.and_then(Value::as_str).unwrap_or("");
    if k.is_empty() {
        causes.push(required_why(field.clone(), "can not be empty"));
    }
    for msg in super::meta::qualified_name_errors(k) {
        causes.push(invalid(field.clone(), &json!(k), &msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(causes: &[Cause]) -> Vec<(&str, &str)> {
        causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn a_template_is_checked_as_upstream_checks_a_pod() {
        let spec = json!({
            "restartPolicy": "OnFailure",
            "containers": [
                {"name": "web", "image": "", "volumeMounts": [{"name": "missing", "mountPath": "/x"}]},
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 0, "protocol": "HTTP"}]},
            ],
            "tolerations": [{"operator": "Equal"}],
        });
        let causes = validate(Some(&spec), "spec.template.spec", &["Always"]);
        assert_eq!(
            fields(&causes),
            vec![
                (
                    "spec.template.spec.containers[0].image",
                    "FieldValueRequired"
                ),
                (
                    "spec.template.spec.containers[0].volumeMounts[0].name",
                    "FieldValueNotFound"
                ),
                (
                    "spec.template.spec.containers[1].name",
                    "FieldValueDuplicate"
                ),
                (
                    "spec.template.spec.containers[1].ports[0].containerPort",
                    "FieldValueInvalid"
                ),
                (
                    "spec.template.spec.containers[1].ports[0].protocol",
                    "FieldValueNotSupported"
                ),
                ("spec.template.spec.restartPolicy", "FieldValueNotSupported"),
                (
                    "spec.template.spec.tolerations[0].operator",
                    "FieldValueInvalid"
                ),
            ]
        );
        assert_eq!(
            causes[5].message,
            "Unsupported value: \"OnFailure\": supported values: \"Always\""
        );
        let none = validate(None, "spec", &["Always", "OnFailure", "Never"]);
        assert_eq!(
            fields(&none),
            vec![
                ("spec.containers", "FieldValueRequired"),
                ("spec.restartPolicy", "FieldValueRequired"),
            ]
        );
    }
}
