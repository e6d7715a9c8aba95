//! Server-side apply and managedFields on the write pipeline: a PATCH of
//! `application/apply-patch+yaml` is checked (fieldManager, force, its object's type) and
//! merged into the live object by `crate::ssa` (or creates the object: 201); every other
//! write records its manager's fields after the first defaulting (`track_fields`).

use crate::jsonptr::At;
use std::sync::Arc;

use super::*;
use crate::ssa;

/// What a PATCH's Content-Type may be (upstream's 415 lists them for patches).
const PATCH_TYPES: &str = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json";

impl Ctx<'_> {
    /// Whether this request is a server-side apply.
    pub(super) fn is_apply(&self) -> bool {
        self.rr.verb == Verb::Patch
            && self
                .req
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| {
                    matches!(negotiate::content_type(Some(ct)), Ok(BodyType::ApplyYaml))
                })
    }

    /// The options kind upstream names in a 422 about this request's options.
    fn options_kind(&self) -> &'static str {
        match self.rr.verb {
            Verb::Create => "CreateOptions",
            Verb::Patch => "PatchOptions",
            _ => "UpdateOptions",
        }
    }

    /// The field manager: `fieldManager` (validated as upstream, 422), else the User-Agent's
    /// program name.
    pub(super) fn field_manager(&self) -> Result<String, Status> {
        match self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) => {
                let causes = ssa::validate_manager(m);
                if !causes.is_empty() {
                    return Err(options_invalid(self.options_kind(), causes));
                }
                Ok(m.to_string())
            }
            None => Ok(ssa::manager_from_user_agent(
                self.req
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )),
        }
    }

    fn field_model(&self) -> Arc<ssa::Model> {
        self.res
            .strategy
            .field_model()
            .unwrap_or_else(ssa::Model::builtin)
    }

    fn reset_fields(&self) -> ssa::FieldSet {
        let has_status = self.res.subresources.iter().any(|s| s == "status");
        ssa::reset_fields(has_status, self.rr.subresource.as_deref().unwrap_or(""))
    }

    /// The ownership record of this request's writer (None for an apply, which makes its
    /// own).
    fn ownership<'m>(
        &'m self,
        model: &'m ssa::Model,
        manager: &'m str,
        api_version: &'m str,
    ) -> ssa::Ownership<'m> {
        ssa::Ownership {
            model,
            manager,
            api_version,
            kind: &self.res.kind,
            subresource: self.rr.subresource.as_deref().unwrap_or(""),
            ignored: self.reset_fields(),
            now: now_rfc3339(),
        }
    }

    /// Records a non-apply write of `obj` over `old` in its managedFields.
    pub(super) fn track_fields(&self, old: &Value, obj: &mut Value) -> Result<(), Status> {
        if self.is_apply() {
            return Ok(());
        }
        let manager = self.field_manager()?;
        let model = self.field_model();
        let api_version = self.res.api_version();
        self.ownership(&model, &manager, &api_version)
            .update(Some(old), obj);
        Ok(())
    }

    /// The managedFields of a create: what the decoded and defaulted body `obj` sets, before
    /// the kind prepares it (as upstream's create handler records them; fields the strategy
    /// sets, such as a Job's selector, are nobody's). An apply's are the ones it made.
    pub(super) fn created_fields(&self, obj: &Value) -> Result<Option<Value>, Status> {
        if self.is_apply() {
            return Ok(obj.at("/metadata/managedFields").cloned());
        }
        let manager = self.field_manager()?;
        let model = self.field_model();
        let api_version = self.res.api_version();
        Ok(self.ownership(&model, &manager, &api_version).created(obj))
    }

    /// PATCH with `application/apply-patch+yaml`: the live object merged with the
    /// configuration, or the object created from it when there is none (201).
    pub(super) async fn apply(&self) -> Result<Response, Status> {
        let manager = match self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(_) => self.field_manager()?,
            None => {
                return Err(options_invalid(
                    "PatchOptions",
                    vec![crate::kinds::field::required_why(
                        "fieldManager".into(),
                        "is required for apply patch",
                    )],
                ));
            }
        };
        let force = match self.query.get("force") {
            None | Some("") => false,
            Some(v) => matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"),
        };
        let config = self.body_offloaded().await?;
        let av = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
        if !config.is_object() || av != self.res.api_version() || kind != self.res.kind {
            return Err(Status::bad_request(format!(
                "invalid object type: {}",
                match av.is_empty() && kind.is_empty() {
                    true => ", Kind=".to_string(),
                    false => ssa::gvk_text(av, kind),
                }
            )));
        }
        let body_name = config
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !body_name.is_empty() && body_name != self.name() {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                self.name()
            )));
        }
        let apply = Arc::new(ssa::Apply {
            model: self.field_model(),
            manager,
            api_version: self.res.api_version(),
            kind: self.res.kind.clone(),
            subresource: self.rr.subresource.clone().unwrap_or_default(),
            ignored: self.reset_fields(),
            now: now_rfc3339(),
            config,
            force,
        });
        match self.current().await {
            Ok(_) => self.write_update(true, write::Change::Apply(apply)).await,
            Err(s) if s.code == 404 && self.rr.subresource.is_none() => {
                let mut obj = apply.run(None)?;
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), json!(self.name()));
                }
                match self.create_object(obj).await {
                    // Another writer created it meanwhile: apply to theirs.
                    Err(s) if s.reason == "AlreadyExists" => {
                        self.write_update(true, write::Change::Apply(apply)).await
                    }
                    answer => answer,
                }
            }
            Err(s) => Err(s),
        }
    }
}

/// Puts `managed` (or nothing) in the object's managedFields.
pub(super) fn set_managed_fields(obj: &mut Value, managed: Option<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match managed {
            Some(m) => meta.insert("managedFields".into(), m),
            None => meta.remove("managedFields"),
        };
    }
}

/// 422 for invalid request options, named as upstream names them (`PatchOptions.meta.k8s.io`).
pub(super) fn options_invalid(kind: &str, causes: Vec<Cause>) -> Status {
    let mut s = Status::invalid("meta.k8s.io", kind, "", causes);
    s.message = s.message.replacen(kind, &format!("{kind}.meta.k8s.io"), 1);
    s
}

/// 415 for a PATCH of a type upstream does not take (`application/apply-patch+cbor` needs a
/// feature gate that is off by default in 1.36).
pub(super) fn unsupported_patch_type() -> Status {
    let mut s = Status::new(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: {PATCH_TYPES}"
        ),
    );
    s.empty_details = true;
    s
}
