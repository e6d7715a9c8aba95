//! Nodes: DELETE answers with the node, and the v1 conversion's rule between the deprecated
//! `spec.podCIDR` and `spec.podCIDRs` (a podCIDR that is set wins; podCIDR is podCIDRs' first).

use serde_json::{Value, json};

use super::Strategy;
use super::podspec::existing;

#[derive(Debug)]
pub struct Nodes;

impl Strategy for Nodes {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::small_rules::node(obj)
    }

    /// Upstream runs the create rules, then `ValidateNodeUpdate` (the status subresource
    /// runs the same).
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        let mut causes = self.validate_create(obj);
        causes.extend(super::core_updates::node(obj, old));
        causes
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| existing(o, "spec")) else {
            return;
        };
        let cidr = s
            .get("podCIDR")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let first = s
            .get("podCIDRs")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .and_then(Value::as_str)
            .map(str::to_string);
        if !cidr.is_empty() && first.as_deref() != Some(cidr.as_str()) {
            s.insert("podCIDRs".into(), json!([cidr]));
        } else if let Some(first) = first {
            s.insert("podCIDR".into(), json!(first));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(spec: Value) -> Value {
        let mut n = json!({"spec": spec});
        Nodes.default(&mut n);
        n["spec"].take()
    }

    #[test]
    fn pod_cidr_wins_over_a_different_first_pod_cidrs_entry() {
        let s = cidrs(json!({"podCIDR": "10.0.0.0/24", "podCIDRs": ["bad"]}));
        assert_eq!(s["podCIDRs"], json!(["10.0.0.0/24"]));
        let s = cidrs(json!({"podCIDR": "", "podCIDRs": ["10.0.0.0/24"]}));
        assert_eq!(s["podCIDR"], "10.0.0.0/24");
        let s = cidrs(json!({"podCIDR": "10.0.0.0/24", "podCIDRs": []}));
        assert_eq!(s["podCIDRs"], json!(["10.0.0.0/24"]));
    }
}
