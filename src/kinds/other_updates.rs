//! What may change once they exist in the smaller groups' objects (upstream's
//! `Validate<Kind>Update` in `pkg/apis/{networking,discovery,node,scheduling,resource}`): an
//! IngressClass's controller, an IPAddress's parent, a ServiceCIDR's ranges (but for a second
//! family added), an EndpointSlice's address type, a RuntimeClass's handler, a PriorityClass's
//! value and preemption policy, a ResourceClaim's or template's spec, a ResourceSlice's driver,
//! pool and node. Each function gives the update's own causes; the registry rows
//! (`super::strategy_for`) add the create rules where upstream runs them too.

use crate::jsonptr::At;
use serde_json::Value;

use super::field::{forbidden, immutable, same};
use crate::api::status::Cause;

fn present<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    obj.at(pointer).filter(|v| !v.is_null())
}

/// `pointer` of `new` differs from `old`'s: `field is immutable` at `field`.
fn fixed(new: &Value, old: &Value, pointer: &str, field: &str) -> Option<Cause> {
    let n = present(new, pointer);
    (!same(n, present(old, pointer))).then(|| immutable(field.into(), n))
}

/// A string member where absent and empty are the same (a Go string field).
fn fixed_string(new: &Value, old: &Value, pointer: &str, field: &str) -> Option<Cause> {
    let text = |obj: &Value| {
        obj.at(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let n = text(new);
    (n != text(old)).then(|| immutable(field.into(), Some(&Value::from(n))))
}

pub fn ingress_class(new: &Value, old: &Value) -> Vec<Cause> {
    fixed_string(new, old, "/spec/controller", "spec.controller")
        .into_iter()
        .collect()
}

pub fn ip_address(new: &Value, old: &Value) -> Vec<Cause> {
    fixed(new, old, "/spec/parentRef", "spec.parentRef")
        .into_iter()
        .collect()
}

/// `ValidateServiceCIDRUpdate`: the ranges are fixed, but a single-family ServiceCIDR may
/// gain a range of the other family (the create rules check that it is one).
pub fn service_cidr(new: &Value, old: &Value) -> Vec<Cause> {
    let cidrs = |obj: &Value| {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        super::json_read::strs(spec, "cidrs")
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (n, o) = (cidrs(new), cidrs(old));
    let changed = |i: usize| {
        immutable(
            format!("spec.cidrs[{i}]"),
            Some(&Value::from(n[i].as_str())),
        )
    };
    match (o.len(), n.len()) {
        (a, b) if a == b => (0..a).filter(|&i| n[i] != o[i]).map(changed).collect(),
        (1, 2) => (n[0] != o[0]).then(|| changed(0)).into_iter().collect(),
        _ => vec![immutable("spec.cidrs".into(), present(new, "/spec/cidrs"))],
    }
}

pub fn endpoint_slice(new: &Value, old: &Value) -> Vec<Cause> {
    fixed_string(new, old, "/addressType", "addressType")
        .into_iter()
        .collect()
}

pub fn runtime_class(new: &Value, old: &Value) -> Vec<Cause> {
    fixed_string(new, old, "/handler", "handler")
        .into_iter()
        .collect()
}

/// `ValidatePriorityClassUpdate` (upstream runs no create rules on an update).
pub fn priority_class(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let value = |obj: &Value| obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    if value(new) != value(old) {
        causes.push(forbidden(
            "value".into(),
            "may not be changed in an update.",
        ));
    }
    causes.extend(fixed(new, old, "/preemptionPolicy", "preemptionPolicy"));
    causes
}

/// `ValidateResourceClaimUpdate` and `ValidateResourceClaimTemplateUpdate`: the spec is fixed
/// (and, being fixed, not validated again).
pub fn claim_spec(new: &Value, old: &Value) -> Vec<Cause> {
    fixed(new, old, "/spec", "spec").into_iter().collect()
}

/// `ValidateResourceSliceUpdate`'s own rules: the pool's name, the driver and the node.
pub fn resource_slice(new: &Value, old: &Value) -> Vec<Cause> {
    [
        fixed_string(new, old, "/spec/pool/name", "spec.pool.name"),
        fixed_string(new, old, "/spec/driver", "spec.driver"),
        fixed(new, old, "/spec/nodeName", "spec.nodeName"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::kinds::cause_triples as messages;

    fn invalid(field: &str, shown: &str) -> (String, String, String) {
        (
            field.into(),
            "FieldValueInvalid".into(),
            format!("Invalid value: {shown}: field is immutable"),
        )
    }

    type Rule = fn(&Value, &Value) -> Vec<Cause>;
    type Triple = (String, String, String);

    #[test]
    fn identity_fields_of_small_kinds_are_fixed() {
        let cases: Vec<(Rule, Value, Value, Triple)> = vec![
            (
                ingress_class,
                json!({"spec": {"controller": "a/b"}}),
                json!({"spec": {"controller": "a/c"}}),
                invalid("spec.controller", "\"a/c\""),
            ),
            (
                ip_address,
                json!({"spec": {"parentRef": {"resource": "services", "name": "a"}}}),
                json!({"spec": {"parentRef": {"resource": "services", "name": "b"}}}),
                invalid(
                    "spec.parentRef",
                    "{\"name\":\"b\",\"resource\":\"services\"}",
                ),
            ),
            (
                endpoint_slice,
                json!({"addressType": "IPv4"}),
                json!({"addressType": "IPv6"}),
                invalid("addressType", "\"IPv6\""),
            ),
            (
                runtime_class,
                json!({"handler": "runc"}),
                json!({"handler": "kata"}),
                invalid("handler", "\"kata\""),
            ),
            (
                claim_spec,
                json!({"spec": {"devices": {"requests": [{"name": "a"}]}}}),
                json!({"spec": {"devices": {"requests": [{"name": "b"}]}}}),
                invalid("spec", "{\"devices\":{\"requests\":[{\"name\":\"b\"}]}}"),
            ),
            (
                resource_slice,
                json!({"spec": {"driver": "d", "pool": {"name": "p"}, "nodeName": "n"}}),
                json!({"spec": {"driver": "d", "pool": {"name": "p"}, "allNodes": true}}),
                invalid("spec.nodeName", "null"),
            ),
        ];
        for (rule, old, new, want) in cases {
            assert!(rule(&old, &old).is_empty());
            assert_eq!(messages(rule(&new, &old)), vec![want]);
        }
    }

    #[test]
    fn a_priority_class_keeps_its_value_and_policy() {
        let old = json!({"value": 10, "preemptionPolicy": "PreemptLowerPriority"});
        let mut ok = old.clone();
        ok["description"] = json!("now described");
        assert!(priority_class(&ok, &old).is_empty());
        let new = json!({"value": 11, "preemptionPolicy": "Never"});
        assert_eq!(
            messages(priority_class(&new, &old)),
            vec![
                (
                    "value".into(),
                    "FieldValueForbidden".into(),
                    "Forbidden: may not be changed in an update.".into()
                ),
                invalid("preemptionPolicy", "\"Never\""),
            ]
        );
    }

    #[test]
    fn a_service_cidr_may_only_gain_a_second_family() {
        let old = json!({"spec": {"cidrs": ["10.0.0.0/24"]}});
        let dual = json!({"spec": {"cidrs": ["10.0.0.0/24", "fd00::/64"]}});
        assert!(service_cidr(&dual, &old).is_empty());
        let moved = json!({"spec": {"cidrs": ["10.1.0.0/24"]}});
        assert_eq!(
            messages(service_cidr(&moved, &old)),
            vec![invalid("spec.cidrs[0]", "\"10.1.0.0/24\"")]
        );
        assert_eq!(
            messages(service_cidr(&old, &dual)),
            vec![invalid("spec.cidrs", "[\"10.0.0.0/24\"]")]
        );
    }
}
