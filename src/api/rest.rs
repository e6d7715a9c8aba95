//! The generic REST handlers: one path for every built-in resource. Reads (get, list, watch)
//! are answered from the cache; writes go to the store as transactions on the key's
//! mod_revision. Per-kind behaviour comes from the registry row, not from code per kind.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use kapi_cache::{CacheError, EventKind, WatchItem};
use kapi_codec::FieldValidation;
use kapi_codec::envelope::{EventType, ListMeta};
use kapi_codec::meta::{FieldPath, meta_from_pb, selectable_fields};
use serde_json::{Value, json};

use super::negotiate::{self, BodyType, Encoding, Shape};
use super::objects::{self, Served};
use super::registry::{Resource, Storage};
use super::request::{Query, ResourceRequest, Verb};
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Api, respond, status_response};
use super::status::{Cause, GroupResource, Status};
use crate::storage::StoreError;
use crate::transport::{Body, Request, Response};

type Failure = (Status, Encoding);

/// Chunks a watch may have queued toward the transport before the producer waits: the
/// transport drains as the client reads, so this only smooths bursts.
const WATCH_CHUNK_BUFFER: usize = 64;

/// How often an idle watch that asked for bookmarks gets one (upstream: about a minute).
const BOOKMARK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Default watch length when the client sets no timeoutSeconds (upstream: a random
/// 30–60 minutes from --min-request-timeout).
const DEFAULT_WATCH_SECONDS: u64 = 1800;

/// Kinds whose strategy sets metadata.generation (and bumps it when the spec changes).
const GENERATION_KINDS: &[&str] = &[
    "pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs",
    "replicationcontrollers", "poddisruptionbudgets", "customresourcedefinitions",
    "validatingadmissionpolicies", "mutatingadmissionpolicies", "horizontalpodautoscalers",
];

/// Kinds whose DELETE answers with the object rather than a Status.
const RETURNS_DELETED_OBJECT: &[&str] = &["pods", "services", "namespaces", "nodes", "persistentvolumes", "persistentvolumeclaims"];

fn gr(res: &Resource) -> GroupResource<'_> {
    GroupResource { group: &res.group, resource: &res.resource }
}

fn store_error(res: &Resource, name: &str, e: StoreError) -> Status {
    match e {
        StoreError::NotFound => Status::not_found(gr(res), name),
        StoreError::AlreadyExists => Status::already_exists(gr(res), name),
        StoreError::Conflict { .. } => Status::modified_conflict(gr(res), name),
        StoreError::Compacted { .. } => Status::expired("The resourceVersion for the provided list is too old."),
        StoreError::FutureRevision => Status::timeout("Too large resource version"),
        StoreError::Unavailable(m) => Status::service_unavailable(m),
        StoreError::Internal(m) => Status::internal(m),
    }
}

pub async fn serve(
    api: &Arc<Api>,
    req: &Request,
    rr: ResourceRequest,
    query: Query,
    pretty: bool,
) -> Result<Response, Failure> {
    let accept_header = req.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let shapes: &[Shape] = match rr.verb {
        Verb::List => &[Shape::Table, Shape::PartialObjectMetadataList],
        Verb::Get => &[Shape::Table, Shape::PartialObjectMetadata],
        _ => &[],
    };
    let accepted = negotiate::accept(accept_header, shapes).map_err(|s| (s, Encoding::Json))?;
    let enc = accepted.encoding;
    let fail = |s: Status| (s, enc);
    let res = match api.registry.get(&rr.group, &rr.version, &rr.resource) {
        Some(r) => r,
        None => {
            let mut s = Status::new(404, "NotFound", "the server could not find the requested resource");
            s.empty_details = true;
            return Err(fail(s));
        }
    };
    if let Some(sub) = &rr.subresource
        && (!res.subresources.iter().any(|s| s == sub) || !matches!(sub.as_str(), "status" | "scale"))
    {
        let mut s = Status::new(404, "NotFound", "the server could not find the requested resource");
        s.empty_details = true;
        return Err(fail(s));
    }
    let verb_name = rr.verb.as_str();
    if rr.subresource.is_none() && !res.has_verb(verb_name) {
        return Err(fail(Status::method_not_supported(gr(res), verb_name)));
    }
    if res.storage == Storage::None {
        return Err(fail(Status::method_not_supported(gr(res), verb_name)));
    }
    if !res.namespaced && rr.namespace.is_some() {
        let mut s = Status::new(404, "NotFound", "the server could not find the requested resource");
        s.empty_details = true;
        return Err(fail(s));
    }
    if res.namespaced && rr.namespace.is_none() && !matches!(rr.verb, Verb::List | Verb::Watch) {
        let mut s = Status::new(404, "NotFound", "the server could not find the requested resource");
        s.empty_details = true;
        return Err(fail(s));
    }
    let ctx = Ctx { api, req, res, rr: &rr, query: &query, enc, shape: accepted.shape, pretty };
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
    res: &'a Resource,
    rr: &'a ResourceRequest,
    query: &'a Query,
    enc: Encoding,
    shape: Shape,
    pretty: bool,
}

