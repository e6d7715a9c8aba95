//! Upstream's validation of endpoints: EndpointSlices (`pkg/apis/discovery/validation`:
//! address type, each endpoint's addresses and node, ports) and core v1 Endpoints
//! (`validateEndpointSubsets`: addresses, ports).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::field::{duplicate, invalid, not_supported, required, required_why, too_many};
use super::ip_rules::{self, IP_MSG};
use super::json_read::{list, str_at};
use super::meta::{name_errors, qualified_name_errors, subdomain_errors};
use crate::api::status::Cause;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;

fn dns_label(v: &str, field: String, causes: &mut Vec<Cause>) {
    for msg in name_errors(NameRule::Label, v, false) {
        causes.push(invalid(field.clone(), &json!(v), &msg));
    }
}

fn node_name(v: &Value, field: String, causes: &mut Vec<Cause>) {
    if let Some(n) = v.get("nodeName").filter(|n| !n.is_null()) {
        let n = n.as_str().unwrap_or("");
        for msg in subdomain_errors(n) {
            causes.push(invalid(field.clone(), &json!(n), msg));
        }
    }
}

fn app_protocol(p: &Value, field: String, causes: &mut Vec<Cause>) {
    if let Some(a) = p.get("appProtocol").and_then(Value::as_str) {
        for msg in qualified_name_errors(a) {
            causes.push(invalid(field.clone(), &json!(a), &msg));
        }
    }
}

fn protocol(p: &Value, field: String, causes: &mut Vec<Cause>) {
    match p.get("protocol").and_then(Value::as_str) {
        None => causes.push(required(field)),
        Some(proto) if !PROTOCOLS.contains(&proto) => {
            causes.push(not_supported(field, &json!(proto), PROTOCOLS));
        }
        Some(_) => {}
    }
}

pub fn endpoint_slice(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ty = str_at(obj, "addressType");
    if ty.is_empty() {
        causes.push(required("addressType".into()));
    } else if !matches!(ty, "FQDN" | "IPv4" | "IPv6") {
        causes.push(not_supported(
            "addressType".into(),
            &json!(ty),
            &["FQDN", "IPv4", "IPv6"],
        ));
    }
    let endpoints = list(obj, "endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        causes.push(too_many("endpoints".into(), endpoints.len(), MAX_ENDPOINTS));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let f = format!("endpoints[{i}]");
        let addresses = list(e, "addresses");
        let af = format!("{f}.addresses");
        if addresses.is_empty() {
            causes.push(required_why(af.clone(), "must contain at least 1 address"));
        } else if addresses.len() > MAX_ADDRESSES {
            causes.push(too_many(af.clone(), addresses.len(), MAX_ADDRESSES));
        }
        for (j, a) in addresses.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let field = format!("{af}[{j}]");
            slice_address(ty, a, &field, &mut causes);
        }
        node_name(e, format!("{f}.nodeName"), &mut causes);
        if let Some(h) = e.get("hostname").and_then(Value::as_str) {
            dns_label(h, format!("{f}.hostname"), &mut causes);
        }
    }
    let mut names = HashSet::new();
    for (i, p) in list(obj, "ports").iter().enumerate() {
        let f = format!("ports[{i}]");
        let name = str_at(p, "name");
        if !name.is_empty() {
            dns_label(name, format!("{f}.name"), &mut causes);
        }
        if !names.insert(name) {
            causes.push(duplicate(format!("{f}.name"), &json!(name)));
        }
        protocol(p, format!("{f}.protocol"), &mut causes);
        app_protocol(p, format!("{f}.appProtocol"), &mut causes);
    }
    causes
}

/// One address of a slice, by the slice's address type (an unknown type checks nothing).
fn slice_address(ty: &str, a: &str, field: &str, causes: &mut Vec<Cause>) {
    let family = match ty {
        "IPv4" => true,
        "IPv6" => false,
        "FQDN" => {
            fqdn(a, field, causes);
            return;
        }
        _ => return,
    };
    let Some(ip) = ip_rules::parse_ip(a) else {
        causes.push(invalid(field.to_string(), &json!(a), IP_MSG));
        return;
    };
    if ip.is_ipv4() != family {
        let msg = format!("must be an {ty} address");
        causes.push(invalid(field.to_string(), &json!(a), &msg));
        return;
    }
    ip_rules::non_special_ip(a, field, causes);
}

