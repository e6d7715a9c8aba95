//! Writes: create, update (with the status subresource), patch, delete (graceful with
//! finalizers) and deletecollection, as transactions on the key's mod_revision. Large
//! bodies and objects are decoded, patched, validated and encoded on the worker pool
//! (`api::offload`), so that the core keeps serving its other connections meanwhile.

use super::*;
use crate::api::{offload, validation};

impl Ctx<'_> {
    pub(super) async fn create(&self) -> Result<Response, Status> {
        if self.rr.subresource.is_some() {
            return Err(Status::method_not_supported(gr(self.res), "create"));
        }
        let mut obj = self.body_offloaded().await?;
        self.check_type(&obj)?;
        let validation = self.validation()?;
        let dry_run = self.dry_run()?;
        let meta = obj
            .as_object_mut()
            .ok_or_else(|| Status::bad_request("the body is not an object"))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        let meta = meta
            .as_object_mut()
            .ok_or_else(|| Status::bad_request("metadata is not an object"))?;
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
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() && !generate.is_empty() {
            name = format!("{generate}{}", random_suffix());
            meta.insert("name".into(), json!(name));
        }
        if name.is_empty() {
            return Err(Status::invalid(
                &self.res.group,
                &self.res.kind,
                "",
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: name or generateName is required".into(),
                    field: "metadata.name".into(),
                }],
            ));
        }
        if let Some(why) = invalid_name(&name) {
            return Err(Status::invalid(
                &self.res.group,
                &self.res.kind,
                &name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: \"{name}\": {why}"),
                    field: "metadata.name".into(),
                }],
            ));
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
            self.check_namespace(self.rr.namespace.as_deref().unwrap_or(""))
                .await?;
        }
        validation::validate(self.res, &obj)?;
        let res = self.res.clone();
        let size = self.req.body.len();
        let (value, warnings) = offload::run(size, move || {
            objects::encode_for_storage(&res, &obj, validation)
        })
        .await??;
        let key = self.key(&name);
        if dry_run {
            if self.rc()?.snapshot().get(key.as_bytes()).is_some() {
                return Err(Status::already_exists(gr(self.res), &name));
            }
            let obj = objects::served(self.res, &value, 0)?;
            let obj = strip_rv(self.res, obj)?;
            return Ok(
                self.warnings_response(self.object_response(StatusCode::CREATED, &obj)?, &warnings)
            );
        }
        let lease = (self.res.resource == "events").then_some(EVENT_TTL_SECONDS);
        let kv = self
            .api
            .store
            .create(key.as_bytes(), value, lease)
            .await
            .map_err(|e| store_error(self.res, &name, e))?;
        let obj = objects::served(self.res, &kv.value, kv.mod_revision)?;
        Ok(self.warnings_response(
            self.object_response_offloaded(StatusCode::CREATED, obj)
                .await?,
            &warnings,
        ))
    }

    pub(super) async fn update(&self) -> Result<Response, Status> {
        let obj = self.body_offloaded().await?;
        self.check_type(&obj)?;
        let body_name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if body_name != self.name() {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                self.name()
            )));
        }
        let body_rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.write_update(obj, &body_rv).await
    }

    /// Stores `new` (a full object as the client wants it) over the current object, keeping
    /// what the client may not change, with optimistic concurrency on `expected_rv`.
    pub(super) async fn write_update(
        &self,
        new: Value,
        expected_rv: &str,
    ) -> Result<Response, Status> {
        self.write_change(Change::Replace(new), expected_rv).await
    }

    /// The update path of PUT, status, scale and PATCH. A patch that names no
    /// resourceVersion is applied again to the new current object when another write got
    /// there first (upstream's GuaranteedUpdate), at most `MAX_PATCH_ATTEMPTS` times.
    async fn write_change(&self, change: Change, expected_rv: &str) -> Result<Response, Status> {
        let retry = match &change {
            Change::Patch(ty, body) => Some((*ty, body.clone())),
            Change::Replace(_) => None,
        };
        let mut next = Some(change);
        for attempt in 1..=MAX_PATCH_ATTEMPTS {
            let change = match (next.take(), &retry) {
                (Some(c), _) => c,
                (None, Some((ty, body))) => Change::Patch(*ty, body.clone()),
                (None, None) => break,
            };
            let retryable = retry.is_some() && attempt < MAX_PATCH_ATTEMPTS;
            match self.try_write(change, expected_rv, retryable).await {
                Attempt::Done(r) => return r,
                Attempt::Raced => continue,
            }
        }
        Err(Status::modified_conflict(gr(self.res), self.name()))
    }

    /// One attempt at an update: the current object from the store, the change applied,
    /// validated and encoded (off the core when large), then stored if the object is still
    /// the one read (`Raced` when it is not and `retryable`).
    async fn try_write(&self, change: Change, expected_rv: &str, retryable: bool) -> Attempt {
        let r = async {
            let validation = self.validation()?;
            let dry_run = self.dry_run()?;
            let kv = self.current().await?;
            if !expected_rv.is_empty() && expected_rv != kv.mod_revision.to_string() {
                return Err(Status::modified_conflict(gr(self.res), self.name()));
            }
            let size = kv.value.len() + change.len();
            let res = self.res.clone();
            let status_only = self.rr.subresource.as_deref() == Some("status");
            let (stored, revision) = (kv.value.clone(), kv.mod_revision);
            let prepared = offload::run(size, move || {
                prepare_update(&res, status_only, &stored, revision, change, validation)
            })
            .await??;
            if !prepared.expected_rv.is_empty() {
                return Err(Status::modified_conflict(gr(self.res), self.name()));
            }
            let Prepared {
                merged,
                value,
                warnings,
                ..
            } = prepared;
            if value == kv.value || dry_run {
                let obj = objects::served(self.res, &value, kv.mod_revision)?;
                return Ok(Some(self.warnings_response(
                    self.object_response_offloaded(StatusCode::OK, obj).await?,
                    &warnings,
                )));
            }
            let key = self.key(self.name());
            let stored = match self
                .api
                .store
                .update(key.as_bytes(), value, kv.mod_revision)
                .await
            {
                Ok(kv) => kv,
                Err(StoreError::Conflict { .. }) if retryable => return Ok(None),
                Err(e) => return Err(store_error(self.res, self.name(), e)),
            };
            // An object whose finalizers are gone while it is being deleted goes now.
            if deleting_without_finalizers(&merged) {
                let _ = self
                    .api
                    .store
                    .delete(key.as_bytes(), Some(stored.mod_revision))
                    .await;
            }
            let obj = objects::served(self.res, &stored.value, stored.mod_revision)?;
            Ok(Some(self.warnings_response(
                self.object_response_offloaded(StatusCode::OK, obj).await?,
                &warnings,
            )))
        }
        .await;
        match r {
            Ok(Some(resp)) => Attempt::Done(Ok(resp)),
            Ok(None) => Attempt::Raced,
            Err(e) => Attempt::Done(Err(e)),
        }
    }

    /// The request body decoded, off the core when it is large.
    async fn body_offloaded(&self) -> Result<Value, Status> {
        let ct = self
            .req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let ty = negotiate::content_type(ct)?;
        let body = self.req.body.clone();
        offload::run(body.len(), move || objects::decode_body(&body, ty)).await?
    }

    /// `object_response`, with large objects encoded off the core.
    async fn object_response_offloaded(
        &self,
        status: StatusCode,
        obj: Served,
    ) -> Result<Response, Status> {
        if self.shape != Shape::Object || obj.raw.len() < offload::OFFLOAD_MIN_BYTES {
            return self.object_response(status, &obj);
        }
        let (res, enc, pretty) = (self.res.clone(), self.enc, self.pretty);
        let body = offload::run(obj.raw.len(), move || {
            objects::encode_object(&res, &obj, enc, pretty)
        })
        .await??;
        Ok(self.ok(status, body))
    }

    pub(super) async fn patch(&self) -> Result<Response, Status> {
        let ct = self
            .req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let ty = negotiate::content_type(ct)?;
        match ty {
            BodyType::JsonPatch | BodyType::MergePatch | BodyType::StrategicMergePatch => {}
            BodyType::ApplyYaml | BodyType::ApplyCbor => {
                return Err(Status::new(
                    415,
                    "UnsupportedMediaType",
                    "server-side apply is not supported yet",
                ));
            }
            _ => return Err(Status::unsupported_media_type()),
        }
        self.write_change(Change::Patch(ty, self.req.body.clone()), "")
            .await
    }

    pub(super) async fn delete(&self) -> Result<Response, Status> {
        let opts: Value = if self.req.body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&self.req.body)
                .map_err(|e| Status::bad_request(e.to_string()))?
        };
        let dry_run = self.dry_run()?
            || opts
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        let kv = self.current().await?;
        let obj = objects::served(self.res, &kv.value, kv.mod_revision)?;
        let mut current = objects::to_value(self.res, &obj)?;
        if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
            && current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return Err(Status::conflict(
                gr(self.res),
                self.name(),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    current
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = opts
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && rv != kv.mod_revision.to_string()
        {
            return Err(Status::conflict(
                gr(self.res),
                self.name(),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
        let finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
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
                    let (v, _) =
                        objects::encode_for_storage(self.res, &current, FieldValidation::Ignore)?;
                    return self.object_response(
                        StatusCode::OK,
                        &objects::served(self.res, &v, kv.mod_revision)?,
                    );
                }
                let (v, _) =
                    objects::encode_for_storage(self.res, &current, FieldValidation::Ignore)?;
                let stored = self
                    .api
                    .store
                    .update(key.as_bytes(), v, kv.mod_revision)
                    .await
                    .map_err(|e| store_error(self.res, self.name(), e))?;
                if self.res.resource == "namespaces" && !finalizers {
                    self.finish_namespace(self.name(), stored.mod_revision)
                        .await;
                }
                return self.object_response(
                    StatusCode::OK,
                    &objects::served(self.res, &stored.value, stored.mod_revision)?,
                );
            }
            return self.object_response(StatusCode::OK, &obj);
        }
        if !dry_run {
            self.api
                .store
                .delete(key.as_bytes(), Some(kv.mod_revision))
                .await
                .map_err(|e| store_error(self.res, self.name(), e))?;
        }
        if RETURNS_DELETED_OBJECT.contains(&self.res.resource.as_str()) {
            if let Some(m) = current.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            let (v, _) = objects::encode_for_storage(self.res, &current, FieldValidation::Ignore)?;
            return self.object_response(
                StatusCode::OK,
                &objects::served(self.res, &v, kv.mod_revision)?,
            );
        }
        let uid = current
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        let status = Status::success_deleted(gr(self.res), self.name(), uid);
        Ok(self.ok(
            StatusCode::OK,
            objects::encode_status(&status, self.enc, self.pretty),
        ))
    }

    /// Deletes a terminating namespace's contents, then the namespace (the namespace
    /// controller's job upstream, done inline here).
    pub(super) async fn finish_namespace(&self, ns: &str, rev: i64) {
        for r in self.api.registry.all() {
            if !r.namespaced || r.key_prefix.is_empty() || r.storage == Storage::None {
                continue;
            }
            let rprefix = format!("{}{}", self.api.prefix, r.key_prefix);
            let Some(rc) = self.api.cache.resource(rprefix.as_bytes()) else {
                continue;
            };
            let prefix = format!("{rprefix}{ns}/");
            let snap = rc.snapshot();
            for o in snap.range(prefix.as_bytes(), b"") {
                let _ = self.api.store.delete(&o.key, Some(o.mod_revision)).await;
            }
        }
        let key = format!("{}namespaces/{ns}", self.api.prefix);
        let _ = self.api.store.delete(key.as_bytes(), Some(rev)).await;
    }

    pub(super) async fn delete_collection(&self) -> Result<Response, Status> {
        let (labels, fields, paths) = self.selectors()?;
        self.sync(None).await?;
        let prefix = self.collection_prefix();
        let rev = self.api.cache.revision();
        let snap = self.rc()?.snapshot();
        let rev = rev.max(snap.revision);
        let view = self.view();
        let mut deleted = Vec::new();
        for o in snap.range(prefix.as_bytes(), b"") {
            let obj = view.served(o)?;
            if !self.matches(&obj, &labels, &fields, &paths) {
                continue;
            }
            if self.dry_run()? {
                deleted.push(obj);
                continue;
            }
            match self.api.store.delete(&o.key, Some(o.mod_revision)).await {
                Ok(_) | Err(StoreError::NotFound) => deleted.push(obj),
                Err(err) => return Err(store_error(self.res, "", err)),
            }
        }
        let rv = rev.to_string();
        let meta = ListMeta {
            resource_version: &rv,
            ..Default::default()
        };
        Ok(self.ok(
            StatusCode::OK,
            objects::encode_list(self.res, &deleted, &meta, self.enc, self.pretty)?,
        ))
    }
}

