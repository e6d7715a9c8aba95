//! The `kubernetes` Service's endpoints: which apiservers they list, as upstream's endpoint
//! reconcilers decide (`--endpoint-reconciler-type`). `lease` (the default): each apiserver
//! keeps a TTL'd key `<prefix>masterleases/<ip>` (upstream's key and value: an Endpoints with
//! the address, its generation bumped on each renewal) and the endpoints list every address
//! with a live key, so kapi and upstream apiservers on one etcd see each other; on shutdown an
//! apiserver deletes its key and the endpoints follow. `master-count`: each apiserver adds its
//! own address and trims the list to `--apiserver-count`. `none`: the endpoints are left alone.
//! Run every `RENEW_INTERVAL` by the start-up thread (`startup`).

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::startup::{Client, Info};
use crate::storage::StoreError;

/// How long an apiserver's lease lives without renewal (upstream's
/// `DefaultEndpointReconcilerTTL`): one and a half renewal intervals.
pub const LEASE_TTL_SECONDS: i64 = 15;
/// Compare-and-swap attempts of one lease renewal against a concurrent writer of the key.
const ATTEMPTS: usize = 8;
/// Leases read at most: far more apiservers than any cluster runs.
const MAX_LEASES: i64 = 1024;

/// `--endpoint-reconciler-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointReconciler {
    Lease,
    /// `master-count` with `--apiserver-count`.
    MasterCount(usize),
    None,
}

impl EndpointReconciler {
    pub fn parse(kind: &str, count: i64) -> Result<EndpointReconciler, String> {
        match kind {
            "lease" => Ok(EndpointReconciler::Lease),
            "master-count" => Ok(EndpointReconciler::MasterCount(
                usize::try_from(count).unwrap_or(1).max(1),
            )),
            "none" => Ok(EndpointReconciler::None),
            other => Err(format!("Reconciler not implemented: {other}")),
        }
    }

    /// One round: this apiserver's lease renewed (lease), then the endpoints made to list the
    /// addresses they should.
    pub async fn reconcile(&self, client: &Client, info: &Info) -> Result<(), String> {
        let own = info.advertise.to_string();
        let ips = match self {
            EndpointReconciler::None => return Ok(()),
            EndpointReconciler::Lease => {
                renew_lease(client, &own).await?;
                let ips = leases(client).await?;
                if ips.is_empty() {
                    // Our own key was just written: an empty list is a broken read.
                    return Err(
                        "no master IPs were listed in storage, refusing to erase all endpoints for the kubernetes service"
                            .into(),
                    );
                }
                ips
            }
            EndpointReconciler::MasterCount(count) => {
                let mut ips = listed(client).await;
                if !ips.contains(&own) {
                    ips.push(own.clone());
                }
                ips.sort();
                trim_after(&mut ips, &own, *count);
                ips
            }
        };
        crate::startup::ensure_endpoints(client, info, &ips).await
    }

    /// On shutdown: this apiserver leaves the endpoints (its lease deleted first).
    pub async fn remove(&self, client: &Client, info: &Info) -> Result<(), String> {
        let own = info.advertise.to_string();
        let ips = match self {
            EndpointReconciler::None => return Ok(()),
            EndpointReconciler::Lease => {
                let key = lease_key(client, &own);
                match client.api.store.delete(key.as_bytes(), None).await {
                    Ok(_) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(format!("removing the lease of {own}: {e}")),
                }
                leases(client).await?
            }
            EndpointReconciler::MasterCount(_) => {
                let mut ips = listed(client).await;
                ips.retain(|ip| *ip != own);
                ips
            }
        };
        if ips.is_empty() {
            // The last apiserver leaves the endpoints as they are, as upstream's.
            return Ok(());
        }
        crate::startup::ensure_endpoints(client, info, &ips).await
    }
}

/// master-count's rule: with more addresses than apiservers, those after our own (wrapping
/// around) go, so that every apiserver's list converges.
fn trim_after(ips: &mut Vec<String>, own: &str, count: usize) {
    let Some(mut i) = ips.iter().position(|ip| ip == own) else {
        return;
    };
    while ips.len() > count.max(1) {
        let remove = (i + 1) % ips.len();
        ips.remove(remove);
        if remove < i {
            i -= 1;
        }
    }
}

fn lease_key(client: &Client, ip: &str) -> String {
    format!("{}masterleases/{ip}", client.api.prefix)
}

