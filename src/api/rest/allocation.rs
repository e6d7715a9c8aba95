//! Service ClusterIP allocation, as upstream 1.33+ does it: each address a Service holds is an
//! `IPAddress` object named after the address (its parentRef the Service), so creating that
//! object is the lock, and kapi and upstream apiservers sharing one etcd never hand out the
//! same address. Dynamic addresses come from the upper band of `--service-cluster-ip-range`
//! (the lower band is kept for addresses clients ask for), as upstream's static-subrange
//! rule. Released when the Service is deleted; a repair sweep (`repair`) removes what a
//! failed or bulk delete left.

use std::net::IpAddr;
use std::sync::Arc;

use http::Method;
use serde_json::{Value, json};

use crate::api::server::Api;
use crate::api::status::{Cause, Status};
use crate::kinds::service_families::{self, IPV4, IPV6, service_type, set_strings, strings};
use crate::kinds::service_updates;
use crate::startup::Client;

/// Addresses probed per allocation before the range is reported full: each probe is a cache
/// lookup, and a claim only when the cache shows it free.
const MAX_PROBES: u64 = 65_536;

/// An IPv4 or IPv6 range (`--service-cluster-ip-range`), as (network address, prefix length).
#[derive(Debug, Clone, Copy)]
struct Range {
    base: u128,
    bits: u32,
    v6: bool,
}

impl Range {
    fn parse(cidr: &str) -> Option<Range> {
        let (ip, bits) = crate::flags::parse_cidr(cidr).ok()?;
        let (base, width) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let host_bits = width - u32::from(bits);
        let mask = if host_bits >= 128 {
            0
        } else {
            !((1u128 << host_bits) - 1)
        };
        Some(Range {
            base: base & mask,
            bits: host_bits,
            v6: ip.is_ipv6(),
        })
    }

    /// Usable addresses: the network address is never handed out, nor (IPv4) the broadcast.
    fn size(&self) -> u128 {
        let all = if self.bits >= 127 {
            u128::MAX / 2
        } else {
            1u128 << self.bits
        };
        if self.v6 {
            all.saturating_sub(1)
        } else {
            all.saturating_sub(2)
        }
    }

    fn at(&self, offset: u128) -> IpAddr {
        let n = self.base + 1 + offset;
        if self.v6 {
            IpAddr::V6(n.into())
        } else {
            IpAddr::V4((n as u32).into())
        }
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        let n = match ip {
            IpAddr::V4(v4) if !self.v6 => u128::from(u32::from(*v4)),
            IpAddr::V6(v6) if self.v6 => u128::from(*v6),
            _ => return false,
        };
        n > self.base && n - self.base - 1 < self.size()
    }

    /// Where dynamic allocation starts: upstream's `min(max(16, size/16), 256)`.
    fn dynamic_start(&self) -> u128 {
        (self.size() / 16).clamp(16, 256).min(self.size() / 2)
    }
}

fn ranges() -> Vec<(String, Range)> {
    let cidrs = crate::flags::settings().service_cidrs.clone();
    let cidrs = if cidrs.is_empty() {
        vec![crate::startup::DEFAULT_SERVICE_CIDR.to_string()]
    } else {
        cidrs
    };
    cidrs
        .into_iter()
        .filter_map(|c| Range::parse(&c).map(|r| (c, r)))
        .collect()
}

/// The families the cluster serves, primary first.
pub fn families() -> Vec<&'static str> {
    ranges()
        .iter()
        .map(|(_, r)| if r.v6 { IPV6 } else { IPV4 })
        .collect()
}

fn range_of(family: &str) -> Option<(String, Range)> {
    ranges().into_iter().find(|(_, r)| r.v6 == (family == IPV6))
}

/// Whether the Service gets cluster IPs (not headless, not ExternalName).
fn wants_cluster_ip(svc: &Value) -> bool {
    let spec = &svc["spec"];
    spec["type"].as_str() != Some("ExternalName") && spec["clusterIP"].as_str() != Some("None")
}

/// The addresses a Service holds (clusterIPs, else clusterIP).
fn held(svc: &Value) -> Vec<String> {
    let spec = &svc["spec"];
    let mut ips = strings(spec, "clusterIPs");
    if ips.is_empty()
        && let Some(ip) = spec["clusterIP"].as_str()
        && !ip.is_empty()
    {
        ips.push(ip.to_owned());
    }
    ips.retain(|ip| ip != "None" && !ip.is_empty());
    ips
}

