//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the writes that the webhook
//! configurations' rules match are sent as `admission.k8s.io/v1` AdmissionReviews to their
//! webhooks (a URL, or a Service: its cluster IP, or with `--enable-aggregator-routing` one of
//! its endpoints, verified as `<service>.<namespace>.svc` with the configuration's caBundle),
//! as upstream's dispatchers do:
//!
//! - configurations are read from the watch cache, in name order, their webhooks in order;
//!   a webhook is called when one of its rules matches (operations, API groups and versions,
//!   resources with `*` and `res/sub` forms, scope) and its namespace and object selectors
//!   select the object; webhook configurations and admission policies are never sent;
//! - a dry run is refused (400) by a webhook whose `sideEffects` are not `None`/`NoneOnDryRun`;
//! - `allowed: false` refuses the write with the webhook's Status (at least 400, its message
//!   prefixed `admission webhook "<name>" denied the request`); a mutating webhook's
//!   `JSONPatch` is applied to the object; one with `reinvocationPolicy: IfNeeded` is called
//!   once more when a later webhook changed the object;
//! - a call that fails (connection, timeout after `timeoutSeconds`, a non-2xx answer, an
//!   answer for another request) is a 500 under `failurePolicy: Fail`, and skipped under
//!   `Ignore`.
//!
//! The answer's `warnings` become the response's `Warning` headers.
//!
//! Its `auditAnnotations` go into the request's audit event as `<webhook name>/<key>`.
//!
//! `matchConditions` (CEL over `object`, `oldObject` and `request`) decide whether a selected
//! webhook is called; one that errs follows the failure policy.
//!
//! Not yet: `matchPolicy: Equivalent` across versions (kapi serves one version of each
//! built-in resource) and the `authorizer` variable of match conditions.

pub mod client;

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Value, json};

use super::matching::{admission_request, namespace_selected, object_selected, rule_matches};
use super::{Attributes, Mutating, Validating, cached_objects};
use crate::api::server::Api;
use crate::api::status::Status;

/// Seconds a call may take when the configuration names none.
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

pub struct MutatingWebhooks;

pub struct ValidatingWebhooks;

/// `--enable-aggregator-routing`: Services are reached at an endpoint, not the cluster IP.
fn endpoint_routing() -> bool {
    crate::flags::settings().endpoint_routing
}

#[async_trait(?Send)]
impl Mutating for MutatingWebhooks {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        mut obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let hooks = matching(api, "mutatingwebhookconfigurations", attrs, obj.as_deref())?;
        if hooks.is_empty() {
            return Ok(());
        }
        // The object after each webhook, to know which ones a later change calls again.
        let mut after: Vec<Option<Value>> = Vec::with_capacity(hooks.len());
        for hook in &hooks {
            self.call_one(api, attrs, hook, obj.as_deref_mut()).await?;
            after.push(obj.as_deref().cloned());
        }
        let last = obj.as_deref().cloned();
        for (hook, seen) in hooks.iter().zip(after) {
            if hook["reinvocationPolicy"] == "IfNeeded" && seen != last {
                self.call_one(api, attrs, hook, obj.as_deref_mut()).await?;
            }
        }
        Ok(())
    }
}

