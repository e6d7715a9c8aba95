//! API aggregation: an APIService whose `spec.service` names a Service is an extension API
//! server; requests for its group-version (resources and its discovery document) are proxied
//! to it, as upstream's kube-aggregator does, after kapi has authenticated and authorized them:
//! over HTTPS to the Service's endpoint (or cluster IP), the server verified with the
//! APIService's `caBundle` (or not, with `insecureSkipTLSVerify`) as `<service>.<namespace>.svc`,
//! kapi presenting `--proxy-client-cert-file`, the user in the request-header identity headers
//! (`X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*`). `availability` checks each
//! backend's discovery, sets the `Available` condition and keeps its resources for discovery.

pub mod availability;

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use crate::api::server::Api;
use crate::api::status::Status;
use crate::authn::UserInfo;
use crate::kubelet::client::{self, Credentials, Outbound};
use crate::transport::{Body, Request, Response};

/// How long a proxied request may wait for the extension server's answer head (upstream's
/// proxy has no overall limit for watches; the head of any answer comes quickly).
const PROXY_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers a proxied request does not carry on (kapi's own, hop-by-hop, or identities the
/// client may not assert).
const DROPPED: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "proxy-authorization",
    "te",
    "trailer",
    "keep-alive",
    "connection",
    "upgrade",
];

static PROXY_CLIENT: OnceLock<Option<(Vec<u8>, Vec<u8>)>> = OnceLock::new();

/// Reads `--proxy-client-cert-file`/`--proxy-client-key-file` (a file that cannot be read
/// stops the start).
pub fn init(flags: &crate::flags::Flags) -> Result<(), String> {
    let read = |flag: &str, p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| std::fs::read(p).map_err(|e| format!("--{flag}: {}: {e}", p.display())))
            .transpose()
    };
    let cert = read("proxy-client-cert-file", &flags.proxy_client_cert_file)?;
    let key = read("proxy-client-key-file", &flags.proxy_client_key_file)?;
    let pair = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(
                "--proxy-client-cert-file and --proxy-client-key-file must be given together"
                    .into(),
            );
        }
    };
    let _ = PROXY_CLIENT.set(pair);
    Ok(())
}

/// The APIService of `group`/`version` when an extension server serves it.
pub fn remote(api: &Api, group: &str, version: &str) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    let name = format!("{version}.{group}");
    let svc = crate::admission::cached_object(
        api,
        ("apiregistration.k8s.io", "v1", "apiservices"),
        None,
        &name,
    )
    .ok()
    .flatten()?;
    svc.pointer("/spec/service")
        .is_some_and(Value::is_object)
        .then_some(svc)
}

/// An APIService's backend: its URL base, the address its host is reached at, and the
/// client's credentials.
pub type Backend = (String, Option<(String, std::net::SocketAddr)>, Credentials);

/// Where and how an APIService's backend is reached.
pub fn backend(api: &Api, apiservice: &Value) -> Result<Backend, String> {
    let svc = &apiservice["spec"]["service"];
    let name = svc["name"].as_str().unwrap_or("");
    let ns = svc["namespace"].as_str().unwrap_or("");
    let port = svc["port"].as_u64().unwrap_or(443) as u16;
    let host = format!("{name}.{ns}.svc");
    let addr = crate::admission::webhook::service_address(
        api,
        ns,
        name,
        port,
        crate::flags::settings().endpoint_routing,
    )?;
    let ca = match apiservice["spec"]["caBundle"]
        .as_str()
        .filter(|b| !b.is_empty())
    {
        Some(b) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("caBundle is not base64: {e}"))?,
        ),
        None => None,
    };
    let creds = Credentials {
        ca,
        client: PROXY_CLIENT.get().cloned().flatten(),
        timeout: PROXY_TIMEOUT,
        insecure: apiservice["spec"]["insecureSkipTLSVerify"] == true,
    };
    Ok((format!("https://{host}:{port}"), Some((host, addr)), creds))
}

