//! Reads: get, list (paginated, at a revision, with selectors) and watch, answered from the
//! cache; list pages of an older revision and exact-revision lists come from the store.

use super::*;
use crate::jsonptr::At;

impl Ctx<'_> {
    pub(super) async fn get(&self) -> Result<Response, Status> {
        let fallback = self.sync(self.query.get("resourceVersion")).await?;
        let key = self.key(self.name());
        if fallback.is_some() {
            let kv = self.current().await?;
            let obj = objects::served(self.res, &kv.value, kv.mod_revision)?;
            return self.object_response(StatusCode::OK, &obj);
        }
        let snap = self.rc()?.snapshot();
        let Some(obj) = snap.get(key.as_bytes()) else {
            return Err(Status::not_found(gr(self.res), self.name()));
        };
        if self.shape == Shape::Object && self.enc != Encoding::Protobuf {
            // The kept JSON, with apiVersion and kind in front.
            let view = self.view();
            let item = view.item_json(obj)?;
            let mut json = Vec::with_capacity(item.len() + 64);
            view.with_type_meta(&item, &mut json);
            return Ok(self.ok(
                StatusCode::OK,
                objects::finish_json(json, self.enc, self.pretty)?,
            ));
        }
        let obj = self.view().served(obj)?;
        self.object_response(StatusCode::OK, &obj)
    }

    pub(super) fn selectors(
        &self,
    ) -> Result<(LabelSelector, FieldSelector, Vec<FieldPath>), Status> {
        let labels = LabelSelector::parse(self.query.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(self.query.get("fieldSelector").unwrap_or(""))?;
        let paths = selectable_fields(&self.res.group, &self.res.kind);
        let mut supported: Vec<&str> = vec!["metadata.name", "metadata.namespace"];
        supported.extend(paths.iter().map(|p| p.label));
        if let Some(c) = &self.res.custom {
            supported.extend(c.selectable_fields.iter().map(String::as_str));
        }
        fields.check_fields(&supported)?;
        Ok((labels, fields, paths))
    }

    /// Whether a served object passes the request's selectors.
    pub(super) fn matches(
        &self,
        obj: &Served,
        labels: &LabelSelector,
        fields: &FieldSelector,
        paths: &[FieldPath],
    ) -> bool {
        if labels.is_empty() && fields.is_empty() {
            return true;
        }
        if self.res.is_custom() {
            let Ok(v) = serde_json::from_slice::<Value>(&obj.raw) else {
                return false;
            };
            let label_map: Vec<(String, String)> = v
                .at("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let pairs: Vec<(&str, &str)> = label_map
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            return labels.matches(&pairs)
                && fields.matches(|f| crate::crd::strategy::field_value(&v, f));
        }
        let Some(msg) = self.res.msg else {
            return false;
        };
        let Ok(meta) = meta_from_pb(msg, &obj.raw, 0) else {
            return false;
        };
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

    /// Upstream's ValidateListOptions: the resourceVersionMatch and sendInitialEvents rules of
    /// lists and watches, a 422 on ListOptions.meta.k8s.io.
    pub(super) fn validate_list_options(&self, watch: bool) -> Result<(), Status> {
        let q = self.query;
        let matching = q.get("resourceVersionMatch").unwrap_or("");
        let rv = q.get("resourceVersion").unwrap_or("");
        let continuing = !q.get("continue").unwrap_or("").is_empty();
        let initial = q.get("sendInitialEvents").is_some();
        let mut causes = Vec::new();
        let forbidden = |field: &str, msg: &str| Cause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {msg}"),
            field: field.into(),
        };
        let not_supported = |supported: &str| Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: \"{matching}\": supported values: {supported}"),
            field: "resourceVersionMatch".into(),
        };
        if watch {
            if initial && matching != "NotOlderThan" {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !matching.is_empty() {
                if !initial {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if matching != "NotOlderThan" {
                    causes.push(not_supported("\"NotOlderThan\""));
                }
                if continuing {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
        } else {
            if !matching.is_empty() {
                if rv.is_empty() {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                if continuing {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
                if matching != "Exact" && matching != "NotOlderThan" {
                    causes.push(not_supported("\"Exact\", \"NotOlderThan\", \"\""));
                }
                if matching == "Exact" && rv == "0" {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
            }
            if initial {
                causes.push(forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for list",
                ));
            }
        }
        if causes.is_empty() {
            return Ok(());
        }
        let mut s = Status::invalid("meta.k8s.io", "ListOptions", "", causes);
        s.message = s
            .message
            .replacen("ListOptions \"\"", "ListOptions.meta.k8s.io \"\"", 1);
        Err(s)
    }

    pub(super) async fn list(&self) -> Result<Response, Status> {
        self.validate_list_options(false)?;
        let (labels, fields, paths) = self.selectors()?;
        // Zero or negative: no limit, as upstream.
        let limit =
            usize::try_from(self.query.int64("limit")?.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
        let rc = self.rc()?;
        let prefix = self.collection_prefix();
        // The continue token's start key is relative to the prefix without its slash.
        let base = prefix.trim_end_matches('/').to_string();
        let rv_param = self.query.get("resourceVersion");
        let exact = self.query.get("resourceVersionMatch") == Some("Exact");
        let mut start = prefix.clone().into_bytes();
        let continuing = self.query.get("continue").filter(|t| !t.is_empty());
        // The state to list: a snapshot of the cache (current, kept for pagination, or
        // rebuilt from history), or else the store at that revision.
        let (snap, list_rv) = if let Some(token) = continuing {
            let (rv, s) = decode_continue(token)?;
            start = format!("{base}{s}").into_bytes();
            match rc.at(rv, self.api.cache.revision()) {
                Ok(snap) => (snap, rv),
                Err(_) => return self.list_from_store(rv, &start, limit, true).await,
            }
        } else if exact {
            let v = rv_param.unwrap_or("");
            let rv: i64 = v
                .parse()
                .map_err(|_| Status::bad_request(format!("invalid resource version: {v}")))?;
            if let Some(rev) = self.sync(rv_param).await? {
                return self
                    .list_from_store(rev.min(rv), &start, limit, false)
                    .await;
            }
            match rc.at(rv, self.api.cache.revision()) {
                Ok(snap) => (snap, rv),
                Err(_) => return self.list_from_store(rv, &start, limit, false).await,
            }
        } else if let Some(rev) = self.sync(rv_param).await? {
            return self.list_from_store(rev, &start, limit, false).await;
        } else {
            let g = self.api.cache.revision();
            let snap = rc.snapshot();
            let rv = g.max(snap.revision);
            (snap, rv)
        };
        let pred = self.predicate(&rc, &labels, &fields, &paths);
        let mut items: Vec<&Arc<kapi_cache::Obj>> = Vec::new();
        let mut more = false;
        let mut last_key: Option<&[u8]> = None;
        // A kubelet's list (spec.nodeName=<node>) is found by the index, not by a scan.
        let node = cached::is_pods(self.res)
            .then(|| fields.required("spec.nodeName"))
            .flatten();
        let candidates: Box<dyn Iterator<Item = &Arc<kapi_cache::Obj>>> =
            match node.and_then(|n| snap.range_indexed(n, prefix.as_bytes(), &start)) {
                Some(it) => Box::new(it),
                None => Box::new(snap.range(prefix.as_bytes(), &start)),
            };
        for obj in candidates {
            if limit > 0 && items.len() == limit {
                more = true;
                break;
            }
            last_key = Some(&obj.key);
            if pred(obj) {
                items.push(obj);
            }
        }
        let (token, remaining) = match (more, last_key) {
            (true, Some(last)) => {
                let rel = String::from_utf8_lossy(&last[base.len()..]).into_owned();
                let token = encode_continue(list_rv, &format!("{rel}\u{0}"));
                rc.keep(list_rv, &snap);
                let remaining = if labels.is_empty() && fields.is_empty() {
                    let mut next = last.to_vec();
                    next.push(0);
                    Some(snap.range(prefix.as_bytes(), &next).count() as i64)
                } else {
                    None
                };
                (token, remaining)
            }
            _ => (String::new(), None),
        };
        let rv = list_rv.to_string();
        let meta = ListMeta {
            resource_version: &rv,
            continue_token: &token,
            remaining_item_count: remaining,
        };
        let view = self.view();
        if self.shape != Shape::Object {
            let served = items
                .iter()
                .map(|o| view.served(o))
                .collect::<Result<Vec<_>, _>>()?;
            return self.list_shaped(served, &meta);
        }
        if items.len() >= STREAM_LIST_MIN_ITEMS
            && (self.enc == Encoding::Protobuf || (self.enc == Encoding::Json && !self.pretty))
        {
            let items = items.into_iter().cloned().collect();
            return self.stream_list(items, &meta);
        }
        let body = match self.enc {
            Encoding::Protobuf => {
                let total: usize = items.iter().map(|o| o.value.len() + 24).sum();
                let mut out = Vec::new();
                kapi_codec::envelope::write_pb_list_with(
                    &self.res.api_version(),
                    &self.res.list_kind(),
                    &meta,
                    &items,
                    total,
                    |o, out| view.write_served(o, o.mod_revision, out),
                    &mut out,
                )?;
                out
            }
            _ => {
                let jsons = items
                    .iter()
                    .map(|o| view.item_json(o))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = Vec::new();
                kapi_codec::envelope::write_json_list(
                    &self.res.api_version(),
                    &self.res.list_kind(),
                    &meta,
                    &jsons,
                    &mut out,
                );
                out.pop(); // the newline; finish_json adds it back
                objects::finish_json(out, self.enc, self.pretty)?
            }
        };
        Ok(self.ok(StatusCode::OK, body))
    }

    /// A large list, sent in chunks as it is written: memory per request stays bounded and the
    /// first bytes leave before the last item is encoded. A protobuf list's length comes
    /// first, so its items' lengths are computed (without writing them) before the headers.
    fn stream_list(
        &self,
        items: Vec<Arc<kapi_cache::Obj>>,
        meta: &ListMeta<'_>,
    ) -> Result<Response, Status> {
        use kapi_codec::envelope as env;
        let res = self.res.clone();
        let cache = self.api.cache.clone();
        let mut head = Vec::with_capacity(LIST_CHUNK_BYTES + (64 << 10));
        let pb = if self.enc == Encoding::Protobuf {
            let (_, field) = env::list_fields(&res.api_version(), &res.list_kind())?;
            let view = self.view();
            let lens = items
                .iter()
                .map(|o| view.served_len(o, o.mod_revision))
                .collect::<Result<Vec<_>, _>>()?;
            let total = lens.iter().map(|&n| env::pb_list_item_len(field, n)).sum();
            env::write_pb_list_head(&res.api_version(), &res.list_kind(), meta, total, &mut head)?;
            Some((field, lens))
        } else {
            env::write_json_list_head(&res.api_version(), &res.list_kind(), meta, &mut head);
            None
        };
        let (tx, rx) = futures::channel::mpsc::channel::<Bytes>(LIST_CHUNKS_IN_FLIGHT);
        let mut resp = respond(StatusCode::OK, self.enc.content_type(), Vec::new());
        resp.body = Body::Stream(rx);
        // The list is still being produced: it keeps its flow-control seat until written.
        let seat = self.seat.take();
        crate::transport::spawn_isolated(async move {
            let _seat = seat;
            use futures::SinkExt;
            let mut tx = tx;
            let mut buf = head;
            let view = cached::View::new(&res, &cache);
            for (i, o) in items.iter().enumerate() {
                // A failure here can no longer change the status: the body ends short and
                // the client sees a truncated list.
                let written = match &pb {
                    Some((field, lens)) => {
                        env::write_pb_list_item_header(*field, lens[i], &mut buf);
                        view.write_served(o, o.mod_revision, &mut buf)
                    }
                    None => view.item_json(o).map(|j| {
                        if i > 0 {
                            buf.push(b',');
                        }
                        buf.extend_from_slice(&j);
                    }),
                };
                if let Err(e) = written {
                    eprintln!("kapi: list of {}: {}", res.resource, e.message);
                    return;
                }
                if buf.len() >= LIST_CHUNK_BYTES {
                    let next = Vec::with_capacity(LIST_CHUNK_BYTES + (64 << 10));
                    let chunk = std::mem::replace(&mut buf, next);
                    if tx.send(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                }
            }
            match pb {
                Some(_) => env::write_envelope_trailer(&mut buf),
                None => buf.extend_from_slice(env::JSON_LIST_TAIL),
            }
            let _ = tx.send(Bytes::from(buf)).await;
        });
        Ok(resp)
    }

    /// A list read from the store at `revision` (pages of a list whose snapshot the cache no
    /// longer has, exact-revision lists older than its history, reads it could not catch up for).
    async fn list_from_store(
        &self,
        revision: i64,
        start: &[u8],
        limit: usize,
        continuing: bool,
    ) -> Result<Response, Status> {
        let (labels, fields, paths) = self.selectors()?;
        let prefix = self.collection_prefix();
        let base = prefix.trim_end_matches('/').to_string();
        let r = self
            .api
            .store
            .range(prefix.as_bytes(), start, revision, limit as i64)
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } if continuing => expired_continue(),
                StoreError::Compacted { .. } => {
                    Status::expired(format!("too old resource version: {revision}"))
                }
                e => store_error(self.res, "", e),
            })?;
        let mut items = Vec::with_capacity(r.kvs.len());
        for kv in &r.kvs {
            let obj = objects::served(self.res, &kv.value, kv.mod_revision)?;
            if self.matches(&obj, &labels, &fields, &paths) {
                items.push(obj);
            }
        }
        let rv = r.revision.to_string();
        let token = match (r.more, r.kvs.last()) {
            (true, Some(last)) => {
                let rel = String::from_utf8_lossy(&last.key[base.len()..]).into_owned();
                encode_continue(r.revision, &format!("{rel}\u{0}"))
            }
            _ => String::new(),
        };
        let meta = ListMeta {
            resource_version: &rv,
            continue_token: &token,
            remaining_item_count: None,
        };
        if self.shape != Shape::Object {
            return self.list_shaped(items, &meta);
        }
        Ok(self.ok(
            StatusCode::OK,
            objects::encode_list(self.res, &items, &meta, self.enc, self.pretty)?,
        ))
    }

    /// A list as a Table or as PartialObjectMetadata.
    fn list_shaped(&self, items: Vec<Served>, meta: &ListMeta<'_>) -> Result<Response, Status> {
        if self.shape == Shape::Table {
            let values = items
                .iter()
                .map(|i| objects::to_value(self.res, i))
                .collect::<Result<Vec<_>, _>>()?;
            return self.table_response(&values, Some(meta.resource_version), meta.continue_token);
        }
        let mut metas = Vec::with_capacity(items.len());
        for i in &items {
            metas.push(Served {
                raw: objects::partial_metadata(self.res, i)?,
                own: false,
            });
        }
        let pom = Resource {
            group: "meta.k8s.io".into(),
            version: "v1".into(),
            kind: "PartialObjectMetadata".into(),
            msg: kapi_codec::Schema::get().kind("meta.k8s.io/v1", "PartialObjectMetadata"),
            ..self.res.clone()
        };
        Ok(self.ok(
            StatusCode::OK,
            objects::encode_list(&pom, &metas, meta, self.enc, self.pretty)?,
        ))
    }

    /// The request's selectors (and the watched name) as a test of cached versions: labels
    /// from the attributes read at ingest, name and namespace from the key, other fields
    /// from the bytes.
    fn predicate(
        &self,
        rc: &Arc<kapi_cache::ResourceCache>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        paths: &[FieldPath],
    ) -> impl Fn(&kapi_cache::Obj) -> bool + 'static {
        let res = self.res.clone();
        let cache = self.api.cache.clone();
        let rc = rc.clone();
        let labels = labels.clone();
        let fields = fields.clone();
        let paths = paths.to_vec();
        let name = self.rr.name.clone();
        let trivial = labels.is_empty() && fields.is_empty() && name.is_none();
        move |obj: &kapi_cache::Obj| {
            if trivial {
                return true;
            }
            let key_name = obj.key.rsplit(|&b| b == b'/').next().unwrap_or(b"");
            if let Some(n) = &name
                && n.as_bytes() != key_name
            {
                return false;
            }
            if !labels.matches(&obj.attrs.labels) {
                return false;
            }
            if fields.is_empty() {
                return true;
            }
            let served: std::cell::OnceCell<Option<Served>> = std::cell::OnceCell::new();
            fields.matches(|f| match f {
                "metadata.name" => Some(String::from_utf8_lossy(key_name).into_owned()),
                "metadata.namespace" => {
                    Some(String::from_utf8_lossy(rc.namespace_of(&obj.key)).into_owned())
                }
                "spec.nodeName" if res.group.is_empty() && res.resource == "pods" => {
                    Some(obj.attrs.index.as_deref().unwrap_or("").to_string())
                }
                other => {
                    let s = served.get_or_init(|| cached::View::new(&res, &cache).served(obj).ok());
                    let raw = &s.as_ref()?.raw;
                    if res.is_custom() {
                        let v: Value = serde_json::from_slice(raw).ok()?;
                        return crate::crd::strategy::field_value(&v, other);
                    }
                    paths
                        .iter()
                        .find(|p| p.label == other)
                        .and_then(|p| p.value(raw).ok())
                        .map(|v| v.into_owned())
                }
            })
        }
    }

    pub(super) async fn watch(&self) -> Result<Response, Status> {
        self.validate_list_options(true)?;
        let (labels, fields, paths) = self.selectors()?;
        let allow_bookmarks = self.query.flag("allowWatchBookmarks");
        let rv = self.query.get("resourceVersion").unwrap_or("");
        let send_initial = match self.query.get("sendInitialEvents") {
            Some(v) => v == "true",
            // A watch from "now" or "any" starts with the current state (legacy semantics).
            None => rv.is_empty() || rv == "0",
        };
        let timeout = watch_duration(self.query.int64("timeoutSeconds")?);
        let rc = self.rc()?.clone();
        let after = if rv.is_empty() || rv == "0" {
            if rv.is_empty() {
                self.sync(None).await?;
            }
            None
        } else {
            let n: i64 = rv
                .parse()
                .map_err(|_| Status::bad_request(format!("invalid resource version: {rv}")))?;
            if n > self.api.cache.revision() {
                self.sync(Some(rv)).await?;
            }
            (!send_initial).then_some(n)
        };
        // What the cache's hub filters on: the namespace and (pods) the node by index, the
        // rest by predicate.
        let namespace = self
            .rr
            .namespace
            .as_ref()
            .filter(|_| self.res.namespaced)
            .map(|ns| Bytes::from(ns.clone().into_bytes()));
        let index = (self.res.group.is_empty() && self.res.resource == "pods")
            .then(|| fields.required("spec.nodeName"))
            .flatten()
            .map(Box::<str>::from);
        let pred = self.predicate(&rc, &labels, &fields, &paths);
        let filter = kapi_cache::Filter {
            namespace: namespace.clone(),
            index,
            pred: Some(Box::new(pred)),
        };
        let hub = cached::hub(&self.api.cache);
        let started = hub.watch(rc.index, after, filter);
        let (tx, rx) = futures::channel::mpsc::channel::<Bytes>(WATCH_CHUNK_BUFFER);
        let mut resp = respond(StatusCode::OK, self.watch_content_type(), Vec::new());
        resp.body = Body::Stream(rx);
        let res = self.res.clone();
        let enc = self.enc;
        let prefix = self.collection_prefix();
        let initial_pred = self.predicate(&rc, &labels, &fields, &paths);
        let cache = self.api.cache.clone();
        let seat = self.seat.take();
        crate::transport::spawn_isolated(async move {
            crate::fault::point("watch-task");
            let view = cached::View::new(&res, &cache);
            let mut tx = tx;
            use futures::SinkExt;
            let (mut watch, start_rev) = match started {
                Ok(w) => w,
                Err(too_old) => {
                    let s = Status::expired(format!(
                        "too old resource version: {} ({})",
                        too_old.requested, too_old.oldest
                    ));
                    if let Ok(f) = objects::watch_error_frame(&s, enc) {
                        let _ = tx.send(Bytes::from(f)).await;
                    }
                    return;
                }
            };
            let snap = watch.take_snapshot();
            if send_initial && let Some(snap) = snap {
                for obj in snap.range(prefix.as_bytes(), b"") {
                    if !initial_pred(obj) {
                        continue;
                    }
                    let frame = match view.frame(obj, obj.mod_revision, EventType::Added, enc, true)
                    {
                        Ok(f) => f,
                        Err(s) => {
                            let _ = objects::watch_error_frame(&s, enc)
                                .map(|f| tx.try_send(Bytes::from(f)));
                            return;
                        }
                    };
                    if tx.send(frame).await.is_err() {
                        return;
                    }
                }
            }
            let mut last_rev = start_rev;
            if send_initial
                && allow_bookmarks
                && let Ok(f) = bookmark_frame(&res, start_rev, true, enc)
                && tx.send(Bytes::from(f)).await.is_err()
            {
                return;
            }
            // Set up: the watch's flow-control seat goes back.
            drop(seat);
            let mut last_bookmark = std::time::Instant::now();
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                let wait = (deadline - now).min(IDLE_CHECK_INTERVAL);
                match monoio::time::timeout(wait, watch.next_event()).await {
                    Ok(kapi_cache::Next::Event(ev, ty)) => {
                        last_rev = ev.revision;
                        let frame = match view.event_frame(&ev, ty, enc) {
                            Ok(f) => f,
                            Err(s) => {
                                let _ = objects::watch_error_frame(&s, enc)
                                    .map(|f| tx.try_send(Bytes::from(f)));
                                break;
                            }
                        };
                        if tx.send(frame).await.is_err() {
                            break;
                        }
                    }
                    // The cache closed this watcher (too slow, or re-listed): end the stream;
                    // the client resumes from its last resourceVersion or re-lists, as with
                    // upstream.
                    Ok(kapi_cache::Next::Closed(_)) => break,
                    Err(_) => {
                        // A client that left is noticed here too, not only on the next send.
                        if tx.is_closed() {
                            break;
                        }
                        if allow_bookmarks
                            && last_bookmark.elapsed() >= BOOKMARK_INTERVAL
                            && let Some(rev) = watch.bookmark_revision()
                            && rev > last_rev
                        {
                            last_rev = rev;
                            last_bookmark = std::time::Instant::now();
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

    pub(super) fn watch_content_type(&self) -> &'static str {
        match self.enc {
            Encoding::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
            Encoding::Yaml => "application/yaml",
            Encoding::Json => "application/json",
        }
    }
}

/// A BOOKMARK: the kind with only metadata.resourceVersion (and the initial-events-end
/// annotation after initial events).
pub(super) fn bookmark_frame(
    res: &Resource,
    rev: i64,
    initial_end: bool,
    enc: Encoding,
) -> Result<Vec<u8>, Status> {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"apiVersion": res.api_version(), "kind": res.kind, "metadata": meta});
    objects::watch_frame(
        res,
        EventType::Bookmark,
        &objects::from_value(res, &obj)?,
        enc,
    )
}

pub(super) fn expired_continue() -> Status {
    Status::expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    )
}

/// Upstream's continue token: base64url (no padding) of `{"v":"meta.k8s.io/v1","rv":N,"start":"..."}`.
pub(super) fn encode_continue(rv: i64, start: &str) -> String {
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    // serde_json writes the keys sorted; upstream writes v, rv, start: build it in order.
    let text = format!(
        "{{\"v\":\"meta.k8s.io/v1\",\"rv\":{rv},\"start\":{}}}",
        serde_json::to_string(&doc["start"]).unwrap_or_default()
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes())
}

/// How long a watch lasts: `timeoutSeconds` as upstream reads it (absent or 0: the default;
/// negative: it ends at once), capped at `MAX_WATCH_SECONDS` so that its deadline is a time
/// the clock can represent.
fn watch_duration(timeout_seconds: Option<i64>) -> std::time::Duration {
    let seconds = match timeout_seconds {
        // Upstream: a random time between --min-request-timeout and twice it, so that
        // watches started together do not all end together.
        None | Some(0) => {
            let min = crate::flags::settings().min_request_timeout_seconds;
            min.saturating_add(fastrand::u64(0..=min))
                .min(MAX_WATCH_SECONDS)
        }
        Some(n) => u64::try_from(n).unwrap_or(0).min(MAX_WATCH_SECONDS),
    };
    std::time::Duration::from_secs(seconds)
}

pub(super) fn decode_continue(token: &str) -> Result<(i64, String), Status> {
    let bad = || {
        Status::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let rv = v["rv"].as_i64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    // As upstream: the key is made absolute, and must be clean (no `..`, `.`, `//`), so it
    // cannot start before the listed collection.
    let start = if start.starts_with('/') {
        start.to_string()
    } else {
        format!("/{start}")
    };
    let unclean = start.contains("//")
        || start.split('/').any(|p| p == "." || p == "..")
        || (start.len() > 1 && start.ends_with('/'));
    if rv <= 0 || unclean {
        return Err(bad());
    }
    Ok((rv, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_timeouts_are_bounded() {
        use std::time::{Duration, Instant};
        for asked in [Some(i64::MAX), Some(9_223_372_036_854_775), Some(1 << 40)] {
            let d = watch_duration(asked);
            assert_eq!(d, Duration::from_secs(MAX_WATCH_SECONDS));
            assert!(Instant::now().checked_add(d).is_some());
        }
        assert_eq!(watch_duration(Some(-5)), Duration::ZERO);
        let min = crate::flags::settings().min_request_timeout_seconds;
        for asked in [None, Some(0)] {
            let d = watch_duration(asked).as_secs();
            assert!((min..=2 * min).contains(&d), "{d}");
        }
        assert_eq!(watch_duration(Some(7)), Duration::from_secs(7));
    }

    #[test]
    pub(super) fn continue_tokens_match_upstreams_encoding() {
        // 07a's token: {"v":"meta.k8s.io/v1","rv":304,"start":"/p1\u0000"}
        assert_eq!(
            encode_continue(304, "/p1\u{0}"),
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MzA0LCJzdGFydCI6Ii9wMVx1MDAwMCJ9"
        );
        assert_eq!(
            decode_continue("eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MzA0LCJzdGFydCI6Ii9wMVx1MDAwMCJ9")
                .unwrap(),
            (304, "/p1\u{0}".to_string())
        );
        assert!(decode_continue("garbage!").is_err());
    }
}
