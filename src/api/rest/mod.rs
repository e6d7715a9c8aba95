//! The generic REST handlers: one path for every built-in resource. Reads (get, list, watch)
//! are answered from the cache; writes go to the store as transactions on the key's
//! mod_revision. Per-kind behaviour comes from the registry row, not from code per kind.

mod allocation;
mod apply;
mod computed;
mod connect;
mod defaults;
mod delete;
mod eviction;
mod node_ports;
mod proxy;
mod read;
mod scale;
mod service_writes;
mod write;

pub use allocation::repair as repair_service_addresses;
pub use computed::ComputedRequest;
pub use defaults::{now_rfc3339, random_suffix, rfc3339, unix_now};
pub use node_ports::repair as repair_node_ports;

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use kapi_codec::FieldValidation;
use kapi_codec::envelope::{EventType, ListMeta};
use kapi_codec::meta::{FieldPath, meta_from_pb, selectable_fields};
use serde_json::{Value, json};

use super::cached;
use super::negotiate::{self, BodyType, Encoding, Shape};
use super::registry::{Resource, Storage};
use super::request::{Query, ResourceRequest, Verb};
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Api, respond};
use super::status::{Cause, GroupResource, Status};
use crate::api::objects::{self, Served};
use crate::storage::StoreError;
use crate::transport::{Body, Request, Response};

type Failure = (Status, Encoding);

/// Chunks a watch may have queued toward the transport before the producer waits: the
/// transport drains as the client reads, so this only smooths bursts.
const WATCH_CHUNK_BUFFER: usize = 64;

/// Lists of at least this many items are streamed (JSON and protobuf; YAML, pretty JSON,
/// Table and metadata-only lists are written whole).
const STREAM_LIST_MIN_ITEMS: usize = 256;

/// Size of a streamed list's chunks, and how many may wait for the client: a list holds at
/// most (this + 1) × LIST_CHUNK_BYTES for its response, however large it is.
const LIST_CHUNK_BYTES: usize = 1 << 20;
const LIST_CHUNKS_IN_FLIGHT: usize = 4;

/// How often an idle watch that asked for bookmarks gets one (upstream: about a minute).
const BOOKMARK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// How often an idle watch wakes to check that its client is still there and whether a
/// bookmark is due: a departed client's watcher is released within this time.
const IDLE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a consistent read waits for the cache to reach the store's revision before it
/// reads from the store instead: the ingest applies an event within milliseconds, so this
/// only elapses when the revision moved without an event for us.
const CACHE_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Longest watch served (ten years): a larger `timeoutSeconds` is served as this, so that the
/// watch's deadline stays a representable instant (upstream's Go duration silently wraps).
const MAX_WATCH_SECONDS: u64 = 10 * 365 * 24 * 3600;

fn gr(res: &Resource) -> GroupResource<'_> {
    GroupResource {
        group: &res.group,
        resource: &res.resource,
    }
}

fn store_error(res: &Resource, name: &str, e: StoreError) -> Status {
    match e {
        StoreError::NotFound => Status::not_found(gr(res), name),
        StoreError::AlreadyExists => Status::already_exists(gr(res), name),
        StoreError::Conflict { .. } => Status::modified_conflict(gr(res), name),
        StoreError::Compacted { .. } => {
            Status::expired("The resourceVersion for the provided list is too old.")
        }
        StoreError::FutureRevision => Status::timeout("Too large resource version"),
        StoreError::Unavailable(m) => Status::service_unavailable(m),
        StoreError::Internal(m) => Status::internal(m),
    }
}

/// What a request brings to its handler beyond the request itself.
pub struct Scope<'a> {
    /// Its flow-control seat.
    pub seat: Option<crate::flowcontrol::Seat>,
    /// Where admission's annotations for its audit event go.
    pub audit_annotations: &'a std::cell::RefCell<Vec<(String, String)>>,
}

