//! The API's entry point: one `Api` shared by every core turns a transport `Request` into a
//! `Response` — authentication, discovery and health endpoints, then the generic REST
//! handlers for resources. Errors become `Status` bodies here, in the negotiated encoding.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use kapi_cache::Cache;

use super::negotiate::{self, Accepted, Encoding, Shape};
use super::objects;
use super::registry::{DISCOVERY, Registry};
use super::request::{self, Query, Target};
use super::status::Status;
use crate::authn::lookup::Kind;
use crate::authz;
use crate::storage::StoreClient;
use crate::transport::{Body, Request, Response};

/// Everything a handler needs; shared by all cores.
pub struct Api {
    pub authn: crate::authn::Chain,
    pub authz: Arc<crate::authz::Chain>,
    pub admission: crate::admission::Chain,
    pub registry: Arc<Registry>,
    pub store: StoreClient,
    pub cache: Arc<Cache>,
    /// `--etcd-prefix` with a trailing slash (`/registry/`).
    pub prefix: String,
    /// API Priority and Fairness (or max-in-flight): every request is admitted there first.
    pub flowcontrol: Arc<crate::flowcontrol::FlowControl>,
    /// Shutdown's phase: `/readyz`'s `shutdown` check, 429s while draining, the drain's count.
    pub lifecycle: crate::shutdown::Lifecycle,
    /// The loopback bearer token (`crate::authn::loopback`): kapi's own calls to its API.
    pub loopback_token: String,
    /// Service-account tokens: issued by TokenRequest, verified by the chain's authenticator,
    /// their issuer's discovery documents.
    pub service_accounts: Arc<crate::authn::serviceaccount::ServiceAccounts>,
    /// `--audit-policy-file` and the log backend; off (one branch per request) without them.
    pub audit: crate::audit::Audit,
}

impl Api {
    /// Every request: refused while shutting down (with `--shutdown-send-retry-after`),
    /// counted for the drain and the metrics until its response has ended (`pipeline`).
    pub async fn handle(self: Arc<Self>, req: Request) -> Response {
        if self
            .lifecycle
            .refuses(req.uri.path(), header_str(&req.headers, header::USER_AGENT))
        {
            return shutting_down();
        }
        // Request info, resolved once.
        let query = Query::parse(req.uri.query());
        let path = req.uri.path().to_string();
        let target = request::parse(&req.method, &path, &query);
        let tracked = track(&self.registry, &req, target.as_ref());
        let long_running = tracked.as_ref().is_some_and(|(t, _)| t.long_running());
        let drain = self.lifecycle.request(long_running);
        let response = self.pipeline(req, query, path, target).await;
        match tracked {
            Some((tracker, watch)) => tracker.with_drain(drain).finish(response, watch),
            None => response,
        }
    }

    /// The request pipeline: request info → authentication → flow control → authorization →
    /// the handler. Each stage is its own module (`request`, `crate::authn`,
    /// `crate::flowcontrol`, `crate::authz`); a stage that refuses answers with its `Status`.
    async fn pipeline(
        self: Arc<Self>,
        req: Request,
        query: Query,
        path: String,
        target: Option<Target>,
    ) -> Response {
        let pretty = negotiate::pretty(
            query.get("pretty"),
            header_str(&req.headers, header::USER_AGENT),
        );
        // Authentication: a credential no authenticator accepts is a 401 whatever the path.
        let user = match self.authn.authenticate(&req).await {
            Ok(user) => user,
            Err(status) => {
                let resp = status_response(&status, Encoding::Json, pretty);
                return self
                    .audit
                    .failed_authentication(&req, target.as_ref(), &path, resp);
            }
        };
        // Audit: the request's recorder, if the policy audits it (events sent as it goes).
        let mut audit = match self.audit.begin(&req, &user, target.as_ref(), &path) {
            Ok(audit) => audit,
            Err(refused) => return refused,
        };
        // Impersonation: the request runs as the impersonated user, if it may be impersonated.
        let user = if crate::authn::impersonation::requested(&req) {
            match crate::authn::impersonation::impersonate(&req, user, &self.authz).await {
                Ok(user) => {
                    if let Some(recorder) = audit.as_mut() {
                        recorder.impersonated(&user);
                    }
                    user
                }
                Err(status) => {
                    let resp = status_response(&status, Encoding::Json, pretty);
                    return match audit {
                        Some(recorder) => recorder.finish(resp),
                        None => resp,
                    };
                }
            }
        } else {
            user
        };
        // Flow control: a seat (held until the response is produced; a watch's until it is
        // set up), or upstream's 429.
        let resp = match self.admit(&req, &user, target.as_ref(), &path).await {
            Ok(seat) => {
                let pf_headers = seat.headers();
                let mut resp = self
                    .authorize_and_serve(
                        &req, &user, target, query, &path, pretty, seat, &mut audit,
                    )
                    .await;
                resp.headers.extend(pf_headers);
                resp
            }
            Err(rejected) => rejected.response(),
        };
        match audit {
            Some(recorder) => recorder.finish(resp),
            None => resp,
        }
    }

