//! The authentication group's computed resources: TokenReview (runs a token through the
//! authenticator chain), SelfSubjectReview (`kubectl auth whoami`), and TokenRequest
//! (`serviceaccounts/<name>/token`, a bound service-account token), as upstream's registry
//! answers them. Objects named by a request are read from the watch cache.

use serde_json::{Map, Value, json};

use super::lookup::Kind;
use super::serviceaccount::{Binding, EXTENDED_EXPIRATION, Ref, WARN_ONLY_EXPIRATION};
use crate::api::rest::ComputedRequest;
use crate::api::status::{Cause, GroupResource, Status};

const GROUP: &str = "authentication.k8s.io";
/// TokenRequest's default lifetime and upstream's validation bounds.
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;
/// Audiences one TokenRequest or TokenReview may name (each becomes part of a token).
const MAX_AUDIENCES: usize = 64;
/// How long a request waits for the watch cache to catch up before an object it names is
/// taken as missing.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(3);

/// The body must be of `kind` (or name none).
fn expect_kind(body: &Value, kind: &str) -> Result<(), Status> {
    match body.get("kind").and_then(Value::as_str) {
        None | Some("") => Ok(()),
        Some(k) if k == kind => Ok(()),
        Some(k) => Err(Status::bad_request(format!(
            "the body of the request was of kind {k}, expected {kind}"
        ))),
    }
}

fn user_info(user: &super::UserInfo) -> Value {
    let mut u = Map::new();
    u.insert("username".into(), json!(user.name));
    if !user.uid.is_empty() {
        u.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        u.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        u.insert("extra".into(), json!(user.extra));
    }
    Value::Object(u)
}

fn strings(v: Option<&Value>, field: &str) -> Result<Vec<String>, Status> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = v
        .as_array()
        .ok_or_else(|| Status::bad_request(format!("{field} must be a list of strings")))?;
    if list.len() > MAX_AUDIENCES {
        return Err(Status::bad_request(format!(
            "{field} may name at most {MAX_AUDIENCES} audiences"
        )));
    }
    list.iter()
        .map(|a| {
            a.as_str()
                .map(str::to_string)
                .ok_or_else(|| Status::bad_request(format!("{field} must be a list of strings")))
        })
        .collect()
}

