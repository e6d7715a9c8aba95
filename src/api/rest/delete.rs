//! DELETE and DELETECOLLECTION, as upstream's generic store deletes (`BeforeDelete`, graceful
//! deletion, the garbage collector's finalizers) and as its namespace REST does:
//!
//! - preconditions (`uid`, `resourceVersion`) are checked first: 409 when one does not hold;
//! - graceful deletion (pods, `Strategy::grace_period`): the first DELETE sets
//!   `deletionTimestamp` to now + the grace period and `deletionGracePeriodSeconds`, and the
//!   object stays for its kubelet; a later DELETE may only shorten the period; a period of 0
//!   writes the timestamp, then deletes (watchers see MODIFIED, then DELETED, as upstream's);
//! - `propagationPolicy`/`orphanDependents` and the kind's default policy put the garbage
//!   collector's `orphan` or `foregroundDeletion` finalizer on the object;
//! - an object with finalizers is only marked (`deletionTimestamp` now, grace 0); it goes when
//!   an update empties them (`write_update`);
//! - namespaces: the first DELETE makes them Terminating and does nothing else; they go when
//!   the namespace controller (kube-controller-manager's) has deleted their contents and
//!   emptied `spec.finalizers` through `namespaces/finalize`.
//!
//! Every write is made on the revision its object was read at; a lost race reads the object
//! again and decides again (bounded).

use super::*;
use crate::admission::Operation;
use crate::api::rest::write::Current;
use crate::jsonptr::At;
use crate::kinds::{GcPolicy, Strategy};

/// Attempts of a delete that lost a race with other writers before it answers 409.
const MAX_DELETE_ATTEMPTS: usize = 16;

/// The garbage collector's finalizers.
const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// What a DELETE did to one object.
pub(super) enum Deleted {
    /// Gone from the store: its last state, at the deletion's revision.
    Gone(Served),
    /// Still there, marked for deletion (graceful deletion, finalizers, a Terminating
    /// namespace): its state now.
    Kept(Served),
    /// A graceful deletion with a period no longer than the one asked for was already under
    /// way: nothing changed.
    Pending(Served),
}

/// The parts of DeleteOptions the store acts on.
#[derive(Clone)]
pub(super) struct Options {
    /// The grace period asked for; a negative one is 1 s.
    grace: Option<i64>,
    orphan_dependents: Option<bool>,
    policy: Option<String>,
    uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
    /// Whether the delete passes admission (an eviction's pod delete does not: the eviction
    /// was admitted).
    pub admit: bool,
}

impl Options {
    pub fn read(opts: &Value, dry_run: bool) -> Options {
        let text = |p: &str| opts.at(p).and_then(Value::as_str).map(str::to_owned);
        Options {
            grace: opts
                .get("gracePeriodSeconds")
                .and_then(Value::as_i64)
                .map(|g| if g < 0 { 1 } else { g }),
            orphan_dependents: opts.get("orphanDependents").and_then(Value::as_bool),
            policy: text("/propagationPolicy"),
            uid: text("/preconditions/uid"),
            resource_version: text("/preconditions/resourceVersion"),
            dry_run,
            admit: true,
        }
    }

    /// Whether the client left what happens to dependents to the kind's default.
    fn no_policy(&self) -> bool {
        self.orphan_dependents.is_none() && self.policy.is_none()
    }
}

/// What to do with the object after the delete rules have run on it.
enum Step {
    /// Write the changed object; then delete it when `then_delete` (grace period 0).
    Write { then_delete: bool },
    /// Delete it as it is.
    DeleteNow,
    /// Leave it: a graceful deletion is pending.
    Pending,
    /// Leave it: a Terminating namespace waiting for its finalizers.
    Unchanged,
}