    /// Authorization, then the handler.
    #[allow(clippy::too_many_arguments)]
    async fn authorize_and_serve(
        self: &Arc<Self>,
        req: &Request,
        user: &crate::authn::UserInfo,
        target: Option<Target>,
        query: Query,
        path: &str,
        pretty: bool,
        seat: crate::flowcontrol::Seat,
        audit: &mut Option<Box<crate::audit::Recorder>>,
    ) -> Response {
        let attrs =
            authz::Attributes::new(user, &req.method, path, target.as_ref()).with_query(&query);
        let verdict = self.authz.decide(&attrs).await;
        let allowed = matches!(verdict.decision, authz::Decision::Allow(_));
        if let Some(recorder) = audit {
            // Upstream's annotation: the decision's reason, or "internal error" for a failure.
            let reason = match (&verdict.decision, &verdict.error) {
                (authz::Decision::Allow(why), _) => why.as_str(),
                (_, Some(_)) => "internal error",
                (authz::Decision::Deny(why) | authz::Decision::NoOpinion(why), None) => why,
            };
            recorder.authorized(allowed, reason);
        }
        match (verdict.decision, verdict.error) {
            (authz::Decision::Allow(_), _) => {}
            // An authorizer that failed (a webhook that could not be asked) and nothing that
            // allowed: upstream's plain-text 500.
            (_, Some(error)) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Internal Server Error: {:?}: {error}\n", req.uri.as_str()),
                );
            }
            (authz::Decision::Deny(why) | authz::Decision::NoOpinion(why), None) => {
                return status_response(&authz::forbidden(&attrs, &why), Encoding::Json, pretty);
            }
        }
        match target {
            Some(Target::Other { path }) => self.other(req, &path, pretty).await,
            Some(Target::Discovery { path }) => {
                // An extension server's group-version answers its own discovery.
                if let ["apis", g, v] = path.trim_matches('/').split('/').collect::<Vec<_>>()[..]
                    && self.registry.lookup_version(g, v).is_none()
                    && let Some(svc) = crate::aggregator::remote(self, g, v)
                {
                    return crate::aggregator::proxy(self, req, user, &svc)
                        .await
                        .unwrap_or_else(|s| status_response(&s, Encoding::Json, pretty));
                }
                discovery(&self.registry, req, &path, pretty)
            }
            Some(Target::Resource(rr)) => {
                let annotations = std::cell::RefCell::new(Vec::new());
                let resp = match super::rest::serve(
                    self,
                    req,
                    user,
                    rr,
                    query,
                    pretty,
                    super::rest::Scope {
                        seat: Some(seat),
                        audit_annotations: &annotations,
                    },
                )
                .await
                {
                    Ok(resp) => resp,
                    Err((status, enc)) => status_response(&status, enc, pretty),
                };
                if let Some(recorder) = audit {
                    recorder.annotate(annotations.take());
                }
                resp
            }
            None => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
        }
    }

    /// Flow control: the request's seat (held until its response is produced; a watch's
    /// until it is set up), or the 429 to answer.
    async fn admit(
        &self,
        req: &Request,
        user: &crate::authn::UserInfo,
        target: Option<&Target>,
        path: &str,
    ) -> Result<crate::flowcontrol::Seat, crate::flowcontrol::Rejection> {
        use crate::flowcontrol::{self as fc, Target as FcTarget};
        let method = req.method.as_str().to_ascii_lowercase();
        let fc_target = match target {
            Some(Target::Resource(rr)) => FcTarget::Resource {
                verb: rr.verb.as_str(),
                api_group: &rr.group,
                resource: &rr.resource,
                subresource: rr.subresource.as_deref(),
                namespace: rr.namespace.as_deref(),
            },
            _ => FcTarget::NonResource {
                verb: &method,
                path,
            },
        };
        let long_running =
            matches!(target, Some(Target::Resource(rr)) if rr.verb == request::Verb::Watch);
        self.flowcontrol
            .admit(&fc::Request {
                user: &user.name,
                groups: &user.groups,
                target: fc_target,
                long_running,
            })
            .await
    }

    /// Whether namespace `ns` exists (`Some`) and is being terminated (`Some(true)`), from the
    /// watch cache; one not there is looked for again once the cache has caught up with the
    /// store, so a namespace created a moment ago is found.
    /// Waits (at most 3 s) until the watch cache holds every write the store has made: what
    /// admission reads from the cache then includes an object created a moment ago.
    pub async fn catch_up_cache(&self) -> Result<(), Status> {
        let target = super::cached::current_revision(&self.store)
            .await
            .map_err(|e| Status::service_unavailable(e.to_string()))?;
        if self.cache.revision() < target {
            let hub = super::cached::hub(&self.cache);
            let _ = monoio::time::timeout(std::time::Duration::from_secs(3), hub.wait_for(target))
                .await;
        }
        Ok(())
    }

    /// A namespace's labels (None: no such namespace), from the cache, which is caught up
    /// with the store first when the namespace is not there yet.
    pub async fn namespace_labels(
        &self,
        ns: &str,
    ) -> Result<Option<Vec<(String, String)>>, Status> {
        Ok(self
            .namespace_meta(ns, true)
            .await?
            .map(|(_, labels)| labels))
    }

    /// Whether a namespace is being deleted (None: no such namespace).
    pub async fn namespace_phase(&self, ns: &str) -> Result<Option<bool>, Status> {
        Ok(self
            .namespace_meta(ns, false)
            .await?
            .map(|(terminating, _)| terminating))
    }

    /// Whether namespace `ns` is being deleted, and its labels when `labels` is set.
    async fn namespace_meta(
        &self,
        ns: &str,
        labels: bool,
    ) -> Result<Option<crate::authn::lookup::Meta>, Status> {
        let lookup = &self.service_accounts.lookup;
        if let Some(found) = lookup.meta(Kind::Namespace, "", ns, labels)? {
            return Ok(Some(found));
        }
        self.catch_up_cache().await?;
        lookup.meta(Kind::Namespace, "", ns, labels)
    }

    async fn other(&self, req: &Request, path: &str, pretty: bool) -> Response {
        if let Some(resp) = self
            .service_accounts
            .discovery
            .as_ref()
            .and_then(|doc| doc.serve(path))
        {
            return resp;
        }
        match path {
            "/version" | "/version/" => raw_json(discovery_doc("version.json"), true),
            p if super::health::is_health(p) => {
                match super::health::serve(p, req.uri.query(), &self.store, &self.lifecycle).await {
                    Some((status, body)) => text(status, body),
                    None => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
                }
            }
            "/metrics" => {
                let body = crate::metrics::encode(&self.cache, &self.prefix);
                respond(StatusCode::OK, crate::metrics::CONTENT_TYPE, body)
            }
            "/openapi/v2" | "/openapi/v2/" => {
                // With custom resources, the document that has their definitions.
                let custom = self.registry.custom();
                let doc = match custom.openapi.get("swagger") {
                    Some(doc) => Some((doc.body.clone(), doc.hash.clone())),
                    None => super::openapi::v2().map(|d| (d.body.clone(), d.hash.clone())),
                };
                match doc {
                    Some((json, hash)) => match super::openapi_v2::serve(req, json, &hash).await {
                        Ok(resp) => resp,
                        Err(status) => status_response(&status, Encoding::Json, pretty),
                    },
                    None => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
                }
            }
            "/openapi/v3" | "/openapi/v3/" => {
                let custom = self.registry.custom();
                let mut resp = respond(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    super::openapi::v3_index(&custom.openapi),
                );
                resp.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                resp
            }
            p if p.starts_with("/openapi/v3/")
                && self
                    .registry
                    .custom()
                    .openapi
                    .contains_key(p["/openapi/v3/".len()..].trim_matches('/')) =>
            {
                let custom = self.registry.custom();
                let key = p["/openapi/v3/".len()..].trim_matches('/');
                match custom.openapi.get(key) {
                    Some(doc) => openapi_doc(
                        req,
                        doc,
                        req.uri.query().is_some_and(|q| q.contains("hash=")),
                    ),
                    None => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
                }
            }
            p if p.starts_with("/openapi/v3/") => {
                match super::openapi::v3(&p["/openapi/v3/".len()..]) {
                    Some(doc) => openapi_doc(
                        req,
                        doc,
                        req.uri.query().is_some_and(|q| q.contains("hash=")),
                    ),
                    None => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
                }
            }
            _ => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
        }
    }
}

