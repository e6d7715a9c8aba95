//! Kubernetes' IP and CIDR libraries: `ip`, `isIP`, `ip.isCanonical`, `family`, the address
//! class tests (Go's `netip.Addr` definitions), `cidr`, `isCIDR`, `containsIP`,
//! `containsCIDR`, `prefixLength`, `masked`, `cidr.ip()` and `string(...)` of both. As
//! upstream, IPv4-mapped IPv6 addresses and zones are refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ::cel::objects::Opaque;
use ::cel::{ExecutionError, Value as CelValue};

use super::library::{Call, Overload, fail};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("ip", ip),
    ("isIP", is_ip),
    ("ip.isCanonical", is_canonical),
    ("family", family),
    ("isUnspecified", is_unspecified),
    ("isLoopback", is_loopback),
    ("isLinkLocalMulticast", is_link_local_multicast),
    ("isLinkLocalUnicast", is_link_local_unicast),
    ("isGlobalUnicast", is_global_unicast),
    ("cidr", cidr),
    ("isCIDR", is_cidr),
    ("containsIP", contains_ip),
    ("containsCIDR", contains_cidr),
    ("prefixLength", prefix_length),
    ("masked", masked),
    ("string", to_string),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip(IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        "net.IP"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        "net.CIDR"
    }
}

type Out = Option<Result<CelValue, ExecutionError>>;

