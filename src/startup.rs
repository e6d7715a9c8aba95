//! The objects upstream's apiserver creates and keeps at start, made here through kapi's own
//! request path as the loopback user (`system:apiserver`), so that they get the same defaults,
//! validation and storage as any client's: the `extension-apiserver-authentication` and
//! legacy-token-tracking ConfigMaps, the system PriorityClasses, an APIService per served
//! group-version, the `kubernetes` Service with its ServiceCIDR, IPAddress, Endpoints and
//! EndpointSlice, and this apiserver's identity Lease, renewed every 10 s by a small thread.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use serde_json::{Value, json};
use sha2::Digest;

use crate::api::server::Api;
use crate::transport::{Body, Peer, Request, RequestTarget};

/// How often the identity Lease is renewed and the `kubernetes` endpoints checked (upstream:
/// 10 s for both).
const RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// Renewal rounds between two sweeps of orphaned Service addresses (one a minute).
const REPAIR_EVERY: u64 = 6;
/// The identity Lease's duration (upstream: 3600 s).
const IDENTITY_LEASE_SECONDS: i64 = 3600;
/// Attempts per start-up object (the cache may not yet hold the namespace a create needs).
const ATTEMPTS: usize = 50;
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// Response bytes read from a loopback call: start-up objects are small.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// `--service-cluster-ip-range` when the flag is absent (upstream's default).
pub const DEFAULT_SERVICE_CIDR: &str = "10.0.0.0/24";

/// The front-proxy settings the `extension-apiserver-authentication` ConfigMap publishes.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaderInfo {
    pub ca_pem: Vec<u8>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
    pub allowed_names: Vec<String>,
}

/// What the start-up objects are made from: flags and files.
#[derive(Debug, Clone)]
pub struct Info {
    pub client_ca_pem: Vec<u8>,
    pub requestheader: Option<RequestHeaderInfo>,
    /// `--service-cluster-ip-range` (one or two CIDRs).
    pub service_cidrs: Vec<String>,
    /// `--advertise-address` (else `--bind-address`).
    pub advertise: IpAddr,
    pub secure_port: u16,
    pub hostname: String,
    /// `--endpoint-reconciler-type`: how the `kubernetes` endpoints list the apiservers.
    pub reconciler: crate::reconcilers::EndpointReconciler,
}

/// Upstream's APIService priorities (group minimum, version) for the group-versions kapi serves.
const API_SERVICE_PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
    ("resource.k8s.io", "v1", 15900, 15),
    // Beta and alpha versions, registered only when served (`--runtime-config`).
    ("certificates.k8s.io", "v1beta1", 17300, 9),
    ("certificates.k8s.io", "v1alpha1", 17300, 1),
    ("networking.k8s.io", "v1beta1", 17200, 9),
    ("storage.k8s.io", "v1beta1", 16800, 9),
    ("admissionregistration.k8s.io", "v1beta1", 16700, 12),
    ("admissionregistration.k8s.io", "v1alpha1", 16700, 9),
    ("coordination.k8s.io", "v1beta1", 16500, 13),
    ("coordination.k8s.io", "v1alpha2", 16500, 12),
    ("scheduling.k8s.io", "v1alpha2", 16600, 9),
    ("internal.apiserver.k8s.io", "v1alpha1", 16000, 9),
    ("resource.k8s.io", "v1beta2", 15900, 13),
    ("resource.k8s.io", "v1beta1", 15900, 12),
    ("resource.k8s.io", "v1alpha3", 15900, 9),
    ("storagemigration.k8s.io", "v1beta1", 15800, 9),
];

/// A loopback client of kapi's own API.
pub struct Client {
    pub(crate) api: Arc<Api>,
}

impl Client {
    pub fn new(api: Arc<Api>) -> Client {
        Client { api }
    }