/// An OpenAPI document with its ETag; `immutable` when addressed by hash, as upstream.
fn openapi_doc(req: &Request, doc: &super::openapi::Doc, immutable: bool) -> Response {
    let etag = format!("\"{}\"", doc.hash);
    let not_modified = req
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let accept = header_str(&req.headers, header::ACCEPT).unwrap_or("");
    if accept.contains("protobuf") && !accept.contains("json") && !accept.contains("*/*") {
        return status_response(
            &Status::not_acceptable("application/json"),
            Encoding::Json,
            false,
        );
    }
    let mut resp = if not_modified {
        respond(StatusCode::NOT_MODIFIED, "application/json", Vec::new())
    } else {
        respond(StatusCode::OK, "application/json", doc.body.to_vec())
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers.insert(header::ETAG, v);
    }
    resp.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, immutable"
        } else {
            "no-cache, private"
        }),
    );
    resp
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// What the metrics and the drain know of a request: tracked are resource requests and health
/// checks (as upstream instruments them), with a watch's event counter.
/// The request's metrics tracker. Labels name only resources and subresources the registry
/// serves (as upstream instruments only its installed routes): a path a client makes up is not
/// tracked, so the series' count stays bounded whatever clients send.
fn track(
    registry: &Registry,
    req: &Request,
    target: Option<&Target>,
) -> Option<(
    crate::metrics::request::Tracker,
    Option<crate::metrics::watch::WatchEvents>,
)> {
    use crate::metrics::request::{RequestInfo, Target as Labels, Tracker};
    let labels = match target? {
        Target::Resource(rr) => {
            let res = registry.get(&rr.group, &rr.version, &rr.resource)?;
            if let Some(sub) = &rr.subresource
                && !res.subresources.iter().any(|s| s == sub)
            {
                return None;
            }
            Labels::Resource {
                group: &rr.group,
                version: &rr.version,
                resource: &rr.resource,
                subresource: rr.subresource.as_deref(),
                namespace: rr.namespace.as_deref(),
                name: rr.name.as_deref(),
                watch: rr.verb == request::Verb::Watch,
                create: rr.verb == request::Verb::Create,
            }
        }
        Target::Other { path } if super::health::is_health(path) => Labels::Health { path },
        _ => return None,
    };
    let watch = match target {
        Some(Target::Resource(rr)) if rr.verb == request::Verb::Watch => Some(
            crate::metrics::watch::WatchEvents::new(&rr.group, &rr.version, &rr.resource),
        ),
        _ => None,
    };
    let info = RequestInfo {
        method: &req.method,
        query: req.uri.query(),
        content_type: header_str(&req.headers, header::CONTENT_TYPE),
        target: labels,
    };
    Some((Tracker::begin(&info), watch))
}

