//! The write pipeline, one path for create, update, patch, status and scale (delete and
//! deletecollection follow it where they write):
//!
//! decode once → (update/patch: the current object from the cache, the patch applied) →
//! the kind's strategy prepares it (server-owned metadata, status/spec separation,
//! generation) → mutating admission → defaults → encode once (what the decoder refuses, such
//! as unknown fields under Strict, is a 400 before validation, as upstream decodes first) →
//! validation (object meta and the kind's rules; 422 with upstream's causes) → validating
//! admission → the store's transaction on the key's mod_revision. A conflict is retried (bounded) for patches and for
//! updates that named no resourceVersion, as upstream's GuaranteedUpdate; otherwise it is 409.

//!
//! Large bodies and objects (≥ `offload::OFFLOAD_MIN_BYTES`) are decoded, patched and encoded on
//! the worker pool (`api::offload`), so that the core keeps serving its other connections.

use super::*;
use crate::admission::{Attributes, Operation};
use crate::api::{offload, validation};
use crate::jsonptr::At;
use crate::kinds::meta;

/// Attempts of an update or patch that lost a race with another writer before it answers 409.
/// Upstream's GuaranteedUpdate retries until it wins or the request times out; a bound keeps a
/// hot key from holding a request for ever, and is high because with N writers on one key each
/// attempt wins about 1 in N (six writers lose eight attempts in a row 23 % of the time).
const MAX_UPDATE_ATTEMPTS: usize = 64;

/// What an update makes of the current object: the object the client sent (PUT, scale), or
/// a patch applied to the current object (again on every attempt).
pub(super) enum Change {
    Replace(Value, String),
    Patch(BodyType, Bytes),
    /// A server-side apply (`super::apply`).
    Apply(std::sync::Arc<crate::ssa::Apply>),
}

/// A create body below this size makes an object well below `offload::OFFLOAD_MIN_BYTES` with
/// its defaults, managedFields and built-in admission's additions: encoded on the core
/// without measuring it.
const SMALL_CREATE_BYTES: usize = offload::OFFLOAD_MIN_BYTES / 8;

/// What a write starts from: the stored bytes of the current object and their revision.
pub(super) struct Current {
    pub value: Bytes,
    pub mod_revision: i64,
}