/// The stored lease: upstream's Endpoints value (no name; the address in one subset; the
/// generation counting renewals, so that every renewal is a write that restarts the TTL).
fn lease_value(ip: &str, generation: i64) -> Result<Bytes, String> {
    let obj = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"generation": generation},
        "subsets": [{"addresses": [{"ip": ip}]}],
    });
    let text = serde_json::to_vec(&obj).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    kapi_codec::to_pb::json_to_envelope(
        &text,
        Some(("v1", "Endpoints")),
        kapi_codec::FieldValidation::Ignore,
        &mut out,
    )
    .map_err(|e| format!("encoding a lease: {e}"))?;
    Ok(Bytes::from(out))
}

/// A stored lease as JSON (Null when it cannot be read).
fn read_lease(value: &[u8]) -> Value {
    let mut out = Vec::new();
    match kapi_codec::to_json::envelope_to_json(value, &mut out) {
        Ok(()) => serde_json::from_slice(&out).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Writes this apiserver's lease again with a fresh TTL (created when it is gone).
async fn renew_lease(client: &Client, ip: &str) -> Result<(), String> {
    let store = &client.api.store;
    let key = lease_key(client, ip);
    for _ in 0..ATTEMPTS {
        let current = store.get(key.as_bytes()).await.map_err(|e| e.to_string())?;
        let written = match current {
            None => store
                .create(key.as_bytes(), lease_value(ip, 1)?, Some(LEASE_TTL_SECONDS))
                .await
                .map(drop),
            Some(kv) => {
                let generation = read_lease(&kv.value)["metadata"]["generation"]
                    .as_i64()
                    .unwrap_or(0);
                let value = lease_value(ip, generation.saturating_add(1))?;
                store
                    .update_leased(
                        key.as_bytes(),
                        value,
                        kv.mod_revision,
                        Some(LEASE_TTL_SECONDS),
                    )
                    .await
                    .map(drop)
            }
        };
        match written {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict { .. } | StoreError::AlreadyExists | StoreError::NotFound) => {
                continue;
            }
            Err(e) => return Err(format!("renewing the lease of {ip}: {e}")),
        }
    }
    Err(format!("renewing the lease of {ip}: too much contention"))
}

/// The addresses of every live lease, in order.
async fn leases(client: &Client) -> Result<Vec<String>, String> {
    let prefix = lease_key(client, "");
    let range = client
        .api
        .store
        .range(prefix.as_bytes(), prefix.as_bytes(), 0, MAX_LEASES)
        .await
        .map_err(|e| format!("listing the apiserver leases: {e}"))?;
    let mut ips: Vec<String> = range
        .kvs
        .iter()
        .filter_map(|kv| {
            read_lease(&kv.value)["subsets"][0]["addresses"][0]["ip"]
                .as_str()
                .filter(|ip| !ip.is_empty())
                .map(str::to_owned)
        })
        .collect();
    ips.sort();
    ips.dedup();
    Ok(ips)
}

/// The addresses the `kubernetes` Endpoints list now.
async fn listed(client: &Client) -> Vec<String> {
    let (code, ep) = client
        .call(
            Method::GET,
            "/api/v1/namespaces/default/endpoints/kubernetes",
            None,
        )
        .await;
    if code != 200 {
        return Vec::new();
    }
    ep["subsets"][0]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["ip"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_count_trims_the_addresses_after_its_own() {
        let mut ips: Vec<String> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .map(String::from)
            .to_vec();
        trim_after(&mut ips, "10.0.0.2", 2);
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
        let mut ips: Vec<String> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .map(String::from)
            .to_vec();
        trim_after(&mut ips, "10.0.0.3", 1);
        assert_eq!(ips, ["10.0.0.3"]);
        assert!(EndpointReconciler::parse("bogus", 1).is_err());
        assert_eq!(
            EndpointReconciler::parse("master-count", 3),
            Ok(EndpointReconciler::MasterCount(3))
        );
    }

    #[test]
    fn a_lease_is_upstreams_endpoints_value() {
        let value = lease_value("10.0.0.7", 4).unwrap();
        assert_eq!(&value[..4], b"k8s\0");
        let back = read_lease(&value);
        assert_eq!(back["kind"], "Endpoints");
        assert_eq!(back["metadata"]["generation"], 4);
        assert_eq!(back["subsets"][0]["addresses"][0]["ip"], "10.0.0.7");
    }
}