/// Upstream's answer to a request that arrives while it drains with
/// `--shutdown-send-retry-after`: plain text, 429, `Retry-After: 5`, and the connection closed.
fn shutting_down() -> Response {
    let mut resp = text(
        StatusCode::TOO_MANY_REQUESTS,
        "The apiserver is shutting down, please try again later.\n".into(),
    );
    resp.headers
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp.headers
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

pub fn discovery_doc(name: &str) -> &'static [u8] {
    DISCOVERY
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .unwrap_or(b"{}")
}

/// `/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`, served from upstream's documents.
fn discovery(registry: &Registry, req: &Request, path: &str, pretty: bool) -> Response {
    let accept = header_str(&req.headers, header::ACCEPT);
    let accepted = negotiate::accept(accept, &[Shape::AggregatedDiscovery]).unwrap_or(Accepted {
        encoding: Encoding::Json,
        shape: Shape::Object,
    });
    let aggregated = accepted.shape == Shape::AggregatedDiscovery;
    let name = match (path, aggregated) {
        ("/api", true) => "api.aggregated-v2.json".to_string(),
        ("/apis", true) => "apis.aggregated-v2.json".to_string(),
        ("/api", false) => "api.json".to_string(),
        ("/apis", false) => "apis.json".to_string(),
        (p, _) => {
            let parts: Vec<&str> = p.trim_matches('/').split('/').collect();
            match parts.as_slice() {
                ["api", v] => format!("api__{v}.json"),
                ["apis", g, v] => format!("apis__{g}__{v}.json"),
                ["apis", g] => return group_doc(registry, g, pretty),
                _ => String::new(),
            }
        }
    };
    let custom = registry.custom();
    let remote = registry.remote();
    if !remote.is_empty() && matches!(name.as_str(), "apis.json" | "apis.aggregated-v2.json") {
        let base: Vec<u8> = match custom.docs.get(&name) {
            Some(doc) => doc.to_vec(),
            None => super::runtime_config::discovery(&name)
                .unwrap_or_default()
                .to_vec(),
        };
        if let Some(doc) = crate::aggregator::with_remote(&base, aggregated, &remote) {
            return discovery_response(&doc, pretty, aggregated);
        }
    }
    if let Some(doc) = custom.docs.get(&name) {
        return discovery_response(doc, pretty, aggregated);
    }
    match super::runtime_config::discovery(&name) {
        Some(doc) if name != "version.json" => discovery_response(doc, pretty, aggregated),
        _ => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
    }
}