    /// One request as `system:apiserver`; (HTTP status, JSON body or Null).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(method, path, "application/json", body).await
    }

    async fn call_as(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let Some(uri) = RequestTarget::parse(path) else {
            return (0, Value::Null);
        };
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", self.api.loopback_token)) {
            headers.insert(header::AUTHORIZATION, v);
        }
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(content_type) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static("kube-apiserver/v1.36.2 (linux/amd64) kubernetes/kapi"),
        );
        let body = body
            .map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default()))
            .unwrap_or_default();
        let req = Request {
            method,
            uri,
            headers,
            body,
            peer: Peer::anonymous(),
            http2: false,
        };
        // Boxed: a loopback call may come from a request (a Service create claiming its
        // address), so the future type would otherwise contain itself.
        let handled: std::pin::Pin<
            Box<dyn std::future::Future<Output = crate::transport::Response>>,
        > = Box::pin(self.api.clone().handle(req));
        let resp = handled.await;
        let bytes = match resp.body {
            Body::Full(b) => b.to_vec(),
            Body::Tunnel(..) => Vec::new(),
            Body::Stream(mut rx) | Body::Observed(mut rx, _) => {
                use futures::StreamExt;
                let mut out = Vec::new();
                while let Some(chunk) = rx.next().await {
                    if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        break;
                    }
                    out.extend_from_slice(&chunk);
                }
                out
            }
        };
        (
            resp.status.as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Creates `obj` at `collection` unless it exists (read first, as upstream's reconcilers
    /// do: a create may have side effects, such as a Service's address claim); retried while
    /// the server is settling.
    async fn ensure(&self, collection: &str, obj: &Value) -> Result<(), String> {
        let mut last = (0, Value::Null);
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        for _ in 0..ATTEMPTS {
            if self
                .call(Method::GET, &format!("{collection}/{name}"), None)
                .await
                .0
                == 200
            {
                return Ok(());
            }
            last = self.call(Method::POST, collection, Some(obj)).await;
            match last.0 {
                201 | 409 => return Ok(()),
                // Refused on its merits (as upstream's endpoints with a loopback address): kept.
                422 => return Err(format!("{collection}: {}", last.1["message"])),
                _ => monoio::time::sleep(RETRY_DELAY).await,
            }
        }
        Err(format!("{collection}: {} {}", last.0, last.1["message"]))
    }
}

/// Creates the start-up objects (bounded retries), then renews the identity Lease and keeps
/// the `kubernetes` endpoints in a thread of their own.
pub fn start(api: Arc<Api>, info: Info) -> Result<(), String> {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("kapi-startup".into())
        .spawn(move || {
            let runtime = match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = done_tx.send(Err(format!("runtime: {e}")));
                    return;
                }
            };
            let mut runtime = runtime;
            runtime.block_on(async move {
                let client = Client::new(api);
                // Shutdown waits (bounded) until this apiserver has left the endpoints.
                let hold = client.api.lifecycle.hold();
                let identity = Identity::new(&info.hostname);
                let result = ensure_all(&client, &info, &identity).await;
                let _ = done_tx.send(result);
                // Repaired on start, then every REPAIR_EVERY renewals.
                crate::api::rest::repair_service_addresses(&client.api).await;
                crate::api::rest::repair_node_ports(&client.api).await;
                let mut repairs = 0u64;
                let lifecycle = client.api.lifecycle.clone();
                let mut shutdown =
                    Box::pin(lifecycle.reached(crate::shutdown::Phase::ShutdownInitiated));
                loop {
                    let tick = Box::pin(monoio::time::sleep(RENEW_INTERVAL));
                    if let futures::future::Either::Right(_) =
                        futures::future::select(tick, shutdown.as_mut()).await
                    {
                        if let Err(e) = info.reconciler.remove(&client, &info).await {
                            eprintln!("kapi: kubernetes endpoints: {e}");
                        }
                        drop(hold);
                        return;
                    }
                    if let Err(e) = identity.renew(&client).await {
                        eprintln!("kapi: identity lease: {e}");
                    }
                    if let Err(e) = info.reconciler.reconcile(&client, &info).await {
                        eprintln!("kapi: kubernetes endpoints: {e}");
                    }
                    repairs += 1;
                    if repairs.is_multiple_of(REPAIR_EVERY) {
                        crate::api::rest::repair_service_addresses(&client.api).await;
                        crate::api::rest::repair_node_ports(&client.api).await;
                    }
                }
            });
        })
        .map_err(|e| format!("start-up thread: {e}"))?;
    done_rx
        .recv()
        .map_err(|_| "the start-up thread ended".to_string())?
}