impl Ctx<'_> {
    /// Key of the addressed object.
    fn key(&self, name: &str) -> String {
        match &self.rr.namespace {
            Some(ns) if self.res.namespaced => format!("{}{}{ns}/{name}", self.api.prefix, self.res.key_prefix),
            _ => format!("{}{}{name}", self.api.prefix, self.res.key_prefix),
        }
    }

    /// Prefix of the addressed collection (namespace-scoped when a namespace is given).
    fn collection_prefix(&self) -> String {
        match &self.rr.namespace {
            Some(ns) if self.res.namespaced => format!("{}{}{ns}/", self.api.prefix, self.res.key_prefix),
            _ => format!("{}{}", self.api.prefix, self.res.key_prefix),
        }
    }

    fn name(&self) -> &str {
        self.rr.name.as_deref().unwrap_or("")
    }

    /// Waits for the cache to be consistent with the store (resourceVersion unset), or to
    /// reach the given revision (NotOlderThan).
    async fn sync(&self, rv: Option<&str>) -> Result<(), Status> {
        match rv {
            None | Some("") => {
                let current = self
                    .api
                    .store
                    .current_revision()
                    .await
                    .map_err(|e| store_error(self.res, "", e))?;
                self.api.cache.wait_for(current).await;
            }
            Some("0") => {}
            Some(v) => {
                let n: i64 = v.parse().map_err(|_| {
                    Status::bad_request(format!("invalid resource version: {v}"))
                })?;
                if n > self.api.cache.revision() {
                    let current = self.api.store.current_revision().await.map_err(|e| store_error(self.res, "", e))?;
                    if n > current {
                        return Err(Status::timeout(format!("Too large resource version: {n}, current: {current}")));
                    }
                    self.api.cache.wait_for(n).await;
                }
            }
        }
        Ok(())
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
            let body = objects::encode_message(None, "meta.k8s.io/v1", "PartialObjectMetadata", &raw, self.enc, self.pretty)?;
            return Ok(self.ok(status, body));
        }
        Ok(self.ok(status, objects::encode_object(self.res, obj, self.enc, self.pretty)?))
    }

    /// A Table of served objects (JSON; YAML when asked), Content-Type plain JSON as upstream.
    fn table_response(&self, objects_json: &[Value], rv: Option<&str>, token: &str) -> Result<Response, Status> {
        let include = super::table::Include::parse(self.query.get("includeObject"));
        let t = super::table::table(&self.res.group, &self.res.resource, objects_json, rv, token, include);
        let json = super::table::to_json(&t);
        let body = objects::finish_json(json, self.enc, self.pretty)?;
        Ok(respond(StatusCode::OK, self.enc.content_type(), body))
    }

    async fn get(&self) -> Result<Response, Status> {
        self.sync(self.query.get("resourceVersion")).await?;
        let key = self.key(self.name());
        let Some(entry) = self.api.cache.get(key.as_bytes()) else {
            return Err(Status::not_found(gr(self.res), self.name()));
        };
        let obj = objects::served(self.res, &entry.value, entry.mod_revision)?;
        self.object_response(StatusCode::OK, &obj)
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector, Vec<FieldPath>), Status> {
        let labels = LabelSelector::parse(self.query.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(self.query.get("fieldSelector").unwrap_or(""))?;
        let paths = selectable_fields(&self.res.group, &self.res.kind);
        let mut supported: Vec<&str> = vec!["metadata.name", "metadata.namespace"];
        supported.extend(paths.iter().map(|p| p.label));
        fields.check_fields(&supported)?;
        Ok((labels, fields, paths))
    }

    /// Whether a served object passes the request's selectors.
    fn matches(&self, obj: &Served, labels: &LabelSelector, fields: &FieldSelector, paths: &[FieldPath]) -> bool {
        if labels.is_empty() && fields.is_empty() {
            return true;
        }
        let Some(msg) = self.res.msg else { return false };
        let Ok(meta) = meta_from_pb(msg, &obj.raw, 0) else { return false };
        if !labels.matches(&meta.labels) {
            return false;
        }
        fields.matches(|f| match f {
            "metadata.name" => Some(meta.name.to_string()),
            "metadata.namespace" => Some(meta.namespace.to_string()),
            other => paths
                .iter()
                .find(|p| p.label == other)
                .and_then(|p| p.value(&obj.raw).ok())
                .map(|v| v.into_owned()),
        })
    }

    async fn list(&self) -> Result<Response, Status> {
        let (labels, fields, paths) = self.selectors()?;
        let limit: usize = match self.query.get("limit") {
            Some(l) => l.parse().map_err(|_| Status::bad_request(format!("invalid limit: {l}")))?,
            None => 0,
        };
        let prefix = self.collection_prefix();
        // The continue token's start key is relative to the prefix without its slash.
        let base = prefix.trim_end_matches('/').to_string();
        let rv_param = self.query.get("resourceVersion");
        let exact = self.query.get("resourceVersionMatch") == Some("Exact");
        let mut start = prefix.clone().into_bytes();
        let mut at_revision = 0i64;
        if let Some(token) = self.query.get("continue").filter(|t| !t.is_empty()) {
            let (rv, s) = decode_continue(token)?;
            at_revision = rv;
            start = format!("{base}{s}").into_bytes();
        } else if exact {
            let v = rv_param.unwrap_or("");
            at_revision = v.parse().map_err(|_| Status::bad_request(format!("invalid resource version: {v}")))?;
        } else {
            self.sync(rv_param).await?;
        }
        // Items: from the cache when reading its current state, else from the store at the
        // revision asked for (pages of an older list, exact-revision lists).
        let (kvs, more, revision) = if at_revision == 0 || at_revision == self.api.cache.revision() {
            let (items, more, rev) = self.api.cache.list(prefix.as_bytes(), &start, limit);
            let kvs: Vec<(Bytes, Bytes, i64)> = items.into_iter().map(|(k, e)| (k, e.value, e.mod_revision)).collect();
            (kvs, more, rev)
        } else {
            let r = self
                .api
                .store
                .range(prefix.as_bytes(), &start, at_revision, limit as i64)
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if self.query.get("continue").is_some() => expired_continue(),
                    e => store_error(self.res, "", e),
                })?;
            let kvs = r.kvs.into_iter().map(|kv| (kv.key, kv.value, kv.mod_revision)).collect();
            (kvs, r.more, r.revision)
        };
        let mut items = Vec::with_capacity(kvs.len());
        for (_, value, mod_rev) in &kvs {
            let obj = objects::served(self.res, value, *mod_rev)?;
            if self.matches(&obj, &labels, &fields, &paths) {
                items.push(obj);
            }
        }
        let rv = revision.to_string();
        let (token, remaining) = match (more, kvs.last()) {
            (true, Some((last_key, _, _))) => {
                let rel = String::from_utf8_lossy(&last_key[base.len()..]).into_owned();
                let token = encode_continue(revision, &format!("{rel}\u{0}"));
                let remaining = if labels.is_empty() && fields.is_empty() {
                    let mut next = last_key.to_vec();
                    next.push(0);
                    Some(self.api.cache.count_from(prefix.as_bytes(), &next) as i64)
                } else {
                    None
                };
                (token, remaining)
            }
            _ => (String::new(), None),
        };
        let meta = ListMeta { resource_version: &rv, continue_token: &token, remaining_item_count: remaining };
        if self.shape == Shape::Table {
            let values = items.iter().map(|i| objects::to_value(self.res, i)).collect::<Result<Vec<_>, _>>()?;
            return self.table_response(&values, Some(&rv), &token);
        }
        if self.shape == Shape::PartialObjectMetadataList {
            let mut metas = Vec::with_capacity(items.len());
            for i in &items {
                metas.push(Served { raw: objects::partial_metadata(self.res, i)? });
            }
            let pom = Resource {
                group: "meta.k8s.io".into(),
                version: "v1".into(),
                kind: "PartialObjectMetadata".into(),
                msg: kapi_codec::Schema::get().kind("meta.k8s.io/v1", "PartialObjectMetadata"),
                ..self.res.clone()
            };
            return Ok(self.ok(StatusCode::OK, objects::encode_list(&pom, &metas, &meta, self.enc, self.pretty)?));
        }
        Ok(self.ok(StatusCode::OK, objects::encode_list(self.res, &items, &meta, self.enc, self.pretty)?))
    }

    async fn watch(&self) -> Result<Response, Status> {
        let (labels, fields, paths) = self.selectors()?;
        let allow_bookmarks = self.query.flag("allowWatchBookmarks");
        let rv = self.query.get("resourceVersion").unwrap_or("");
        let send_initial = match self.query.get("sendInitialEvents") {
            Some(v) => v == "true",
            // Upstream (WatchList on) defaults a watch from "now" or "any" to initial events.
            None => rv.is_empty() || rv == "0",
        };
        let timeout = self
            .query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(DEFAULT_WATCH_SECONDS);
        let prefix = self.collection_prefix();
        let name_filter = self.rr.name.clone().or_else(|| fields.required("metadata.name").map(str::to_string));
        let mut initial = Vec::new();
        let start_rev;
        if send_initial || rv.is_empty() || rv == "0" {
            if rv.is_empty() {
                self.sync(None).await?;
            }
            let (items, _, rev) = self.api.cache.list(prefix.as_bytes(), prefix.as_bytes(), 0);
            start_rev = rev;
            if send_initial {
                for (_, e) in items {
                    let obj = objects::served(self.res, &e.value, e.mod_revision)?;
                    if self.matches(&obj, &labels, &fields, &paths) && name_ok(self.res, &obj, name_filter.as_deref()) {
                        initial.push(objects::watch_frame(self.res, EventType::Added, &obj, self.enc)?);
                    }
                }
            }
        } else {
            start_rev = rv.parse().map_err(|_| Status::bad_request(format!("invalid resource version: {rv}")))?;
        }
        let (tx, rx) = futures::channel::mpsc::channel::<Bytes>(WATCH_CHUNK_BUFFER);
        let mut resp = respond(StatusCode::OK, self.watch_content_type(), Vec::new());
        resp.body = Body::Stream(rx);
        let watch = self.api.cache.watch(Bytes::from(prefix.clone().into_bytes()), start_rev);
        let res = self.res.clone();
        let enc = self.enc;
        let cache = self.api.cache.clone();
        let bookmark_after_initial = send_initial && allow_bookmarks;
        monoio::spawn(async move {
            let mut tx = tx;
            use futures::SinkExt;
            use futures::StreamExt;
            for frame in initial {
                if tx.send(Bytes::from(frame)).await.is_err() {
                    return;
                }
            }
            let (mut events, _) = match watch {
                Ok(w) => w,
                Err(CacheError::TooOld { requested, oldest }) => {
                    let s = Status::expired(format!("too old resource version: {requested} ({oldest})"));
                    if let Ok(f) = objects::watch_error_frame(&s, enc) {
                        let _ = tx.send(Bytes::from(f)).await;
                    }
                    return;
                }
            };
            let mut last_rev = start_rev;
            if bookmark_after_initial
                && let Ok(f) = bookmark_frame(&res, start_rev, true, enc)
                && tx.send(Bytes::from(f)).await.is_err()
            {
                return;
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
            loop {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                let wait = (deadline - now).min(BOOKMARK_INTERVAL);
                match monoio::time::timeout(wait, events.next()).await {
                    Ok(Some(WatchItem::Event(ev))) => {
                        last_rev = ev.revision;
                        let frame = match event_frame(&res, &ev, enc, &labels, &fields, &paths, name_filter.as_deref()) {
                            Ok(Some(f)) => f,
                            Ok(None) => continue,
                            Err(s) => {
                                let _ = objects::watch_error_frame(&s, enc).map(|f| tx.try_send(Bytes::from(f)));
                                break;
                            }
                        };
                        if tx.send(Bytes::from(frame)).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(WatchItem::Progress(_))) => {}
                    // The cache closed this watcher (too slow, or reset): end the stream;
                    // the client re-lists, as with upstream.
                    Ok(None) => break,
                    Err(_) => {
                        let rev = cache.revision();
                        if allow_bookmarks && rev > last_rev {
                            last_rev = rev;
                            if let Ok(f) = bookmark_frame(&res, rev, false, enc)
                                && tx.send(Bytes::from(f)).await.is_err()
                            {
                                break;
                            }
                        }
                    }
                }
            }
        });
        Ok(resp)
    }

    fn watch_content_type(&self) -> &'static str {
        match self.enc {
            Encoding::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
            Encoding::Yaml => "application/yaml",
            Encoding::Json => "application/json",
        }
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

    fn body(&self) -> Result<(Value, BodyType), Status> {
        let ct = self.req.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let ty = negotiate::content_type(ct)?;
        let v = objects::decode_body(&self.req.body, ty)?;
        Ok((v, ty))
    }

    /// Checks the body's apiVersion/kind against the URL.
    fn check_type(&self, obj: &Value) -> Result<(), Status> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if (!kind.is_empty() && kind != self.res.kind) || (!av.is_empty() && av != self.res.api_version()) {
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

    async fn check_namespace(&self, ns: &str) -> Result<(), Status> {
        let key = format!("{}namespaces/{ns}", self.api.prefix);
        match self.api.store.get(key.as_bytes()).await {
            Ok(Some(kv)) => {
                let terminating = self
                    .api
                    .registry
                    .get("", "v1", "namespaces")
                    .and_then(|r| objects::served(r, &kv.value, kv.mod_revision).ok())
                    .and_then(|o| meta_from_pb(kapi_codec::Schema::get().kind("v1", "Namespace")?, &o.raw, 0).ok().map(|m| m.deletion_timestamp.is_some()))
                    .unwrap_or(false);
                if terminating {
                    let mut s = Status::new(
                        403,
                        "Forbidden",
                        format!(
                            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            self.res.group_resource(),
                            self.name()
                        ),
                    );
                    s.kind = Some(self.res.resource.clone());
                    return Err(s);
                }
                Ok(())
            }
            Ok(None) => Err(Status::not_found(GroupResource { group: "", resource: "namespaces" }, ns)),
            Err(e) => Err(store_error(self.res, "", e)),
        }
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

    async fn create(&self) -> Result<Response, Status> {
        if self.rr.subresource.is_some() {
            return Err(Status::method_not_supported(gr(self.res), "create"));
        }
        let (mut obj, _) = self.body()?;
        self.check_type(&obj)?;
        let validation = self.validation()?;
        let dry_run = self.dry_run()?;
        let meta = obj
            .as_object_mut()
            .ok_or_else(|| Status::bad_request("the body is not an object"))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        let meta = meta.as_object_mut().ok_or_else(|| Status::bad_request("metadata is not an object"))?;
        // Namespace: the URL's; a different one in the body is an error.
        if self.res.namespaced {
            let url_ns = self.rr.namespace.clone().unwrap_or_default();
            match meta.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(Status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(url_ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        let mut name = meta.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let generate = meta.get("generateName").and_then(Value::as_str).unwrap_or("").to_string();
        if name.is_empty() && !generate.is_empty() {
            name = format!("{generate}{}", random_suffix());
            meta.insert("name".into(), json!(name));
        }
        if name.is_empty() {
            return Err(Status::invalid(&self.res.group, &self.res.kind, "", vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: name or generateName is required".into(),
                field: "metadata.name".into(),
            }]));
        }
        if let Some(why) = invalid_name(&name) {
            return Err(Status::invalid(&self.res.group, &self.res.kind, &name, vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: \"{name}\": {why}"),
                field: "metadata.name".into(),
            }]));
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if GENERATION_KINDS.contains(&self.res.resource.as_str()) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if self.res.resource == "namespaces" {
            namespace_defaults(&mut obj, &name);
        }
        if self.res.group.is_empty() && self.res.resource == "pods" {
            pod_defaults(&mut obj);
        }
        if self.res.namespaced {
            self.check_namespace(self.rr.namespace.as_deref().unwrap_or("")).await?;
        }
        let (value, warnings) = objects::encode_for_storage(self.res, &obj, validation)?;
        let key = self.key(&name);
        if dry_run {
            if self.api.cache.get(key.as_bytes()).is_some() {
                return Err(Status::already_exists(gr(self.res), &name));
            }
            let obj = objects::served(self.res, &value, 0)?;
            let obj = strip_rv(self.res, obj)?;
            return Ok(self.warnings_response(self.object_response(StatusCode::CREATED, &obj)?, &warnings));
        }
        let lease = (self.res.resource == "events").then_some(EVENT_TTL_SECONDS);
        let kv = self
            .api
            .store
            .create(key.as_bytes(), value, lease)
            .await
            .map_err(|e| store_error(self.res, &name, e))?;
        let obj = objects::served(self.res, &kv.value, kv.mod_revision)?;
        Ok(self.warnings_response(self.object_response(StatusCode::CREATED, &obj)?, &warnings))
    }

    /// The current object from the store (writes read their base from the source of truth).
    async fn current(&self) -> Result<crate::storage::KeyValue, Status> {
        let key = self.key(self.name());
        match self.api.store.get(key.as_bytes()).await {
            Ok(Some(kv)) => Ok(kv),
            Ok(None) => Err(Status::not_found(gr(self.res), self.name())),
            Err(e) => Err(store_error(self.res, self.name(), e)),
        }
    }

    async fn update(&self) -> Result<Response, Status> {
        let (obj, _) = self.body()?;
        self.check_type(&obj)?;
        let body_name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        if body_name != self.name() {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                self.name()
            )));
        }
        let body_rv = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
        self.write_update(obj, &body_rv).await
    }

    /// Stores `new` (a full object as the client wants it) over the current object, keeping
    /// what the client may not change, with optimistic concurrency on `expected_rv`.
    async fn write_update(&self, new: Value, expected_rv: &str) -> Result<Response, Status> {
        let validation = self.validation()?;
        let dry_run = self.dry_run()?;
        let kv = self.current().await?;
        if !expected_rv.is_empty() && expected_rv != kv.mod_revision.to_string() {
            return Err(Status::modified_conflict(gr(self.res), self.name()));
        }
        let old = objects::to_value(self.res, &objects::served(self.res, &kv.value, kv.mod_revision)?)?;
        let merged = self.merge_update(&old, new)?;
        let (value, warnings) = objects::encode_for_storage(self.res, &merged, validation)?;
        if value == kv.value || dry_run {
            let obj = objects::served(self.res, &value, kv.mod_revision)?;
            return Ok(self.warnings_response(self.object_response(StatusCode::OK, &obj)?, &warnings));
        }
        let key = self.key(self.name());
        let stored = self
            .api
            .store
            .update(key.as_bytes(), value, kv.mod_revision)
            .await
            .map_err(|e| store_error(self.res, self.name(), e))?;
        // An object whose finalizers are gone while it is being deleted goes now.
        if deleting_without_finalizers(&merged) {
            let _ = self.api.store.delete(key.as_bytes(), Some(stored.mod_revision)).await;
        }
        let obj = objects::served(self.res, &stored.value, stored.mod_revision)?;
        Ok(self.warnings_response(self.object_response(StatusCode::OK, &obj)?, &warnings))
    }

    /// The object to store for an update: immutable metadata from the old object; for the
    /// status subresource only the status changes, for the main resource the status is kept
    /// (kinds with a status subresource); generation bumps when the spec changes.
    fn merge_update(&self, old: &Value, mut new: Value) -> Result<Value, Status> {
        let has_status_sub = self.res.subresources.iter().any(|s| s == "status");
        if self.rr.subresource.as_deref() == Some("status") {
            let mut out = old.clone();
            if let (Some(o), Some(s)) = (out.as_object_mut(), new.get("status")) {
                o.insert("status".into(), s.clone());
            }
            return Ok(out);
        }
        let nm = new
            .as_object_mut()
            .ok_or_else(|| Status::bad_request("the body is not an object"))?;
        if has_status_sub {
            match old.get("status") {
                Some(s) => {
                    nm.insert("status".into(), s.clone());
                }
                None => {
                    nm.remove("status");
                }
            }
        }
        let spec_changed = old.get("spec") != nm.get("spec");
        let meta = nm.entry("metadata").or_insert_with(|| json!({}));
        let meta = meta.as_object_mut().ok_or_else(|| Status::bad_request("metadata is not an object"))?;
        for k in ["uid", "creationTimestamp", "namespace", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "name"] {
            match old.pointer(&format!("/metadata/{k}")) {
                Some(v) => {
                    meta.insert(k.into(), v.clone());
                }
                None => {
                    meta.remove(k);
                }
            }
        }
        if GENERATION_KINDS.contains(&self.res.resource.as_str()) && spec_changed {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            meta.insert("generation".into(), json!(g + 1));
        }
        Ok(new)
    }

    async fn patch(&self) -> Result<Response, Status> {
        let ct = self.req.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let ty = negotiate::content_type(ct)?;
        let kv = self.current().await?;
        let old = objects::to_value(self.res, &objects::served(self.res, &kv.value, kv.mod_revision)?)?;
        let patched = match ty {
            BodyType::JsonPatch => {
                let ops: Value = serde_json::from_slice(&self.req.body)
                    .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
                super::patch::json_patch(&old, &ops)?
            }
            BodyType::MergePatch => {
                let p: Value = serde_json::from_slice(&self.req.body)
                    .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
                super::patch::merge_patch(&old, &p)
            }
            BodyType::StrategicMergePatch => {
                let p: Value = serde_json::from_slice(&self.req.body)
                    .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
                super::patch::strategic_merge_patch(&old, &p)?
            }
            BodyType::ApplyYaml | BodyType::ApplyCbor => {
                return Err(Status::new(415, "UnsupportedMediaType", "server-side apply is not supported yet"));
            }
            _ => return Err(Status::unsupported_media_type()),
        };
        let expected = patched.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let expected = if expected == kv.mod_revision.to_string() { String::new() } else { expected };
        self.write_update(patched, &expected).await
    }

    /// The scale subresource: an autoscaling/v1 Scale view of spec.replicas.
    async fn scale(&self) -> Result<Response, Status> {
        let kv = self.current().await?;
        let obj = objects::to_value(self.res, &objects::served(self.res, &kv.value, kv.mod_revision)?)?;
        let current = scale_of(&obj);
        let replicas = match self.rr.verb {
            Verb::Get => return self.scale_response(&current),
            Verb::Update => {
                let (body, _) = self.body()?;
                let rv = body.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
                if !rv.is_empty() && rv != kv.mod_revision.to_string() {
                    return Err(Status::modified_conflict(gr(self.res), self.name()));
                }
                body.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)
            }
            Verb::Patch => {
                let ct = self.req.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                let p: Value = serde_json::from_slice(&self.req.body)
                    .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
                let patched = match negotiate::content_type(ct)? {
                    BodyType::JsonPatch => super::patch::json_patch(&current, &p)?,
                    _ => super::patch::merge_patch(&current, &p),
                };
                patched.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)
            }
            _ => return Err(Status::method_not_supported(gr(self.res), self.rr.verb.as_str())),
        };
        if replicas < 0 {
            return Err(Status::invalid("autoscaling", "Scale", self.name(), vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            }]));
        }
        let mut new = obj.clone();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), json!(replicas));
        }
        let resp = self.write_update(new, &kv.mod_revision.to_string()).await?;
        if !resp.status.is_success() {
            return Ok(resp);
        }
        let kv = self.current().await?;
        let obj = objects::to_value(self.res, &objects::served(self.res, &kv.value, kv.mod_revision)?)?;
        self.scale_response(&scale_of(&obj))
    }

    fn scale_response(&self, scale: &Value) -> Result<Response, Status> {
        let json = serde_json::to_vec(scale).map_err(|e| Status::internal(e.to_string()))?;
        let mut pb = Vec::new();
        kapi_codec::to_pb::json_to_envelope(&json, None, FieldValidation::Ignore, &mut pb)
            .map_err(|e| Status::internal(e.to_string()))?;
        let env = kapi_codec::envelope::Envelope::parse(&pb).map_err(|e| Status::internal(e.to_string()))?;
        let body = objects::encode_message(None, "autoscaling/v1", "Scale", env.raw, self.enc, self.pretty)?;
        Ok(self.ok(StatusCode::OK, body))
    }

    async fn delete(&self) -> Result<Response, Status> {
        let opts: Value = if self.req.body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&self.req.body).map_err(|e| Status::bad_request(e.to_string()))?
        };
        let dry_run = self.dry_run()? || opts.get("dryRun").and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == "All"));
        let kv = self.current().await?;
        let obj = objects::served(self.res, &kv.value, kv.mod_revision)?;
        let mut current = objects::to_value(self.res, &obj)?;
        if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
            && current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return Err(Status::conflict(gr(self.res), self.name(), &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                current.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("")
            )));
        }
        if let Some(rv) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str)
            && rv != kv.mod_revision.to_string()
        {
            return Err(Status::conflict(gr(self.res), self.name(), &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                kv.mod_revision
            )));
        }
        let finalizers = current.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        let key = self.key(self.name());
        if finalizers || self.res.resource == "namespaces" {
            // Graceful: mark for deletion; the object stays until its finalizers are gone.
            if current.pointer("/metadata/deletionTimestamp").is_none() {
                if let Some(m) = current.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
                if self.res.resource == "namespaces"
                    && let Some(o) = current.as_object_mut()
                {
                    o.insert("status".into(), json!({"phase": "Terminating"}));
                }
                if dry_run {
                    let (v, _) = objects::encode_for_storage(self.res, &current, FieldValidation::Ignore)?;
                    return self.object_response(StatusCode::OK, &objects::served(self.res, &v, kv.mod_revision)?);
                }
                let (v, _) = objects::encode_for_storage(self.res, &current, FieldValidation::Ignore)?;
                let stored = self.api.store.update(key.as_bytes(), v, kv.mod_revision).await.map_err(|e| store_error(self.res, self.name(), e))?;
                if self.res.resource == "namespaces" && !finalizers {
                    self.finish_namespace(self.name(), stored.mod_revision).await;
                }
                return self.object_response(StatusCode::OK, &objects::served(self.res, &stored.value, stored.mod_revision)?);
            }
            return self.object_response(StatusCode::OK, &obj);
        }
        if !dry_run {
            self.api.store.delete(key.as_bytes(), Some(kv.mod_revision)).await.map_err(|e| store_error(self.res, self.name(), e))?;
        }
        if RETURNS_DELETED_OBJECT.contains(&self.res.resource.as_str()) {
            if let Some(m) = current.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            let (v, _) = objects::encode_for_storage(self.res, &current, FieldValidation::Ignore)?;
            return self.object_response(StatusCode::OK, &objects::served(self.res, &v, kv.mod_revision)?);
        }
        let uid = current.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
        let status = Status::success_deleted(gr(self.res), self.name(), uid);
        Ok(self.ok(StatusCode::OK, objects::encode_status(&status, self.enc, self.pretty)))
    }

    /// Deletes a terminating namespace's contents, then the namespace (the namespace
    /// controller's job upstream, done inline here).
    async fn finish_namespace(&self, ns: &str, rev: i64) {
        for r in self.api.registry.all() {
            if !r.namespaced || r.key_prefix.is_empty() || r.storage == Storage::None {
                continue;
            }
            let prefix = format!("{}{}{ns}/", self.api.prefix, r.key_prefix);
            let (items, _, _) = self.api.cache.list(prefix.as_bytes(), prefix.as_bytes(), 0);
            for (k, e) in items {
                let _ = self.api.store.delete(&k, Some(e.mod_revision)).await;
            }
        }
        let key = format!("{}namespaces/{ns}", self.api.prefix);
        let _ = self.api.store.delete(key.as_bytes(), Some(rev)).await;
    }

    async fn delete_collection(&self) -> Result<Response, Status> {
        let (labels, fields, paths) = self.selectors()?;
        self.sync(None).await?;
        let prefix = self.collection_prefix();
        let (items, _, rev) = self.api.cache.list(prefix.as_bytes(), prefix.as_bytes(), 0);
        let mut deleted = Vec::new();
        for (k, e) in items {
            let obj = objects::served(self.res, &e.value, e.mod_revision)?;
            if !self.matches(&obj, &labels, &fields, &paths) {
                continue;
            }
            if self.dry_run()? {
                deleted.push(obj);
                continue;
            }
            match self.api.store.delete(&k, Some(e.mod_revision)).await {
                Ok(_) | Err(StoreError::NotFound) => deleted.push(obj),
                Err(err) => return Err(store_error(self.res, "", err)),
            }
        }
        let rv = rev.to_string();
        let meta = ListMeta { resource_version: &rv, ..Default::default() };
        Ok(self.ok(StatusCode::OK, objects::encode_list(self.res, &deleted, &meta, self.enc, self.pretty)?))
    }
}

