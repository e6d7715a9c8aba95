//! Services: DNS-1035 names, DELETE answering with the object, the defaults of upstream's
//! `SetDefaults_Service`, and on update the type-dependent fields dropped (`service_updates`).
//! IP families are settled where addresses are allocated (`service_families`, `api::rest`).

use crate::jsonptr::At;
use serde_json::{Map, Value, json};

use super::podspec::{child, items, or_set, or_zero};
use super::{NameRule, Strategy};

/// Seconds a ClientIP session sticks when the client names no timeout (upstream's
/// `DefaultClientIPServiceAffinitySeconds`, three hours).
const CLIENT_IP_TIMEOUT_SECONDS: i64 = 10800;

#[derive(Debug)]
pub struct Services;

impl Strategy for Services {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::service_rules::validate(obj)
    }

    /// `ValidateServiceUpdate`: the primary cluster IP and family stay; then the create rules.
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = super::service_families::validate_update(&obj["spec"], &old["spec"]);
        causes.extend(super::service_rules::validate(obj));
        causes
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        super::service_updates::drop_type_dependent_fields(obj, old);
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Label1035
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        default_service_spec(s);
    }
}

fn default_service_spec(s: &mut Map<String, Value>) {
    or_zero(s, "sessionAffinity", "None");
    match s.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            s.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let timeout = s
                .get("sessionAffinityConfig")
                .and_then(|c| c.at("/clientIP/timeoutSeconds"));
            if matches!(timeout, None | Some(Value::Null)) {
                s.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": CLIENT_IP_TIMEOUT_SECONDS}}),
                );
            }
        }
        _ => {}
    }
    or_zero(s, "type", "ClusterIP");
    let ty = s
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    for p in items(s, "ports") {
        or_zero(p, "protocol", "TCP");
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(t)) => t.is_empty(),
            _ => false,
        };
        if target_unset {
            // The port's number (0 when the port has none, which validation then refuses).
            let port = p.get("port").cloned().unwrap_or(json!(0));
            p.insert("targetPort".into(), port);
        }
    }
    let has_external_ips = s
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally_accessible {
        or_zero(s, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        or_set(s, "internalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        or_set(s, "allocateLoadBalancerNodePorts", json!(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(spec: Value) -> Value {
        let mut s = json!({"spec": spec});
        Services.default(&mut s);
        s["spec"].take()
    }

    #[test]
    fn a_bare_service_gets_type_affinity_protocol_and_target_port() {
        let s = defaulted(json!({"selector": {"app": "x"}, "ports": [{"port": 80}]}));
        assert_eq!(s["type"], "ClusterIP");
        assert_eq!(s["sessionAffinity"], "None");
        assert_eq!(
            s["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(s["internalTrafficPolicy"], "Cluster");
        assert!(
            s.get("clusterIP").is_none() && s.get("ipFamilies").is_none(),
            "allocation settles addresses and families, not defaulting"
        );
    }

    #[test]
    fn client_ip_affinity_gets_its_timeout_and_node_ports_their_traffic_policy() {
        let s = defaulted(json!({"type": "NodePort", "sessionAffinity": "ClientIP",
                                 "ports": [{"port": 80, "targetPort": "http"}]}));
        assert_eq!(
            s["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
        assert_eq!(s["externalTrafficPolicy"], "Cluster");
        assert_eq!(s["ports"][0]["targetPort"], "http");
    }
}