async fn ensure_all(client: &Client, info: &Info, identity: &Identity) -> Result<(), String> {
    let mut warnings = Vec::new();
    sync_authentication_configmap(client, info).await?;
    client
        .ensure(
            "/api/v1/namespaces/kube-system/configmaps",
            &json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "kube-apiserver-legacy-service-account-token-tracking",
                    "namespace": "kube-system",
                },
                "data": {"since": today()},
            }),
        )
        .await?;
    for (name, value, description) in [
        (
            "system-node-critical",
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ] {
        client
            .ensure(
                "/apis/scheduling.k8s.io/v1/priorityclasses",
                &json!({
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                    "description": description,
                }),
            )
            .await?;
    }
    for &(group, version, group_min, version_priority) in API_SERVICE_PRIORITIES {
        if !crate::api::runtime_config::served(group, version) {
            continue;
        }
        client
            .ensure(
                "/apis/apiregistration.k8s.io/v1/apiservices",
                &json!({
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {
                        "name": format!("{version}.{group}"),
                        "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"},
                    },
                    "spec": {
                        "group": group,
                        "version": version,
                        "groupPriorityMinimum": group_min,
                        "versionPriority": version_priority,
                    },
                }),
            )
            .await?;
        let status = json!({"status": {"conditions": [{
            "type": "Available",
            "status": "True",
            "lastTransitionTime": crate::api::rest::now_rfc3339(),
            "reason": "Local",
            "message": "Local APIServices are always available",
        }]}});
        client
            .call_as(
                Method::PATCH,
                &format!("/apis/apiregistration.k8s.io/v1/apiservices/{version}.{group}/status"),
                "application/merge-patch+json",
                Some(&status),
            )
            .await;
    }
    ensure_service(client, info).await?;
    if let Err(e) = info.reconciler.reconcile(client, info).await {
        warnings.push(e);
    }
    identity.renew(client).await?;
    for w in warnings {
        eprintln!("kapi: warning: {w}");
    }
    Ok(())
}

/// The first address of a CIDR (the `kubernetes` Service's ClusterIP).
pub fn first_address(cidr: &str) -> Result<IpAddr, String> {
    let (ip, bits) = crate::flags::parse_cidr(cidr)?;
    Ok(match ip {
        IpAddr::V4(v4) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            IpAddr::V4((u32::from(v4) & mask).wrapping_add(1).into())
        }
        IpAddr::V6(v6) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            IpAddr::V6((u128::from(v6) & mask).wrapping_add(1).into())
        }
    })
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

async fn ensure_service(client: &Client, info: &Info) -> Result<(), String> {
    let cidrs = if info.service_cidrs.is_empty() {
        vec![DEFAULT_SERVICE_CIDR.to_string()]
    } else {
        info.service_cidrs.clone()
    };
    // The Service is single-stack on the primary range, as upstream's: the ServiceCIDR has
    // both ranges.
    let ip = first_address(&cidrs[0])?;
    client
        .ensure(
            "/apis/networking.k8s.io/v1/servicecidrs",
            &json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "ServiceCIDR",
                "metadata": {"name": "kubernetes"},
                "spec": {"cidrs": cidrs},
            }),
        )
        .await?;
    client
        .call_as(
            Method::PATCH,
            "/apis/networking.k8s.io/v1/servicecidrs/kubernetes/status",
            "application/merge-patch+json",
            Some(&json!({"status": {"conditions": [{
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": crate::api::rest::now_rfc3339(),
                "reason": "",
                "message": "Kubernetes Service CIDR is ready",
            }]}})),
        )
        .await;
    client
        .ensure(
            "/api/v1/namespaces/default/services",
            &json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": ip.to_string(),
                    "clusterIPs": [ip.to_string()],
                    "ipFamilies": [family(&ip)],
                    "ipFamilyPolicy": "SingleStack",
                    "ports": [{
                        "name": "https",
                        "protocol": "TCP",
                        "port": 443,
                        "targetPort": info.secure_port,
                    }],
                    "sessionAffinity": "None",
                },
            }),
        )
        .await?;
    client
        .ensure(
            "/apis/networking.k8s.io/v1/ipaddresses",
            &json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IPAddress",
                "metadata": {
                    "name": ip.to_string(),
                    "labels": {
                        "ipaddress.kubernetes.io/ip-family": family(&ip),
                        "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
                    },
                },
                "spec": {"parentRef": {
                    "group": "",
                    "resource": "services",
                    "namespace": "default",
                    "name": "kubernetes",
                }},
            }),
        )
        .await?;
    Ok(())
}