/// The autoscaling/v1 Scale of an object with spec.replicas.
fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut m = serde_json::Map::new();
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    // The selector as a string: matchLabels (apps kinds) or the map itself (RCs).
    let sel = &obj["spec"]["selector"];
    let labels = sel.get("matchLabels").unwrap_or(sel);
    let mut parts: Vec<String> = labels
        .as_object()
        .map(|o| o.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect())
        .unwrap_or_default();
    parts.sort();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": parts.join(",")},
    })
}

/// The defaults upstream's pod defaulting and strategy set on a new pod (the common ones;
/// full defaulting of every kind is the write-path issue's).
fn pod_defaults(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        s.entry("restartPolicy").or_insert_with(|| json!("Always"));
        s.entry("terminationGracePeriodSeconds").or_insert_with(|| json!(30));
        s.entry("dnsPolicy").or_insert_with(|| json!("ClusterFirst"));
        s.entry("securityContext").or_insert_with(|| json!({}));
        s.entry("schedulerName").or_insert_with(|| json!("default-scheduler"));
        s.entry("enableServiceLinks").or_insert_with(|| json!(true));
        s.entry("preemptionPolicy").or_insert_with(|| json!("PreemptLowerPriority"));
        s.entry("priority").or_insert_with(|| json!(0));
        for list in ["containers", "initContainers"] {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
                    let tag = image.rsplit('/').next().unwrap_or("");
                    let latest = !tag.contains(':') || tag.ends_with(":latest");
                    c.entry("imagePullPolicy").or_insert_with(|| json!(if latest { "Always" } else { "IfNotPresent" }));
                    c.entry("terminationMessagePath").or_insert_with(|| json!("/dev/termination-log"));
                    c.entry("terminationMessagePolicy").or_insert_with(|| json!("File"));
                    c.entry("resources").or_insert_with(|| json!({}));
                }
            }
        }
    }
    o.insert("status".into(), json!({"phase": "Pending", "qosClass": "BestEffort"}));
}