impl Ctx<'_> {
    pub(super) async fn delete(&self) -> Result<Response, Status> {
        let opts = self.read_delete_options()?;
        let warnings = self.delete_warnings(&opts);
        let current = self.current().await?;
        let resp = match self.delete_object(self.name(), current, &opts).await? {
            Deleted::Kept(obj) => {
                // Upstream answers 202 when an object that stays was deleted with
                // orphanDependents=false (and 200 otherwise, for old clients' sake).
                let code = if opts.orphan_dependents == Some(false) {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                };
                self.object_response(code, &obj)?
            }
            Deleted::Gone(obj) | Deleted::Pending(obj) => {
                if self.res.strategy.returns_deleted_object() {
                    self.object_response(StatusCode::OK, &obj)?
                } else {
                    let v = objects::to_value(self.res, &obj)?;
                    let uid = v.at("/metadata/uid").and_then(Value::as_str).unwrap_or("");
                    let status = Status::success_deleted(gr(self.res), self.name(), uid);
                    self.ok(
                        StatusCode::OK,
                        objects::encode_status(&status, self.enc, self.pretty),
                    )
                }
            }
        };
        Ok(self.warnings_response(resp, &warnings))
    }

    pub(super) async fn delete_collection(&self) -> Result<Response, Status> {
        let (labels, fields, paths) = self.selectors()?;
        let opts = self.read_delete_options()?;
        let warnings = self.delete_warnings(&opts);
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
            let name = o.key.rsplit(|b| *b == b'/').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            let current = Current {
                value: o.value.clone(),
                mod_revision: o.mod_revision,
            };
            match self.delete_object(&name, current, &opts).await {
                Ok(_) => deleted.push(obj),
                Err(e) if e.code == 404 => deleted.push(obj),
                Err(e) => return Err(e),
            }
        }
        let rv = rev.to_string();
        let meta = ListMeta {
            resource_version: &rv,
            ..Default::default()
        };
        let resp = self.ok(
            StatusCode::OK,
            objects::encode_list(self.res, &deleted, &meta, self.enc, self.pretty)?,
        );
        Ok(self.warnings_response(resp, &warnings))
    }

    /// DeleteOptions as the store acts on them, dry run included.
    fn read_delete_options(&self) -> Result<Options, Status> {
        let raw = self.delete_options()?;
        let dry_run = self.dry_run()?
            || raw
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        Ok(Options::read(&raw, dry_run))
    }

    fn delete_warnings(&self, opts: &Options) -> Vec<String> {
        match self.res.strategy.default_orphan_warning() {
            Some(w) if opts.no_policy() => vec![w.to_string()],
            _ => Vec::new(),
        }
    }

    /// Deletes (or marks for deletion) the object `name`, starting from its `current` state.
    pub(super) async fn delete_object(
        &self,
        name: &str,
        mut current: Current,
        opts: &Options,
    ) -> Result<Deleted, Status> {
        let key = self.key(name);
        let strategy = &*self.res.strategy;
        let mut admitted = false;
        for _ in 0..MAX_DELETE_ATTEMPTS {
            let served = objects::served(self.res, &current.value, current.mod_revision)?;
            let mut obj = objects::to_value(self.res, &served)?;
            self.check_preconditions(name, &obj, current.mod_revision, opts)?;
            if !admitted && opts.admit {
                let attrs = self.admission_attrs(Operation::Delete, name, Some(&obj), opts.dry_run);
                self.api.admission.mutate(self.api, &attrs, None).await?;
                self.api.admission.validate(self.api, &attrs, None).await?;
                admitted = true;
            }
            let step = if strategy.terminates_before_delete() {
                terminate(strategy, &mut obj, opts)
            } else {
                plan(strategy, &mut obj, opts)
            };
            let outcome = match step {
                Step::Pending => return Ok(Deleted::Pending(served)),
                Step::Unchanged => return Ok(Deleted::Kept(served)),
                Step::DeleteNow => {
                    if opts.dry_run {
                        return Ok(Deleted::Gone(served));
                    }
                    self.api
                        .store
                        .delete(key.as_bytes(), Some(current.mod_revision))
                        .await
                }
                Step::Write { then_delete } => {
                    let (value, _) =
                        objects::encode_for_storage(self.res, &obj, FieldValidation::Ignore)?;
                    if opts.dry_run || (!then_delete && value == current.value) {
                        // A dry run, or nothing to change (an object already marked).
                        let s = objects::served(self.res, &value, current.mod_revision)?;
                        return Ok(if then_delete {
                            Deleted::Gone(s)
                        } else {
                            Deleted::Kept(s)
                        });
                    }
                    match self
                        .api
                        .store
                        .update(key.as_bytes(), value, current.mod_revision)
                        .await
                    {
                        Ok(kv) if !then_delete => {
                            return Ok(Deleted::Kept(objects::served(
                                self.res,
                                &kv.value,
                                kv.mod_revision,
                            )?));
                        }
                        Ok(kv) => {
                            // Marked with grace 0: it goes now. Another writer may have
                            // deleted it in between, which is as good.
                            let written = objects::served(self.res, &kv.value, kv.mod_revision)?;
                            match self
                                .api
                                .store
                                .delete(key.as_bytes(), Some(kv.mod_revision))
                                .await
                            {
                                Err(
                                    StoreError::NotFound | StoreError::Conflict { current: None },
                                ) => {
                                    return Ok(Deleted::Gone(written));
                                }
                                other => other,
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match outcome {
                Ok(gone) => {
                    self.released(&obj).await;
                    return Ok(Deleted::Gone(objects::served(
                        self.res,
                        &gone.value,
                        gone.mod_revision,
                    )?));
                }
                Err(StoreError::Conflict {
                    current: Some(newer),
                }) => {
                    // Another writer won: decide again on what it wrote.
                    current = Current {
                        value: newer.value,
                        mod_revision: newer.mod_revision,
                    };
                }
                Err(StoreError::NotFound | StoreError::Conflict { current: None }) => {
                    return Err(Status::not_found(gr(self.res), name));
                }
                Err(e) => return Err(store_error(self.res, name, e)),
            }
        }
        Err(Status::modified_conflict(gr(self.res), name))
    }

    /// What a deleted object held goes back: a Service's cluster IPs and node ports.
    pub(super) async fn released(&self, obj: &Value) {
        if self.is_service() {
            super::allocation::release_deleted(self.api, obj).await;
            super::node_ports::release(self.api, &super::node_ports::held(obj)).await;
        }
    }

    /// The preconditions of DeleteOptions, with upstream's messages: the namespace REST's for
    /// namespaces, `BeforeDelete`'s (which names the kind) for the rest.
    fn check_preconditions(
        &self,
        name: &str,
        obj: &Value,
        rev: i64,
        opts: &Options,
    ) -> Result<(), Status> {
        let uid = obj
            .at("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        let rv = rev.to_string();
        let namespace = self.res.strategy.terminates_before_delete();
        let kind_gr = GroupResource {
            group: &self.res.group,
            resource: &self.res.kind,
        };
        if let Some(want) = opts.uid.as_deref().filter(|w| *w != uid) {
            return Err(if namespace {
                Status::conflict(
                    gr(self.res),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                    ),
                )
            } else {
                Status::conflict(
                    kind_gr,
                    name,
                    &format!(
                        "the UID in the precondition ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
                    ),
                )
            });
        }
        if let Some(want) = opts.resource_version.as_deref().filter(|w| *w != rv) {
            return Err(if namespace {
                Status::conflict(
                    gr(self.res),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
                    ),
                )
            } else {
                Status::conflict(
                    kind_gr,
                    name,
                    &format!(
                        "the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({rv}). The object might have been modified"
                    ),
                )
            });
        }
        Ok(())
    }
}

/// Whether an update that leaves `new` should delete the object instead of writing it
/// (upstream's `ShouldDeleteDuringUpdate`): its finalizers are all gone, it was being deleted
/// with no grace period left, and (namespaces) its `spec.finalizers` are gone too.
pub(super) fn deletes_during_update(strategy: &dyn Strategy, new: &Value, old: &Value) -> bool {
    let grace = old
        .at("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    finalizers(new).is_empty()
        && old.at("/metadata/deletionTimestamp").is_some()
        && grace == 0
        && !(strategy.terminates_before_delete() && spec_finalizers_left(new))
}

fn spec_finalizers_left(obj: &Value) -> bool {
    obj.at("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.at("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn meta_mut(obj: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    obj.as_object_mut()?.get_mut("metadata")?.as_object_mut()
}

fn timestamp_secs(obj: &Value) -> Option<i64> {
    let ts = obj.at("/metadata/deletionTimestamp")?.as_str()?;
    kapi_codec::goscalar::parse_rfc3339(ts).ok().map(|(s, _)| s)
}

/// What graceful deletion makes of a DELETE (upstream's `BeforeDelete`).
enum Grace {
    /// The kind is not deleted gracefully, or the grace period has run out.
    No,
    /// Marked (again) with this grace period.
    Yes(i64),
    /// Already being deleted with a grace period no longer than the one asked for.
    Pending,
}

fn before_delete(strategy: &dyn Strategy, obj: &mut Value, asked: Option<i64>) -> Grace {
    let Some(period) = strategy.grace_period(obj, asked) else {
        return Grace::No;
    };
    let now = unix_now();
    let current = obj
        .at("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .map(|g| if g < 0 { 1 } else { g });
    if let Some(ts) = timestamp_secs(obj) {
        // Being deleted already: only a shorter grace period changes anything.
        let Some(current) = current.filter(|g| *g != 0) else {
            return Grace::No;
        };
        return match asked {
            Some(p) if p < current => {
                if let Some(m) = meta_mut(obj) {
                    m.insert("deletionTimestamp".into(), json!(rfc3339(ts - current + p)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(p));
                }
                Grace::Yes(p)
            }
            _ => Grace::Pending,
        };
    }
    if let Some(m) = meta_mut(obj) {
        m.insert("deletionTimestamp".into(), json!(rfc3339(now + period)));
        m.insert("deletionGracePeriodSeconds".into(), json!(period));
        // Controllers must see the object change: its generation moves on.
        if let Some(g) = m
            .get("generation")
            .and_then(Value::as_i64)
            .filter(|g| *g > 0)
        {
            m.insert("generation".into(), json!(g + 1));
        }
    }
    Grace::Yes(period)
}

/// Sets the garbage collector's finalizers as the options, the object's finalizers and the
/// kind's default say (upstream's `deletionFinalizersForGarbageCollection`); whether they
/// changed.
fn gc_finalizers(strategy: &dyn Strategy, obj: &mut Value, opts: &Options) -> bool {
    let old = finalizers(obj);
    let has = |f: &str| {
        old.iter()
            .find(|x| *x == ORPHAN || *x == FOREGROUND)
            .map(|x| x == f)
    };
    let policy = opts.policy.as_deref();
    let orphan = match (opts.orphan_dependents, policy) {
        (Some(o), _) => o,
        (None, Some("Orphan")) => true,
        (None, Some("Background" | "Foreground")) => false,
        _ => has(ORPHAN).unwrap_or(strategy.default_gc_policy() == GcPolicy::OrphanDependents),
    };
    let foreground = match (opts.orphan_dependents, policy) {
        (Some(_), _) => false,
        (None, Some("Foreground")) => true,
        (None, Some("Background" | "Orphan")) => false,
        _ => has(FOREGROUND).unwrap_or(false),
    };
    let new = with_collector_finalizers(&old, orphan, foreground);
    let same = {
        let a: std::collections::BTreeSet<_> = old.iter().collect();
        let b: std::collections::BTreeSet<_> = new.iter().collect();
        a == b
    };
    if !same && let Some(m) = meta_mut(obj) {
        m.insert("finalizers".into(), json!(new));
    }
    !same
}

/// `old` with the garbage collector's finalizers as asked (the others kept, in their order).
fn with_collector_finalizers(old: &[String], orphan: bool, foreground: bool) -> Vec<String> {
    let mut new: Vec<String> = old
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        new.push(ORPHAN.into());
    }
    if foreground {
        new.push(FOREGROUND.into());
    }
    new
}

/// Marks an object whose finalizers must run first (upstream's `markAsDeleting`): deleted
/// from now (or its earlier timestamp), with no grace period.
fn mark_as_deleting(obj: &mut Value) {
    let existing = timestamp_secs(obj);
    let now = unix_now();
    let Some(m) = meta_mut(obj) else { return };
    if existing.is_none()
        && let Some(g) = m
            .get("generation")
            .and_then(Value::as_i64)
            .filter(|g| *g > 0)
    {
        m.insert("generation".into(), json!(g + 1));
    }
    if existing.is_none_or(|ts| ts > now) {
        m.insert("deletionTimestamp".into(), json!(rfc3339(now)));
    }
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
}

/// The generic store's delete (upstream's `Store.Delete` with `BeforeDelete`).
fn plan(strategy: &dyn Strategy, obj: &mut Value, opts: &Options) -> Step {
    let grace = before_delete(strategy, obj, opts.grace);
    if matches!(grace, Grace::Pending) {
        return Step::Pending;
    }
    if timestamp_secs(obj).is_none() {
        let mut list = finalizers(obj);
        let before = list.len();
        for f in strategy.deletion_finalizers() {
            if !list.iter().any(|x| x == f) {
                list.push(f.to_string());
            }
        }
        if list.len() != before
            && let Some(m) = meta_mut(obj)
        {
            m.insert("finalizers".into(), json!(list));
        }
    }
    gc_finalizers(strategy, obj, opts);
    let pending_finalizers = !finalizers(obj).is_empty();
    match grace {
        Grace::Yes(period) => Step::Write {
            then_delete: !pending_finalizers && period == 0,
        },
        _ if pending_finalizers => {
            mark_as_deleting(obj);
            Step::Write { then_delete: false }
        }
        _ => Step::DeleteNow,
    }
}

/// The namespace REST's delete: the first DELETE makes the namespace Terminating (with the
/// garbage collector's finalizers the options ask for); later ones wait for `spec.finalizers`
/// to empty, then delete as the generic store does.
fn terminate(strategy: &dyn Strategy, obj: &mut Value, opts: &Options) -> Step {
    if obj.at("/metadata/deletionTimestamp").is_some() {
        if spec_finalizers_left(obj) {
            return Step::Unchanged;
        }
        return plan(strategy, obj, opts);
    }
    let old = finalizers(obj);
    let orphan = match (opts.orphan_dependents, opts.policy.as_deref()) {
        (Some(o), _) => o,
        (None, Some(p)) => p == "Orphan",
        (None, None) => old.iter().any(|f| f == ORPHAN),
    };
    let foreground = match (opts.orphan_dependents, opts.policy.as_deref()) {
        (Some(o), _) => !o,
        (None, Some(p)) => p == "Foreground",
        (None, None) => old.iter().any(|f| f == FOREGROUND),
    };
    let new = with_collector_finalizers(&old, orphan, foreground);
    if let Some(o) = obj.as_object_mut() {
        let status = o.entry("status").or_insert_with(|| json!({}));
        if let Some(s) = status.as_object_mut() {
            s.insert("phase".into(), json!("Terminating"));
        }
    }
    if let Some(m) = meta_mut(obj) {
        m.insert("deletionTimestamp".into(), json!(rfc3339(unix_now())));
        if new != old {
            m.insert("finalizers".into(), json!(new));
        }
    }
    Step::Write { then_delete: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::strategy_for;

    fn opts(v: Value) -> Options {
        Options::read(&v, false)
    }

    fn bound_pod() -> Value {
        json!({"metadata": {"name": "p", "generation": 1},
               "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30},
               "status": {"phase": "Running"}})
    }

    #[test]
    fn a_bound_pod_is_marked_with_its_grace_period_and_its_generation_moves_on() {
        let pods = strategy_for("", "pods");
        let mut pod = bound_pod();
        let before = unix_now();
        assert!(matches!(
            plan(pods, &mut pod, &opts(json!({}))),
            Step::Write { then_delete: false }
        ));
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
        assert_eq!(pod["metadata"]["generation"], 2);
        let ts = timestamp_secs(&pod).unwrap();
        assert!(ts >= before + 30 && ts <= unix_now() + 30, "{pod}");
        // A longer or equal grace period changes nothing; a shorter one moves the deadline.
        assert!(matches!(
            plan(
                pods,
                &mut pod.clone(),
                &opts(json!({"gracePeriodSeconds": 45}))
            ),
            Step::Pending
        ));
        assert!(matches!(
            plan(pods, &mut pod.clone(), &opts(json!({}))),
            Step::Pending
        ));
        let mut shorter = pod.clone();
        assert!(matches!(
            plan(pods, &mut shorter, &opts(json!({"gracePeriodSeconds": 10}))),
            Step::Write { then_delete: false }
        ));
        assert_eq!(timestamp_secs(&shorter), Some(ts - 20));
        assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
        // The kubelet's grace-0 delete: written with grace 0, then deleted.
        assert!(matches!(
            plan(pods, &mut shorter, &opts(json!({"gracePeriodSeconds": 0}))),
            Step::Write { then_delete: true }
        ));
        assert_eq!(timestamp_secs(&shorter), Some(ts - 30));
    }

    #[test]
    fn pods_no_node_runs_go_at_once_and_negative_periods_are_one_second() {
        let pods = strategy_for("", "pods");
        let mut unscheduled =
            json!({"metadata": {}, "spec": {"terminationGracePeriodSeconds": 30}});
        assert!(matches!(
            plan(pods, &mut unscheduled, &opts(json!({}))),
            Step::Write { then_delete: true }
        ));
        let mut done = bound_pod();
        done["status"]["phase"] = json!("Succeeded");
        assert!(matches!(
            plan(pods, &mut done, &opts(json!({}))),
            Step::Write { then_delete: true }
        ));
        let mut pod = bound_pod();
        plan(pods, &mut pod, &opts(json!({"gracePeriodSeconds": -5})));
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 1);
    }

    #[test]
    fn finalizers_hold_an_object_and_the_policy_adds_the_collectors_own() {
        let cms = strategy_for("", "configmaps");
        let mut plain = json!({"metadata": {"name": "c"}});
        assert!(matches!(
            plan(cms, &mut plain, &opts(json!({}))),
            Step::DeleteNow
        ));
        let mut held = json!({"metadata": {"name": "c", "finalizers": ["example.com/x"]}});
        assert!(matches!(
            plan(cms, &mut held, &opts(json!({}))),
            Step::Write { then_delete: false }
        ));
        assert_eq!(held["metadata"]["deletionGracePeriodSeconds"], 0);
        assert!(held["metadata"]["deletionTimestamp"].is_string());
        let mut fg = json!({"metadata": {"name": "c"}});
        plan(
            cms,
            &mut fg,
            &opts(json!({"propagationPolicy": "Foreground"})),
        );
        assert_eq!(fg["metadata"]["finalizers"], json!([FOREGROUND]));
        let mut orphan = json!({"metadata": {"name": "c", "finalizers": ["a"]}});
        plan(cms, &mut orphan, &opts(json!({"orphanDependents": true})));
        assert_eq!(orphan["metadata"]["finalizers"], json!(["a", ORPHAN]));
        // Background takes a collector's finalizer away again: nothing holds the object.
        let mut back = json!({"metadata": {"name": "c", "finalizers": [ORPHAN]}});
        assert!(matches!(
            plan(
                cms,
                &mut back,
                &opts(json!({"propagationPolicy": "Background"}))
            ),
            Step::DeleteNow
        ));
    }

    #[test]
    fn jobs_and_replication_controllers_orphan_by_default() {
        for (g, r) in [("batch", "jobs"), ("", "replicationcontrollers")] {
            let s = strategy_for(g, r);
            let mut o = json!({"metadata": {"name": "x", "generation": 3}});
            assert!(matches!(
                plan(s, &mut o, &opts(json!({}))),
                Step::Write { then_delete: false }
            ));
            assert_eq!(o["metadata"]["finalizers"], json!([ORPHAN]), "{r}");
            assert_eq!(o["metadata"]["generation"], 4, "{r}");
            let mut o = json!({"metadata": {"name": "x"}});
            assert!(matches!(
                plan(s, &mut o, &opts(json!({"propagationPolicy": "Background"}))),
                Step::DeleteNow
            ));
        }
        assert!(
            strategy_for("batch", "jobs")
                .default_orphan_warning()
                .is_some()
        );
        assert!(
            strategy_for("apps", "deployments")
                .default_orphan_warning()
                .is_none()
        );
    }

    #[test]
    fn a_namespace_terminates_first_and_goes_once_finalized() {
        let ns = strategy_for("", "namespaces");
        let mut n = json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]},
                           "status": {"phase": "Active"}});
        assert!(matches!(
            terminate(ns, &mut n, &opts(json!({}))),
            Step::Write { then_delete: false }
        ));
        assert_eq!(n["status"]["phase"], "Terminating");
        assert!(n["metadata"]["deletionTimestamp"].is_string());
        assert!(n["metadata"].get("finalizers").is_none());
        assert!(matches!(
            terminate(ns, &mut n.clone(), &opts(json!({}))),
            Step::Unchanged
        ));
        let old = n.clone();
        let mut finalized = n.clone();
        finalized["spec"]["finalizers"] = json!([]);
        assert!(deletes_during_update(ns, &finalized, &old));
        assert!(!deletes_during_update(ns, &old, &old));
        assert!(matches!(
            terminate(ns, &mut finalized, &opts(json!({}))),
            Step::DeleteNow
        ));
        let mut fg = json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}});
        terminate(ns, &mut fg, &opts(json!({"orphanDependents": false})));
        assert_eq!(fg["metadata"]["finalizers"], json!([FOREGROUND]));
    }

    #[test]
    fn an_update_deletes_only_when_no_grace_period_is_left() {
        let cms = strategy_for("", "configmaps");
        let old = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z",
                                      "deletionGracePeriodSeconds": 0, "finalizers": ["a"]}});
        let new = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert!(deletes_during_update(cms, &new, &old));
        assert!(!deletes_during_update(cms, &old, &old));
        let mut graceful = old.clone();
        graceful["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert!(!deletes_during_update(cms, &new, &graceful));
        assert!(!deletes_during_update(cms, &new, &json!({"metadata": {}})));
    }
}
