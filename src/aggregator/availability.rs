//! Upstream's APIService availability controller, for APIServices with a backend: every
//! `CHECK_INTERVAL` each backend's discovery document (`/apis/<group>/<version>`) is fetched;
//! the `Available` condition says whether it answered (Passed, ServiceNotFound,
//! FailedDiscoveryCheck), and the resource lists of those that did join kapi's discovery.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::server::Api;
use crate::kubelet::client::{self, Outbound};
use crate::storage::StoreError;

/// How often backends are checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Largest discovery document read from a backend.
const MAX_DISCOVERY_BYTES: usize = 4 << 20;

/// A backend's group-version and its resources, as it answered.
#[derive(Clone, Debug)]
pub struct RemoteVersion {
    pub group: String,
    pub version: String,
    /// Its APIResourceList.
    pub resources: Value,
}

/// Starts the controller thread; it ends when the API is dropped.
pub fn start(api: &Arc<Api>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let weak: Weak<Api> = Arc::downgrade(api);
    std::thread::Builder::new()
        .name("kapi-aggregator".into())
        .spawn(move || {
            while let Some(api) = weak.upgrade() {
                rt.block_on(check_all(&api));
                drop(api);
                std::thread::sleep(CHECK_INTERVAL);
            }
        })
        .map(|_| ())
}

async fn check_all(api: &Api) {
    let Ok(services) =
        crate::admission::cached_entries(api, "apiregistration.k8s.io", "v1", "apiservices", None)
    else {
        return;
    };
    let mut remote = Vec::new();
    for (svc, mod_revision) in services {
        if !svc.pointer("/spec/service").is_some_and(Value::is_object) {
            continue;
        }
        let group = svc["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let version = svc["spec"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, reason, message, resources) = match check(api, &svc, &group, &version).await {
            Ok(resources) => (
                "True",
                "Passed",
                "all checks passed".to_string(),
                Some(resources),
            ),
            Err((reason, message)) => ("False", reason, message, None),
        };
        if let Some(resources) = resources {
            remote.push(RemoteVersion {
                group: group.clone(),
                version: version.clone(),
                resources,
            });
        }
        set_available(api, &svc, mod_revision, status, reason, &message).await;
    }
    api.registry.set_remote(remote);
}

async fn check(
    api: &Api,
    svc: &Value,
    group: &str,
    version: &str,
) -> Result<Value, (&'static str, String)> {
    let (base, resolve, creds) = crate::aggregator::backend(api, svc).map_err(|e| {
        let reason = if e.contains("not found") {
            "ServiceNotFound"
        } else {
            "MissingEndpoints"
        };
        (reason, e)
    })?;
    let url = format!("{base}/apis/{group}/{version}");
    let failed = |why: String| {
        (
            "FailedDiscoveryCheck",
            format!("failing or missing response from {url}: {why}"),
        )
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    let mut answer = client::send(Outbound {
        method: http::Method::GET,
        url: url.clone(),
        headers,
        body: bytes::Bytes::new(),
        upgrade: false,
        other: Some((creds, resolve)),
    })
    .await
    .map_err(failed)?;
    let mut body = Vec::new();
    while let Some(chunk) = answer.body.next().await {
        if body.len() + chunk.len() > MAX_DISCOVERY_BYTES {
            return Err(failed("the discovery document is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    if !answer.status.is_success() {
        return Err(failed(format!(
            "bad status from {url}: {}",
            answer.status.as_u16()
        )));
    }
    let doc: Value = serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))?;
    if !doc["resources"].is_array() {
        return Err(failed("the answer is not an APIResourceList".into()));
    }
    Ok(doc)
}

/// Writes the Available condition when it changed.
async fn set_available(
    api: &Api,
    svc: &Value,
    mod_revision: i64,
    status: &str,
    reason: &str,
    message: &str,
) {
    let conditions = svc
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let current = conditions.iter().find(|c| c["type"] == "Available");
    if current
        .is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message)
    {
        return;
    }
    let time = match current {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(crate::api::rest::now_rfc3339()),
    };
    let new = json!({"type": "Available", "status": status, "lastTransitionTime": time,
        "reason": reason, "message": message});
    let mut conditions: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c["type"] != "Available")
        .collect();
    conditions.push(new);
    let mut obj = svc.clone();
    obj["status"] = json!({"conditions": conditions});
    let Some(res) = api
        .registry
        .get("apiregistration.k8s.io", "v1", "apiservices")
    else {
        return;
    };
    let Ok((value, _)) =
        crate::api::objects::encode_for_storage(res, &obj, kapi_codec::FieldValidation::Ignore)
    else {
        return;
    };
    let name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let key = format!("{}{}{name}", api.prefix, res.key_prefix);
    match api.store.update(key.as_bytes(), value, mod_revision).await {
        Ok(_) | Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => {}
        Err(e) => eprintln!("kapi: aggregator: writing APIService {name}: {e}"),
    }
}