fn discovery_response(doc: &[u8], pretty: bool, aggregated: bool) -> Response {
    let mut resp = raw_json(doc, pretty);
    if aggregated {
        resp.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            ),
        );
        resp.headers
            .insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    resp
}

/// `/apis/<group>`: the APIGroup entry of `/apis`.
fn group_doc(registry: &Registry, group: &str, pretty: bool) -> Response {
    let custom = registry.custom();
    let doc: &[u8] = match custom.docs.get("apis.json") {
        Some(d) => d,
        None => super::runtime_config::discovery("apis.json").unwrap_or_default(),
    };
    let apis: serde_json::Value = serde_json::from_slice(doc).unwrap_or_default();
    let found = apis["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == group))
        .cloned();
    match found {
        Some(mut g) => {
            if let Some(o) = g.as_object_mut() {
                let mut with_kind = serde_json::Map::new();
                with_kind.insert("kind".into(), "APIGroup".into());
                with_kind.insert("apiVersion".into(), "v1".into());
                with_kind.extend(std::mem::take(o));
                *o = with_kind;
            }
            let body = serde_json::to_vec(&g).unwrap_or_default();
            raw_json(&body, pretty)
        }
        None => status_response(&Status::no_such_resource(), Encoding::Json, pretty),
    }
}

/// A JSON document stored as upstream's compact bytes (ending in a newline).
fn raw_json(doc: &[u8], pretty: bool) -> Response {
    let body = if pretty {
        let trimmed = doc.strip_suffix(b"\n").unwrap_or(doc);
        let mut out = Vec::with_capacity(doc.len() * 2);
        kapi_codec::json_write::indent(trimmed, &mut out);
        out.push(b'\n');
        out
    } else {
        doc.to_vec()
    };
    respond(StatusCode::OK, Encoding::Json.content_type(), body)
}

fn text(status: StatusCode, body: String) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Response {
        status,
        headers,
        body: Body::Full(body.into()),
    }
}

pub fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Response {
        status,
        headers,
        body: Body::Full(body.into()),
    }
}

/// A request the transport refused, as upstream's handlers word it: a body over the limit is
/// `RequestEntityTooLarge` ("limit is 3145728"), an oversized head 431, the rest as its status.
pub fn refusal_response(refusal: crate::transport::Refusal) -> Response {
    use crate::transport::MAX_BODY_BYTES;
    let status = match refusal.status {
        StatusCode::PAYLOAD_TOO_LARGE => Status::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {MAX_BODY_BYTES}"),
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Status::new(
            431,
            "RequestHeaderFieldsTooLarge",
            format!(
                "Request header fields too large: limit is {}",
                crate::transport::MAX_HEADER_BYTES
            ),
        ),
        StatusCode::REQUEST_TIMEOUT => {
            Status::new(408, "Timeout", "the request body was not received in time")
        }
        other => Status::new(
            other.as_u16(),
            if other.is_client_error() {
                "BadRequest"
            } else {
                "InternalError"
            },
            refusal.text.trim_end(),
        ),
    };
    status_response(&status, Encoding::Json, false)
}

pub fn status_response(status: &Status, enc: Encoding, pretty: bool) -> Response {
    let body = objects::encode_status(status, enc, pretty);
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = respond(code, enc.content_type(), body);
    if let Some(secs) = status.retry_after_seconds
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers.insert(header::RETRY_AFTER, v);
    }
    resp
}