/// What upstream's namespace strategy sets on a new namespace.
fn namespace_defaults(obj: &mut Value, name: &str) {
    if let Some(labels) = obj.pointer_mut("/metadata").and_then(Value::as_object_mut).map(|m| {
        m.entry("labels").or_insert_with(|| json!({}))
    }) && let Some(l) = labels.as_object_mut()
    {
        l.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(o) = obj.as_object_mut() {
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.entry("finalizers").or_insert_with(|| json!(["kubernetes"]));
        }
        o.insert("status".into(), json!({"phase": "Active"}));
    }
}

/// TTL of Event keys: --event-ttl (1 h) plus upstream's 60 s lease reuse window.
const EVENT_TTL_SECONDS: i64 = 3660;

fn deleting_without_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
        && obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(|f| f.is_empty())
}

fn strip_rv(res: &Resource, obj: Served) -> Result<Served, Status> {
    let mut v = objects::to_value(res, &obj)?;
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    let (stored, _) = objects::encode_for_storage(res, &v, FieldValidation::Ignore)?;
    let env = kapi_codec::envelope::Envelope::parse(&stored).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Served { raw: env.raw.to_vec() })
}

fn name_ok(res: &Resource, obj: &Served, name: Option<&str>) -> bool {
    let Some(name) = name else { return true };
    res.msg
        .and_then(|m| meta_from_pb(m, &obj.raw, 0).ok())
        .is_some_and(|m| m.name == name)
}