/// `IsFullyQualifiedDomainName`.
fn fqdn(a: &str, field: &str, causes: &mut Vec<Cause>) {
    let name = a.strip_suffix('.').unwrap_or(a);
    if name.is_empty() {
        causes.push(required(field.to_string()));
        return;
    }
    for msg in subdomain_errors(name) {
        causes.push(invalid(field.to_string(), &json!(name), msg));
    }
    if !name.contains('.') && subdomain_errors(name).is_empty() {
        let msg = "should be a domain with at least two segments separated by dots";
        causes.push(invalid(field.to_string(), &json!(name), msg));
    }
}

pub fn endpoints(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, ss) in list(obj, "subsets").iter().enumerate() {
        let f = format!("subsets[{i}]");
        let (ready, not_ready) = (list(ss, "addresses"), list(ss, "notReadyAddresses"));
        if ready.is_empty() && not_ready.is_empty() {
            let why = "must specify `addresses` or `notReadyAddresses`";
            causes.push(required_why(f.clone(), why));
        }
        for (key, addrs) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
            for (j, a) in addrs.iter().enumerate() {
                endpoint_address(a, &format!("{f}.{key}[{j}]"), &mut causes);
            }
        }
        let ports = list(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            let pf = format!("{f}.ports[{j}]");
            let name = str_at(p, "name");
            if ports.len() > 1 && name.is_empty() {
                causes.push(required(format!("{pf}.name")));
            } else if !name.is_empty() {
                dns_label(name, format!("{pf}.name"), &mut causes);
            }
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&port) {
                let msg = "must be between 1 and 65535, inclusive";
                causes.push(invalid(format!("{pf}.port"), &json!(port), msg));
            }
            protocol(p, format!("{pf}.protocol"), &mut causes);
            app_protocol(p, format!("{pf}.appProtocol"), &mut causes);
        }
    }
    causes
}

fn endpoint_address(a: &Value, f: &str, causes: &mut Vec<Cause>) {
    let ip = str_at(a, "ip");
    let field = format!("{f}.ip");
    ip_rules::ip(ip, &field, causes);
    let host = str_at(a, "hostname");
    if !host.is_empty() {
        dns_label(host, format!("{f}.hostname"), causes);
    }
    node_name(a, format!("{f}.nodeName"), causes);
    ip_rules::non_special_ip(ip, &field, causes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::cause_fields;

    #[test]
    fn slice_addresses_match_their_type_and_port_names_are_unique() {
        let s = json!({"addressType": "IPv4", "endpoints": [{"addresses": ["169.254.0.1", "::1"]}],
            "ports": [{"name": "", "protocol": "TCP"}, {"name": "", "protocol": "TCP"}]});
        let causes = endpoint_slice(&s);
        assert_eq!(
            causes[0].message,
            "Invalid value: \"169.254.0.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        );
        assert_eq!(
            cause_fields(causes),
            [
                ("endpoints[0].addresses[0]", "FieldValueInvalid"),
                ("endpoints[0].addresses[1]", "FieldValueInvalid"),
                ("ports[1].name", "FieldValueDuplicate"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }

    #[test]
    fn a_bad_endpoints_ip_is_reported_twice() {
        let e = json!({"subsets": [{"addresses": [{"ip": "x"}], "ports": [{"port": 0,
            "protocol": "TCP"}]}]});
        assert_eq!(
            cause_fields(endpoints(&e)),
            [
                ("subsets[0].addresses[0].ip", "FieldValueInvalid"),
                ("subsets[0].addresses[0].ip", "FieldValueInvalid"),
                ("subsets[0].ports[0].port", "FieldValueInvalid"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }
}