impl MutatingWebhooks {
    async fn call_one(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        hook: &Value,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(answer) = call(api, attrs, hook, obj.as_deref(), endpoint_routing()).await? else {
            return Ok(());
        };
        let Some(patch) = answer["patch"].as_str() else {
            return Ok(());
        };
        let name = hook["name"].as_str().unwrap_or("");
        let fail =
            |why: String| Status::internal(format!("failed calling webhook {name:?}: {why}"));
        if answer["patchType"].as_str() != Some("JSONPatch") {
            return Err(fail(format!(
                "unsupported patch type {:?}",
                answer["patchType"].as_str().unwrap_or("")
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .map_err(|e| fail(format!("the patch is not base64: {e}")))?;
        let ops: Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("the patch is not JSON: {e}")))?;
        if let Some(obj) = obj {
            let patched = crate::api::patch::apply_json_patch(obj.clone(), &ops).map_err(|e| {
                fail(format!(
                    "the patch could not be applied: {}",
                    e.into_status().message
                ))
            })?;
            *obj = patched;
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl Validating for ValidatingWebhooks {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        for hook in matching(api, "validatingwebhookconfigurations", attrs, obj)? {
            call(api, attrs, &hook, obj, endpoint_routing()).await?;
        }
        Ok(())
    }
}

/// The webhooks of every configuration of `resource` that the write matches, in upstream's
/// order (configurations by name, webhooks in order).
fn matching(
    api: &Api,
    resource: &str,
    attrs: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<Vec<Value>, Status> {
    if super::matching::exempt(attrs) {
        return Ok(Vec::new());
    }
    let mut configs = cached_objects(api, "admissionregistration.k8s.io", "v1", resource, None)?;
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    configs.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    let mut out = Vec::new();
    for config in configs {
        for hook in config["webhooks"].as_array().into_iter().flatten() {
            let rules = hook["rules"].as_array().into_iter().flatten();
            if rules.clone().any(|r| rule_matches(r, attrs))
                && namespace_selected(api, &hook["namespaceSelector"], attrs, obj)?
                && object_selected(&hook["objectSelector"], obj, attrs.old)
            {
                out.push(hook.clone());
            }
        }
    }
    Ok(out)
}

/// Whether every one of the webhook's `matchConditions` (CEL over `object`, `oldObject` and
/// `request`) holds: false as soon as one is false; an error when none is false and one erred.
fn match_conditions(
    attrs: &Attributes<'_>,
    obj: Option<&Value>,
    hook: &Value,
) -> Result<bool, String> {
    use crate::admission::policy::cel::{Activation, WEBHOOK_VARIABLES, compile};
    let Some(conditions) = hook["matchConditions"].as_array().filter(|c| !c.is_empty()) else {
        return Ok(true);
    };
    let mut activation = Activation::default();
    let object = match attrs.operation {
        super::Operation::Delete => None,
        _ => obj,
    };
    activation.bind("object", object);
    activation.bind("oldObject", attrs.old);
    activation.bind("request", Some(&admission_request(attrs, obj, "")));
    let mut error = None;
    for c in conditions {
        let name = c["name"].as_str().unwrap_or("");
        let expr = c["expression"].as_str().unwrap_or("");
        match compile(expr, WEBHOOK_VARIABLES).and_then(|p| p.eval_bool(&activation)) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(why) => {
                error.get_or_insert(format!(
                    "failed to evaluate match condition {name:?}: {why}"
                ));
            }
        }
    }
    error.map_or(Ok(true), Err)
}

/// Calls one webhook; its `response` when it allowed the write, `None` when it failed and its
/// failure policy ignores that. A refusal or a failure under `Fail` is the write's Status.
async fn call(
    api: &Api,
    attrs: &Attributes<'_>,
    hook: &Value,
    obj: Option<&Value>,
    endpoint_routing: bool,
) -> Result<Option<Value>, Status> {
    let name = hook["name"].as_str().unwrap_or("").to_string();
    if attrs.dry_run && !matches!(hook["sideEffects"].as_str(), Some("None" | "NoneOnDryRun")) {
        return Err(Status::bad_request(format!(
            "admission webhook {name:?} does not support dry run"
        )));
    }
    match match_conditions(attrs, obj, hook) {
        Ok(true) => {}
        // A condition that does not hold: the webhook is not called.
        Ok(false) => return Ok(None),
        Err(_) if hook["failurePolicy"] == "Ignore" => return Ok(None),
        Err(why) => {
            return Err(Status::internal(format!(
                "failed calling webhook {name:?}: {why}"
            )));
        }
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let version = if listed_exact(&hook["admissionReviewVersions"], "v1")
        || hook["admissionReviewVersions"].is_null()
    {
        "admission.k8s.io/v1"
    } else {
        "admission.k8s.io/v1beta1"
    };
    let review = json!({"apiVersion": version, "kind": "AdmissionReview",
                        "request": admission_request(attrs, obj, &uid)});
    let body = serde_json::to_vec(&review).map_err(|e| Status::internal(e.to_string()))?;
    let timeout = hook["timeoutSeconds"]
        .as_u64()
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
        .clamp(1, 30);
    let outcome = match target(api, &hook["clientConfig"], endpoint_routing) {
        Ok((url, resolve, ca_bundle)) => {
            let answer = client::post(client::Call {
                url,
                resolve,
                ca_bundle,
                body,
                timeout: Duration::from_secs(timeout),
                bearer_token: None,
            })
            .await;
            answer.and_then(|bytes| read_answer(&bytes, &uid))
        }
        Err(e) => Err(e),
    };
    let response = match outcome {
        Ok(r) => r,
        Err(why) => {
            if hook["failurePolicy"] == "Ignore" {
                return Ok(None);
            }
            return Err(Status::internal(format!(
                "failed calling webhook {name:?}: failed to call webhook: {why}"
            )));
        }
    };
    // The webhook's warnings go to the client (those with control characters are dropped, as
    // upstream's recorder drops them); a refusal's are lost with the rest of the response.
    for w in response["warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str().filter(|w| !w.chars().any(char::is_control)) {
            attrs.warn(w.to_string());
        }
    }
    // Its audit annotations go into the request's audit event as `<webhook>/<key>`.
    if let Some(annotations) = response["auditAnnotations"].as_object() {
        for (k, v) in annotations {
            if let Some(v) = v.as_str() {
                attrs.annotate(format!("{name}/{k}"), v.to_string());
            }
        }
    }
    if response["allowed"] == true {
        return Ok(Some(response));
    }
    Err(denied(&name, &response["status"]))
}

fn listed_exact(list: &Value, want: &str) -> bool {
    list.as_array().is_some_and(|a| a.iter().any(|v| v == want))
}

/// The AdmissionReview sent for the write.
/// The review's `response`, if it answers this request.
fn read_answer(bytes: &[u8], uid: &str) -> Result<Value, String> {
    let review: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the answer is not an AdmissionReview: {e}"))?;
    if review["kind"] != "AdmissionReview" {
        return Err(format!(
            "expected an AdmissionReview, got kind {:?}",
            review["kind"].as_str().unwrap_or("")
        ));
    }
    let response = review["response"].clone();
    if !response.is_object() {
        return Err("the AdmissionReview has no response".into());
    }
    let got = response["uid"].as_str().unwrap_or("");
    if got != uid {
        return Err(format!("expected response.uid={uid:?}, got {got:?}"));
    }
    Ok(response)
}

/// A webhook's refusal as upstream's `ToStatusErr`: at least 400, a Failure, its message
/// prefixed with who denied it.
fn denied(name: &str, result: &Value) -> Status {
    let code = result["code"]
        .as_u64()
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400) as u16;
    let denied_by = format!("admission webhook {name:?} denied the request");
    let message = result["message"].as_str().unwrap_or("");
    let reason_text = result["reason"].as_str().unwrap_or("");
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason_text.is_empty() {
        format!("{denied_by}: {reason_text}")
    } else {
        format!("{denied_by} without explanation")
    };
    let reason = match reason_text {
        "" => "",
        "BadRequest" => "BadRequest",
        "Forbidden" => "Forbidden",
        "NotFound" => "NotFound",
        "AlreadyExists" => "AlreadyExists",
        "Conflict" => "Conflict",
        "Invalid" => "Invalid",
        "TooManyRequests" => "TooManyRequests",
        "Unauthorized" => "Unauthorized",
        "InternalError" => "InternalError",
        "ServiceUnavailable" => "ServiceUnavailable",
        "Timeout" => "Timeout",
        "MethodNotAllowed" => "MethodNotAllowed",
        "Gone" => "Gone",
        "RequestEntityTooLarge" => "RequestEntityTooLarge",
        "UnsupportedMediaType" => "UnsupportedMediaType",
        "NotAcceptable" => "NotAcceptable",
        "Expired" => "Expired",
        _ => "",
    };
    let mut s = Status::new(code, reason, message);
    if let Some(d) = result.get("details") {
        s.name = d["name"].as_str().map(str::to_owned);
        s.group = d["group"].as_str().map(str::to_owned);
        s.kind = d["kind"].as_str().map(str::to_owned);
        s.causes = d["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| crate::api::status::Cause {
                reason: c["reason"].as_str().unwrap_or("").to_string(),
                message: c["message"].as_str().unwrap_or("").to_string(),
                field: c["field"].as_str().unwrap_or("").to_string(),
            })
            .collect();
    }
    s
}

/// Where a webhook is: its URL, the address to connect to (for a Service), its CA bundle.
type Target = (
    String,
    Option<(String, std::net::SocketAddr)>,
    Option<Vec<u8>>,
);

fn target(api: &Api, config: &Value, endpoint_routing: bool) -> Result<Target, String> {
    let ca_bundle = match config["caBundle"].as_str().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("caBundle is not base64: {e}"))?,
        ),
        None => None,
    };
    if let Some(url) = config["url"].as_str() {
        return Ok((url.to_string(), None, ca_bundle));
    }
    let svc = &config["service"];
    let name = svc["name"].as_str().unwrap_or("");
    let ns = svc["namespace"].as_str().unwrap_or("");
    let port = svc["port"].as_u64().unwrap_or(443) as u16;
    let path = svc["path"].as_str().unwrap_or("");
    let host = format!("{name}.{ns}.svc");
    let addr = service_address(api, ns, name, port, endpoint_routing)?;
    Ok((
        format!("https://{host}:{port}{path}"),
        Some((host, addr)),
        ca_bundle,
    ))
}

