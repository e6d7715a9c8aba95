//! Server-side apply and managedFields, for every kind: the write pipeline (`api::rest`) asks
//! `Ownership::update` to record who changed what on every create, update, patch and
//! subresource write, and `Ownership::apply` to merge an apply configuration into the live
//! object (conflicts, force, pruning of fields a manager no longer applies). Types come from
//! `model` (built-in kinds' OpenAPI, or a CRD's schema through `Strategy::field_model`).
//! On every write: `benches/apply.rs` guards it beside a strategic merge patch.

pub mod fieldset;
pub mod managed;
pub mod model;
pub mod typed;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::status::{Cause, Status};
pub use fieldset::{FieldSet, PathElement, path_text};
pub use managed::{Entry, Managed, Operation};
pub use model::Model;
use typed::Typed;

/// Longest field manager name (upstream's `FieldManagerMaxLength`).
pub const MAX_MANAGER_LEN: usize = 128;

/// The annotation client-side apply keeps its last configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose last-applied annotation server-side apply upgrades and keeps in sync.
const KUBECTL: &str = "kubectl";

/// Upstream's manager of the fields an object had before its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Total annotation bytes an object may have (upstream's `TotalAnnotationSizeLimitB`): a
/// last-applied annotation that would pass it is dropped instead, as upstream does.
const MAX_ANNOTATION_BYTES: usize = 256 * 1024;