/// The `kubernetes` Endpoints and EndpointSlice: the apiservers' addresses `ips` (what the
/// endpoint reconciler decided, `reconcilers`) and this apiserver's port.
pub(crate) async fn ensure_endpoints(
    client: &Client,
    info: &Info,
    ips: &[String],
) -> Result<(), String> {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{
            "addresses": addresses,
            "ports": [{"name": "https", "port": info.secure_port, "protocol": "TCP"}],
        }],
    });
    let family = match ips.first().map(|ip| ip.contains(':')) {
        Some(true) => "IPv6",
        _ => "IPv4",
    };
    let slice_endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": family,
        "endpoints": slice_endpoints,
        "ports": [{"name": "https", "port": info.secure_port, "protocol": "TCP"}],
    });
    for (collection, name, want, fields) in [
        (
            "/api/v1/namespaces/default/endpoints",
            "kubernetes",
            &endpoints,
            &["subsets"][..],
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            "kubernetes",
            &slice,
            &["addressType", "endpoints", "ports"][..],
        ),
    ] {
        let (code, current) = client
            .call(Method::GET, &format!("{collection}/{name}"), None)
            .await;
        if code == 404 {
            client.ensure(collection, want).await?;
            continue;
        }
        if fields.iter().any(|f| current[*f] != want[*f]) {
            let mut update = current.clone();
            for f in fields {
                update[*f] = want[*f].clone();
            }
            let (code, body) = client
                .call(Method::PUT, &format!("{collection}/{name}"), Some(&update))
                .await;
            if code != 200 {
                return Err(format!("{collection}/{name}: {code} {}", body["message"]));
            }
        }
    }
    Ok(())
}

/// `extension-apiserver-authentication`: this apiserver's client CA and front-proxy settings,
/// merged with what is there (other apiservers' CAs and header names), as upstream's
/// cluster-authentication-trust controller does.
async fn sync_authentication_configmap(client: &Client, info: &Info) -> Result<(), String> {
    let path = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication";
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let (code, current) = client.call(Method::GET, path, None).await;
        let existing = current["data"].clone();
        let data = authentication_data(&existing, info);
        let (code, body) = match code {
            200 if existing == data => return Ok(()),
            200 => {
                let mut update = current.clone();
                update["data"] = data;
                client.call(Method::PUT, path, Some(&update)).await
            }
            404 => {
                let obj = json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": "extension-apiserver-authentication",
                        "namespace": "kube-system",
                    },
                    "data": data,
                });
                client
                    .call(
                        Method::POST,
                        "/api/v1/namespaces/kube-system/configmaps",
                        Some(&obj),
                    )
                    .await
            }
            other => (other, current),
        };
        if code == 200 || code == 201 {
            return Ok(());
        }
        last = format!("{code} {}", body["message"]);
        monoio::time::sleep(RETRY_DELAY).await;
    }
    Err(format!("extension-apiserver-authentication: {last}"))
}

/// The ConfigMap's data: the existing entries combined with ours (CA bundles deduplicated and
/// without expired certificates; header lists as ordered unions).
fn authentication_data(existing: &Value, info: &Info) -> Value {
    let text = |k: &str| existing[k].as_str().unwrap_or("").to_string();
    let list = |k: &str| -> Vec<String> {
        serde_json::from_str::<Vec<String>>(&text(k)).unwrap_or_default()
    };
    let union = |a: Vec<String>, b: &[String]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in a.into_iter().chain(b.iter().cloned()) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    };
    let mut data = serde_json::Map::new();
    let client_ca = combine_bundles(text("client-ca-file").as_bytes(), &info.client_ca_pem);
    if !client_ca.is_empty() {
        data.insert("client-ca-file".into(), client_ca.into());
    }
    let existing_rh_ca = text("requestheader-client-ca-file");
    let ours = info.requestheader.clone().unwrap_or_default();
    let rh_ca = combine_bundles(existing_rh_ca.as_bytes(), &ours.ca_pem);
    if !rh_ca.is_empty() {
        let json_list = |v: Vec<String>| serde_json::to_string(&v).unwrap_or_default();
        data.insert(
            "requestheader-username-headers".into(),
            json_list(union(
                list("requestheader-username-headers"),
                &ours.username_headers,
            ))
            .into(),
        );
        data.insert(
            "requestheader-uid-headers".into(),
            json_list(union(list("requestheader-uid-headers"), &ours.uid_headers)).into(),
        );
        data.insert(
            "requestheader-group-headers".into(),
            json_list(union(
                list("requestheader-group-headers"),
                &ours.group_headers,
            ))
            .into(),
        );
        data.insert(
            "requestheader-extra-headers-prefix".into(),
            json_list(union(
                list("requestheader-extra-headers-prefix"),
                &ours.extra_headers_prefix,
            ))
            .into(),
        );
        data.insert("requestheader-client-ca-file".into(), rh_ca.into());
        data.insert(
            "requestheader-allowed-names".into(),
            json_list(union(
                list("requestheader-allowed-names"),
                &ours.allowed_names,
            ))
            .into(),
        );
    }
    Value::Object(data)
}