/// Times a patch is applied when other writes keep changing the object under it: enough for
/// a hot object under many writers, bounded so one request cannot loop.
const MAX_PATCH_ATTEMPTS: usize = 32;

/// The end of one update attempt.
enum Attempt {
    Done(Result<Response, Status>),
    /// The object changed between read and write; the patch may be applied again.
    Raced,
}

/// How an update makes the new object from the stored one.
enum Change {
    /// A full object (PUT, the status and scale subresources).
    Replace(Value),
    /// A patch body of this type, applied to the stored object.
    Patch(BodyType, Bytes),
}

impl Change {
    /// Bytes of input the change brings (to decide whether it is large work).
    fn len(&self) -> usize {
        match self {
            Change::Replace(_) => 0,
            Change::Patch(_, body) => body.len(),
        }
    }
}

/// What an update will store.
struct Prepared {
    merged: Value,
    value: Bytes,
    warnings: Vec<String>,
    /// Set when a patch names a resourceVersion other than the stored one (a conflict).
    expected_rv: String,
}

/// The CPU part of an update, run inline or on a worker: decode the stored object, apply the
/// change, keep what the client may not change, validate, encode for storage.
fn prepare_update(
    res: &Resource,
    status_only: bool,
    stored: &[u8],
    revision: i64,
    change: Change,
    validation: FieldValidation,
) -> Result<Prepared, Status> {
    let old = objects::to_value(res, &objects::served(res, stored, revision)?)?;
    let (new, expected_rv) = match change {
        Change::Replace(new) => (new, String::new()),
        Change::Patch(ty, body) => {
            let patched = apply_patch(ty, &body, old.clone())?;
            crate::api::patch::check_patched_size(&patched)?;
            let rv = patched
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let rv = if rv == revision.to_string() {
                String::new()
            } else {
                rv.to_string()
            };
            (patched, rv)
        }
    };
    let merged = merge_update(res, status_only, &old, new)?;
    validation::validate(res, &merged)?;
    let (value, warnings) = objects::encode_for_storage(res, &merged, validation)?;
    Ok(Prepared {
        merged,
        value,
        warnings,
        expected_rv,
    })
}

