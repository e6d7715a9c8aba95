//! Reads: get, list (paginated, at a revision, with selectors) and watch, answered from the
//! cache; list pages of an older revision and exact-revision lists come from the store.

use super::*;

impl Ctx<'_> {
    pub(super) async fn get(&self) -> Result<Response, Status> {
        let fallback = self.sync(self.query.get("resourceVersion")).await?;
        let key = self.key(self.name());
        if fallback.is_some() {
            let kv = self.current().await?;
            let obj = objects::served(self.res, &kv.value, kv.mod_revision)?;
            return self.object_response(StatusCode::OK, &obj);
        }
        let Some(entry) = self.api.cache.get(key.as_bytes()) else {
            return Err(Status::not_found(gr(self.res), self.name()));
        };
        let obj = objects::served(self.res, &entry.value, entry.mod_revision)?;
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

    pub(super) async fn list(&self) -> Result<Response, Status> {
        let (labels, fields, paths) = self.selectors()?;
        let limit: usize = match self.query.get("limit") {
            Some(l) => l
                .parse()
                .map_err(|_| Status::bad_request(format!("invalid limit: {l}")))?,
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
            at_revision = v
                .parse()
                .map_err(|_| Status::bad_request(format!("invalid resource version: {v}")))?;
        } else if let Some(rev) = self.sync(rv_param).await? {
            at_revision = rev;
        }
        // Items: from the cache when reading its current state, else from the store at the
        // revision asked for (pages of an older list, exact-revision lists).
        let (kvs, more, revision) = if at_revision == 0 || at_revision == self.api.cache.revision()
        {
            let (items, more, rev) = self.api.cache.list(prefix.as_bytes(), &start, limit);
            let kvs: Vec<(Bytes, Bytes, i64)> = items
                .into_iter()
                .map(|(k, e)| (k, e.value, e.mod_revision))
                .collect();
            (kvs, more, rev)
        } else {
            let r = self
                .api
                .store
                .range(prefix.as_bytes(), &start, at_revision, limit as i64)
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if self.query.get("continue").is_some() => {
                        expired_continue()
                    }
                    e => store_error(self.res, "", e),
                })?;
            let kvs = r
                .kvs
                .into_iter()
                .map(|kv| (kv.key, kv.value, kv.mod_revision))
                .collect();
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
        let meta = ListMeta {
            resource_version: &rv,
            continue_token: &token,
            remaining_item_count: remaining,
        };
        if self.shape == Shape::Table {
            let values = items
                .iter()
                .map(|i| objects::to_value(self.res, i))
                .collect::<Result<Vec<_>, _>>()?;
            return self.table_response(&values, Some(&rv), &token);
        }
        if self.shape == Shape::PartialObjectMetadataList {
            let mut metas = Vec::with_capacity(items.len());
            for i in &items {
                metas.push(Served {
                    raw: objects::partial_metadata(self.res, i)?,
                });
            }
            let pom = Resource {
                group: "meta.k8s.io".into(),
                version: "v1".into(),
                kind: "PartialObjectMetadata".into(),
                msg: kapi_codec::Schema::get().kind("meta.k8s.io/v1", "PartialObjectMetadata"),
                ..self.res.clone()
            };
            return Ok(self.ok(
                StatusCode::OK,
                objects::encode_list(&pom, &metas, &meta, self.enc, self.pretty)?,
            ));
        }
        Ok(self.ok(
            StatusCode::OK,
            objects::encode_list(self.res, &items, &meta, self.enc, self.pretty)?,
        ))
    }

    pub(super) async fn watch(&self) -> Result<Response, Status> {
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
        let name_filter = self
            .rr
            .name
            .clone()
            .or_else(|| fields.required("metadata.name").map(str::to_string));
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
                    if self.matches(&obj, &labels, &fields, &paths)
                        && name_ok(self.res, &obj, name_filter.as_deref())
                    {
                        initial.push(objects::watch_frame(
                            self.res,
                            EventType::Added,
                            &obj,
                            self.enc,
                        )?);
                    }
                }
            }
        } else {
            start_rev = rv
                .parse()
                .map_err(|_| Status::bad_request(format!("invalid resource version: {rv}")))?;
        }
        let (tx, rx) = futures::channel::mpsc::channel::<Bytes>(WATCH_CHUNK_BUFFER);
        let mut resp = respond(StatusCode::OK, self.watch_content_type(), Vec::new());
        resp.body = Body::Stream(rx);
        let watch = self
            .api
            .cache
            .watch(Bytes::from(prefix.clone().into_bytes()), start_rev);
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
                    let s = Status::expired(format!(
                        "too old resource version: {requested} ({oldest})"
                    ));
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
            let mut last_bookmark = std::time::Instant::now();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
            loop {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                let wait = (deadline - now).min(IDLE_CHECK_INTERVAL);
                match monoio::time::timeout(wait, events.next()).await {
                    Ok(Some(WatchItem::Event(ev))) => {
                        last_rev = ev.revision;
                        let frame = match event_frame(
                            &res,
                            &ev,
                            enc,
                            &labels,
                            &fields,
                            &paths,
                            name_filter.as_deref(),
                        ) {
                            Ok(Some(f)) => f,
                            Ok(None) => continue,
                            Err(s) => {
                                let _ = objects::watch_error_frame(&s, enc)
                                    .map(|f| tx.try_send(Bytes::from(f)));
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
                        // A client that left is noticed here too, not only on the next send.
                        if tx.is_closed() {
                            break;
                        }
                        let rev = cache.revision();
                        if allow_bookmarks
                            && rev > last_rev
                            && last_bookmark.elapsed() >= BOOKMARK_INTERVAL
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

pub(super) fn name_ok(res: &Resource, obj: &Served, name: Option<&str>) -> bool {
    let Some(name) = name else { return true };
    res.msg
        .and_then(|m| meta_from_pb(m, &obj.raw, 0).ok())
        .is_some_and(|m| m.name == name)
}

/// A watch event for one cache event, or None when the watcher's filters exclude it.
pub(super) fn event_frame(
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
        let Ok(meta) = meta_from_pb(msg, &o.raw, 0) else {
            return false;
        };
        labels.matches(&meta.labels)
            && fields.matches(|f| match f {
                "metadata.name" => Some(meta.name.to_string()),
                "metadata.namespace" => Some(meta.namespace.to_string()),
                other => paths
                    .iter()
                    .find(|p| p.label == other)
                    .and_then(|p| p.value(&o.raw).ok())
                    .map(|v| v.into_owned()),
            })
    };
    let now = passes(&obj);
    let before = match &ev.prev_value {
        Some(p) if ev.kind == EventKind::Put => objects::served(res, p, ev.revision)
            .map(|o| passes(&o))
            .unwrap_or(false),
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
        &objects::value_message(&obj)?,
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
    let start = v["start"].as_str().ok_or_else(bad)?.to_string();
    if rv <= 0 || start.contains("..") {
        return Err(bad());
    }
    Ok((rv, start))
}

#[cfg(test)]
mod tests {
    use super::*;

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
