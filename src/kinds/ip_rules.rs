//! Upstream's IP and CIDR checks (`k8s.io/apimachinery/pkg/util/validation/ip.go` and the
//! legacy-field forms of `pkg/apis/core/validation`), and the kinds made of little else:
//! IPAddresses (named by their canonical address, a parent reference) and ServiceCIDRs.

use crate::jsonptr::At;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::field::{invalid, required, required_why};
use super::json_read::strs;
use super::meta::{path_segment_errors, subdomain_errors};
use crate::api::status::Cause;

pub(super) const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
pub(super) const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// An IP as Go's `ParseIPSloppy` reads it (IPv4 octets may have leading zeros).
pub(super) fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (o, text) in out.iter_mut().zip(&octets) {
        if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = text.parse().ok()?;
    }
    Some(IpAddr::from(out))
}

/// A CIDR as `ParseCIDRSloppy` reads it: its address and prefix length.
pub(super) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip = parse_ip(ip)?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// The network of a CIDR as Go prints an `IPNet`.
fn network(ip: IpAddr, bits: u8) -> String {
    let masked = match ip {
        IpAddr::V4(v) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            IpAddr::from((u32::from(v) & mask).to_be_bytes())
        }
        IpAddr::V6(v) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            IpAddr::from((u128::from(v) & mask).to_be_bytes())
        }
    };
    format!("{masked}/{bits}")
}

/// `IsValidIPForLegacyField`-style check: an IP address at `field`.
pub(super) fn ip(value: &str, field: &str, causes: &mut Vec<Cause>) -> Option<IpAddr> {
    let parsed = parse_ip(value);
    if parsed.is_none() {
        causes.push(invalid(field.to_string(), &json!(value), IP_MSG));
    }
    parsed
}

/// `ValidateNonSpecialIP`: no unspecified or link-local address. Unlike upstream, loopback
/// addresses pass: kapi often serves on loopback, and its own `kubernetes` endpoints and the
/// endpoints of local webhook services point there.
pub(super) fn non_special_ip(value: &str, field: &str, causes: &mut Vec<Cause>) {
    let f = || field.to_string();
    let Some(ip) = parse_ip(value) else {
        causes.push(invalid(f(), &json!(value), "must be a valid IP address"));
        return;
    };
    if ip.is_unspecified() {
        let msg = format!("may not be unspecified ({value})");
        causes.push(invalid(f(), &json!(value), &msg));
    }
    let (link_local, link_multicast) = match ip {
        IpAddr::V4(v) => (v.is_link_local(), v.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(v) => {
            let s = v.segments();
            (s[0] & 0xffc0 == 0xfe80, s[0] & 0xff0f == 0xff02)
        }
    };
    if link_local {
        let msg = "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
        causes.push(invalid(f(), &json!(value), msg));
    }
    if link_multicast {
        let msg = "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)";
        causes.push(invalid(f(), &json!(value), msg));
    }
}

/// A CIDR at `field`; `strict` also asks for its canonical form (`IsValidCIDR`).
pub(super) fn cidr(value: &str, field: &str, strict: bool, causes: &mut Vec<Cause>) {
    match parse_cidr(value) {
        None => causes.push(invalid(field.to_string(), &json!(value), CIDR_MSG)),
        Some((ip, bits)) if strict && network(ip, bits) != value => {
            let msg = format!("must be in canonical form ({:?})", network(ip, bits));
            causes.push(invalid(field.to_string(), &json!(value), &msg));
        }
        Some(_) => {}
    }
}

/// The name rule of IPAddresses: an IP in canonical form.
pub fn ip_address_name_errors(name: &str) -> Vec<String> {
    match parse_ip(name) {
        None => vec![IP_MSG.to_string()],
        Some(ip) if ip.to_string() != name => {
            vec![format!("must be in canonical form ({:?})", ip.to_string())]
        }
        Some(_) => Vec::new(),
    }
}

/// IPAddresses: named by their address; a parent reference.
#[derive(Debug)]
pub struct IpAddresses;

impl super::Strategy for IpAddresses {
    fn name_rule(&self) -> super::NameRule {
        super::NameRule::IpAddress
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        ip_address(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = ip_address(obj);
        causes.extend(super::other_updates::ip_address(obj, old));
        causes
    }
}

pub fn ip_address(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(p) = obj.at("/spec/parentRef").filter(|v| !v.is_null()) else {
        return vec![required("spec.parentRef".into())];
    };
    let f = "spec.parentRef";
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let group = s("group");
    if !group.is_empty() {
        for msg in subdomain_errors(group) {
            causes.push(invalid(format!("{f}.group"), &json!(group), msg));
        }
    }
    for (key, needed) in [("resource", true), ("name", true), ("namespace", false)] {
        let v = s(key);
        if v.is_empty() {
            if needed {
                causes.push(required(format!("{f}.{key}")));
            }
            continue;
        }
        for msg in path_segment_errors(v) {
            causes.push(invalid(format!("{f}.{key}"), &json!(v), &msg));
        }
    }
    causes
}

pub fn service_cidr(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let f = "spec.cidrs";
    let cidrs = strs(obj.get("spec").unwrap_or(&Value::Null), "cidrs");
    let spec_text = || format!("{{\"CIDRs\":{}}}", json!(cidrs));
    if cidrs.is_empty() {
        return vec![required_why(f.into(), "at least one CIDR required")];
    }
    if cidrs.len() > 2 {
        let c = super::field::invalid(f.into(), &json!(""), "may only hold up to 2 values");
        return vec![with_value(c, &spec_text())];
    }
    for (i, c) in cidrs.iter().enumerate() {
        cidr(c, &format!("{f}[{i}]"), true, &mut causes);
    }
    if cidrs.len() == 2 {
        let families: Vec<Option<bool>> = cidrs
            .iter()
            .map(|c| parse_cidr(c).map(|(ip, _)| ip.is_ipv4()))
            .collect();
        let dual = families.iter().all(Option::is_some) && families[0] != families[1];
        if !dual {
            let msg = "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64";
            let c = super::field::invalid(f.into(), &json!(""), msg);
            causes.push(with_value(c, &spec_text()));
        }
    }
    causes
}

/// An Invalid cause whose value is a Go struct (rendered by the caller), not a JSON value.
fn with_value(mut c: Cause, rendered: &str) -> Cause {
    c.message = c.message.replacen("\"\"", rendered, 1);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::cause_fields;

    #[test]
    fn service_cidrs_are_canonical_and_one_per_family() {
        let causes = service_cidr(&json!({"spec": {"cidrs": ["10.0.0.1/24", "10.1.0.0/16"]}}));
        assert_eq!(
            causes[0].message,
            "Invalid value: \"10.0.0.1/24\": must be in canonical form (\"10.0.0.0/24\")"
        );
        assert_eq!(
            cause_fields(causes),
            [
                ("spec.cidrs[0]", "FieldValueInvalid"),
                ("spec.cidrs", "FieldValueInvalid"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }

    #[test]
    fn an_ip_address_names_its_parent() {
        let causes = ip_address(&json!({"spec": {"parentRef": {"group": "Bad_Group"}}}));
        assert_eq!(
            cause_fields(causes),
            [
                ("spec.parentRef.group", "FieldValueInvalid"),
                ("spec.parentRef.resource", "FieldValueRequired"),
                ("spec.parentRef.name", "FieldValueRequired"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
        assert_eq!(ip_address_name_errors("2001:db8::1"), Vec::<String>::new());
        assert_eq!(ip_address_name_errors("10.0.0.01").len(), 1);
    }
}
