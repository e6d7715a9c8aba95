//! The CRD controllers upstream's apiextensions-apiserver runs, as one thread following the
//! cache: the registry's custom rows rebuilt when CRDs change; names accepted (conflicts with
//! other CRDs of the group refused) and the Established condition set; a deleted CRD's
//! instances deleted before its `customresourcecleanup` finalizer goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kapi_cache::Cache;
use serde_json::{Value, json};

use super::{CLEANUP_FINALIZER, CRD_KEY_PREFIX};
use crate::api::registry::Registry;
use crate::storage::{StoreClient, StoreError};

/// How often the controller looks at the cache's CRDs (a revision compare when nothing
/// changed): a new CRD is served within this and one write.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Instances of a deleted CRD deleted per pass, so one huge CRD does not hold the others up.
const DELETES_PER_PASS: usize = 500;

/// A CRD as the cache holds it.
struct Cached {
    key: Bytes,
    mod_revision: i64,
    crd: Value,
}

fn cached(registry: &Registry, cache: &Cache, prefix: &str) -> Vec<Cached> {
    let Some(res) = registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions") else {
        return Vec::new();
    };
    let Some(rc) = cache.resource(format!("{prefix}{CRD_KEY_PREFIX}").as_bytes()) else {
        return Vec::new();
    };
    let snap = rc.snapshot();
    let view = crate::api::cached::View::new(res, cache);
    snap.range(b"", b"")
        .filter_map(|o| {
            let served = view.served(o).ok()?;
            Some(Cached {
                key: o.key.clone(),
                mod_revision: o.mod_revision,
                crd: crate::api::objects::to_value(res, &served).ok()?,
            })
        })
        .collect()
}

/// Starts the controller thread; it ends when the registry is dropped.
pub fn start(
    registry: &Arc<Registry>,
    cache: Arc<Cache>,
    store: StoreClient,
    prefix: String,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The rows of the CRDs already there are served from the start (their OpenAPI follows
    // from the thread).
    let first = cached(registry, &cache, &prefix);
    let crds: Vec<Value> = first.iter().map(|c| c.crd.clone()).collect();
    registry.set_custom(super::build_rows(&crds));
    let weak = Arc::downgrade(registry);
    std::thread::Builder::new()
        .name("kapi-crd".into())
        .spawn(move || {
            let mut seen = -1;
            while let Some(registry) = weak.upgrade() {
                let revision = cache
                    .resource(format!("{prefix}{CRD_KEY_PREFIX}").as_bytes())
                    .map_or(0, |rc| rc.snapshot().revision);
                let crds = if revision != seen {
                    let crds = cached(&registry, &cache, &prefix);
                    let values: Vec<Value> = crds.iter().map(|c| c.crd.clone()).collect();
                    registry.set_custom(super::build(&values));
                    seen = revision;
                    Some(crds)
                } else {
                    None
                };
                let crds = crds.unwrap_or_else(|| cached(&registry, &cache, &prefix));
                rt.block_on(reconcile(&registry, &cache, &store, &prefix, &crds));
                drop(registry);
                std::thread::sleep(POLL_INTERVAL);
            }
        })
        .map(|_| ())
}

/// One pass over every CRD: status, then deletion.
async fn reconcile(
    registry: &Registry,
    cache: &Cache,
    store: &StoreClient,
    prefix: &str,
    crds: &[Cached],
) {
    for c in crds {
        let mut crd = c.crd.clone();
        let changed = set_status(&mut crd, crds);
        let deleting = crd.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&crd).iter().any(|f| f == CLEANUP_FINALIZER);
        if changed {
            write(registry, store, c, &crd).await;
            // The next pass sees the written version.
            continue;
        }
        if deleting {
            cleanup(registry, cache, store, prefix, c).await;
        }
    }
}

fn finalizers(crd: &Value) -> Vec<String> {
    crd.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The names of `crd` other CRDs of its group hold (by their accepted names).
fn conflicts(crd: &Value, all: &[Cached]) -> Option<(&'static str, String)> {
    let name = crd.pointer("/metadata/name");
    let group = crd.pointer("/spec/group");
    let names = &crd["spec"]["names"];
    for other in all {
        let o = &other.crd;
        if o.pointer("/metadata/name") == name || o.pointer("/spec/group") != group {
            continue;
        }
        let accepted = &o["status"]["acceptedNames"];
        let taken = |v: &Value| -> Vec<String> {
            let mut out = Vec::new();
            for k in ["plural", "singular"] {
                if let Some(s) = v[k].as_str().filter(|s| !s.is_empty()) {
                    out.push(s.to_string());
                }
            }
            if let Some(a) = v["shortNames"].as_array() {
                out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_string)));
            }
            out
        };
        let used = taken(accepted);
        if let Some(p) = names["plural"].as_str()
            && used.iter().any(|u| u == p)
        {
            return Some(("PluralConflict", format!("\"{p}\" is already in use")));
        }
        if let Some(s) = names["singular"].as_str().filter(|s| !s.is_empty())
            && used.iter().any(|u| u == s)
        {
            return Some(("SingularConflict", format!("\"{s}\" is already in use")));
        }
        if let Some(shorts) = names["shortNames"].as_array() {
            for s in shorts.iter().filter_map(Value::as_str) {
                if used.iter().any(|u| u == s) {
                    return Some(("ShortNamesConflict", format!("\"{s}\" is already in use")));
                }
            }
        }
        let kinds = [accepted["kind"].as_str(), accepted["listKind"].as_str()];
        if let Some(k) = names["kind"].as_str()
            && kinds.contains(&Some(k))
        {
            return Some(("KindConflict", format!("\"{k}\" is already in use")));
        }
        if let Some(k) = names["listKind"].as_str()
            && kinds.contains(&Some(k))
        {
            return Some(("ListKindConflict", format!("\"{k}\" is already in use")));
        }
    }
    None
}

