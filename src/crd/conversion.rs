//! Conversion of custom resources between a CRD's versions: `None` rewrites apiVersion;
//! `Webhook` sends a ConversionReview (apiextensions.k8s.io/v1) to the CRD's webhook and
//! checks its answer as upstream does (same uid, Success, one object per object sent, each in
//! the desired version with its name, namespace, uid... unchanged).
//!
//! Cost, known: reads and writes convert synchronously where the object is made into its
//! served or stored form, so a webhook call blocks the serving core for its round trip (at
//! most `WEBHOOK_TIMEOUT`). Reads from the cache convert each object version once per served
//! version (the result is kept with its encodings). A `service` reference is reached at its
//! cluster IP (or endpoint, with `--enable-aggregator-routing`) and verified as
//! `<service>.<namespace>.svc`, as admission webhooks are.

use std::sync::{OnceLock, Weak};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::{Conversion, Served};
use crate::api::status::Status;

/// The API, for resolving a webhook's Service (set once the API is assembled).
static API: OnceLock<Weak<crate::api::server::Api>> = OnceLock::new();

/// Lets conversion webhooks at a Service reference be resolved through `api`'s cache.
pub fn set_api(api: &std::sync::Arc<crate::api::server::Api>) {
    let _ = API.set(std::sync::Arc::downgrade(api));
}

/// Longest a conversion webhook may take (upstream allows 30 s; a core waits for it).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Converts `obj` (a custom resource of `served`'s CRD, in any of its versions) to
/// `to` (`group/version`).
pub fn convert(served: &Served, obj: Value, to: &str) -> Result<Value, Status> {
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if from == to {
        return Ok(obj);
    }
    match &served.conversion {
        Conversion::None => {
            let mut obj = obj;
            if let Some(o) = obj.as_object_mut() {
                o.insert("apiVersion".into(), Value::String(to.to_string()));
            }
            Ok(obj)
        }
        Conversion::Webhook {
            client_config,
            review_versions,
        } => webhook(served, client_config, review_versions, obj, to),
    }
}

fn failed(served: &Served, why: &str) -> Status {
    Status::internal(format!(
        "conversion webhook for {}, Kind={} failed: {why}",
        served.api_version(),
        served.kind
    ))
}

fn webhook(
    served: &Served,
    config: &Value,
    review_versions: &[String],
    obj: Value,
    to: &str,
) -> Result<Value, Status> {
    if !review_versions.iter().any(|v| v == "v1") {
        return Err(failed(
            served,
            "the webhook accepts no ConversionReview version kapi sends (v1)",
        ));
    }
    let (url, resolve) = match config["url"].as_str() {
        Some(url) => (url.to_string(), None),
        None => {
            let svc = &config["service"];
            let name = svc["name"].as_str().unwrap_or("");
            let ns = svc["namespace"].as_str().unwrap_or("");
            let port = svc["port"].as_u64().unwrap_or(443) as u16;
            let path = svc["path"].as_str().unwrap_or("");
            let api = API
                .get()
                .and_then(Weak::upgrade)
                .ok_or_else(|| failed(served, "the API is not assembled yet"))?;
            let addr = crate::admission::webhook::service_address(
                &api,
                ns,
                name,
                port,
                crate::flags::settings().endpoint_routing,
            )
            .map_err(|e| failed(served, &e))?;
            let host = format!("{name}.{ns}.svc");
            (format!("https://{host}:{port}{path}"), Some((host, addr)))
        }
    };
    let ca_bundle = match config["caBundle"].as_str().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| failed(served, &format!("caBundle is not base64: {e}")))?,
        ),
        None => None,
    };
    let uid = uuid::Uuid::new_v4().to_string();
    let review = json!({
        "kind": "ConversionReview",
        "apiVersion": "apiextensions.k8s.io/v1",
        "request": {"uid": uid, "desiredAPIVersion": to, "objects": [obj]},
    });
    let body = serde_json::to_vec(&review).map_err(|e| Status::internal(e.to_string()))?;
    let call = crate::admission::webhook::client::Call {
        url,
        resolve,
        ca_bundle,
        body,
        timeout: WEBHOOK_TIMEOUT,
        bearer_token: None,
    };
    let answer = futures::executor::block_on(crate::admission::webhook::client::post(call))
        .map_err(|e| failed(served, &e))?;
    let answer: Value = serde_json::from_slice(&answer).map_err(|e| {
        failed(
            served,
            &format!("the answer is not a ConversionReview: {e}"),
        )
    })?;
    let response = &answer["response"];
    if response["uid"] != uid.as_str() {
        return Err(failed(
            served,
            &format!(
                "expected response uid {uid:?}, got {}",
                response["uid"].as_str().unwrap_or_default()
            ),
        ));
    }
    if response["result"]["status"] != "Success" {
        let message = response["result"]["message"].as_str().unwrap_or("");
        return Err(failed(served, &format!("conversion failed: {message}")));
    }
    let converted = response["convertedObjects"]
        .as_array()
        .filter(|a| a.len() == 1)
        .ok_or_else(|| failed(served, "expected 1 converted object"))?;
    let out = converted[0].clone();
    if out["apiVersion"] != to {
        return Err(failed(
            served,
            &format!(
                "invalid converted object: expected apiVersion {to}, got {}",
                out["apiVersion"]
            ),
        ));
    }
    if out["kind"] != obj["kind"] {
        return Err(failed(served, "invalid converted object: kind changed"));
    }
    // Upstream keeps only labels and annotations of the webhook's metadata; the rest is the
    // object's own.
    let mut result = out;
    let mut meta = obj["metadata"].clone();
    for k in ["labels", "annotations"] {
        match result["metadata"].get(k) {
            Some(v) => meta[k] = v.clone(),
            None => {
                if let Some(m) = meta.as_object_mut() {
                    m.remove(k);
                }
            }
        }
    }
    result["metadata"] = meta;
    Ok(result)
}