impl Ctx<'_> {
    pub(super) fn admission_attrs<'a>(
        &'a self,
        operation: Operation,
        name: &'a str,
        old: Option<&'a Value>,
        dry_run: bool,
    ) -> Attributes<'a> {
        Attributes {
            operation,
            user: self.user,
            resource: self.res,
            subresource: self.rr.subresource.as_deref(),
            namespace: self.rr.namespace.as_deref().filter(|_| self.res.namespaced),
            name,
            old,
            dry_run,
            warnings: Default::default(),
            audit_annotations: Default::default(),
            reinvocation: Default::default(),
        }
    }

    /// Object meta and the kind's own rules: a 422 with every cause, as upstream reports them.
    fn validate(&self, obj: &Value, old: Option<&Value>) -> Result<(), Status> {
        let strategy = &*self.res.strategy;
        let mut causes = meta::validate(obj, strategy.name_rule());
        if let Some(old) = old {
            causes.extend(meta::validate_update(obj, old));
        }
        causes.extend(match (old, self.rr.subresource.as_deref()) {
            (None, _) => strategy.validate_create(obj),
            (Some(old), Some(sub)) => strategy
                .validate_subresource_update(sub, obj, old)
                .unwrap_or_else(|| strategy.validate_update(obj, old)),
            (Some(old), None) => strategy.validate_update(obj, old),
        });
        if causes.is_empty() {
            // Size limits of ConfigMap and Secret data.
            return validation::validate(self.res, obj);
        }
        let name = obj
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        Err(Status::invalid(
            &self.res.group,
            &self.res.kind,
            name,
            causes,
        ))
    }

    /// The stages every write passes once its kind has prepared the object: defaults → mutating
    /// admission → defaults → encode once (what upstream's decoder refuses, such as unknown
    /// fields under Strict, is a 400 before any validation) → validation → validating
    /// admission. Gives back the stored bytes, the warnings and the object.
    async fn admit_and_encode(
        &self,
        attrs: &Attributes<'_>,
        obj: Value,
        validation: FieldValidation,
    ) -> Result<(Bytes, Vec<String>, Value), Status> {
        let result = self.admit_and_encode_once(attrs, obj, validation).await;
        // What admission noted for the audit event stays, whatever the answer.
        self.audit_annotations
            .borrow_mut()
            .extend(attrs.audit_annotations.take());
        result
    }

    async fn admit_and_encode_once(
        &self,
        attrs: &Attributes<'_>,
        mut obj: Value,
        validation: FieldValidation,
    ) -> Result<(Bytes, Vec<String>, Value), Status> {
        // Upstream's decoder defaults the object before admission sees it (a create's was
        // defaulted before its preparation, in `create_object`), and its storage defaults it
        // again on the way back (what admission added gets its defaults too).
        if let Some(old) = attrs.old {
            self.res.strategy.default(&mut obj);
            // Ownership of what an update changed, before admission's changes (as upstream; a
            // create's is taken before its preparation).
            self.track_fields(old, &mut obj)?;
        }
        // A create's managedFields are text until stored; what reads objects whole reads them
        // parsed.
        let whole = self.api.admission.reads_whole_objects(self.api);
        if whole {
            crate::ssa::materialize(&mut obj);
        }
        self.api
            .admission
            .mutate(self.api, attrs, Some(&mut obj))
            .await?;
        self.res.strategy.default(&mut obj);
        // A small create's object stays small unless a webhook or policy grew it.
        let small = attrs.old.is_none() && !whole && self.req.body.len() < SMALL_CREATE_BYTES;
        let (value, mut warnings, obj) = self.encode_offloaded(obj, validation, small).await?;
        self.validate(&obj, attrs.old)?;
        self.api
            .admission
            .validate(self.api, attrs, Some(&obj))
            .await?;
        warnings.extend(attrs.warnings.take());
        Ok((value, warnings, obj))
    }

    pub(super) async fn create(&self) -> Result<Response, Status> {
        if self.rr.subresource.is_some() {
            return Err(Status::method_not_supported(gr(self.res), "create"));
        }
        if self.res.custom.as_ref().is_some_and(|c| c.terminating) {
            let mut s = Status::method_not_supported(gr(self.res), "create");
            s.message = "create not allowed while custom resource definition is terminating".into();
            return Err(s);
        }
        // Decode once (off the core when large).
        let obj = self.body_offloaded().await?;
        self.create_object(obj).await
    }

    /// A create of a decoded object (a POST's body, or what an apply makes of nothing).
    pub(super) async fn create_object(&self, mut obj: Value) -> Result<Response, Status> {
        self.check_type(&obj)?;
        let validation = self.validation()?;
        let dry_run = self.dry_run()?;
        let strategy = &*self.res.strategy;
        // Defaults as upstream's decoder applies them, then the writer's fields.
        strategy.default(&mut obj);
        let managed = self.created_fields(&obj)?;
        let name = self.prepare_create_meta(&mut obj)?;
        // Prepare, mutating admission, defaults, validation, validating admission.
        strategy.prepare_for_create_by(&mut obj, self.user);
        super::apply::set_managed_fields(&mut obj, managed);
        if self.is_service() {
            // A Service's cluster IPs and node ports are claimed first, and let go if the
            // create fails.
            let ns = self.rr.namespace.clone().unwrap_or_default();
            let held = super::service_writes::begin_create(self.api, &mut obj, &ns, &name, dry_run)
                .await?;
            let created = self.create_prepared(obj, &name, validation, dry_run).await;
            if created.is_err() {
                held.revert(self.api).await;
            }
            return created;
        }
        self.create_prepared(obj, &name, validation, dry_run).await
    }

    pub(super) fn is_service(&self) -> bool {
        self.res.group.is_empty() && self.res.resource == "services"
    }

    /// A create after its kind's preparation: admission, defaults, validation, the store.
    async fn create_prepared(
        &self,
        obj: Value,
        name: &str,
        validation: FieldValidation,
        dry_run: bool,
    ) -> Result<Response, Status> {
        let strategy = &*self.res.strategy;
        let name = name.to_owned();
        let attrs = self.admission_attrs(Operation::Create, &name, None, dry_run);
        let (value, warnings, _) = self.admit_and_encode(&attrs, obj, validation).await?;
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
        let kv = self
            .api
            .store
            .create(key.as_bytes(), value, strategy.ttl_seconds())
            .await
            .map_err(|e| store_error(self.res, &name, e))?;
        let obj = objects::served_own(self.res, &kv.value, kv.mod_revision)?;
        Ok(self.warnings_response(self.object_response(StatusCode::CREATED, &obj)?, &warnings))
    }

    /// The metadata the server owns on a new object: namespace from the URL, a generated name,
    /// uid, creationTimestamp, generation; what a client may not set is dropped. Returns the name.
    fn prepare_create_meta(&self, obj: &mut Value) -> Result<String, Status> {
        let meta = obj
            .as_object_mut()
            .ok_or_else(|| Status::bad_request("the body is not an object"))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        let meta = meta
            .as_object_mut()
            .ok_or_else(|| Status::bad_request("metadata is not an object"))?;
        self.url_namespace(meta)?;
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
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if self.res.strategy.tracks_generation() {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        Ok(name)
    }

    pub(super) async fn update(&self) -> Result<Response, Status> {
        // Decode once (off the core when large).
        let obj = self.body_offloaded().await?;
        self.check_type(&obj)?;
        let body_name = obj
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if body_name != self.name() {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                self.name()
            )));
        }
        let body_rv = obj
            .at("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // An update that names no resourceVersion is unconditional: retried on conflict.
        let retry = body_rv.is_empty();
        self.write_update(retry, Change::Replace(obj, body_rv))
            .await
    }

    /// The update pipeline: `change` makes the object the client wants (and the
    /// resourceVersion it requires, or "") from the current one; with `retry`, a lost race runs
    /// it again on the newer object (bounded), as upstream's GuaranteedUpdate.
    pub(super) async fn write_update(
        &self,
        retry: bool,
        change: Change,
    ) -> Result<Response, Status> {
        let validation = self.validation()?;
        let dry_run = self.dry_run()?;
        let strategy = &*self.res.strategy;
        let mut current = self.current().await?;
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let (old, new, expected_rv) = self.apply_change(&change, &current).await?;
            if let Change::Replace(..) = change {
                uid_precondition(self.res, self.name(), &new, &old)?;
            }
            if !expected_rv.is_empty() && expected_rv != current.mod_revision.to_string() {
                return Err(Status::modified_conflict(gr(self.res), self.name()));
            }
            // Prepare, mutating admission, defaults, validation, validating admission.
            let mut merged = self.merge_update(&old, new)?;
            if self.rr.subresource.is_none() {
                strategy.prepare_for_update(&mut merged, &old);
            }
            let held = match self.is_service() && self.rr.subresource.is_none() {
                true => {
                    let ns = self.rr.namespace.clone().unwrap_or_default();
                    let held = super::service_writes::begin_update(
                        self.api,
                        &mut merged,
                        &old,
                        &ns,
                        self.name(),
                        dry_run,
                    );
                    Some(held.await?)
                }
                false => None,
            };
            let outcome = self
                .update_attempt(&old, merged, &mut current, validation, dry_run, retry)
                .await;
            if let Some(held) = held {
                match &outcome {
                    Ok(Some(_)) => held.commit(self.api).await,
                    _ => held.revert(self.api).await,
                }
            }
            if let Some(response) = outcome? {
                return Ok(response);
            }
        }
        Err(Status::modified_conflict(gr(self.res), self.name()))
    }

    /// One attempt of an update once the object is prepared: admission, defaults,
    /// validation, the store's transaction. `None`: another writer won and `current` is what
    /// it wrote (the caller runs the change again).
    async fn update_attempt(
        &self,
        old: &Value,
        merged: Value,
        current: &mut Current,
        validation: FieldValidation,
        dry_run: bool,
        retry: bool,
    ) -> Result<Option<Response>, Status> {
        let strategy = &*self.res.strategy;
        let attrs = self.admission_attrs(Operation::Update, self.name(), Some(old), dry_run);
        let (value, warnings, merged) = self.admit_and_encode(&attrs, merged, validation).await?;
        // An unchanged object is not written again, unless its stored value was not
        // sealed by the current first provider and key (rotation rewrites it, as upstream).
        let unchanged = value == current.value
            && !self
                .api
                .store
                .stale(self.key(self.name()).as_bytes(), current.mod_revision)
                .await;
        if unchanged || dry_run {
            let obj = objects::served_own(self.res, &value, current.mod_revision)?;
            return Ok(Some(self.warnings_response(
                self.object_response(StatusCode::OK, &obj)?,
                &warnings,
            )));
        }
        let key = self.key(self.name());
        // An update that empties the finalizers of an object being deleted deletes it
        // instead (upstream's ShouldDeleteDuringUpdate); the client gets its object.
        if super::delete::deletes_during_update(strategy, &merged, old) {
            let obj = objects::served_own(self.res, &value, current.mod_revision)?;
            let outcome = match dry_run {
                true => Ok(()),
                false => self
                    .api
                    .store
                    .delete(key.as_bytes(), Some(current.mod_revision))
                    .await
                    .map(drop),
            };
            match outcome {
                Ok(()) | Err(StoreError::NotFound) => {
                    if !dry_run {
                        self.released(&merged).await;
                    }
                    return Ok(Some(self.warnings_response(
                        self.object_response(StatusCode::OK, &obj)?,
                        &warnings,
                    )));
                }
                Err(StoreError::Conflict {
                    current: Some(newer),
                }) if retry => {
                    *current = Current {
                        value: newer.value,
                        mod_revision: newer.mod_revision,
                    };
                    return Ok(None);
                }
                Err(StoreError::Conflict { .. }) if !retry => {
                    return Err(Status::modified_conflict(gr(self.res), self.name()));
                }
                Err(e) => return Err(store_error(self.res, self.name(), e)),
            }
        }
        let stored = match self
            .api
            .store
            .update(key.as_bytes(), value, current.mod_revision)
            .await
        {
            Ok(stored) => stored,
            Err(StoreError::Conflict { current: newer }) if retry => {
                *current = match newer {
                    Some(kv) => Current {
                        value: kv.value,
                        mod_revision: kv.mod_revision,
                    },
                    None => return Err(Status::not_found(gr(self.res), self.name())),
                };
                // Another writer won: run the request again on what it wrote.
                return Ok(None);
            }
            Err(e) => return Err(store_error(self.res, self.name(), e)),
        };
        let obj = objects::served_own(self.res, &stored.value, stored.mod_revision)?;
        Ok(Some(self.warnings_response(
            self.object_response(StatusCode::OK, &obj)?,
            &warnings,
        )))
    }

    /// The generic part of preparing an update: immutable metadata from the old object; for
    /// the status subresource only the status changes, for the main resource the status is
    /// kept (kinds with a status subresource); generation bumps when the spec changes.
    pub(super) fn merge_update(&self, old: &Value, mut new: Value) -> Result<Value, Status> {
        let has_status_sub = self.res.subresources.iter().any(|s| s == "status");
        if self.rr.subresource.as_deref() == Some("status") {
            let mut out = old.clone();
            if let (Some(o), Some(s)) = (out.as_object_mut(), new.get("status")) {
                o.insert("status".into(), s.clone());
            }
            self.res.strategy.prepare_for_status_update(&mut out, old);
            return Ok(out);
        }
        if let Some(sub) = self.rr.subresource.as_deref()
            && let Some(mut out) = self
                .res
                .strategy
                .prepare_for_subresource_update(sub, &new, old)
        {
            if self.res.strategy.tracks_generation() && out.get("spec") != old.get("spec") {
                let g = old
                    .at("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("generation".into(), json!(g + 1));
                }
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
        // The kind's generation rule sees the whole object (moved out and back, not copied).
        let whole = Value::Object(std::mem::take(nm));
        let spec_changed = self.res.strategy.generation_changed(&whole, old);
        if let Value::Object(m) = whole {
            *nm = m;
        }
        let meta = nm.entry("metadata").or_insert_with(|| json!({}));
        let meta = meta
            .as_object_mut()
            .ok_or_else(|| Status::bad_request("metadata is not an object"))?;
        self.take_server_meta(meta, old)?;
        if self.res.strategy.tracks_generation() && spec_changed {
            let g = old
                .at("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta.insert("generation".into(), json!(g + 1));
        }
        Ok(new)
    }

    /// The object's namespace is the URL's (none for a cluster-scoped kind); a different one
    /// in the body is a 400.
    fn url_namespace(&self, meta: &mut serde_json::Map<String, Value>) -> Result<(), Status> {
        if !self.res.namespaced {
            meta.remove("namespace");
            return Ok(());
        }
        let url_ns = self.rr.namespace.clone().unwrap_or_default();
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != url_ns => Err(Status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                meta.insert("namespace".into(), json!(url_ns));
                Ok(())
            }
        }
    }

    /// What upstream's `BeforeUpdate` takes from the old object before validating: the
    /// namespace of the URL (a different one is a 400), the generation always, and the uid,
    /// creation and deletion timestamps and grace period where the request left them out. A
    /// request that changes one of them is refused by `meta::validate_update`.
    fn take_server_meta(
        &self,
        meta: &mut serde_json::Map<String, Value>,
        old: &Value,
    ) -> Result<(), Status> {
        let old_meta = |k: &str| {
            old.at(&format!("/metadata/{k}"))
                .filter(|v| !v.is_null())
                .cloned()
        };
        let absent = |meta: &serde_json::Map<String, Value>, k: &str| {
            meta.get(k)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
        };
        self.url_namespace(meta)?;
        let taken = [
            ("generation", true),
            ("uid", absent(meta, "uid")),
            ("creationTimestamp", old_meta("creationTimestamp").is_some()),
            ("deletionTimestamp", old_meta("deletionTimestamp").is_some()),
            (
                "deletionGracePeriodSeconds",
                old_meta("deletionGracePeriodSeconds").is_some()
                    && absent(meta, "deletionGracePeriodSeconds"),
            ),
        ];
        for (k, _) in taken.iter().filter(|(_, when)| *when) {
            match old_meta(k) {
                Some(v) => meta.insert((*k).into(), v),
                None => meta.remove(*k),
            };
        }
        Ok(())
    }

    pub(super) async fn patch(&self) -> Result<Response, Status> {
        let ct = self
            .req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let ty = negotiate::content_type(ct)?;
        if self.res.is_custom() && ty == BodyType::StrategicMergePatch {
            // Custom resources have no patch strategies to merge by.
            let mut s = Status::unsupported_media_type();
            s.message = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into();
            return Err(s);
        }
        // The patch is decoded where it is applied (on the worker pool when large).
        match ty {
            BodyType::JsonPatch | BodyType::MergePatch | BodyType::StrategicMergePatch => {}
            BodyType::ApplyYaml => return self.apply().await,
            BodyType::ApplyCbor => return Err(super::apply::unsupported_patch_type()),
            _ => return Err(Status::unsupported_media_type()),
        }
        if self.query.get("force").is_some() {
            return Err(super::apply::options_invalid(
                "PatchOptions",
                vec![crate::kinds::field::forbidden(
                    "force".into(),
                    "may not be specified for non-apply patch",
                )],
            ));
        }
        self.write_update(true, Change::Patch(ty, self.req.body.clone()))
            .await
    }

    /// The current object as a value, and what the change makes of it (with the
    /// resourceVersion it requires, or ""): on the worker pool when the object or the patch is
    /// large. A patched object over the body limit is a 413.
    async fn apply_change(
        &self,
        change: &Change,
        current: &Current,
    ) -> Result<(Value, Value, String), Status> {
        let (stored, revision) = (current.value.clone(), current.mod_revision);
        let (size, patch, apply) = match change {
            Change::Replace(_, _) => (stored.len(), None, None),
            Change::Patch(ty, body) => (stored.len() + body.len(), Some((*ty, body.clone())), None),
            Change::Apply(a) => (stored.len() + self.req.body.len(), None, Some(a.clone())),
        };
        let (old, patched) = if size < offload::OFFLOAD_MIN_BYTES {
            // On the core: no copy of the row for a worker.
            changed(self.res, &stored, revision, patch, apply)?
        } else {
            let res = self.res.clone();
            offload::run(size, move || changed(&res, &stored, revision, patch, apply)).await??
        };
        match (change, patched) {
            (Change::Replace(obj, rv), _) => Ok((old, obj.clone(), rv.clone())),
            (Change::Patch(..) | Change::Apply(_), Some(patched)) => {
                // A resourceVersion the patch sets is a precondition; the one it kept is not.
                let expected = patched
                    .at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .filter(|rv| *rv != revision.to_string())
                    .unwrap_or("")
                    .to_string();
                Ok((old, patched, expected))
            }
            (Change::Patch(..) | Change::Apply(_), None) => {
                Err(Status::internal("a patch was not applied"))
            }
        }
    }

    /// The request body decoded, off the core when it is large.
    pub(super) async fn body_offloaded(&self) -> Result<Value, Status> {
        let ct = self
            .req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let ty = negotiate::content_type(ct)?;
        let body = self.req.body.clone();
        offload::run(body.len(), move || objects::decode_body(&body, ty)).await?
    }

    /// `encode_for_storage`, off the core when the object is large; gives the object back.
    /// `small`: the object is known to be far below the offload threshold, not measured.
    async fn encode_offloaded(
        &self,
        obj: Value,
        validation: FieldValidation,
        small: bool,
    ) -> Result<(Bytes, Vec<String>, Value), Status> {
        let size = match small {
            true => self.req.body.len(),
            false => self
                .req
                .body
                .len()
                .max(offload::json_size(&obj, offload::OFFLOAD_MIN_BYTES)),
        };
        if size < offload::OFFLOAD_MIN_BYTES {
            // On the core: no copy of the row for a worker.
            let mut obj = obj;
            return objects::encode_owned_for_storage(self.res, &mut obj, validation)
                .map(|(v, w)| (v, w, obj));
        }
        let res = self.res.clone();
        offload::run(size, move || {
            let mut obj = obj;
            objects::encode_owned_for_storage(&res, &mut obj, validation).map(|(v, w)| (v, w, obj))
        })
        .await?
    }

    /// DeleteOptions as upstream reads them: from the body when there is one, else from the
    /// query (gracePeriodSeconds, propagationPolicy, orphanDependents, dryRun), numbers parsed
    /// as int64 and the options validated as upstream's `ValidateDeleteOptions`.
    pub(super) fn delete_options(&self) -> Result<Value, Status> {
        let opts: Value = if self.req.body.is_empty() {
            let mut o = serde_json::Map::new();
            if let Some(g) = self.query.int64("gracePeriodSeconds")? {
                o.insert("gracePeriodSeconds".into(), json!(g));
            }
            if let Some(p) = self.query.get("propagationPolicy") {
                o.insert("propagationPolicy".into(), json!(p));
            }
            if let Some(v) = self.query.get("orphanDependents") {
                let b = parse_bool(v).ok_or_else(|| {
                    Status::bad_request(format!("strconv.ParseBool: parsing {v:?}: invalid syntax"))
                })?;
                o.insert("orphanDependents".into(), json!(b));
            }
            Value::Object(o)
        } else {
            serde_json::from_slice(&self.req.body)
                .map_err(|e| Status::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        checked_delete_options(opts)
    }
}

/// DeleteOptions checked as upstream's `ValidateDeleteOptions` (gracePeriodSeconds an int64,
/// one way of saying what happens to dependents), without kind and apiVersion.
pub(super) fn checked_delete_options(mut opts: Value) -> Result<Value, Status> {
    if !opts.is_object() {
        return Err(Status::bad_request("DeleteOptions must be an object"));
    }
    if let Some(g) = opts.get("gracePeriodSeconds").filter(|g| !g.is_null())
        && g.as_i64().is_none()
    {
        return Err(Status::bad_request(format!(
            "gracePeriodSeconds must be an int64, not {g}"
        )));
    }
    let mut causes = Vec::new();
    let policy = opts.get("propagationPolicy").filter(|p| !p.is_null());
    if opts.get("orphanDependents").is_some_and(|o| !o.is_null()) && policy.is_some() {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: \"object\": OrphanDependents and DeletionPropagation cannot be both set".into(),
            field: "".into(),
        });
    }
    if let Some(p) = policy
        && !matches!(p.as_str(), Some("Foreground" | "Background" | "Orphan"))
    {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: \"object\": DeletionPropagation need to be one of \"Foreground\", \"Background\", \"Orphan\" or nil".into(),
            field: "".into(),
        });
    }
    if !causes.is_empty() {
        return Err(Status::invalid("meta.k8s.io", "DeleteOptions", "", causes));
    }
    if let Some(o) = opts.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
    }
    Ok(opts)
}

