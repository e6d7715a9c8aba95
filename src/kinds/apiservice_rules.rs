//! Upstream's APIService validation (`ValidateAPIService` of kube-aggregator, which its
//! update runs again): named `<version>.<group>`, a DNS group (only `v1` may have none) and
//! version, priorities in range, and a local APIService (no service) with no CA bundle or
//! TLS skipping; a status update checks its conditions' statuses.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::NameRule;
use super::field::{invalid, not_supported, required, required_why};
use super::json_read::str_at;
use super::meta::{name_errors, subdomain_errors};
use crate::api::status::Cause;

/// Bytes a base64 text decodes to.
fn decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|b| *b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}

/// Every cause of an APIService's own rules, in upstream's order.
pub fn validate(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let (group, version) = (str_at(spec, "group"), str_at(spec, "version"));
    let name = obj
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let wanted = format!("{version}.{group}");
    if !name.is_empty() && name != wanted {
        causes.push(invalid(
            "metadata.name".into(),
            &json!(name),
            &format!("must be `spec.version+\".\"+spec.group`: {}", json!(wanted)),
        ));
    }
    if group.is_empty() && version != "v1" {
        causes.push(required_why(
            "spec.group".into(),
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for msg in subdomain_errors(group) {
            causes.push(invalid("spec.group".into(), &json!(group), msg));
        }
    }
    for msg in name_errors(NameRule::Label1035, version, false) {
        causes.push(invalid("spec.version".into(), &json!(version), &msg));
    }
    let number = |k: &str| spec.get(k).and_then(Value::as_i64).unwrap_or(0);
    for (key, max) in [("groupPriorityMinimum", 20000), ("versionPriority", 1000)] {
        let n = number(key);
        if n <= 0 || n > max {
            causes.push(invalid(
                format!("spec.{key}"),
                &json!(n),
                &format!("must be positive and less than {max}"),
            ));
        }
    }
    let ca_bytes = decoded_len(str_at(spec, "caBundle"));
    let skip_tls = spec.get("insecureSkipTLSVerify") == Some(&json!(true));
    let Some(service) = spec.get("service").filter(|s| s.is_object()) else {
        if ca_bytes != 0 {
            causes.push(invalid(
                "spec.caBundle".into(),
                &json!(format!("{ca_bytes} bytes")),
                "local APIServices may not have a caBundle",
            ));
        }
        if skip_tls {
            causes.push(invalid(
                "spec.insecureSkipTLSVerify".into(),
                &json!(true),
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return causes;
    };
    for key in ["namespace", "name"] {
        if str_at(service, key).is_empty() {
            causes.push(required(format!("spec.service.{key}")));
        }
    }
    let port = service.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        causes.push(invalid(
            "spec.service.port".into(),
            &json!(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    if skip_tls && ca_bytes > 0 {
        causes.push(invalid(
            "spec.insecureSkipTLSVerify".into(),
            &json!(true),
            "may not be true if caBundle is present",
        ));
    }
    causes
}

/// A status update: each condition's status is True, False or Unknown.
pub fn validate_status(obj: &Value) -> Vec<Cause> {
    const STATUSES: &[&str] = &["True", "False", "Unknown"];
    let conditions = obj.at("/status/conditions").and_then(Value::as_array);
    conditions
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| !STATUSES.contains(&str_at(c, "status")))
        .map(|(i, c)| {
            not_supported(
                format!("status.conditions[{i}].status"),
                &json!(str_at(c, "status")),
                STATUSES,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

    fn service(spec: Value) -> Value {
        json!({"metadata": {"name": "v1.example.com"}, "spec": spec})
    }

    #[test]
    fn an_api_service_is_named_and_prioritised_as_upstream() {
        let good = service(json!({"group": "example.com", "version": "v1",
            "groupPriorityMinimum": 100, "versionPriority": 10,
            "service": {"namespace": "ns", "name": "svc"}, "caBundle": "AAAA"}));
        assert_eq!(fields(&validate(&good)), vec![]);
        let mut bad = good.clone();
        bad["spec"]["version"] = json!("v2");
        bad["spec"]["versionPriority"] = json!(1001);
        bad["spec"]["service"] = json!({"name": "svc", "port": 0});
        bad["spec"]["insecureSkipTLSVerify"] = json!(true);
        let causes = validate(&bad);
        assert_eq!(
            fields(&causes),
            vec![
                ("metadata.name", "FieldValueInvalid"),
                ("spec.versionPriority", "FieldValueInvalid"),
                ("spec.service.namespace", "FieldValueRequired"),
                ("spec.service.port", "FieldValueInvalid"),
                ("spec.insecureSkipTLSVerify", "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            causes[0].message,
            "Invalid value: \"v1.example.com\": must be `spec.version+\".\"+spec.group`: \"v2.example.com\""
        );
        assert_eq!(
            causes[1].message,
            "Invalid value: 1001: must be positive and less than 1000"
        );
    }

    #[test]
    fn a_local_api_service_has_no_ca_bundle() {
        let local = service(json!({"group": "example.com", "version": "v1",
            "groupPriorityMinimum": 100, "versionPriority": 10, "caBundle": "AAAAAA=="}));
        let causes = validate(&local);
        assert_eq!(
            fields(&causes),
            vec![("spec.caBundle", "FieldValueInvalid")]
        );
        assert_eq!(
            causes[0].message,
            "Invalid value: \"4 bytes\": local APIServices may not have a caBundle"
        );
        let core = json!({"metadata": {"name": "v1."}, "spec": {"version": "v1",
            "groupPriorityMinimum": 18000, "versionPriority": 1}});
        assert_eq!(fields(&validate(&core)), vec![]);
    }

    #[test]
    fn conditions_have_known_statuses() {
        let s = json!({"status": {"conditions": [{"type": "Available", "status": "True"},
                                                 {"type": "Available", "status": "Maybe"}]}});
        assert_eq!(
            fields(&validate_status(&s)),
            vec![("status.conditions[1].status", "FieldValueNotSupported")]
        );
    }
}