pub async fn token_review(req: &ComputedRequest<'_>) -> Result<Value, Status> {
    expect_kind(&req.body, "TokenReview")?;
    let spec = req.body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
    if token.is_empty() {
        return Err(Status::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let audiences = strings(spec.get("audiences"), "spec.audiences")?;
    let api_audiences = &req.api.service_accounts.settings.api_audiences;
    let mut status = Map::new();
    match req.api.authn.review(token, &audiences, api_audiences).await {
        Ok((user, auds)) => {
            status.insert("authenticated".into(), json!(true));
            status.insert("user".into(), user_info(&user));
            if !auds.is_empty() {
                status.insert("audiences".into(), json!(auds));
            }
        }
        Err(error) => {
            status.insert("user".into(), json!({}));
            if !error.is_empty() {
                status.insert("error".into(), json!(error));
            }
        }
    }
    Ok(json!({
        "kind": "TokenReview",
        "apiVersion": format!("{GROUP}/{}", req.rr.version),
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    }))
}

pub async fn self_subject_review(req: &ComputedRequest<'_>) -> Result<Value, Status> {
    expect_kind(&req.body, "SelfSubjectReview")?;
    Ok(json!({
        "kind": "SelfSubjectReview",
        "apiVersion": format!("{GROUP}/{}", req.rr.version),
        "metadata": {"creationTimestamp": crate::api::rest::now_rfc3339()},
        "status": {"userInfo": user_info(req.user)},
    }))
}

/// Upstream's 422 for a TokenRequest: `TokenRequest.authentication.k8s.io "<name>" is invalid`.
fn invalid(name: &str, field: &str, message: String) -> Status {
    let mut s = Status::invalid(
        GROUP,
        "TokenRequest",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    );
    s.message = format!(
        "TokenRequest.{GROUP} {}",
        &s.message["TokenRequest ".len()..]
    );
    s
}

/// `kind` `namespace/name` from the watch cache; one it does not have is looked for again
/// once the cache has caught up with the store (it may have been created a moment ago).
async fn fresh(
    req: &ComputedRequest<'_>,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Result<Value, Status> {
    let lookup = &req.api.service_accounts.lookup;
    if let Some(v) = lookup.object(kind, ns, name)? {
        return Ok(v);
    }
    let target = crate::api::cached::current_revision(&req.api.store)
        .await
        .map_err(|e| Status::service_unavailable(e.to_string()))?;
    if req.api.cache.revision() < target {
        let hub = crate::api::cached::hub(&req.api.cache);
        let _ = monoio::time::timeout(CATCH_UP, hub.wait_for(target)).await;
    }
    lookup.object(kind, ns, name)?.ok_or_else(|| {
        Status::not_found(
            GroupResource {
                group: "",
                resource: super::lookup::Lookup::resource(kind),
            },
            name,
        )
    })
}

fn meta_ref(obj: &Value) -> Ref {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ref {
        name: s("/metadata/name"),
        uid: s("/metadata/uid"),
    }
}

pub async fn token_request(req: &ComputedRequest<'_>) -> Result<Value, Status> {
    expect_kind(&req.body, "TokenRequest")?;
    let sas = &req.api.service_accounts;
    let ns = req
        .rr
        .namespace
        .as_deref()
        .ok_or_else(|| Status::bad_request("namespace is required"))?;
    let name = req.rr.name.as_deref().unwrap_or("");
    let body = &req.body;
    let meta_s = |k: &str| body.pointer(k).and_then(Value::as_str).unwrap_or("");
    if !meta_s("/metadata/name").is_empty() && meta_s("/metadata/name") != name {
        return Err(invalid(
            name,
            "metadata.name",
            format!(
                "Invalid value: {:?}: must match the service account name if specified",
                meta_s("/metadata/name")
            ),
        ));
    }
    if !meta_s("/metadata/namespace").is_empty() && meta_s("/metadata/namespace") != ns {
        return Err(invalid(
            name,
            "metadata.namespace",
            format!(
                "Invalid value: {:?}: must match the service account namespace if specified",
                meta_s("/metadata/namespace")
            ),
        ));
    }
    let sa = meta_ref(&fresh(req, Kind::ServiceAccount, ns, name).await?);

    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut audiences = strings(spec.get("audiences"), "spec.audiences")?;
    if audiences.is_empty() {
        audiences = sas.settings.api_audiences.clone();
    }
    let requested = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| Status::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    if requested < MIN_EXPIRATION {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            format!("Invalid value: {requested}: may not specify a duration less than 10 minutes"),
        ));
    }
    if requested > MAX_EXPIRATION {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            format!(
                "Invalid value: {requested}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }

    let mut binding = Binding {
        pod: None,
        secret: None,
        node: None,
    };
    let bound = spec.get("boundObjectRef").filter(|v| !v.is_null());
    if let Some(r) = bound {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let (group, version) = match s("apiVersion").split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", s("apiVersion")),
        };
        let (kind, ref_name, ref_uid) = (s("kind"), s("name"), s("uid"));
        let found = match (group, kind) {
            ("", "Pod") => {
                let pod = fresh(req, Kind::Pod, ns, ref_name).await?;
                let pod_sa = pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if pod_sa != name {
                    return Err(Status::bad_request(format!(
                        "cannot bind token for serviceaccount {name:?} to pod running with \
                         different serviceaccount name."
                    )));
                }
                let node_name = pod
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !node_name.is_empty() {
                    // A node not there still gives its name to the claims, as upstream.
                    let node = sas.lookup.identity(Kind::Node, "", node_name);
                    binding.node = Some(Ref {
                        name: node_name.to_string(),
                        uid: node.map(|n| n.uid).unwrap_or_default(),
                    });
                }
                let r = meta_ref(&pod);
                binding.pod = Some(r.clone());
                r
            }
            ("", "Node") => {
                let r = meta_ref(&fresh(req, Kind::Node, "", ref_name).await?);
                binding.node = Some(r.clone());
                r
            }
            ("", "Secret") => {
                let r = meta_ref(&fresh(req, Kind::Secret, ns, ref_name).await?);
                binding.secret = Some(r.clone());
                r
            }
            _ => {
                return Err(Status::bad_request(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        if !ref_uid.is_empty() && ref_uid != found.uid {
            return Err(Status::conflict(
                GroupResource {
                    group: "",
                    resource: kind,
                },
                ref_name,
                &format!(
                    "the UID in the bound object reference ({ref_uid}) does not match the UID \
                     in record. The object might have been deleted and then recreated"
                ),
            ));
        }
    }

    let mut expiration = requested as u64;
    let max = sas.settings.max_expiration;
    if max > 0 && expiration > max {
        req.warnings.borrow_mut().push(format!(
            "requested expiration of {expiration} seconds shortened to {max} seconds"
        ));
        expiration = max;
    }
    // A kubelet's projected token (3607 s, bound to its pod, for the API server's audiences)
    // lasts a year and warns after the hour it asked for, as upstream's safe transition.
    let mut exp = expiration;
    let mut warn_after = None;
    let kube_audiences = audiences
        .iter()
        .all(|a| sas.settings.api_audiences.contains(a));
    if sas.settings.extend_expiration
        && binding.pod.is_some()
        && expiration == WARN_ONLY_EXPIRATION
        && kube_audiences
    {
        warn_after = Some(expiration);
        exp = EXTENDED_EXPIRATION;
    }
    let now = super::serviceaccount::now_unix();
    let issuer = sas
        .settings
        .issuers
        .first()
        .map(String::as_str)
        .unwrap_or("");
    let claims =
        super::serviceaccount::claims(issuer, ns, &sa, &binding, now, exp, warn_after, &audiences);
    let token = sas
        .sign(&claims)
        .map_err(|e| Status::internal(format!("failed to generate token: {e}")))?;

    let mut out_spec = spec.as_object().cloned().unwrap_or_default();
    out_spec.insert("audiences".into(), json!(audiences));
    out_spec.insert("expirationSeconds".into(), json!(expiration));
    if let Some(r) = bound {
        out_spec.insert("boundObjectRef".into(), r.clone());
    }
    let mut expires = Vec::new();
    kapi_codec::goscalar::format_time(now.saturating_add(expiration as i64), &mut expires);
    let mut created = Vec::new();
    kapi_codec::goscalar::format_time(now, &mut created);
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": {
            "name": name,
            "namespace": ns,
            "creationTimestamp": String::from_utf8_lossy(&created),
        },
        "spec": out_spec,
        "status": {
            "token": token,
            "expirationTimestamp": String::from_utf8_lossy(&expires),
        },
    }))
}