/// The field manager of a write that named none: the User-Agent up to its first `/`,
/// printable characters only, at most `MAX_MANAGER_LEN` bytes (upstream's
/// `prefixFromUserAgent`; `kubectl/v1.36.0 (linux/amd64) ...` is `kubectl`).
pub fn manager_from_user_agent(ua: &str) -> String {
    let prefix = ua.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_MANAGER_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// `ValidateFieldManager`'s causes for a `fieldManager` a client sent.
pub fn validate_manager(manager: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if manager.len() > MAX_MANAGER_LEN {
        causes.push(crate::kinds::field::too_long(
            "fieldManager".into(),
            MAX_MANAGER_LEN,
        ));
    }
    for (i, c) in manager.char_indices() {
        if c.is_control() {
            causes.push(crate::kinds::field::invalid(
                "fieldManager".into(),
                &json!(manager),
                &format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    causes
}

/// Fields a write through this endpoint does not own (upstream's reset fields): the status
/// on the main resource of a kind with a status subresource, the spec through `status`.
pub fn reset_fields(has_status_subresource: bool, subresource: &str) -> FieldSet {
    let mut s = FieldSet::new();
    match subresource {
        "" if has_status_subresource => s.insert(&[PathElement::Field("status".into())]),
        "status" => s.insert(&[PathElement::Field("spec".into())]),
        _ => {}
    }
    s
}

/// Annotations upstream's conversion to its internal version and back adds to every object of
/// a kind, and so to what a create is compared with (a DaemonSet's template generation).
const CONVERSION_ANNOTATIONS: &[(&str, &str, &str, &str)] = &[(
    "apps/v1",
    "DaemonSet",
    "deprecated.daemonset.template.generation",
    "0",
)];

fn conversion_annotation(api_version: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    CONVERSION_ANNOTATIONS
        .iter()
        .find(|(av, k, _, _)| *av == api_version && *k == kind)
        .map(|(_, _, key, value)| (*key, *value))
}

/// `obj` with annotation `key` (unless it has one).
fn with_annotation(obj: &Value, key: &str, value: &str) -> Value {
    let mut out = obj.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(a) = meta
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    {
        a.entry(key).or_insert_with(|| json!(value));
    }
    out
}

/// Parses the `fieldsV1` a create left as text (`Ownership::created`) into the object, for
/// whatever reads the object's managedFields before it is stored (admission webhooks, CEL
/// policies, a custom resource's JSON).
pub fn materialize(obj: &mut Value) {
    let Some(entries) = obj
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for e in entries {
        if let Some(f) = e.get_mut("fieldsV1")
            && let Some(text) = kapi_codec::to_pb::raw_json_text(f)
            && let Ok(v) = serde_json::from_str::<Value>(text)
        {
            *f = v;
        }
    }
}

/// One write's view of ownership: who writes, through which version and endpoint.
pub struct Ownership<'a> {
    pub model: &'a Model,
    pub manager: &'a str,
    /// The apiVersion the client wrote (`group/version`).
    pub api_version: &'a str,
    pub kind: &'a str,
    /// "" for the main resource.
    pub subresource: &'a str,
    /// Fields this endpoint does not own (`reset_fields`).
    pub ignored: FieldSet,
    /// The entries' time: RFC 3339, seconds.
    pub now: String,
}

fn managed_of(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/managedFields")
}

fn set_managed(obj: &mut Value, managed: &Managed) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    match managed.encode() {
        Value::Array(a) if a.is_empty() => {
            meta.remove("managedFields");
        }
        v => {
            meta.insert("managedFields".into(), v);
        }
    }
}

impl Ownership<'_> {
    fn typed(&self) -> Typed<'_> {
        Typed { model: self.model }
    }

    fn root(&self) -> model::TypeId {
        self.model.root_for(self.api_version, self.kind)
    }

    /// What the writer owns of a change: not the ignored fields, not server-owned metadata.
    fn owned_part(&self, set: &FieldSet) -> FieldSet {
        set.recursive_difference(&self.ignored)
            .difference(managed::strip_set_ref())
    }

    /// Records a non-apply write (create, update, patch, subresource) of `new` over `live`
    /// (None on create) in `new`'s managedFields: the manager owns what it changed, and others
    /// lose it. The managedFields a client sent are kept when they decode (a client may edit
    /// them; `[{}]` clears them), else the live object's are. Never fails, as upstream's
    /// `UpdateNoErrors`.
    pub fn update(&self, live: Option<&Value>, new: &mut Value) {
        let sent = managed_of(new).filter(|v| v.as_array().is_some_and(|a| !a.is_empty()));
        let mut managed = match sent.and_then(|v| Managed::decode(Some(v))) {
            Some(m) if self.subresource.is_empty() => m,
            _ => live
                .and_then(|l| Managed::decode(managed_of(l)))
                .unwrap_or_default(),
        };
        let root = self.root();
        let zero;
        let base = match live {
            Some(l) => l,
            None => {
                zero = self.model.zero_object(root);
                &zero
            }
        };
        let converted;
        let seen: &Value = match (live, conversion_annotation(self.api_version, self.kind)) {
            (None, Some((key, value))) => {
                converted = with_annotation(new, key, value);
                &converted
            }
            _ => new,
        };
        let mut cmp = self.typed().compare(root, base, seen);
        let mut changed = std::mem::take(&mut cmp.modified);
        changed.union_owned(std::mem::take(&mut cmp.added));
        for e in &mut managed.entries {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
        let own = self.owned_part(&changed);
        if !own.is_empty() {
            let mut fields = managed
                .find(
                    self.manager,
                    Operation::Update,
                    self.api_version,
                    self.subresource,
                )
                .map(|e| e.fields.clone())
                .unwrap_or_default();
            fields.union_owned(own);
            managed.set(Entry {
                manager: self.manager.to_string(),
                operation: Operation::Update,
                api_version: self.api_version.to_string(),
                time: Some(self.now.clone()),
                subresource: self.subresource.to_string(),
                fields,
            });
        }
        managed.drop_empty();
        managed.cap_updates();
        set_managed(new, &managed);
    }

    /// The managedFields of a create of `new` (None: nobody owns a field), as `update(None,
    /// new)` leaves them, without changing `new`. Unless the client sent managedFields of its
    /// own, one walk writes the entry's `fieldsV1` directly (`Typed::created_fields_v1`).
    pub fn created(&self, new: &Value) -> Option<Value> {
        let sent = managed_of(new).filter(|v| v.as_array().is_some_and(|a| !a.is_empty()));
        if sent.is_some_and(|v| Managed::decode(Some(v)).is_some()) {
            let mut copy = new.clone();
            self.update(None, &mut copy);
            return managed_of(&copy).cloned();
        }
        let root = self.root();
        let zero = self.model.zero_object(root);
        let converted;
        let seen = match conversion_annotation(self.api_version, self.kind) {
            Some((key, value)) => {
                converted = with_annotation(new, key, value);
                &converted
            }
            None => new,
        };
        let fields = self.typed().created_fields_v1(
            root,
            &zero,
            seen,
            &self.ignored,
            managed::strip_set_ref(),
        );
        if fields.is_empty() {
            return None;
        }
        // Kept as text until it is stored (or read: `materialize`).
        let fields = String::from_utf8(fields)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let mut entry = serde_json::Map::new();
        entry.insert("manager".into(), json!(self.manager));
        entry.insert("operation".into(), json!(Operation::Update.as_str()));
        entry.insert("apiVersion".into(), json!(self.api_version));
        entry.insert("time".into(), json!(self.now));
        entry.insert("fieldsType".into(), json!("FieldsV1"));
        entry.insert(
            "fieldsV1".into(),
            kapi_codec::to_pb::raw_json_placeholder(fields),
        );
        if !self.subresource.is_empty() {
            entry.insert("subresource".into(), json!(self.subresource));
        }
        Some(Value::Array(vec![Value::Object(entry)]))
    }

    /// Server-side apply of `config` to `live` (None: the object is created): merged by the
    /// type model, fields this manager applied before and no longer applies removed unless
    /// another manager owns them, conflicts with other managers a 409 unless `force` (or
    /// unless client-side apply's last-applied annotation shows they are kubectl's own, for
    /// the `kubectl` manager). Gives the object to write, with its managedFields.
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        force: bool,
    ) -> Result<Value, Status> {
        if managed_of(config).is_some_and(|v| !v.is_null()) {
            return Err(Status::bad_request("metadata.managedFields must be nil"));
        }
        let typed = self.typed();
        let root = self.root();
        let empty = json!({});
        let live_v = live.unwrap_or(&empty);
        let mut managed = live
            .and_then(|l| Managed::decode(managed_of(l)))
            .unwrap_or_default();
        if managed.entries.is_empty() && live.is_some() {
            // An object written before ownership was tracked: its fields belong to one
            // Update manager, so that the first applier cannot take them silently.
            let cmp = typed.compare(root, &empty, live_v);
            let before = self.owned_part(&cmp.added.union(&cmp.modified));
            managed.set(Entry {
                manager: BEFORE_FIRST_APPLY.into(),
                operation: Operation::Update,
                api_version: self.api_version.to_string(),
                time: Some(self.now.clone()),
                subresource: String::new(),
                fields: before,
            });
            managed.drop_empty();
        }
        let bad = |e: String| {
            Status::bad_request(format!(
                "failed to create typed patch object ({}): {e}",
                gvk_text(self.api_version, self.kind)
            ))
        };
        let applied = typed
            .field_set(root, config, true)
            .map_err(bad)?
            .recursive_difference(&self.ignored);
        let mut merged = typed.merge(root, live_v, config).map_err(bad)?;
        let me = |e: &Entry| e.is(self.manager, Operation::Apply, "", self.subresource);
        if let Some(last) = managed.entries.iter().find(|e| me(e)) {
            let mut owned = applied.clone();
            for e in managed.entries.iter().filter(|e| !me(e)) {
                owned.union_with(&e.fields);
            }
            let prune = typed::to_prune(&last.fields, &owned);
            typed.remove(root, &mut merged, &prune);
        }
        let cmp = typed.compare(root, live_v, &merged);
        let changed = cmp.modified.union(&cmp.added);
        let conflicts: Vec<(usize, FieldSet)> = managed
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !me(e))
            .map(|(i, e)| (i, e.fields.intersection(&changed)))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if !conflicts.is_empty() && !force {
            let allowed = match self.manager {
                KUBECTL => live.and_then(|l| self.last_applied_owned(l)),
                _ => None,
            };
            let remaining: Vec<(String, Vec<Vec<PathElement>>)> = conflicts
                .iter()
                .map(|(i, c)| {
                    let paths = c
                        .paths()
                        .into_iter()
                        .filter(|p| !allowed.as_ref().is_some_and(|a| a.has(p)))
                        .collect();
                    (managed.entries[*i].display(), paths)
                })
                .filter(|(_, p): &(String, Vec<_>)| !p.is_empty())
                .collect();
            if !remaining.is_empty() {
                return Err(conflict_status(remaining));
            }
        }
        for (i, c) in &conflicts {
            let e = &mut managed.entries[*i];
            e.fields = e.fields.difference(c);
        }
        for e in managed.entries.iter_mut().filter(|e| !me(e)) {
            e.fields = e.fields.difference(&cmp.removed);
        }
        let mine = self.owned_part(&applied);
        let previous = managed.entries.iter().find(|e| me(e)).cloned();
        let unchanged = merged == *live_v
            && previous
                .as_ref()
                .is_some_and(|p| p.fields == mine && p.api_version == self.api_version);
        if !unchanged {
            managed.set(Entry {
                manager: self.manager.to_string(),
                operation: Operation::Apply,
                api_version: self.api_version.to_string(),
                time: Some(self.now.clone()),
                subresource: self.subresource.to_string(),
                fields: mine,
            });
        }
        managed.drop_empty();
        managed.cap_updates();
        if self.manager == KUBECTL {
            sync_last_applied(live_v, config, &mut merged);
        }
        set_managed(&mut merged, &managed);
        Ok(merged)
    }

    /// The fields of client-side apply's last configuration that still have its values in
    /// `live`: conflicts on them are kubectl's own (upstream's lastAppliedManager).
    fn last_applied_owned(&self, live: &Value) -> Option<FieldSet> {
        let text = live
            .pointer("/metadata/annotations")?
            .get(LAST_APPLIED)?
            .as_str()
            .filter(|s| !s.is_empty())?;
        let last: Value = serde_json::from_str(text).ok()?;
        let typed = self.typed();
        let root = self.root();
        let set = typed.field_set(root, &last, false).ok()?;
        let cmp = typed.compare(root, &last, live);
        Some(
            set.difference(&cmp.modified)
                .difference(&cmp.added)
                .difference(&cmp.removed),
        )
    }
}

