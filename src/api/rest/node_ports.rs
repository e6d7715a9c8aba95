//! NodePort allocation on upstream's shared bitmap: the RangeAllocation at
//! `<prefix>ranges/servicenodeports` (protobuf, the range and a big-endian bit set, bit i for
//! port base+i), claimed and released by compare-and-swap on the key, so kapi and upstream
//! apiservers sharing one etcd never hand out the same port. Hand-encoded: the message is
//! three fields and not served through the API.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::api::server::Api;
use crate::api::status::Status;
use crate::storage::StoreError;

/// Compare-and-swap attempts against concurrent allocators.
const ATTEMPTS: usize = 64;

/// The bitmap as upstream stores it, with the range it covers.
struct Bitmap {
    base: u32,
    size: u32,
    /// Little-endian bit order over bytes: bit i is `bits[i / 8] >> (i % 8)`.
    bits: Vec<u8>,
}

impl Bitmap {
    fn new(base: u32, size: u32) -> Bitmap {
        Bitmap {
            base,
            size,
            bits: vec![0; size.div_ceil(8) as usize],
        }
    }

    fn has(&self, port: u32) -> bool {
        let i = port.wrapping_sub(self.base);
        i < self.size && self.bits[(i / 8) as usize] & (1 << (i % 8)) != 0
    }

    fn set(&mut self, port: u32, on: bool) {
        let i = port.wrapping_sub(self.base);
        if i < self.size {
            let b = &mut self.bits[(i / 8) as usize];
            if on {
                *b |= 1 << (i % 8);
            } else {
                *b &= !(1 << (i % 8));
            }
        }
    }

    /// Upstream's data: big.Int bytes (big-endian, no leading zero bytes).
    fn data(&self) -> Vec<u8> {
        let mut be: Vec<u8> = self.bits.iter().rev().copied().collect();
        let zeros = be.iter().take_while(|b| **b == 0).count();
        be.drain(..zeros);
        be
    }