fn invalid(name: &str, ips: &[String], why: String) -> Status {
    service_invalid(
        name,
        "spec.clusterIPs".into(),
        &json!(ips).to_string(),
        &why,
    )
}

/// Upstream's 422 for an allocation a Service's field asks for and cannot get.
pub(super) fn service_invalid(name: &str, field: String, value: &str, why: &str) -> Status {
    Status::invalid(
        "",
        "Service",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value}: {why}"),
            field,
        }],
    )
}

/// The addresses a write claimed (released if the write does not happen).
#[derive(Debug, Default)]
pub struct Claimed(Vec<String>);

impl Claimed {
    pub async fn release(self, api: &Arc<Api>) {
        let client = Client::new(api.clone());
        for ip in self.0 {
            release_one(&client, &ip).await;
        }
    }
}

async fn release_one(client: &Client, ip: &str) {
    client
        .call(
            Method::DELETE,
            &format!("/apis/networking.k8s.io/v1/ipaddresses/{ip}"),
            None,
        )
        .await;
}

fn ip_address(ip: &IpAddr, ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": if ip.is_ipv4() { IPV4 } else { IPV6 },
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": {"parentRef": {
            "group": "",
            "resource": "services",
            "namespace": ns,
            "name": name,
        }},
    })
}

/// Creates the IPAddress that holds `ip` for Service `ns/name`; the HTTP status (201 claimed,
/// 409 held by someone else).
async fn claim(client: &Client, ip: &IpAddr, ns: &str, name: &str) -> u16 {
    client
        .call(
            Method::POST,
            "/apis/networking.k8s.io/v1/ipaddresses",
            Some(&ip_address(ip, ns, name)),
        )
        .await
        .0
}

fn taken(api: &Api, ip: &IpAddr) -> bool {
    let prefix = format!("{}ipaddresses/", api.prefix);
    let key = format!("{prefix}{ip}");
    api.cache
        .resource(prefix.as_bytes())
        .is_some_and(|rc| rc.snapshot().get(key.as_bytes()).is_some())
}

/// Who asks for addresses: the Service, and whether the write is a dry run.
struct Asker<'a> {
    api: &'a Arc<Api>,
    client: Client,
    ns: &'a str,
    name: &'a str,
    dry_run: bool,
}