/// An apply request that owns what it needs, so that it can run off the core (on the worker
/// pool) and again on every retry of a lost race.
#[derive(Debug)]
pub struct Apply {
    pub model: Arc<Model>,
    pub manager: String,
    pub api_version: String,
    pub kind: String,
    pub subresource: String,
    pub ignored: FieldSet,
    pub now: String,
    /// The decoded apply configuration.
    pub config: Value,
    pub force: bool,
}

impl Apply {
    /// `Ownership::apply` of this request to `live` (None: a create).
    pub fn run(&self, live: Option<&Value>) -> Result<Value, Status> {
        Ownership {
            model: &self.model,
            manager: &self.manager,
            api_version: &self.api_version,
            kind: &self.kind,
            subresource: &self.subresource,
            ignored: self.ignored.clone(),
            now: self.now.clone(),
        }
        .apply(live, &self.config, self.force)
    }
}

/// Keeps client-side apply's annotation in step with what kubectl applies server-side, when
/// the object has one (upstream's lastAppliedUpdater); dropped when it would be too large.
fn sync_last_applied(live: &Value, config: &Value, merged: &mut Value) {
    let had = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !had {
        return;
    }
    let mut cfg = config.clone();
    if let Some(a) = cfg
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    let text = serde_json::to_string(&cfg).unwrap_or_default();
    let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    let Some(a) = annotations.as_object_mut() else {
        return;
    };
    a.insert(LAST_APPLIED.into(), json!(text));
    let total: usize = a
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if total > MAX_ANNOTATION_BYTES {
        a.remove(LAST_APPLIED);
    }
}

