//! Service validation (`ValidateService` in `pkg/apis/core/validation`, the part kapi checks
//! so far): ports (names, numbers, protocols, duplicates), type, session affinity, traffic
//! policies, selector values and requested cluster IPs. Services' defaults are in `services`.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::field::forbidden;
use super::podspec_rules::{duplicate, invalid, not_supported, required};
use crate::api::status::Cause;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn port_number(v: &Value, field: String, causes: &mut Vec<Cause>) {
    if let Some(n) = v.as_i64()
        && !(1..=65535).contains(&n)
    {
        causes.push(invalid(field, v, "must be between 1 and 65535, inclusive"));
    }
}

pub fn validate(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let s = |k: &str| spec.get(k).and_then(Value::as_str).unwrap_or("");
    let ty = match s("type") {
        "" => "ClusterIP",
        t => t,
    };
    let ports = spec.get("ports").and_then(Value::as_array);
    let ports: &[Value] = ports.map(Vec::as_slice).unwrap_or(&[]);
    if ports.is_empty() && ty != "ExternalName" && s("clusterIP") != "None" {
        causes.push(required("spec.ports".into()));
    }
    let mut names = HashSet::new();
    let mut node_ports = HashSet::new();
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let f = format!("spec.ports[{i}]");
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            if ports.len() > 1 {
                causes.push(required(format!("{f}.name")));
            }
        } else if !names.insert(name) {
            causes.push(duplicate(format!("{f}.name"), &json!(name)));
        } else {
            for msg in super::meta::name_errors(NameRule::Label, name, false) {
                causes.push(invalid(format!("{f}.name"), &json!(name), &msg));
            }
        }
        port_number(
            p.get("port").unwrap_or(&json!(0)),
            format!("{f}.port"),
            &mut causes,
        );
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
        if !PROTOCOLS.contains(&proto) {
            causes.push(not_supported(
                format!("{f}.protocol"),
                &json!(proto),
                PROTOCOLS,
            ));
        }
        match p.get("targetPort") {
            Some(Value::String(t)) => {
                for msg in super::meta::port_name_errors(t) {
                    causes.push(invalid(format!("{f}.targetPort"), &json!(t), msg));
                }
            }
            Some(target) if target.is_number() => {
                port_number(target, format!("{f}.targetPort"), &mut causes)
            }
            _ => {}
        }
        if let Some(np) = p.get("nodePort").and_then(Value::as_i64)
            && np != 0
            && !node_ports.insert((np, proto))
        {
            causes.push(duplicate(format!("{f}.nodePort"), &json!(np)));
        }
        let key = (p.get("port").and_then(Value::as_i64).unwrap_or(0), proto);
        if !seen.insert(key) {
            causes.push(duplicate(f, &json!(format!("{}/{}", key.0, key.1))));
        }
    }
    if let Some(hc) = spec.get("healthCheckNodePort").and_then(Value::as_i64)
        && hc != 0
        && !(ty == "LoadBalancer" && s("externalTrafficPolicy") == "Local")
    {
        causes.push(invalid(
            "spec.healthCheckNodePort".into(),
            &json!(hc),
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    }
    if !TYPES.contains(&ty) {
        causes.push(not_supported("spec.type".into(), &json!(ty), TYPES));
    }
    if let Some(a) = spec.get("sessionAffinity").and_then(Value::as_str)
        && !["ClientIP", "None"].contains(&a)
    {
        causes.push(not_supported(
            "spec.sessionAffinity".into(),
            &json!(a),
            &["ClientIP", "None"],
        ));
    }
    if let Some(p) = spec.get("externalTrafficPolicy").and_then(Value::as_str) {
        if !["Cluster", "Local"].contains(&p) {
            causes.push(not_supported(
                "spec.externalTrafficPolicy".into(),
                &json!(p),
                &["Cluster", "Local"],
            ));
        } else if !matches!(ty, "NodePort" | "LoadBalancer") {
            causes.push(invalid(
                "spec.externalTrafficPolicy".into(),
                &json!(p),
                "may only be set for externally-accessible services",
            ));
        }
    }
    if let Some(sel) = spec.get("selector").and_then(Value::as_object) {
        for (k, v) in sel {
            for msg in super::meta::qualified_name_errors(k) {
                causes.push(invalid("spec.selector".into(), &json!(k), &msg));
            }
            let v = v.as_str().unwrap_or("");
            for msg in super::meta::label_value_errors(v) {
                causes.push(invalid("spec.selector".into(), &json!(v), msg));
            }
        }
    }
    match ty {
        "NodePort" | "LoadBalancer" if s("clusterIP") == "None" => {
            causes.push(invalid(
                "spec.clusterIPs[0]".into(),
                &json!("None"),
                &format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            let cname = s("externalName").trim_end_matches('.');
            if cname.is_empty() {
                causes.push(required("spec.externalName".into()));
            } else {
                for msg in super::meta::name_errors(NameRule::Subdomain, cname, false) {
                    causes.push(invalid("spec.externalName".into(), &json!(cname), &msg));
                }
            }
        }
        "ClusterIP" => {
            for (i, p) in ports.iter().enumerate() {
                if p["nodePort"].as_i64().unwrap_or(0) != 0 {
                    causes.push(forbidden(
                        format!("spec.ports[{i}].nodePort"),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                }
            }
        }
        _ => {}
    }
    causes.extend(super::service_families::validate(spec));
    causes
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_type_and_policies_are_checked_as_upstream() {
        let svc = json!({"spec": {
            "type": "Weird",
            "ports": [{"name": "http", "port": 99999}, {"name": "http", "port": 80, "protocol": "HTTP"}],
            "externalTrafficPolicy": "Local",
            "clusterIP": "not-an-ip",
            "clusterIPs": ["not-an-ip"],
        }});
        let causes = validate(&svc);
        let fields: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("spec.ports[0].port", "FieldValueInvalid"),
                ("spec.ports[1].name", "FieldValueDuplicate"),
                ("spec.ports[1].protocol", "FieldValueNotSupported"),
                ("spec.type", "FieldValueNotSupported"),
                ("spec.externalTrafficPolicy", "FieldValueInvalid"),
                ("spec.clusterIPs[0]", "FieldValueInvalid"),
            ]
        );
        let ok = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}});
        assert!(validate(&ok).is_empty());
    }
}