impl<'a> Asker<'a> {
    fn new(api: &'a Arc<Api>, ns: &'a str, name: &'a str, dry_run: bool) -> Asker<'a> {
        Asker {
            api,
            client: Client::new(api.clone()),
            ns,
            name,
            dry_run,
        }
    }

    /// One address of `family`: `requested` (in range and free) or a free one; `listed` is the
    /// Service's `clusterIPs` as its errors quote them.
    async fn one(
        &self,
        family: &str,
        requested: &str,
        listed: &[String],
        claimed: &mut Claimed,
    ) -> Result<IpAddr, Status> {
        let Some((cidr, range)) = range_of(family) else {
            return Err(Status::internal(format!(
                "failed to allocate a serviceIP: {family} is not configured on this cluster"
            )));
        };
        let (api, ns, name) = (self.api, self.ns, self.name);
        if !requested.is_empty() {
            let Ok(ip) = requested.parse::<IpAddr>() else {
                return Err(invalid(
                    name,
                    listed,
                    format!("failed to allocate IP {requested}: not a valid IP address"),
                ));
            };
            if !range.contains(&ip) {
                return Err(invalid(
                    name,
                    listed,
                    format!(
                        "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {cidr}"
                    ),
                ));
            }
            let already = || {
                invalid(
                    name,
                    listed,
                    format!("failed to allocate IP {ip}: provided IP is already allocated"),
                )
            };
            if self.dry_run {
                return match taken(api, &ip) {
                    true => Err(already()),
                    false => Ok(ip),
                };
            }
            return match claim(&self.client, &ip, ns, name).await {
                201 => {
                    claimed.0.push(ip.to_string());
                    Ok(ip)
                }
                409 => Err(already()),
                other => Err(Status::internal(format!(
                    "failed to allocate IP {ip}: {other}"
                ))),
            };
        }
        // A free address from the dynamic band first, then the static band, from a random start.
        let size = range.size();
        let start = range.dynamic_start();
        let bands = [(start, size - start), (0, start)];
        for (band_start, band_len) in bands {
            if band_len == 0 {
                continue;
            }
            let first = u128::from(fastrand::u64(..)) % band_len;
            let probes = band_len.min(u128::from(MAX_PROBES));
            for i in 0..probes {
                let ip = range.at(band_start + (first + i) % band_len);
                if taken(api, &ip) {
                    continue;
                }
                if self.dry_run {
                    return Ok(ip);
                }
                match claim(&self.client, &ip, ns, name).await {
                    201 => {
                        claimed.0.push(ip.to_string());
                        return Ok(ip);
                    }
                    409 => continue,
                    other => {
                        return Err(Status::internal(format!(
                            "failed to allocate a serviceIP: {other}"
                        )));
                    }
                }
            }
        }
        Err(Status::internal(
            "failed to allocate a serviceIP: range is full",
        ))
    }

    /// An address for each of the Service's families from `from` on (upstream's
    /// `allocClusterIPs`), written into `clusterIPs` (and `clusterIP` for the first).
    async fn each_family(&self, svc: &mut Value, from: usize) -> Result<Claimed, Status> {
        let mut claimed = Claimed::default();
        let families = strings(&svc["spec"], "ipFamilies");
        let mut ips = strings(&svc["spec"], "clusterIPs");
        ips.resize(ips.len().max(families.len()), String::new());
        let listed = strings(&svc["spec"], "clusterIPs");
        for (i, family) in families.iter().enumerate().skip(from) {
            match self.one(family, &ips[i], &listed, &mut claimed).await {
                Ok(ip) => ips[i] = ip.to_string(),
                Err(e) => {
                    claimed.release(self.api).await;
                    return Err(e);
                }
            }
        }
        if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
            if let Some(first) = ips.first() {
                spec.insert("clusterIP".into(), json!(first));
            }
            set_strings(spec, "clusterIPs", &ips);
        }
        Ok(claimed)
    }
}

fn settle_families(svc: &mut Value, old: Option<&Value>, name: &str) -> Result<(), Status> {
    service_families::init(svc, old, &families())
        .map_err(|causes| Status::invalid("", "Service", name, causes))
}

