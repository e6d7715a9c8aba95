//! NetworkPolicy validation, as upstream's `ValidateNetworkPolicySpec`
//! (`pkg/apis/networking/validation`): selectors, ports (protocol, number or name, endPort),
//! peers (one of pod/namespace selector or ipBlock; ipBlock alone), ipBlock CIDRs and their
//! strict-subset exceptions, and policy types.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::podspec_rules::{invalid, not_supported, port_name_errors, required, required_why};
use super::workload_rules::label_selector;
use crate::api::status::Cause;

const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

fn port_range_errors(n: i64) -> Option<&'static str> {
    (!(1..=65535).contains(&n)).then_some("must be between 1 and 65535, inclusive")
}

fn port(p: &Value, f: &str, causes: &mut Vec<Cause>) {
    if let Some(proto) = p.get("protocol").filter(|v| !v.is_null())
        && !matches!(proto.as_str(), Some("TCP" | "UDP" | "SCTP"))
    {
        causes.push(not_supported(
            format!("{f}.protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let end = p.get("endPort").and_then(Value::as_i64);
    match p.get("port").filter(|v| !v.is_null()) {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            if let Some(m) = port_range_errors(n) {
                causes.push(invalid(format!("{f}.port"), &json!(n), m));
            }
            if let Some(e) = end {
                if e < n {
                    causes.push(invalid(
                        format!("{f}.endPort"),
                        &json!(n),
                        "must be greater than or equal to `port`",
                    ));
                }
                if let Some(m) = port_range_errors(e) {
                    causes.push(invalid(format!("{f}.endPort"), &json!(e), m));
                }
            }
        }
        Some(Value::String(name)) => {
            if let Some(e) = end {
                causes.push(invalid(
                    format!("{f}.endPort"),
                    &json!(e),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for m in port_name_errors(name) {
                causes.push(invalid(format!("{f}.port"), &json!(name), m));
            }
        }
        _ => {
            if let Some(e) = end {
                causes.push(invalid(
                    format!("{f}.endPort"),
                    &json!(e),
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

/// A CIDR as upstream's `ParseCIDRSloppy` reads it: the network address and prefix length.
fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn as_u128(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v) => (u32::from(v) as u128, 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

/// Whether `inner` lies within `outer` with a longer prefix (a strict subset).
fn strict_subset(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    let ((o, width), (i, iwidth)) = (as_u128(outer.0), as_u128(inner.0));
    if width != iwidth || outer.1 >= inner.1 {
        return false;
    }
    let shift = u32::from(width - outer.1);
    let mask = if shift >= 128 { 0 } else { !0u128 << shift };
    o & mask == i & mask
}

fn ip_block(b: &Value, f: &str, causes: &mut Vec<Cause>) {
    let c = b.get("cidr").and_then(Value::as_str).unwrap_or("");
    if c.is_empty() {
        causes.push(required(format!("{f}.cidr")));
        return;
    }
    let Some(outer) = cidr(c) else {
        causes.push(invalid(format!("{f}.cidr"), &json!(c), CIDR_MSG));
        return;
    };
    for (i, e) in b
        .get("except")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let e = e.as_str().unwrap_or("");
        let field = format!("{f}.except[{i}]");
        match cidr(e) {
            None => causes.push(invalid(field, &json!(e), CIDR_MSG)),
            Some(inner) if !strict_subset(outer, inner) => causes.push(invalid(
                field,
                &json!(e),
                "must be a strict subset of `cidr`",
            )),
            Some(_) => {}
        }
    }
}

fn peer(p: &Value, f: &str, causes: &mut Vec<Cause>) {
    let mut peers = 0;
    for key in ["podSelector", "namespaceSelector"] {
        if let Some(sel) = p.get(key).filter(|v| !v.is_null()) {
            peers += 1;
            label_selector(sel, &format!("{f}.{key}"), causes);
        }
    }
    let block = p.get("ipBlock").filter(|v| !v.is_null());
    if let Some(b) = block {
        peers += 1;
        ip_block(b, &format!("{f}.ipBlock"), causes);
    }
    if peers == 0 {
        causes.push(required_why(f.to_string(), "must specify a peer"));
    } else if peers > 1 && block.is_some() {
        causes.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: may not specify both ipBlock and another peer".into(),
            field: f.to_string(),
        });
    }
}

pub fn validate(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    if let Some(sel) = spec.get("podSelector").filter(|v| !v.is_null()) {
        label_selector(sel, "spec.podSelector", &mut causes);
    }
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in spec
            .get(dir)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let f = format!("spec.{dir}[{i}]");
            for (j, p) in rule
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                port(p, &format!("{f}.ports[{j}]"), &mut causes);
            }
            for (j, p) in rule
                .get(peers)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                peer(p, &format!("{f}.{peers}[{j}]"), &mut causes);
            }
        }
    }
    let types = spec.get("policyTypes").and_then(Value::as_array);
    if let Some(types) = types {
        if types.len() > 2 {
            causes.push(invalid(
                "spec.policyTypes".into(),
                &Value::Array(types.clone()),
                "may not specify more than two policyTypes",
            ));
        } else {
            for (i, t) in types.iter().enumerate() {
                if !matches!(t.as_str(), Some("Ingress" | "Egress")) {
                    causes.push(not_supported(
                        format!("spec.policyTypes[{i}]"),
                        t,
                        &["Ingress", "Egress"],
                    ));
                }
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_ports_and_blocks_follow_upstreams_rules() {
        let causes = validate(&json!({"spec": {"podSelector": {},
            "ingress": [{"from": [{}, {"ipBlock": {"cidr": "10.0.0.0/16",
                                                   "except": ["10.1.0.0/24", "10.0.1.0/24", "x"]}}],
                         "ports": [{"protocol": "ICMP", "port": 0}]}],
            "policyTypes": ["Ingress", "Sideways"]}}));
        let got: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "spec.ingress[0].ports[0].protocol",
                    "FieldValueNotSupported"
                ),
                ("spec.ingress[0].ports[0].port", "FieldValueInvalid"),
                ("spec.ingress[0].from[0]", "FieldValueRequired"),
                (
                    "spec.ingress[0].from[1].ipBlock.except[0]",
                    "FieldValueInvalid"
                ),
                (
                    "spec.ingress[0].from[1].ipBlock.except[2]",
                    "FieldValueInvalid"
                ),
                ("spec.policyTypes[1]", "FieldValueNotSupported"),
            ]
        );
    }
}