/// A watch event for one cache event, or None when the watcher's filters exclude it.
fn event_frame(
    res: &Resource,
    ev: &kapi_cache::Event,
    enc: Encoding,
    labels: &LabelSelector,
    fields: &FieldSelector,
    paths: &[FieldPath],
    name: Option<&str>,
) -> Result<Option<Vec<u8>>, Status> {
    let obj = objects::served(res, &ev.value, ev.revision)?;
    let passes = |o: &Served| -> bool {
        if !name_ok(res, o, name) {
            return false;
        }
        if labels.is_empty() && fields.is_empty() {
            return true;
        }
        let Some(msg) = res.msg else { return false };
        let Ok(meta) = meta_from_pb(msg, &o.raw, 0) else { return false };
        labels.matches(&meta.labels)
            && fields.matches(|f| match f {
                "metadata.name" => Some(meta.name.to_string()),
                "metadata.namespace" => Some(meta.namespace.to_string()),
                other => paths.iter().find(|p| p.label == other).and_then(|p| p.value(&o.raw).ok()).map(|v| v.into_owned()),
            })
    };
    let now = passes(&obj);
    let before = match &ev.prev_value {
        Some(p) if ev.kind == EventKind::Put => objects::served(res, p, ev.revision).map(|o| passes(&o)).unwrap_or(false),
        _ => false,
    };
    let ty = match ev.kind {
        EventKind::Delete if now => EventType::Deleted,
        EventKind::Delete => return Ok(None),
        EventKind::Put if ev.created && now => EventType::Added,
        EventKind::Put if now && before => EventType::Modified,
        EventKind::Put if now => EventType::Added,
        EventKind::Put if before => EventType::Deleted,
        EventKind::Put => return Ok(None),
    };
    objects::watch_frame(res, ty, &obj, enc).map(Some)
}

