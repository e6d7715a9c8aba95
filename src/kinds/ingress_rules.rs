//! Ingress validation, as upstream's `ValidateIngressCreate`/`ValidateIngressUpdate`
//! (`pkg/apis/networking/validation`): a default backend or rules; hosts (DNS names, wildcards,
//! not IPs); HTTP paths by path type; service or resource backends; TLS hosts and secret names;
//! the class name and the legacy class annotation agreeing with it.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::NameRule;
use super::meta::{name_errors, path_segment_errors, subdomain_errors};
use super::podspec_rules::{invalid, not_supported, port_name_errors, required, required_why};
use crate::api::status::Cause;

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Upstream's `IsWildcardDNS1123Subdomain`: `*.` then a DNS subdomain.
fn wildcard_errors(host: &str) -> Vec<String> {
    let mut out = Vec::new();
    if host.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    let ok = host.strip_prefix("*.").is_some_and(|rest| {
        !rest.is_empty()
            && rest.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    if !ok {
        out.push("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
    }
    out
}

fn host_errors(field: String, host: &str, causes: &mut Vec<Cause>) {
    let msgs: Vec<String> = if host.contains('*') {
        wildcard_errors(host)
    } else {
        subdomain_errors(host)
            .into_iter()
            .map(String::from)
            .collect()
    };
    for m in msgs {
        causes.push(invalid(field.clone(), &json!(host), &m));
    }
}

fn backend(b: &Value, f: &str, causes: &mut Vec<Cause>) {
    let resource = b.get("resource").filter(|v| !v.is_null());
    let service = b.get("service").filter(|v| !v.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => causes.push(invalid(
            f.to_string(),
            &json!(""),
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let f = format!("{f}.resource");
            if let Some(g) = r.get("apiGroup").and_then(Value::as_str) {
                for m in subdomain_errors(g) {
                    causes.push(invalid(format!("{f}.apiGroup"), &json!(g), m));
                }
            }
            for key in ["kind", "name"] {
                match r.get(key).and_then(Value::as_str).unwrap_or("") {
                    "" => causes.push(required_why(
                        format!("{f}.{key}"),
                        &format!("{key} is required"),
                    )),
                    v => {
                        for m in path_segment_errors(v) {
                            causes.push(invalid(format!("{f}.{key}"), &json!(v), &m));
                        }
                    }
                }
            }
        }
        (None, Some(s)) => {
            match s.get("name").and_then(Value::as_str).unwrap_or("") {
                "" => causes.push(required(format!("{f}.service.name"))),
                n => {
                    for m in name_errors(NameRule::Label, n, false) {
                        causes.push(invalid(format!("{f}.service.name"), &json!(n), &m));
                    }
                }
            }
            let port = &s["port"];
            let name = port.get("name").and_then(Value::as_str).unwrap_or("");
            let number = port.get("number").and_then(Value::as_i64).unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => causes.push(invalid(
                    f.to_string(),
                    &json!(""),
                    "cannot set both port name & port number",
                )),
                (false, true) => {
                    for m in port_name_errors(name) {
                        causes.push(invalid(format!("{f}.service.port.name"), &json!(name), m));
                    }
                }
                (true, false) => {
                    if !(1..=65535).contains(&number) {
                        causes.push(invalid(
                            format!("{f}.service.port.number"),
                            &json!(number),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
                (true, true) => causes.push(required_why(
                    f.to_string(),
                    "port name or number is required",
                )),
            }
        }
        (None, None) => causes.push(invalid(
            f.to_string(),
            &json!(""),
            "resource or service backend is required",
        )),
    }
}

fn http_path(p: &Value, f: &str, causes: &mut Vec<Cause>) {
    let Some(ty) = p.get("pathType").filter(|v| !v.is_null()) else {
        causes.push(required_why(
            format!("{f}.pathType"),
            "pathType must be specified",
        ));
        return;
    };
    let path = p.get("path").and_then(Value::as_str).unwrap_or("");
    let pf = format!("{f}.path");
    match ty.as_str().unwrap_or("") {
        "Exact" | "Prefix" => {
            if !path.starts_with('/') {
                causes.push(invalid(
                    pf.clone(),
                    &json!(path),
                    "must be an absolute path",
                ));
            }
            if !path.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if path.contains(seq) {
                        causes.push(invalid(
                            pf.clone(),
                            &json!(path),
                            &format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if path.ends_with(suffix) {
                        causes.push(invalid(
                            pf.clone(),
                            &json!(path),
                            &format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !path.is_empty() && !path.starts_with('/') {
                causes.push(invalid(pf, &json!(path), "must be an absolute path"));
            }
        }
        _ => causes.push(not_supported(format!("{f}.pathType"), ty, PATH_TYPES)),
    }
    backend(&p["backend"], &format!("{f}.backend"), causes);
}

pub fn validate(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let rules = spec.get("rules").and_then(Value::as_array);
    let default_backend = spec.get("defaultBackend").filter(|v| !v.is_null());
    if rules.is_none_or(Vec::is_empty) && default_backend.is_none() {
        causes.push(invalid(
            "spec".into(),
            spec.get("rules").unwrap_or(&Value::Null),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        backend(b, "spec.defaultBackend", &mut causes);
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let f = format!("spec.rules[{i}]");
        let host = rule.get("host").and_then(Value::as_str).unwrap_or("");
        if !host.is_empty() {
            if host.parse::<std::net::IpAddr>().is_ok() {
                causes.push(invalid(
                    format!("{f}.host"),
                    &json!(host),
                    "must be a DNS name, not an IP address",
                ));
            }
            host_errors(format!("{f}.host"), host, &mut causes);
        }
        if let Some(http) = rule.get("http").filter(|v| !v.is_null()) {
            let paths = http.get("paths").and_then(Value::as_array);
            if paths.is_none_or(Vec::is_empty) {
                causes.push(required(format!("{f}.http.paths")));
            }
            for (j, p) in paths.into_iter().flatten().enumerate() {
                http_path(p, &format!("{f}.http.paths[{j}]"), &mut causes);
            }
        }
    }
    for (i, tls) in spec
        .get("tls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, host) in tls
            .get("hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(h) = host.as_str() {
                host_errors(format!("spec.tls[{i}].hosts[{j}]"), h, &mut causes);
            }
        }
        let secret = tls.get("secretName").and_then(Value::as_str).unwrap_or("");
        if !secret.is_empty() {
            for m in subdomain_errors(secret) {
                causes.push(invalid(
                    format!("spec.tls[{i}].secretName"),
                    &json!(secret),
                    m,
                ));
            }
        }
    }
    let class = spec.get("ingressClassName").and_then(Value::as_str);
    if let Some(c) = class {
        for m in subdomain_errors(c) {
            causes.push(invalid("spec.ingressClassName".into(), &json!(c), m));
        }
    }
    if let (Some(annotated), Some(c)) = (
        obj.at("/metadata/annotations")
            .and_then(|a| a.get(CLASS_ANNOTATION))
            .and_then(Value::as_str),
        class,
    ) && annotated != c
    {
        causes.push(invalid(
            format!("annotations.{CLASS_ANNOTATION}"),
            &json!(annotated),
            "must match `ingressClassName` when both are specified",
        ));
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
    fn an_ingress_needs_a_backend_or_rules_and_valid_paths() {
        assert_eq!(
            fields(json!({"spec": {}})),
            [("spec".to_string(), "FieldValueInvalid".to_string())]
        );
        let got = fields(
            json!({"spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [
            {"path": "a", "pathType": "Prefix", "backend": {"service": {"name": "s"}}},
            {"path": "/x", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}),
        );
        assert_eq!(
            got,
            [
                (
                    "spec.rules[0].host".to_string(),
                    "FieldValueInvalid".to_string()
                ),
                (
                    "spec.rules[0].http.paths[0].path".into(),
                    "FieldValueInvalid".into()
                ),
                (
                    "spec.rules[0].http.paths[0].backend".into(),
                    "FieldValueRequired".into()
                ),
                (
                    "spec.rules[0].http.paths[1].pathType".into(),
                    "FieldValueRequired".into()
                ),
            ]
        );
        assert!(
            fields(
                json!({"spec": {"rules": [{"host": "*.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "s", "port": {"name": "http"}}}}]}}]}})
            )
            .is_empty()
        );
    }
}
