//! Network kinds: NetworkPolicies (port protocol, policy types), EndpointSlices and Endpoints
//! (port name and protocol; validation in `endpoint_rules`), Ingresses (generation; validation
//! in `ingress_rules`). Upstream's `SetDefaults_*` of `pkg/apis/networking/v1`, `discovery/v1`
//! and `core/v1`.

use serde_json::{Value, json};

use super::Strategy;
use super::podspec::{child, items, or_set, or_zero};

/// Ingresses: generation, and upstream's validation (`ingress_rules`).
#[derive(Debug)]
pub struct Ingresses;

impl Strategy for Ingresses {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::ingress_rules::validate(obj)
    }

    /// As on create, less the class annotation check (upstream checks it on create only).
    fn validate_update(&self, obj: &Value, _old: &Value) -> Vec<crate::api::status::Cause> {
        super::ingress_rules::validate(obj)
            .into_iter()
            .filter(|c| !c.field.starts_with("annotations."))
            .collect()
    }
}

#[derive(Debug)]
pub struct NetworkPolicies;

impl Strategy for NetworkPolicies {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::network_policy_rules::validate(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
            return;
        };
        for dir in ["ingress", "egress"] {
            for rule in items(s, dir) {
                for p in items(rule, "ports") {
                    // A pointer upstream: "" is a value (refused by validation), not unset.
                    or_set(p, "protocol", "TCP");
                }
            }
        }
        let no_types = s
            .get("policyTypes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if no_types {
            let egress = s
                .get("egress")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty());
            let types = if egress {
                json!(["Ingress", "Egress"])
            } else {
                json!(["Ingress"])
            };
            s.insert("policyTypes".into(), types);
        }
    }
}

#[derive(Debug)]
pub struct EndpointSlices;

impl Strategy for EndpointSlices {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::endpoint_rules::endpoint_slice(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = self.validate_create(obj);
        causes.extend(super::other_updates::endpoint_slice(obj, old));
        causes
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        for p in items(o, "ports") {
            or_set(p, "name", "");
            or_set(p, "protocol", "TCP");
        }
    }
}

#[derive(Debug)]
pub struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::endpoint_rules::endpoints(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        for subset in items(o, "subsets") {
            for p in items(subset, "ports") {
                or_zero(p, "protocol", "TCP");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_with_egress_rules_covers_both_directions() {
        let mut p = json!({"spec": {"podSelector": {},
            "egress": [{"ports": [{"port": 53}]}]}});
        NetworkPolicies.default(&mut p);
        assert_eq!(p["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(p["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let mut q = json!({"spec": {"podSelector": {}}});
        NetworkPolicies.default(&mut q);
        assert_eq!(q["spec"]["policyTypes"], json!(["Ingress"]));
    }

    #[test]
    fn endpoint_slice_ports_get_a_name_and_protocol() {
        let mut e = json!({"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]});
        EndpointSlices.default(&mut e);
        assert_eq!(
            e["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );
    }
}