/// A BOOKMARK: the kind with only metadata.resourceVersion (and the initial-events-end
/// annotation after initial events).
fn bookmark_frame(res: &Resource, rev: i64, initial_end: bool, enc: Encoding) -> Result<Vec<u8>, Status> {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"apiVersion": res.api_version(), "kind": res.kind, "metadata": meta});
    let json = serde_json::to_vec(&obj).map_err(|e| Status::internal(e.to_string()))?;
    let mut pb = Vec::new();
    kapi_codec::to_pb::json_to_envelope(&json, None, FieldValidation::Ignore, &mut pb)
        .map_err(|e| Status::internal(e.to_string()))?;
    let env = kapi_codec::envelope::Envelope::parse(&pb).map_err(|e| Status::internal(e.to_string()))?;
    objects::watch_frame(res, EventType::Bookmark, &Served { raw: env.raw.to_vec() }, enc)
}

fn expired_continue() -> Status {
    Status::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
}

/// Upstream's continue token: base64url (no padding) of `{"v":"meta.k8s.io/v1","rv":N,"start":"..."}`.
fn encode_continue(rv: i64, start: &str) -> String {
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    // serde_json writes the keys sorted; upstream writes v, rv, start: build it in order.
    let text = format!(
        "{{\"v\":\"meta.k8s.io/v1\",\"rv\":{rv},\"start\":{}}}",
        serde_json::to_string(&doc["start"]).unwrap_or_default().replace("\\u0000", "\\u0000")
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes())
}