/// A GroupVersionKind as Go prints it: `apps/v1, Kind=Deployment`, `/v1, Kind=ConfigMap`.
pub fn gvk_text(api_version: &str, kind: &str) -> String {
    match api_version.split_once('/') {
        Some((g, v)) => format!("{g}/{v}, Kind={kind}"),
        None => format!("/{api_version}, Kind={kind}"),
    }
}

/// The 409 of an apply that conflicts (upstream's `NewConflictError`): one cause per path,
/// managers in order.
pub fn conflict_status(mut conflicts: Vec<(String, Vec<Vec<PathElement>>)>) -> Status {
    conflicts.sort_by(|a, b| a.0.cmp(&b.0));
    let total: usize = conflicts.iter().map(|(_, p)| p.len()).sum();
    let mut causes = Vec::with_capacity(total);
    for (manager, paths) in &conflicts {
        for p in paths {
            causes.push(Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {manager}"),
                field: path_text(p),
            });
        }
    }
    let message = if total == 1 {
        format!(
            "Apply failed with 1 conflict: {}: {}",
            causes[0].message, causes[0].field
        )
    } else {
        let mut lines = Vec::new();
        for (manager, paths) in &conflicts {
            lines.push(format!("conflict with {manager}:"));
            for p in paths {
                lines.push(format!("- {}", path_text(p)));
            }
        }
        format!("Apply failed with {total} conflicts: {}", lines.join("\n"))
    };
    let mut s = Status::new(409, "Conflict", message);
    s.causes = causes;
    s
}

#[cfg(test)]
mod tests;