pub async fn serve(
    api: &Arc<Api>,
    req: &Request,
    user: &crate::authn::UserInfo,
    rr: ResourceRequest,
    query: Query,
    pretty: bool,
    scope: Scope<'_>,
) -> Result<Response, Failure> {
    let Scope {
        seat,
        audit_annotations,
    } = scope;
    let accept_header = req
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let shapes: &[Shape] = match rr.verb {
        Verb::List => &[Shape::Table, Shape::PartialObjectMetadataList],
        Verb::Get => &[Shape::Table, Shape::PartialObjectMetadata],
        _ => &[],
    };
    let accepted = negotiate::accept(accept_header, shapes).map_err(|s| (s, Encoding::Json))?;
    let enc = accepted.encoding;
    let fail = |s: Status| (s, enc);
    let row = match api
        .registry
        .lookup(&rr.group, &rr.version, &rr.resource)
        .filter(|_| super::runtime_config::enabled(&rr.group, &rr.version))
    {
        Some(r) => r,
        None => {
            // A group-version an extension API server serves: proxied to it.
            if api
                .registry
                .lookup_version(&rr.group, &rr.version)
                .is_none()
                && let Some(svc) = crate::aggregator::remote(api, &rr.group, &rr.version)
            {
                return crate::aggregator::proxy(api, req, user, &svc)
                    .await
                    .map_err(fail);
            }
            return Err(fail(Status::no_such_resource()));
        }
    };
    let res: &Resource = &row;
    // Custom resources have no protobuf form: JSON when the client takes it too, else 406.
    let (enc, accepted) = match (res.is_custom(), enc, accepted.shape) {
        (true, Encoding::Protobuf, Shape::Object | Shape::Table) => {
            let json = negotiate::accept_json_only(accept_header, shapes)
                .map_err(|s| (s, Encoding::Json))?;
            (json.encoding, json)
        }
        _ => (enc, accepted),
    };
    let fail = |s: Status| (s, enc);
    let ctx = Ctx {
        api,
        req,
        user,
        res,
        rr: &rr,
        query: &query,
        enc,
        shape: accepted.shape,
        pretty,
        seat: std::cell::Cell::new(seat),
        audit_annotations,
    };
    if connect::is_connect(&rr) && rr.name.is_some() {
        return ctx.connect().await.map_err(fail);
    }
    if proxy::is_proxy(&rr) && rr.name.is_some() {
        return ctx.proxy().await.map_err(fail);
    }
    let computed = computed::is_computed(&rr);
    if let Some(sub) = &rr.subresource
        && !computed
        && (!res.subresources.iter().any(|s| s == sub)
            || !matches!(
                sub.as_str(),
                "status" | "scale" | "finalize" | "approval" | "ephemeralcontainers" | "resize"
            )
            || (sub == "finalize" && rr.verb != Verb::Update)
            || (matches!(sub.as_str(), "approval" | "ephemeralcontainers" | "resize")
                && !matches!(rr.verb, Verb::Get | Verb::Update | Verb::Patch)))
    {
        return Err(fail(Status::no_such_resource()));
    }
    let verb_name = rr.verb.as_str();
    if rr.subresource.is_none() && !res.has_verb(verb_name) {
        return Err(fail(Status::method_not_supported(gr(res), verb_name)));
    }
    if res.storage == Storage::None && !computed {
        return Err(fail(Status::method_not_supported(gr(res), verb_name)));
    }
    if !res.namespaced && rr.namespace.is_some() {
        return Err(fail(Status::no_such_resource()));
    }
    if res.namespaced && rr.namespace.is_none() && !matches!(rr.verb, Verb::List | Verb::Watch) {
        return Err(fail(Status::no_such_resource()));
    }
    if computed {
        return ctx.computed().await.map_err(fail);
    }
    if rr.subresource.as_deref() == Some("scale") {
        return ctx.scale().await.map_err(fail);
    }
    match rr.verb {
        Verb::Get => ctx.get().await,
        Verb::List => ctx.list().await,
        Verb::Watch => ctx.watch().await,
        Verb::Create => ctx.create().await,
        Verb::Update => ctx.update().await,
        Verb::Patch => ctx.patch().await,
        Verb::Delete => ctx.delete().await,
        Verb::DeleteCollection => ctx.delete_collection().await,
    }
    .map_err(fail)
}