/// A JSON, merge or strategic merge patch applied to `current` (consumed, patched in place).
fn apply_patch(ty: BodyType, body: &[u8], current: Value) -> Result<Value, Status> {
    use crate::api::patch;
    let p: Value = serde_json::from_slice(body)
        .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
    match ty {
        BodyType::JsonPatch => {
            patch::apply_json_patch(current, &p).map_err(patch::JsonPatchError::into_status)
        }
        BodyType::MergePatch => {
            let mut out = current;
            patch::merge_patch_into(&mut out, &p);
            Ok(out)
        }
        _ => {
            let mut out = current;
            patch::strategic_merge_patch_into(&mut out, &p)?;
            Ok(out)
        }
    }
}

/// The object to store for an update: immutable metadata from the old object; for the
/// status subresource only the status changes, for the main resource the status is kept
/// (kinds with a status subresource); generation bumps when the spec changes.
fn merge_update(
    res: &Resource,
    status_only: bool,
    old: &Value,
    mut new: Value,
) -> Result<Value, Status> {
    let has_status_sub = res.subresources.iter().any(|s| s == "status");
    if status_only {
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
    let meta = meta
        .as_object_mut()
        .ok_or_else(|| Status::bad_request("metadata is not an object"))?;
    for k in [
        "uid",
        "creationTimestamp",
        "namespace",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "name",
    ] {
        match old.pointer(&format!("/metadata/{k}")) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
    if GENERATION_KINDS.contains(&res.resource.as_str()) && spec_changed {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta.insert("generation".into(), json!(g + 1));
    }
    Ok(new)
}

/// TTL of Event keys: --event-ttl (1 h) plus upstream's 60 s lease reuse window.
pub(super) const EVENT_TTL_SECONDS: i64 = 3660;

pub(super) fn deleting_without_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
        && obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty())
}

pub(super) fn strip_rv(res: &Resource, obj: Served) -> Result<Served, Status> {
    let mut v = objects::to_value(res, &obj)?;
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    let (stored, _) = objects::encode_for_storage(res, &v, FieldValidation::Ignore)?;
    let env = kapi_codec::envelope::Envelope::parse(&stored)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(Served {
        raw: env.raw.to_vec(),
    })
}