/// Settles the IP families of a new Service and allocates its cluster IPs (the ones it asks
/// for, or free ones, one per family), written into `svc`; with `dry_run`, picks without
/// claiming.
pub async fn allocate(
    api: &Arc<Api>,
    svc: &mut Value,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Claimed, Status> {
    service_updates::normalize_created(svc);
    settle_families(svc, None, name)?;
    if !wants_cluster_ip(svc) {
        return Ok(Claimed::default());
    }
    let asker = Asker::new(api, ns, name, dry_run);
    asker.each_family(svc, 0).await
}

/// What an update did to a Service's addresses: claimed (let go if the update fails) and to
/// release (once it is written).
#[derive(Debug, Default)]
pub struct Changed {
    pub claimed: Claimed,
    pub released: Vec<String>,
}

/// The address side of a Service update (upstream's `updateClusterIPs`): leaving ExternalName
/// allocates every family, going to ExternalName releases every address, a dual-stack upgrade
/// allocates the secondary address and a downgrade releases it. Headless Services and
/// unchanged PreferDualStack ones are left alone.
pub async fn update(
    api: &Arc<Api>,
    svc: &mut Value,
    old: &Value,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Changed, Status> {
    settle_families(svc, Some(old), name)?;
    let (spec, was) = (&svc["spec"], &old["spec"]);
    if service_families::unchanged_prefer_dual_stack(spec, Some(was)) {
        return Ok(Changed::default());
    }
    let asker = Asker::new(api, ns, name, dry_run);
    let (old_type, new_type) = (service_type(was), service_type(spec));
    if old_type == "ExternalName" && new_type != "ExternalName" {
        if !wants_cluster_ip(svc) {
            return Ok(Changed::default());
        }
        let claimed = asker.each_family(svc, 0).await?;
        return Ok(Changed {
            claimed,
            released: Vec::new(),
        });
    }
    if strings(was, "clusterIPs").first().map(String::as_str) == Some("None") {
        return Ok(Changed::default());
    }
    if old_type != "ExternalName" && new_type == "ExternalName" {
        return Ok(Changed {
            claimed: Claimed::default(),
            released: held(old),
        });
    }
    let (old_families, new_families) = (
        strings(was, "ipFamilies").len(),
        strings(spec, "ipFamilies").len(),
    );
    if old_families == 1 && new_families == 2 {
        let claimed = asker.each_family(svc, 1).await?;
        return Ok(Changed {
            claimed,
            released: Vec::new(),
        });
    }
    if old_families == 2 && new_families == 1 {
        return Ok(Changed {
            claimed: Claimed::default(),
            released: held(old).into_iter().skip(1).collect(),
        });
    }
    Ok(Changed::default())
}

/// Lets go of `ips` where their IPAddress still names Service `ns/name` as its parent.
pub async fn release_held(api: &Arc<Api>, ns: &str, name: &str, ips: &[String]) {
    let client = Client::new(api.clone());
    for ip in ips {
        let (code, addr) = client
            .call(
                Method::GET,
                &format!("/apis/networking.k8s.io/v1/ipaddresses/{ip}"),
                None,
            )
            .await;
        let parent = &addr["spec"]["parentRef"];
        if code == 200
            && parent["resource"] == "services"
            && parent["namespace"] == ns
            && parent["name"] == name
        {
            release_one(&client, ip).await;
        }
    }
}

/// Releases the addresses of a deleted Service (those whose IPAddress names it as parent).
pub async fn release_deleted(api: &Arc<Api>, svc: &Value) {
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or("");
    let name = svc["metadata"]["name"].as_str().unwrap_or("");
    release_held(api, ns, name, &held(svc)).await;
}

/// How old an IPAddress without its Service must be before the repair sweep removes it: a
/// create claims the address before it writes the Service.
const REPAIR_GRACE_SECONDS: i64 = 60;

/// Removes the allocator's IPAddresses whose Service is gone or no longer holds them (what a
/// namespace deletion or a deletecollection left), as upstream's repair loop does.
pub async fn repair(api: &Arc<Api>) {
    let client = Client::new(api.clone());
    let (code, list) = client
        .call(
            Method::GET,
            "/apis/networking.k8s.io/v1/ipaddresses?labelSelector=ipaddress.kubernetes.io%2Fmanaged-by%3Dipallocator.k8s.io",
            None,
        )
        .await;
    if code != 200 {
        return;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for addr in list["items"].as_array().into_iter().flatten() {
        let ip = addr["metadata"]["name"].as_str().unwrap_or("");
        let created = addr["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| t.unix_timestamp())
            .unwrap_or(now);
        if now - created < REPAIR_GRACE_SECONDS {
            continue;
        }
        let parent = &addr["spec"]["parentRef"];
        if parent["resource"] != "services" {
            continue;
        }
        let (ns, name) = (
            parent["namespace"].as_str().unwrap_or(""),
            parent["name"].as_str().unwrap_or(""),
        );
        let (code, svc) = client
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/services/{name}"),
                None,
            )
            .await;
        let orphan = code == 404 || (code == 200 && !held(&svc).iter().any(|h| h == ip));
        if orphan {
            release_one(&client, ip).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hand_out_host_addresses_only() {
        let r = Range::parse("10.32.0.0/24").unwrap();
        assert_eq!(r.size(), 254);
        assert_eq!(r.at(0).to_string(), "10.32.0.1");
        assert_eq!(r.at(253).to_string(), "10.32.0.254");
        assert!(r.contains(&"10.32.0.1".parse().unwrap()));
        assert!(!r.contains(&"10.32.0.0".parse().unwrap()));
        assert!(!r.contains(&"10.32.0.255".parse().unwrap()));
        assert!(!r.contains(&"10.33.0.1".parse().unwrap()));
        assert_eq!(r.dynamic_start(), 16);
        let big = Range::parse("10.96.0.0/12").unwrap();
        assert_eq!(big.dynamic_start(), 256);
        let v6 = Range::parse("fd00::/108").unwrap();
        assert!(v6.contains(&"fd00::1".parse().unwrap()));
        assert!(!v6.contains(&"10.0.0.1".parse().unwrap()));
    }
}