struct Ctx<'a> {
    api: &'a Arc<Api>,
    req: &'a Request,
    /// Who the request is from (authentication's answer): admission decides on it.
    user: &'a crate::authn::UserInfo,
    res: &'a Resource,
    rr: &'a ResourceRequest,
    query: &'a Query,
    enc: Encoding,
    shape: Shape,
    pretty: bool,
    /// The request's flow-control seat: released when the handler returns, except that a
    /// watch takes it and lets it go once its initial events are sent (as upstream counts
    /// watches).
    seat: std::cell::Cell<Option<crate::flowcontrol::Seat>>,
    /// What admission adds to the request's audit event.
    audit_annotations: &'a std::cell::RefCell<Vec<(String, String)>>,
}

impl<'a> Ctx<'a> {
    /// The request `verb` on the pod `name` of this request's namespace, for a subresource
    /// that acts on its pod (binding, eviction).
    fn pod_request(&self, verb: Verb, name: &str) -> ResourceRequest {
        ResourceRequest {
            verb,
            group: String::new(),
            version: "v1".into(),
            resource: "pods".into(),
            namespace: self.rr.namespace.clone(),
            name: Some(name.to_string()),
            subresource: None,
        }
    }

    /// This request's context for another resource and request (same client, encoding and
    /// user; no seat of its own).
    fn for_request<'b>(&'b self, res: &'b Resource, rr: &'b ResourceRequest) -> Ctx<'b>
    where
        'a: 'b,
    {
        Ctx {
            api: self.api,
            req: self.req,
            user: self.user,
            res,
            rr,
            query: self.query,
            enc: self.enc,
            shape: self.shape,
            pretty: self.pretty,
            seat: std::cell::Cell::new(None),
            audit_annotations: self.audit_annotations,
        }
    }
}