fn decode_continue(token: &str) -> Result<(i64, String), Status> {
    let bad = || Status::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let rv = v["rv"].as_i64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?.to_string();
    if rv <= 0 || start.contains("..") {
        return Err(bad());
    }
    Ok((rv, start))
}

/// Five characters from upstream's generateName alphabet (no vowels, no confusable digits).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut seed = uuid::Uuid::new_v4().as_u128();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(seed % ALPHABET.len() as u128) as usize] as char;
            seed /= ALPHABET.len() as u128;
            c
        })
        .collect()
}

pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut out = Vec::new();
    kapi_codec::goscalar::format_time(secs, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Upstream's name check for most kinds: a DNS-1123 subdomain.
fn invalid_name(name: &str) -> Option<String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends_ok = name.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && name.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric);
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    if !ok_chars || !ends_ok {
        return Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_match_upstreams_encoding() {
        // 07a's token: {"v":"meta.k8s.io/v1","rv":304,"start":"/p1\u0000"}
        assert_eq!(
            encode_continue(304, "/p1\u{0}"),
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MzA0LCJzdGFydCI6Ii9wMVx1MDAwMCJ9"
        );
        assert_eq!(decode_continue("eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MzA0LCJzdGFydCI6Ii9wMVx1MDAwMCJ9").unwrap(), (304, "/p1\u{0}".to_string()));
        assert!(decode_continue("garbage!").is_err());
    }

    #[test]
    fn names_are_checked_as_dns_subdomains() {
        assert!(invalid_name("nginx").is_none());
        assert!(invalid_name("a.b-c").is_none());
        assert!(invalid_name("Bad_Name").is_some());
        assert!(invalid_name("-x").is_some());
        assert_eq!(random_suffix().len(), 5);
    }
}