/// Two PEM bundles as one: every unexpired certificate once, in order, re-encoded as PEM.
fn combine_bundles(a: &[u8], b: &[u8]) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for der in CertificateDer::pem_slice_iter(a)
        .chain(CertificateDer::pem_slice_iter(b))
        .flatten()
    {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
            continue;
        };
        // Upstream keeps certificates up to five minutes past their expiry.
        if cert.validity().not_after.timestamp() + 300 < now {
            continue;
        }
        if !seen.iter().any(|s| s.as_slice() == der.as_ref()) {
            seen.push(der.to_vec());
        }
    }
    let mut out = String::new();
    for der in seen {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// A Kubernetes MicroTime (`2006-01-02T15:04:05.000000Z`).
fn micro_time() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// This apiserver's identity Lease in `kube-system`, as upstream names it: `apiserver-` and
/// the base32 of the first 16 bytes of the hostname's SHA-256.
struct Identity {
    name: String,
    holder: String,
    hostname: String,
}

impl Identity {
    fn new(hostname: &str) -> Identity {
        let hash = sha2::Sha256::digest(hostname.as_bytes());
        let name = format!(
            "apiserver-{}",
            data_encoding::BASE32_NOPAD
                .encode(&hash[..16])
                .to_ascii_lowercase()
        );
        let holder = format!("{name}_{}", uuid::Uuid::new_v4());
        Identity {
            name,
            holder,
            hostname: hostname.to_owned(),
        }
    }

    async fn renew(&self, client: &Client) -> Result<(), String> {
        let path = format!(
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{}",
            self.name
        );
        let (code, current) = client.call(Method::GET, &path, None).await;
        let spec = json!({
            "holderIdentity": self.holder,
            "leaseDurationSeconds": IDENTITY_LEASE_SECONDS,
            "renewTime": micro_time(),
        });
        let (code, body) = if code == 200 {
            let mut update = current;
            update["spec"] = spec;
            client.call(Method::PUT, &path, Some(&update)).await
        } else {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": "kube-system",
                    "labels": {
                        "apiserver.kubernetes.io/identity": "kube-apiserver",
                        "kubernetes.io/hostname": self.hostname,
                    },
                },
                "spec": spec,
            });
            client
                .call(
                    Method::POST,
                    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                    Some(&lease),
                )
                .await
        };
        if code == 200 || code == 201 {
            Ok(())
        } else {
            Err(format!("{code} {}", body["message"]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubernetes_service_takes_the_ranges_first_address() {
        assert_eq!(
            first_address("10.32.0.0/24").unwrap().to_string(),
            "10.32.0.1"
        );
        assert_eq!(
            first_address("10.96.0.0/12").unwrap().to_string(),
            "10.96.0.1"
        );
        assert_eq!(
            first_address("10.32.0.7/24").unwrap().to_string(),
            "10.32.0.1"
        );
        assert_eq!(
            first_address("fd00:10:96::/108").unwrap().to_string(),
            "fd00:10:96::1"
        );
    }

    #[test]
    fn authentication_data_merges_with_what_is_there() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let ca1 = params.self_signed(&key).unwrap().pem();
        let ca2 = params.self_signed(&key).unwrap().pem();
        let info = Info {
            client_ca_pem: ca1.clone().into_bytes(),
            requestheader: Some(RequestHeaderInfo {
                ca_pem: ca2.clone().into_bytes(),
                username_headers: vec!["X-Remote-User".into()],
                ..RequestHeaderInfo::default()
            }),
            service_cidrs: vec![],
            advertise: "127.0.0.1".parse().unwrap(),
            secure_port: 6443,
            hostname: "h".into(),
            reconciler: crate::reconcilers::EndpointReconciler::Lease,
        };
        let first = authentication_data(&json!({}), &info);
        assert_eq!(
            first["requestheader-username-headers"],
            "[\"X-Remote-User\"]"
        );
        assert_eq!(first["requestheader-group-headers"], "[]");
        assert!(
            first["client-ca-file"]
                .as_str()
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        // Another apiserver's header names and CA stay; ours are not duplicated.
        let mut other = first.clone();
        other["requestheader-username-headers"] = json!("[\"X-Other-User\"]");
        other["client-ca-file"] = json!(format!(
            "{}{}",
            first["client-ca-file"].as_str().unwrap(),
            ca2
        ));
        let merged = authentication_data(&other, &info);
        assert_eq!(
            merged["requestheader-username-headers"],
            "[\"X-Other-User\",\"X-Remote-User\"]"
        );
        assert_eq!(
            merged["client-ca-file"]
                .as_str()
                .unwrap()
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        assert_eq!(authentication_data(&merged, &info), merged);
    }
}