    fn from_data(base: u32, size: u32, data: &[u8]) -> Bitmap {
        let mut b = Bitmap::new(base, size);
        for (i, byte) in data.iter().rev().enumerate() {
            if let Some(slot) = b.bits.get_mut(i) {
                *slot = *byte;
            }
        }
        b
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn field(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// The stored value: a `k8s\0` envelope around RangeAllocation{metadata, range, data}, with
/// the empty ObjectMeta fields upstream's encoder writes.
fn encode(range: &str, bitmap: &Bitmap) -> Vec<u8> {
    let meta = [
        0x0a, 0, 0x12, 0, 0x1a, 0, 0x22, 0, 0x2a, 0, 0x32, 0, 0x38, 0, 0x42, 0,
    ];
    let mut raw = Vec::new();
    field(0x0a, &meta, &mut raw);
    field(0x12, range.as_bytes(), &mut raw);
    field(0x1a, &bitmap.data(), &mut raw);
    let mut out = Vec::new();
    kapi_codec::envelope::write_envelope("v1", "RangeAllocation", &raw, &mut out);
    out
}

/// Reads (range, data) from a stored RangeAllocation.
fn decode(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let env = kapi_codec::envelope::Envelope::parse(value).ok()?;
    let raw = env.raw;
    let (mut range, mut data) = (String::new(), Vec::new());
    let mut i = 0;
    while i < raw.len() {
        let tag = raw[i];
        i += 1;
        if tag & 7 != 2 {
            return None;
        }
        let mut len: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *raw.get(i)?;
            i += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        let end = i.checked_add(usize::try_from(len).ok()?)?;
        let bytes = raw.get(i..end)?;
        match tag >> 3 {
            2 => range = String::from_utf8(bytes.to_vec()).ok()?,
            3 => data = bytes.to_vec(),
            _ => {}
        }
        i = end;
    }
    Some((range, data))
}

fn key(api: &Api) -> String {
    format!("{}ranges/servicenodeports", api.prefix)
}

/// Whether the Service gets node ports: NodePort Services, and LoadBalancer ones unless
/// `allocateLoadBalancerNodePorts` is false.
fn wants_node_ports(svc: &Value) -> bool {
    match svc["spec"]["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => svc["spec"]["allocateLoadBalancerNodePorts"] != json!(false),
        _ => false,
    }
}

fn invalid(name: &str, field: String, port: i64, why: &str) -> Status {
    super::allocation::service_invalid(name, field, &port.to_string(), why)
}

/// Applies `change` to the bitmap by compare-and-swap (creating the key when absent).
async fn update_bitmap<T>(
    api: &Arc<Api>,
    mut change: impl FnMut(&mut Bitmap) -> Result<T, Status>,
) -> Result<T, Status> {
    let (base, size) = crate::flags::parse_port_range(&crate::flags::settings().node_port_range)
        .map_err(Status::internal)?;
    let range = crate::flags::settings().node_port_range.to_string();
    let key = key(api);
    for _ in 0..ATTEMPTS {
        let current = api
            .store
            .get(key.as_bytes())
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut bitmap = match &current {
            Some(kv) => {
                let (_, data) = decode(&kv.value).unwrap_or_default();
                Bitmap::from_data(u32::from(base), u32::from(size), &data)
            }
            None => Bitmap::new(u32::from(base), u32::from(size)),
        };
        let out = change(&mut bitmap)?;
        let value = Bytes::from(encode(&range, &bitmap));
        let written = match &current {
            Some(kv) if kv.value == value => return Ok(out),
            _ => write_bitmap(api, &key, current.as_ref(), value).await,
        };
        match written {
            Ok(()) => return Ok(out),
            Err(StoreError::Conflict { .. } | StoreError::AlreadyExists) => continue,
            Err(e) => return Err(Status::internal(e.to_string())),
        }
    }
    Err(Status::internal(
        "failed to allocate a nodePort: too much contention",
    ))
}

/// Ports at the bottom of the range kept for requested ports: upstream's
/// `min(max(16, size/32), 128)`, never more than half the range.
fn static_band(size: u32) -> u32 {
    (size / 32).clamp(16, 128).min(size / 2)
}

/// Why a port could not be had (upstream's port allocator errors).
enum Refusal {
    NotInRange,
    Allocated,
    Full,
}

impl Refusal {
    fn text(&self, range: &str) -> String {
        match self {
            Refusal::NotInRange => format!(
                "provided port is not in the valid range. The range of valid ports is {range}"
            ),
            Refusal::Allocated => "provided port is already allocated".into(),
            Refusal::Full => "range is full".into(),
        }
    }
}

/// One port: the one asked for (in range and free), else a free one — the upper band first,
/// from a random start; the lower band (kept for ports clients ask for) only when the upper one
/// is full, as upstream's static-subrange rule.
fn take(bitmap: &Bitmap, chosen: &[u32], requested: Option<i64>) -> Result<u32, Refusal> {
    if let Some(p) = requested.filter(|p| *p != 0) {
        let p32 = u32::try_from(p).unwrap_or(0);
        if p32 < bitmap.base || p32 - bitmap.base >= bitmap.size {
            return Err(Refusal::NotInRange);
        }
        if bitmap.has(p32) || chosen.contains(&p32) {
            return Err(Refusal::Allocated);
        }
        return Ok(p32);
    }
    let band = static_band(bitmap.size);
    let upper = bitmap.size - band;
    let pick = |from: u32, len: u32| {
        if len == 0 {
            return None;
        }
        let start = fastrand::u32(..len);
        (0..len)
            .map(|k| bitmap.base + from + (start + k) % len)
            .find(|p| !bitmap.has(*p) && !chosen.contains(p))
    };
    pick(band, upper)
        .or_else(|| pick(0, band))
        .ok_or(Refusal::Full)
}

/// A port for `field`: a refused request is upstream's 422 on the field, a full range its 500.
fn claim(
    bitmap: &Bitmap,
    chosen: &[u32],
    requested: Option<i64>,
    field: String,
    name: &str,
    range: &str,
) -> Result<u32, Status> {
    take(bitmap, chosen, requested).map_err(|why| match (why, requested) {
        (Refusal::Full, _) | (_, None | Some(0)) => {
            Status::internal("failed to allocate a nodePort: range is full")
        }
        (why, Some(p)) => invalid(name, field, p, &why.text(range)),
    })
}

/// The health-check node port (upstream's `allocHealthCheckNodePort`, whose failures are 500s).
fn claim_health_check(
    bitmap: &Bitmap,
    chosen: &[u32],
    requested: Option<i64>,
    range: &str,
) -> Result<u32, Status> {
    take(bitmap, chosen, requested).map_err(|why| match requested.filter(|p| *p != 0) {
        Some(p) => Status::internal(format!(
            "failed to allocate requested HealthCheck NodePort {p}: {}",
            why.text(range)
        )),
        None => Status::internal(format!(
            "failed to allocate a HealthCheck NodePort 0: {}",
            why.text(range)
        )),
    })
}

/// The end of a claim: the health-check port when one is wanted (`Some(requested)`), then
/// every chosen port marked taken (not on a dry run). Gives the health-check port.
fn close(
    bitmap: &mut Bitmap,
    chosen: &mut Vec<u32>,
    health_check: Option<Option<i64>>,
    range: &str,
    dry_run: bool,
) -> Result<Option<u32>, Status> {
    let port = match health_check {
        Some(requested) => {
            let port = claim_health_check(bitmap, chosen, requested, range)?;
            chosen.push(port);
            Some(port)
        }
        None => None,
    };
    if !dry_run {
        for p in chosen.iter() {
            bitmap.set(*p, true);
        }
    }
    Ok(port)
}

/// Whether a Service needs a health-check node port: a LoadBalancer whose external traffic
/// stays on the node (`externalTrafficPolicy: Local`).
fn wants_health_check_port(svc: &Value) -> bool {
    crate::kinds::service_updates::needs_health_check_port(&svc["spec"])
}

/// Claims the node ports of a new Service (the ones it names, and a free one for each port
/// without; and its health-check node port when it needs one); writes them into `svc`.
/// Returns the ports claimed (to release if the create fails).
pub async fn allocate(
    api: &Arc<Api>,
    svc: &mut Value,
    name: &str,
    dry_run: bool,
) -> Result<Vec<u32>, Status> {
    let wants_ports = wants_node_ports(svc);
    let wants_health_check = wants_health_check_port(svc);
    if !wants_ports && !wants_health_check {
        return Ok(Vec::new());
    }
    let range = crate::flags::settings().node_port_range.to_string();
    let ports: Vec<Option<i64>> = match wants_ports {
        true => svc["spec"]["ports"]
            .as_array()
            .map(|ps| ps.iter().map(|p| p["nodePort"].as_i64()).collect())
            .unwrap_or_default(),
        false => Vec::new(),
    };
    // Entries with the same port number share one node port (upstream's initNodePorts): the
    // one an entry asks for, else the first one given to an earlier entry.
    let numbers: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .map(|ps| ps.iter().map(|p| p["port"].as_i64().unwrap_or(0)).collect())
        .unwrap_or_default();
    let asked_health_check = svc["spec"]["healthCheckNodePort"].as_i64();
    let name = name.to_owned();
    let (chosen, assigned, health_check) = update_bitmap(api, |bitmap| {
        let mut chosen: Vec<u32> = Vec::new();
        let mut assigned: Vec<u32> = Vec::new();
        let mut by_number: Vec<(i64, u32)> = Vec::new();
        for (i, asked) in ports.iter().enumerate() {
            let number = numbers.get(i).copied().unwrap_or(0);
            let shared = by_number
                .iter()
                .find(|(n, _)| *n == number)
                .map(|(_, p)| *p);
            let requested = match asked {
                Some(p) if *p != 0 => Some(*p),
                _ if shared.is_none() => ports[i..]
                    .iter()
                    .zip(&numbers[i..])
                    .find(|(p, n)| **n == number && p.is_some_and(|p| p != 0))
                    .and_then(|(p, _)| *p),
                _ => None,
            };
            if let (None, Some(shared)) = (requested, shared) {
                assigned.push(shared);
                continue;
            }
            if let (Some(r), Some(shared)) = (requested, shared)
                && u32::try_from(r).ok() == Some(shared)
            {
                assigned.push(shared);
                continue;
            }
            let field = format!("spec.ports[{i}].nodePort");
            let port = claim(bitmap, &chosen, requested, field, &name, &range)?;
            chosen.push(port);
            assigned.push(port);
            if shared.is_none() {
                by_number.push((number, port));
            }
        }
        let health_check = wants_health_check.then_some(asked_health_check);
        let health_check = close(bitmap, &mut chosen, health_check, &range, dry_run)?;
        Ok((chosen, assigned, health_check))
    })
    .await?;
    if let Some(ps) = svc["spec"]["ports"].as_array_mut() {
        for (p, port) in ps.iter_mut().zip(&assigned) {
            p["nodePort"] = json!(port);
        }
    }
    if let Some(port) = health_check {
        svc["spec"]["healthCheckNodePort"] = json!(port);
    }
    Ok(if dry_run { Vec::new() } else { chosen })
}

/// Lets `ports` go.
pub async fn release(api: &Arc<Api>, ports: &[u32]) {
    if ports.is_empty() {
        return;
    }
    let _ = update_bitmap(api, |bitmap| {
        for p in ports {
            bitmap.set(*p, false);
        }
        Ok(())
    })
    .await;
}

/// What an update did to node ports: claimed now (let go if the update fails) and to release
/// once the update is written.
#[derive(Debug, Default)]
pub struct Changed {
    pub claimed: Vec<u32>,
    pub released: Vec<u32>,
}

/// The ports' node ports (not the health-check port): upstream's `collectServiceNodePorts`.
fn port_node_ports(svc: &Value) -> Vec<u32> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_u64())
        .filter_map(|p| u32::try_from(p).ok())
        .filter(|p| *p != 0)
        .collect()
}

/// The node-port side of a Service update (upstream's `txnUpdateNodePorts`): leaving
/// NodePort/LoadBalancer for ClusterIP or ExternalName releases every node port; a
/// NodePort/LoadBalancer Service keeps the ports it had, claims a port it names anew and a
/// free one for a port without, and releases those no port uses any more; the health-check
/// port is claimed when `externalTrafficPolicy: Local` starts to apply and released when it
/// stops.
pub async fn update(
    api: &Arc<Api>,
    svc: &mut Value,
    old: &Value,
    name: &str,
    dry_run: bool,
) -> Result<Changed, Status> {
    use crate::kinds::service_families::service_type;
    let (spec, was) = (&svc["spec"], &old["spec"]);
    let old_ports = port_node_ports(old);
    let mut released: Vec<u32> = Vec::new();
    let leaving = matches!(service_type(was), "NodePort" | "LoadBalancer")
        && matches!(service_type(spec), "ClusterIP" | "ExternalName");
    if leaving {
        released.extend(&old_ports);
    }
    let wants_ports = matches!(service_type(spec), "NodePort" | "LoadBalancer");
    let allocates = wants_node_ports(svc);
    let asked: Vec<(i64, String)> = match wants_ports {
        true => spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["nodePort"].as_i64().unwrap_or(0),
                    p["protocol"].as_str().unwrap_or("TCP").to_owned(),
                )
            })
            .collect(),
        false => Vec::new(),
    };
    let (had_check, needs_check) = (wants_health_check_port(old), wants_health_check_port(svc));
    let asked_check = spec["healthCheckNodePort"].as_i64();
    if had_check && !needs_check {
        released.extend(
            was["healthCheckNodePort"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p != 0),
        );
    }
    // The health-check port is claimed when `Local` starts to apply.
    let claims_check = needs_check && !had_check;
    if asked.is_empty() && !claims_check {
        return Ok(Changed {
            claimed: Vec::new(),
            released,
        });
    }
    let range = crate::flags::settings().node_port_range.to_string();
    let owner = name.to_owned();
    let (chosen, assigned, check) = update_bitmap(api, |bitmap| {
        let mut chosen: Vec<u32> = Vec::new();
        let mut assigned: Vec<Option<u32>> = Vec::new();
        let mut seen: Vec<(u32, &str)> = Vec::new();
        for (i, (asked, protocol)) in asked.iter().enumerate() {
            if *asked == 0 && !allocates {
                assigned.push(None);
                continue;
            }
            let port = match u32::try_from(*asked).ok().filter(|p| *p != 0) {
                Some(p) if old_ports.contains(&p) || chosen.contains(&p) => p,
                _ => {
                    let field = format!("spec.ports[{i}].nodePort");
                    let requested = Some(*asked).filter(|p| *p != 0);
                    let p = claim(bitmap, &chosen, requested, field, &owner, &range)?;
                    chosen.push(p);
                    p
                }
            };
            if seen.contains(&(port, protocol.as_str())) {
                return Err(Status::internal(format!(
                    "duplicate nodePort: {{{protocol} {port}}}"
                )));
            }
            seen.push((port, protocol.as_str()));
            assigned.push(Some(port));
        }
        let check = claims_check.then_some(asked_check);
        let check = close(bitmap, &mut chosen, check, &range, dry_run)?;
        Ok((chosen, assigned, check))
    })
    .await?;
    if let Some(ps) = svc["spec"]["ports"].as_array_mut() {
        for (p, port) in ps.iter_mut().zip(&assigned) {
            if let Some(port) = port {
                p["nodePort"] = json!(port);
            }
        }
    }
    if let Some(port) = check {
        svc["spec"]["healthCheckNodePort"] = json!(port);
    }
    if wants_ports {
        let now: Vec<u32> = assigned.iter().flatten().copied().collect();
        released.extend(old_ports.iter().filter(|p| !now.contains(p)));
    }
    released.sort_unstable();
    released.dedup();
    Ok(Changed {
        claimed: if dry_run { Vec::new() } else { chosen },
        released: if dry_run { Vec::new() } else { released },
    })
}