fn is_mapped(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// Upstream's `parseIPAddr`.
fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    if raw.contains('%') {
        return Err(format!("IP address {raw:?} with zone value is not allowed"));
    }
    let addr: IpAddr = raw.parse().map_err(|_| {
        format!(
            "IP Address {raw:?} parse error during conversion from string: ParseAddr({raw:?}): unable to parse IP"
        )
    })?;
    if is_mapped(&addr) {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(addr)
}

/// Upstream's `parseCIDR` (`netip.ParsePrefix`: the address is kept as written).
fn parse_cidr(raw: &str) -> Result<Cidr, String> {
    let parse_error = |why: &str| {
        format!(
            "network address parse error during conversion from string: netip.ParsePrefix({raw:?}): {why}"
        )
    };
    let Some((addr, bits)) = raw.rsplit_once('/') else {
        return Err(parse_error("no '/'"));
    };
    if addr.contains('%') {
        return Err(parse_error("IPv6 zones cannot be present in a prefix"));
    }
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| parse_error(&format!("ParseAddr({addr:?}): unable to parse IP")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits: u8 = match bits.parse::<u8>() {
        Ok(b) if b <= max && !bits.starts_with('+') && (bits == "0" || !bits.starts_with('0')) => b,
        _ => return Err(parse_error(&format!("bad bits after slash: {bits:?}"))),
    };
    if is_mapped(&addr) {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(Cidr { addr, bits })
}

fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

impl Cidr {
    fn masked(self) -> Cidr {
        Cidr {
            addr: mask(self.addr, self.bits),
            bits: self.bits,
        }
    }

    fn contains(self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.bits) == mask(self.addr, self.bits)
    }
}

fn str_arg(v: Option<&CelValue>) -> Option<&str> {
    match v {
        Some(CelValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn as_ip(v: Option<&CelValue>) -> Option<IpAddr> {
    match v {
        Some(CelValue::Opaque(o)) => o.downcast_ref::<Ip>().map(|ip| ip.0),
        _ => None,
    }
}

fn as_cidr(v: Option<&CelValue>) -> Option<Cidr> {
    match v {
        Some(CelValue::Opaque(o)) => o.downcast_ref::<Cidr>().copied(),
        _ => None,
    }
}

fn ip_value(a: IpAddr) -> CelValue {
    CelValue::Opaque(Arc::new(Ip(a)))
}

fn bool_value(b: bool) -> Out {
    Some(Ok(CelValue::Bool(b)))
}

fn ip(c: &Call) -> Out {
    // `cidr.ip()`: the prefix's address as written.
    if let Some(p) = as_cidr(c.this.as_ref()) {
        return Some(Ok(ip_value(p.addr)));
    }
    let s = str_arg(c.arg(0))?;
    Some(parse_ip(s).map(ip_value).map_err(fail))
}

fn is_ip(c: &Call) -> Out {
    bool_value(parse_ip(str_arg(c.arg(0))?).is_ok())
}

fn is_canonical(c: &Call) -> Out {
    let s = str_arg(c.arg(0))?;
    Some(
        parse_ip(s)
            .map(|a| CelValue::Bool(a.to_string() == s))
            .map_err(fail),
    )
}

fn this_ip(c: &Call) -> Option<IpAddr> {
    as_ip(c.this.as_ref())
}

fn family(c: &Call) -> Out {
    let a = this_ip(c)?;
    Some(Ok(CelValue::Int(if a.is_ipv4() { 4 } else { 6 })))
}

fn is_unspecified(c: &Call) -> Out {
    bool_value(this_ip(c)?.is_unspecified())
}

fn is_loopback(c: &Call) -> Out {
    bool_value(this_ip(c)?.is_loopback())
}

fn link_local_multicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.octets()[0] == 0xff && v6.octets()[1] & 0x0f == 0x02,
    }
}

fn link_local_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_link_local_multicast(c: &Call) -> Out {
    bool_value(link_local_multicast(this_ip(c)?))
}

fn is_link_local_unicast(c: &Call) -> Out {
    bool_value(link_local_unicast(this_ip(c)?))
}

fn is_global_unicast(c: &Call) -> Out {
    let a = this_ip(c)?;
    let broadcast = a == IpAddr::V4(Ipv4Addr::BROADCAST);
    bool_value(
        !broadcast
            && !a.is_unspecified()
            && !a.is_loopback()
            && !a.is_multicast()
            && !link_local_unicast(a),
    )
}

fn cidr(c: &Call) -> Out {
    let s = str_arg(c.arg(0))?;
    if c.this.is_some() {
        return None;
    }
    Some(
        parse_cidr(s)
            .map(|p| CelValue::Opaque(Arc::new(p)))
            .map_err(fail),
    )
}

fn is_cidr(c: &Call) -> Out {
    bool_value(parse_cidr(str_arg(c.arg(0))?).is_ok())
}

fn this_cidr(c: &Call) -> Option<Cidr> {
    as_cidr(c.this.as_ref())
}

fn contains_ip(c: &Call) -> Out {
    let p = this_cidr(c)?;
    let ip = match (as_ip(c.arg(0)), str_arg(c.arg(0))) {
        (Some(ip), _) => ip,
        (None, Some(s)) => match parse_ip(s) {
            Ok(ip) => ip,
            Err(e) => return Some(Err(fail(e))),
        },
        _ => return None,
    };
    bool_value(p.contains(ip))
}

fn contains_cidr(c: &Call) -> Out {
    let p = this_cidr(c)?;
    let other = match (as_cidr(c.arg(0)), str_arg(c.arg(0))) {
        (Some(o), _) => o,
        (None, Some(s)) => match parse_cidr(s) {
            Ok(o) => o,
            Err(e) => return Some(Err(fail(e))),
        },
        _ => return None,
    };
    bool_value(p.bits <= other.bits && p.contains(other.addr))
}

fn prefix_length(c: &Call) -> Out {
    Some(Ok(CelValue::Int(i64::from(this_cidr(c)?.bits))))
}

fn masked(c: &Call) -> Out {
    Some(Ok(CelValue::Opaque(Arc::new(this_cidr(c)?.masked()))))
}

/// `string(ip)` and `string(cidr)`; other types are the standard library's.
fn to_string(c: &Call) -> Out {
    if let Some(a) = as_ip(c.arg(0)) {
        return Some(Ok(CelValue::String(Arc::new(a.to_string()))));
    }
    let p = as_cidr(c.arg(0))?;
    Some(Ok(CelValue::String(Arc::new(format!(
        "{}/{}",
        p.addr, p.bits
    )))))
}

#[cfg(test)]
mod tests {
    use super::super::library::testing::{fails, holds};

    #[test]
    fn ips_as_upstream() {
        holds("isIP('192.168.0.1') && isIP('::1') && !isIP('192.168.0.1/24') && !isIP('x')");
        holds("!isIP('::ffff:192.168.0.1') && !isIP('fe80::1%eth0')");
        holds("ip('192.168.0.1').family() == 4 && ip('fd00::1').family() == 6");
        holds("string(ip('2001:DB8::1')) == '2001:db8::1'");
        holds("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')");
        holds("ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified()");
        holds("ip('127.0.0.1').isLoopback() && ip('::1').isLoopback()");
        holds("ip('224.0.0.1').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()");
        holds("ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()");
        holds("ip('192.168.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()");
        holds("ip('192.168.0.1') == ip('192.168.0.1')");
        fails(
            "ip('x')",
            "IP Address \"x\" parse error during conversion from string: ParseAddr(\"x\"): unable to parse IP",
        );
        fails(
            "ip('::ffff:1.2.3.4')",
            "IPv4-mapped IPv6 address \"::ffff:1.2.3.4\" is not allowed",
        );
        fails(
            "ip('fe80::1%eth0')",
            "IP address \"fe80::1%eth0\" with zone value is not allowed",
        );
    }

    #[test]
    fn cidrs_as_upstream() {
        holds("isCIDR('192.168.0.0/24') && !isCIDR('192.168.0.0') && !isCIDR('10.0.0.0/33')");
        holds("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))");
        holds("cidr('192.168.0.0/24').containsIP('192.168.0.1')");
        holds("!cidr('192.168.0.0/24').containsIP('192.168.1.1')");
        holds("!cidr('192.168.0.0/24').containsIP('::1')");
        holds("cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))");
        holds("cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')");
        holds("!cidr('192.168.0.0/24').containsCIDR('192.168.0.0/16')");
        holds("cidr('192.168.0.0/24').prefixLength() == 24");
        holds("cidr('192.168.1.5/24').masked() == cidr('192.168.1.0/24')");
        holds("cidr('192.168.1.5/24').ip() == ip('192.168.1.5')");
        holds("string(cidr('192.168.1.5/24').masked()) == '192.168.1.0/24'");
        holds("string(cidr('2001:db8::/32')) == '2001:db8::/32'");
        fails(
            "cidr('x')",
            "network address parse error during conversion from string: netip.ParsePrefix(\"x\"): no '/'",
        );
        fails(
            "cidr('::ffff:1.2.3.4/120')",
            "IPv4-mapped IPv6 address \"::ffff:1.2.3.4/120\" is not allowed",
        );
    }
}