impl Ctx<'_> {
    /// Key of the addressed object.
    fn key(&self, name: &str) -> String {
        match &self.rr.namespace {
            Some(ns) if self.res.namespaced => {
                format!("{}{}{ns}/{name}", self.api.prefix, self.res.key_prefix)
            }
            _ => format!("{}{}{name}", self.api.prefix, self.res.key_prefix),
        }
    }

    /// Prefix of the addressed collection (namespace-scoped when a namespace is given).
    fn collection_prefix(&self) -> String {
        match &self.rr.namespace {
            Some(ns) if self.res.namespaced => {
                format!("{}{}{ns}/", self.api.prefix, self.res.key_prefix)
            }
            _ => format!("{}{}", self.api.prefix, self.res.key_prefix),
        }
    }

    fn name(&self) -> &str {
        self.rr.name.as_deref().unwrap_or("")
    }

    /// Waits for the cache to be consistent with the store (resourceVersion unset), or to
    /// reach the given revision (NotOlderThan).
    /// Returns None when the cache can answer, or Some(revision) when it did not catch up
    /// within CACHE_SYNC_TIMEOUT (a store whose revision moved outside our prefix and sends
    /// no progress notes): the caller then reads from the store at that revision, as
    /// upstream falls back to etcd.
    async fn sync(&self, rv: Option<&str>) -> Result<Option<i64>, Status> {
        let cache = &self.api.cache;
        let target = match rv {
            None | Some("") => cached::current_revision(&self.api.store)
                .await
                .map_err(|e| store_error(self.res, "", e))?,
            Some("0") => return Ok(None),
            Some(v) => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| Status::bad_request(format!("invalid resource version: {v}")))?;
                if n <= cache.revision() {
                    return Ok(None);
                }
                let current = cached::current_revision(&self.api.store)
                    .await
                    .map_err(|e| store_error(self.res, "", e))?;
                if n > current {
                    return Err(Status::timeout(format!(
                        "Too large resource version: {n}, current: {current}"
                    )));
                }
                n
            }
        };
        if cache.revision() >= target {
            return Ok(None);
        }
        let hub = cached::hub(cache);
        Ok(
            monoio::time::timeout(CACHE_SYNC_TIMEOUT, hub.wait_for(target))
                .await
                .is_err()
                .then_some(target),
        )
    }

    /// How this request serves cached versions of its resource.
    fn view(&self) -> cached::View<'_> {
        cached::View::new(self.res, &self.api.cache)
    }

    /// The cache of the addressed resource.
    fn rc(&self) -> Result<Arc<kapi_cache::ResourceCache>, Status> {
        let prefix = format!("{}{}", self.api.prefix, self.res.key_prefix);
        self.api
            .cache
            .resource(prefix.as_bytes())
            .ok_or_else(|| Status::internal(format!("{} is not cached", self.res.resource)))
    }

    fn ok(&self, status: StatusCode, body: Vec<u8>) -> Response {
        respond(status, self.enc.content_type(), body)
    }

    fn object_response(&self, status: StatusCode, obj: &Served) -> Result<Response, Status> {
        if self.shape == Shape::Table && self.rr.verb == Verb::Get {
            let v = objects::to_value(self.res, obj)?;
            return self.table_response(&[v], None, "");
        }
        if self.shape == Shape::PartialObjectMetadata {
            let raw = objects::partial_metadata(self.res, obj)?;
            let body = objects::encode_message(
                None,
                "meta.k8s.io/v1",
                "PartialObjectMetadata",
                &raw,
                self.enc,
                self.pretty,
            )?;
            return Ok(self.ok(status, body));
        }
        Ok(self.ok(
            status,
            objects::encode_object(self.res, obj, self.enc, self.pretty)?,
        ))
    }

    /// A Table of served objects (JSON; YAML when asked), Content-Type plain JSON as upstream.
    fn table_response(
        &self,
        objects_json: &[Value],
        rv: Option<&str>,
        token: &str,
    ) -> Result<Response, Status> {
        let include = crate::api::table::Include::parse(self.query.get("includeObject"));
        let t = match &self.res.custom {
            Some(c) => crate::api::table::custom_table(c, objects_json, rv, token, include),
            None => crate::api::table::table(
                &self.res.group,
                &self.res.resource,
                objects_json,
                rv,
                token,
                include,
            ),
        };
        let json = crate::api::table::to_json(&t);
        let body = objects::finish_json(json, self.enc, self.pretty)?;
        Ok(respond(StatusCode::OK, self.enc.content_type(), body))
    }

    fn validation(&self) -> Result<FieldValidation, Status> {
        match self.query.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(v) => Err(Status::bad_request(format!(
                "fieldValidation parameter unsupported: {v}. Must be one of Ignore, Warn, Strict"
            ))),
        }
    }

    fn dry_run(&self) -> Result<bool, Status> {
        match self.query.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(v) => Err(Status::bad_request(format!("Invalid dry run value: {v}"))),
        }
    }

    /// Checks the body's apiVersion/kind against the URL.
    fn check_type(&self, obj: &Value) -> Result<(), Status> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if (!kind.is_empty() && kind != self.res.kind)
            || (!av.is_empty() && av != self.res.api_version())
        {
            return Err(Status::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                self.res.api_version()
            )));
        }
        if !obj.is_object() {
            return Err(Status::bad_request("the body is not an object"));
        }
        Ok(())
    }

    fn warnings_response(&self, mut resp: Response, warnings: &[String]) -> Response {
        for w in warnings.iter().take(20) {
            let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
            if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
                resp.headers.append(header::WARNING, v);
            }
        }
        resp
    }

    /// The current object, from the cache once it has caught up with the store (a consistent
    /// read, as upstream's GuaranteedUpdate starts from its cached object); from the store when
    /// the cache could not catch up in time.
    async fn current(&self) -> Result<write::Current, Status> {
        let key = self.key(self.name());
        if self.sync(None).await?.is_none()
            && let Some(obj) = self.rc()?.snapshot().get(key.as_bytes())
        {
            return Ok(write::Current {
                value: obj.value.clone(),
                mod_revision: obj.mod_revision,
            });
        }
        match self.api.store.get(key.as_bytes()).await {
            Ok(Some(kv)) => Ok(write::Current {
                value: kv.value,
                mod_revision: kv.mod_revision,
            }),
            Ok(None) => Err(Status::not_found(gr(self.res), self.name())),
            Err(e) => Err(store_error(self.res, self.name(), e)),
        }
    }
}