/// The request-header identity of `user`.
fn identity_headers(user: &UserInfo, headers: &mut http::HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&user.name) {
        headers.insert(HeaderName::from_static("x-remote-user"), v);
    }
    for g in &user.groups {
        if let Ok(v) = HeaderValue::from_str(g) {
            headers.append(HeaderName::from_static("x-remote-group"), v);
        }
    }
    for (k, vs) in &user.extra {
        let escaped: String = k
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let Ok(name) = HeaderName::from_bytes(format!("x-remote-extra-{escaped}").as_bytes())
        else {
            continue;
        };
        for v in vs {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// Proxies `req` (for `apiservice`'s group-version) to its extension server.
pub async fn proxy(
    api: &Api,
    req: &Request,
    user: &UserInfo,
    apiservice: &Value,
) -> Result<Response, Status> {
    let unavailable = |why: String| {
        Status::service_unavailable(format!(
            "the server is currently unable to handle the request ({why})"
        ))
    };
    let (base, resolve, creds) = backend(api, apiservice).map_err(unavailable)?;
    let url = match req.uri.query() {
        Some(q) => format!("{base}{}?{q}", req.uri.path()),
        None => format!("{base}{}", req.uri.path()),
    };
    let mut headers = req.headers.clone();
    for h in DROPPED {
        headers.remove(*h);
    }
    let asserted: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k.starts_with("impersonate-") || k.starts_with("x-remote-")
        })
        .cloned()
        .collect();
    for k in asserted {
        headers.remove(k);
    }
    identity_headers(user, &mut headers);
    let answer = client::send(Outbound {
        method: req.method.clone(),
        url: url.clone(),
        headers,
        body: req.body.clone(),
        upgrade: false,
        other: Some((creds, resolve)),
    })
    .await
    .map_err(|e| unavailable(format!("{} {url:?}: {e}", req.method)))?;
    let mut out_headers = answer.headers;
    for h in [
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "connection",
    ] {
        out_headers.remove(h);
    }
    Ok(Response {
        status: StatusCode::from_u16(answer.status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        headers: out_headers,
        body: Body::Stream(answer.body),
    })
}

/// `/apis` (legacy or aggregated) with the extension servers' group-versions added after kapi's
/// own groups; `doc` is kapi's document.
pub fn with_remote(
    doc: &[u8],
    aggregated: bool,
    remote: &[availability::RemoteVersion],
) -> Option<Vec<u8>> {
    use std::collections::BTreeMap;
    let mut v: Value = serde_json::from_slice(doc).ok()?;
    let mut groups: BTreeMap<&str, Vec<&availability::RemoteVersion>> = BTreeMap::new();
    for r in remote {
        groups.entry(&r.group).or_default().push(r);
    }
    for (group, mut versions) in groups {
        versions.sort_by(|a, b| crate::crd::version_order(&a.version, &b.version));
        if aggregated {
            let vs: Vec<Value> = versions
                .iter()
                .map(|r| {
                    serde_json::json!({"version": r.version, "resources": aggregated_resources(r),
                        "freshness": "Current"})
                })
                .collect();
            v["items"]
                .as_array_mut()?
                .push(serde_json::json!({"metadata": {"name": group}, "versions": vs}));
        } else {
            let vs: Vec<Value> = versions
                .iter()
                .map(|r| {
                    serde_json::json!({"groupVersion": format!("{group}/{}", r.version),
                        "version": r.version})
                })
                .collect();
            v["groups"].as_array_mut()?.push(
                serde_json::json!({"name": group, "versions": vs, "preferredVersion": vs[0]}),
            );
        }
    }
    let (head, list) = if aggregated {
        (
            r#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":"#,
            &v["items"],
        )
    } else {
        (
            r#"{"kind":"APIGroupList","apiVersion":"v1","groups":"#,
            &v["groups"],
        )
    };
    let mut out = head.as_bytes().to_vec();
    out.extend(serde_json::to_vec(list).ok()?);
    out.extend_from_slice(b"}\n");
    Some(out)
}

/// An APIResourceList's resources in aggregated discovery's form.
fn aggregated_resources(r: &availability::RemoteVersion) -> Vec<Value> {
    let list = r.resources["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter(|e| !e["name"].as_str().unwrap_or("/").contains('/'))
        .map(|e| {
            let name = e["name"].as_str().unwrap_or_default();
            let kind = |x: &Value| {
                serde_json::json!({
                    "group": x["group"].as_str().unwrap_or(&r.group),
                    "version": x["version"].as_str().unwrap_or(&r.version),
                    "kind": x["kind"],
                })
            };
            let mut out = serde_json::json!({
                "resource": name,
                "responseKind": kind(e),
                "scope": if e["namespaced"] == true { "Namespaced" } else { "Cluster" },
                "singularResource": e["singularName"],
                "verbs": e["verbs"],
            });
            for k in ["shortNames", "categories"] {
                if e[k].as_array().is_some_and(|a| !a.is_empty()) {
                    out[k] = e[k].clone();
                }
            }
            let subs: Vec<Value> = list
                .iter()
                .filter_map(|s| {
                    let sub = s["name"].as_str()?.strip_prefix(&format!("{name}/"))?;
                    Some(
                        serde_json::json!({"subresource": sub, "responseKind": kind(s),
                        "verbs": s["verbs"]}),
                    )
                })
                .collect();
            if !subs.is_empty() {
                out["subresources"] = Value::Array(subs);
            }
            out
        })
        .collect()
}