/// A Service's address for `port`: its cluster IP, or (endpoint routing) the first ready
/// endpoint of its EndpointSlices, at the target port.
pub(crate) fn service_address(
    api: &Api,
    ns: &str,
    name: &str,
    port: u16,
    endpoint_routing: bool,
) -> Result<std::net::SocketAddr, String> {
    let services = cached_objects(api, "", "v1", "services", Some(ns)).map_err(|e| e.message)?;
    let svc = services
        .iter()
        .find(|s| s["metadata"]["name"] == name)
        .ok_or_else(|| format!("service \"{name}\" not found"))?;
    let svc_port = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .ok_or_else(|| format!("service {ns}/{name} has no port {port}"))?;
    if !endpoint_routing {
        let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("");
        let ip: std::net::IpAddr = ip
            .parse()
            .map_err(|_| format!("service {ns}/{name} has no cluster IP"))?;
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    let port_name = svc_port["name"].as_str().unwrap_or("");
    let slices = cached_objects(api, "discovery.k8s.io", "v1", "endpointslices", Some(ns))
        .map_err(|e| e.message)?;
    for slice in slices
        .iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == name)
    {
        let Some(target_port) = slice["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or("") == port_name)
            .and_then(|p| p["port"].as_u64())
        else {
            continue;
        };
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            if ep["conditions"]["ready"] == false {
                continue;
            }
            if let Some(ip) = ep["addresses"][0].as_str().and_then(|a| a.parse().ok()) {
                return Ok(std::net::SocketAddr::new(ip, target_port as u16));
            }
        }
    }
    Err(format!(
        "service {ns}/{name} has no ready endpoint for port {port}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_at_least_400_and_say_who_denied() {
        let s = denied(
            "check.example.com",
            &json!({"message": "no latest tags", "code": 403,
            "reason": "Forbidden"}),
        );
        assert_eq!(s.code, 403);
        assert_eq!(s.reason, "Forbidden");
        assert_eq!(
            s.message,
            "admission webhook \"check.example.com\" denied the request: no latest tags"
        );
        let s = denied("w", &json!({"code": 200}));
        assert_eq!(s.code, 400);
        assert_eq!(
            s.message,
            "admission webhook \"w\" denied the request without explanation"
        );
    }

    #[test]
    fn answers_must_be_for_this_request() {
        let ok = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":true}}"#;
        assert_eq!(read_answer(ok, "u1").unwrap()["allowed"], true);
        assert!(
            read_answer(ok, "u2")
                .unwrap_err()
                .contains("expected response.uid")
        );
        assert!(read_answer(b"nope", "u1").is_err());
    }
}