/// The node ports a stored Service holds.
pub fn held(svc: &Value) -> Vec<u32> {
    let mut held: Vec<u32> = svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["nodePort"].as_u64())
                .filter_map(|p| u32::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default();
    held.extend(
        svc["spec"]["healthCheckNodePort"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p != 0),
    );
    held.sort_unstable();
    held.dedup();
    held
}

/// Sweeps in a row a port must be found claimed with no Service holding it before the repair
/// lets it go (upstream's `numRepairsBeforeLeakCleanup`): a create claims its ports before it
/// writes its Service, so one sweep may see them unheld.
const SWEEPS_BEFORE_LEAK_CLEANUP: u8 = 3;

/// Ports found claimed but unheld, and in how many sweeps in a row (at most one entry per
/// port of the range).
static LEAKS: std::sync::Mutex<std::collections::BTreeMap<u32, u8>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// One repair decision over `bitmap`: ports the Services hold are claimed (a crash between a
/// claim and its write, or a bitmap lost, left them out), ports claimed that no Service holds
/// are let go once seen so `SWEEPS_BEFORE_LEAK_CLEANUP` sweeps in a row. Gives whether the
/// bitmap changed.
fn repair_bitmap(
    bitmap: &mut Bitmap,
    held: &std::collections::BTreeSet<u32>,
    leaks: &mut std::collections::BTreeMap<u32, u8>,
) -> bool {
    let mut changed = false;
    for p in held {
        if !bitmap.has(*p) && p.wrapping_sub(bitmap.base) < bitmap.size {
            eprintln!("kapi: node port repair: port {p} is held by a Service but was not claimed");
            bitmap.set(*p, true);
            changed = true;
        }
    }
    let mut still = std::collections::BTreeMap::new();
    for i in 0..bitmap.size {
        let p = bitmap.base + i;
        if !bitmap.has(p) || held.contains(&p) {
            continue;
        }
        let seen = leaks.get(&p).copied().unwrap_or(0) + 1;
        if seen >= SWEEPS_BEFORE_LEAK_CLEANUP {
            eprintln!("kapi: node port repair: port {p} leaked; releasing it");
            bitmap.set(p, false);
            changed = true;
        } else {
            still.insert(p, seen);
        }
    }
    *leaks = still;
    changed
}