/// A JSON, merge or strategic merge patch applied to `current` (consumed, patched in place).
/// The stored object as a value, and what a patch or an apply makes of it.
fn changed(
    res: &Resource,
    stored: &[u8],
    revision: i64,
    patch: Option<(BodyType, Bytes)>,
    apply: Option<std::sync::Arc<crate::ssa::Apply>>,
) -> Result<(Value, Option<Value>), Status> {
    let old = objects::to_value(res, &objects::served(res, stored, revision)?)?;
    let patched = match (patch, apply) {
        (Some((ty, body)), _) => Some(apply_patch(ty, &body, old.clone())?),
        (None, Some(apply)) => Some(apply.run(Some(&old))?),
        (None, None) => None,
    };
    if let Some(p) = &patched {
        crate::api::patch::check_patched_size(p)?;
    }
    Ok((old, patched))
}

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

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

pub(super) fn strip_rv(res: &Resource, obj: Served) -> Result<Served, Status> {
    // The served message (its own apiVersion and kind), re-encoded without a resourceVersion:
    // a dry run was never stored, so it has none. Not through the storage encoding, which
    // would convert kinds stored in another version (events.k8s.io Events).
    let mut v = objects::to_value(res, &obj)?;
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    objects::from_value(res, &v)
}

/// The uid a PUT's object names is a precondition on the stored object's (upstream's
/// `DefaultUpdatedObjectInfo.Preconditions`), checked before its resourceVersion: another
/// object of the same name is a 409, not an update of it. A patch has no such precondition.
fn uid_precondition(res: &Resource, name: &str, new: &Value, old: &Value) -> Result<(), Status> {
    let uid = |obj: &Value| {
        obj.at("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (want, have) = (uid(new), uid(old));
    if want.is_empty() || want == have {
        return Ok(());
    }
    Err(Status::conflict(
        gr(res),
        name,
        &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {have}"),
    ))
}