/// Sets a condition, keeping its lastTransitionTime when its status does not change; whether
/// anything changed.
fn set_condition(crd: &mut Value, ty: &str, status: &str, reason: &str, message: &str) -> bool {
    let now = crate::api::rest::now_rfc3339();
    let Some(st) = crd.as_object_mut().map(|o| {
        o.entry("status")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|s| {
                let c = s.entry("conditions").or_insert_with(|| json!([]));
                if !c.is_array() {
                    *c = json!([]);
                }
                c
            })
    }) else {
        return false;
    };
    let Some(conds) = st.and_then(Value::as_array_mut) else {
        return false;
    };
    let new = json!({
        "type": ty,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    });
    match conds.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            if c["status"] == status && c["reason"] == reason && c["message"] == message {
                return false;
            }
            let mut new = new;
            if c["status"] == status {
                new["lastTransitionTime"] = c["lastTransitionTime"].clone();
            }
            *c = new;
        }
        None => conds.push(new),
    }
    true
}

/// The status upstream's naming, establishing and finalizing controllers keep; whether it
/// changed.
fn set_status(crd: &mut Value, all: &[Cached]) -> bool {
    let mut changed = false;
    let deleting = crd.pointer("/metadata/deletionTimestamp").is_some();
    match conflicts(crd, all) {
        Some((reason, message)) => {
            changed |= set_condition(crd, "NamesAccepted", "False", reason, &message);
            if !super::condition_true(crd, "Established") {
                changed |= set_condition(
                    crd,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                );
            }
        }
        None => {
            let mut names = crd["spec"]["names"].clone();
            if let Some(n) = names.as_object_mut() {
                if !n.contains_key("singular")
                    && let Some(k) = n.get("kind").and_then(Value::as_str)
                {
                    n.insert("singular".into(), json!(k.to_lowercase()));
                }
                if !n.contains_key("listKind")
                    && let Some(k) = n.get("kind").and_then(Value::as_str)
                {
                    n.insert("listKind".into(), json!(format!("{k}List")));
                }
            }
            if crd.pointer("/status/acceptedNames") != Some(&names) {
                crd["status"]["acceptedNames"] = names;
                changed = true;
            }
            changed |= set_condition(
                crd,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            );
            if !deleting && !super::condition_true(crd, "Established") {
                changed |= set_condition(
                    crd,
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                );
            }
        }
    }
    if deleting && finalizers(crd).iter().any(|f| f == CLEANUP_FINALIZER) {
        changed |= set_condition(
            crd,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        );
    }
    if let Some(storage) = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
        .and_then(|v| v["name"].as_str())
        .map(str::to_string)
    {
        let stored = crd
            .pointer("/status/storedVersions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !stored.iter().any(|v| v == storage.as_str()) {
            let mut stored = stored;
            stored.push(json!(storage));
            crd["status"]["storedVersions"] = json!(stored);
            changed = true;
        }
    }
    changed
}

/// Writes a CRD the controller changed, if nobody changed it meanwhile.
async fn write(registry: &Registry, store: &StoreClient, c: &Cached, crd: &Value) {
    let Some(res) = registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions") else {
        return;
    };
    let Ok((value, _)) =
        crate::api::objects::encode_for_storage(res, crd, kapi_codec::FieldValidation::Ignore)
    else {
        return;
    };
    match store.update(&c.key, value, c.mod_revision).await {
        Ok(_) | Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => {}
        Err(e) => eprintln!("kapi: crd controller: writing {:?}: {e}", c.key),
    }
}

/// One step of deleting a CRD: its instances (those with finalizers marked deleted and
/// waited for), then its finalizer, then itself when no finalizer is left.
async fn cleanup(
    registry: &Registry,
    cache: &Cache,
    store: &StoreClient,
    prefix: &str,
    c: &Cached,
) {
    let Some(key_prefix) = super::key_prefix(&c.crd) else {
        return;
    };
    let mut left = 0usize;
    if let Some(rc) = cache.resource(format!("{prefix}{key_prefix}").as_bytes()) {
        let snap = rc.snapshot();
        let mut updates: HashMap<Bytes, (i64, Value)> = HashMap::new();
        for o in snap.range(b"", b"").take(DELETES_PER_PASS) {
            left += 1;
            let Ok(mut v) = serde_json::from_slice::<Value>(&o.value) else {
                let _ = store.delete(&o.key, Some(o.mod_revision)).await;
                continue;
            };
            let has_finalizers = v
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if !has_finalizers {
                let _ = store.delete(&o.key, Some(o.mod_revision)).await;
                continue;
            }
            if v.pointer("/metadata/deletionTimestamp").is_none() {
                v["metadata"]["deletionTimestamp"] = json!(crate::api::rest::now_rfc3339());
                v["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                updates.insert(o.key.clone(), (o.mod_revision, v));
            }
        }
        for (key, (rev, v)) in updates {
            if let Ok(bytes) = serde_json::to_vec(&v) {
                let _ = store.update(&key, Bytes::from(bytes), rev).await;
            }
        }
    }
    if left > 0 {
        return;
    }
    let mut crd = c.crd.clone();
    let rest: Vec<String> = finalizers(&crd)
        .into_iter()
        .filter(|f| f != CLEANUP_FINALIZER)
        .collect();
    if rest.is_empty() {
        match store.delete(&c.key, Some(c.mod_revision)).await {
            Ok(_) | Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => {}
            Err(e) => eprintln!("kapi: crd controller: deleting {:?}: {e}", c.key),
        }
        return;
    }
    crd["metadata"]["finalizers"] = json!(rest);
    write(registry, store, c, &crd).await;
}