/// Upstream's node-port repair loop, one sweep: the bitmap is read first, then every Service
/// (a consistent list, at or after that read), and the repaired bitmap is written only if the
/// key is unchanged since it was read (an allocation in between: the next sweep decides).
pub async fn repair(api: &Arc<Api>) {
    let Ok((base, size)) =
        crate::flags::parse_port_range(&crate::flags::settings().node_port_range)
    else {
        return;
    };
    let range = crate::flags::settings().node_port_range.to_string();
    let key = key(api);
    let Ok(current) = api.store.get(key.as_bytes()).await else {
        return;
    };
    let client = crate::startup::Client::new(api.clone());
    let (code, list) = client
        .call(http::Method::GET, "/api/v1/services", None)
        .await;
    if code != 200 {
        return;
    }
    let held: std::collections::BTreeSet<u32> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(held)
        .collect();
    let mut bitmap = match &current {
        Some(kv) => {
            let (_, data) = decode(&kv.value).unwrap_or_default();
            Bitmap::from_data(u32::from(base), u32::from(size), &data)
        }
        None => Bitmap::new(u32::from(base), u32::from(size)),
    };
    let changed = {
        let mut leaks = LEAKS.lock().unwrap_or_else(|e| e.into_inner());
        repair_bitmap(&mut bitmap, &held, &mut leaks)
    };
    if !changed {
        return;
    }
    let value = Bytes::from(encode(&range, &bitmap));
    let _ = write_bitmap(api, &key, current.as_ref(), value).await;
}

/// Writes the bitmap over `current` (compare-and-swap on its revision), or creates it.
async fn write_bitmap(
    api: &Arc<Api>,
    key: &str,
    current: Option<&crate::storage::KeyValue>,
    value: Bytes,
) -> Result<(), StoreError> {
    match current {
        Some(kv) => api
            .store
            .update(key.as_bytes(), value, kv.mod_revision)
            .await
            .map(|_| ()),
        None => api
            .store
            .create(key.as_bytes(), value, None)
            .await
            .map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_claims_held_ports_and_lets_leaks_go_after_three_sweeps() {
        let mut b = Bitmap::new(30000, 100);
        b.set(30005, true); // held, claimed
        b.set(30007, true); // claimed, held by nobody
        let held: std::collections::BTreeSet<u32> = [30005, 30009].into();
        let mut leaks = std::collections::BTreeMap::new();
        assert!(repair_bitmap(&mut b, &held, &mut leaks));
        assert!(b.has(30009), "a held port is claimed");
        assert!(b.has(30007), "a leak is kept at first");
        assert!(!repair_bitmap(&mut b, &held, &mut leaks));
        assert!(b.has(30007));
        assert!(repair_bitmap(&mut b, &held, &mut leaks));
        assert!(!b.has(30007), "let go on the third sweep");
        assert!(b.has(30005) && b.has(30009));
        assert!(leaks.is_empty());
        // A port claimed again in between starts over.
        b.set(30011, true);
        repair_bitmap(&mut b, &held, &mut leaks);
        let held_now: std::collections::BTreeSet<u32> = [30005, 30009, 30011].into();
        repair_bitmap(&mut b, &held_now, &mut leaks);
        assert!(leaks.is_empty() && b.has(30011));
    }

    #[test]
    fn reads_and_writes_upstreams_stored_bitmap() {
        // The value a v1.36 kube-apiserver stored with port 31196 taken (shared/upstream
        // etcd-values/ranges_servicenodeports.bin): 150 data bytes, 0x10 first.
        let mut data = vec![0u8; 150];
        data[0] = 0x10;
        let b = Bitmap::from_data(30000, 2768, &data);
        assert!(b.has(31196));
        assert!(!b.has(31195) && !b.has(30000));
        assert_eq!(b.data(), data);
        let value = encode("30000-32767", &b);
        assert_eq!(value.len(), 218, "upstream's stored size");
        assert_eq!(&value[..4], b"k8s\0");
        let (range, back) = decode(&value).unwrap();
        assert_eq!(range, "30000-32767");
        assert_eq!(back, data);
        assert_eq!(static_band(2768), 86);
        assert_eq!(static_band(101), 16);
        assert_eq!(static_band(10), 5);
        let mut empty = Bitmap::new(30000, 2768);
        empty.set(30000, true);
        assert_eq!(empty.data(), vec![1]);
        empty.set(30000, false);
        assert!(empty.data().is_empty());
    }
}
