//! The server's side of the watch cache: which resources it holds and how their attributes
//! are read, each core's hub, the shared revision probe of consistent reads, and the encodings
//! of cached objects and events — made once per object version (or event) and shared.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use kapi_cache::{Budget, Cache, CachedEvent, EventType as CacheEventType, Extractor, Hub, Obj};
use kapi_codec::Schema;
use kapi_codec::envelope::{Envelope, EventType, write_envelope, write_json_event, write_pb_event};
use kapi_codec::meta::{metadata_field, set_resource_version};
use kapi_codec::schema::MsgId;
use kapi_codec::to_json::PbToJson;

use super::negotiate::Encoding;
use super::objects::{self, Served};
use super::registry::{Registry, Resource, Storage};
use super::status::Status;
use crate::storage::{StoreClient, StoreError};

/// The cache's resources: one per distinct key prefix of the registry's stored resources.
pub fn specs(registry: &Registry, prefix: &str) -> Vec<kapi_cache::ResourceSpec> {
    let mut out: Vec<kapi_cache::ResourceSpec> = Vec::new();
    for r in registry.all() {
        if r.storage == Storage::None || r.key_prefix.is_empty() {
            continue;
        }
        let full = format!("{prefix}{}", r.key_prefix);
        if out.iter().any(|s| s.prefix == full.as_bytes()) {
            continue;
        }
        out.push(kapi_cache::ResourceSpec {
            prefix: Bytes::from(full.into_bytes()),
            namespaced: r.namespaced,
            extract: extractor(r),
            indexed: is_pods(r),
        });
    }
    out
}

/// Reads labels (and a pod's spec.nodeName, the index of kubelets' watches) off stored bytes.
fn extractor(res: &Resource) -> Option<Extractor> {
    match &res.storage {
        Storage::Protobuf { api_version, kind } => {
            let index = is_pods(res).then_some("spec.nodeName");
            kapi_cache::pb_extractor(api_version, kind, index)
        }
        // Few and small objects (APIServices, CRDs): a full parse at ingest is cheap.
        Storage::Json { .. } => Some(Arc::new(json_attrs)),
        Storage::None => None,
    }
}

/// The labels of an object stored as JSON, for label selectors served from the cache.
pub fn json_attrs(stored: &[u8]) -> kapi_cache::Attrs {
    let doc: serde_json::Value = serde_json::from_slice(stored).unwrap_or_default();
    let mut labels: Vec<(Box<str>, Box<str>)> = doc
        .pointer("/metadata/labels")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().unwrap_or("").into()))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    kapi_cache::Attrs {
        labels: labels.into_boxed_slice(),
        index: None,
        splice: None,
    }
}

/// Core pods, indexed by spec.nodeName (kubelets' lists and watches).
pub fn is_pods(res: &Resource) -> bool {
    res.group.is_empty() && res.resource == "pods"
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
    static PROBE: RefCell<Probe> = RefCell::new(Probe::default());
}

/// This core's hub (attached, and its dispatcher spawned, on first use).
pub fn hub(cache: &Arc<Cache>) -> Rc<Hub> {
    HUB.with(|h| {
        if let Some(hub) = &*h.borrow()
            && hub.belongs_to(cache)
        {
            return hub.clone();
        }
        let hub = cache.attach_core();
        let runner = hub.clone();
        monoio::spawn(async move {
            use futures::FutureExt;
            // The dispatcher runs for the life of the process; if a bug ends it (a panic), only
            // it ends, and the next request on this core attaches a new hub.
            let _ = std::panic::AssertUnwindSafe(runner.clone().run())
                .catch_unwind()
                .await;
            HUB.with(|h| {
                let mut h = h.borrow_mut();
                if h.as_ref().is_some_and(|cur| Rc::ptr_eq(cur, &runner)) {
                    *h = None;
                }
            });
        });
        *h.borrow_mut() = Some(hub.clone());
        hub
    })
}

/// Concurrent consistent reads on a core share one revision probe: a request joins the next
/// probe that starts after it arrived (an earlier one might predate a write it must see).
#[derive(Default)]
struct Probe {
    running: bool,
    waiting: Vec<futures::channel::oneshot::Sender<Result<i64, StoreError>>>,
}

/// Clears this core's probe state when the probe task ends.
struct ProbeReset;

impl Drop for ProbeReset {
    fn drop(&mut self) {
        PROBE.with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.running = false;
                p.waiting.clear();
            }
        });
    }
}

/// The store's current revision, for a consistent read: read in-process from the embedded
/// store; from etcd by a probe shared with the other requests waiting on this core.
pub async fn current_revision(store: &StoreClient) -> Result<i64, StoreError> {
    if let Some(rev) = store.local_revision() {
        return Ok(rev);
    }
    let (tx, rx) = futures::channel::oneshot::channel();
    let start = PROBE.with(|p| {
        let mut p = p.borrow_mut();
        p.waiting.push(tx);
        !std::mem::replace(&mut p.running, true)
    });
    if start {
        let store = store.clone();
        crate::transport::spawn_isolated(async move {
            // However this task ends (a panic included), the next request starts a new probe
            // and the ones waiting on this one are told it ended.
            let _reset = ProbeReset;
            loop {
                let batch = PROBE.with(|p| {
                    let mut p = p.borrow_mut();
                    let batch = std::mem::take(&mut p.waiting);
                    if batch.is_empty() {
                        p.running = false;
                    }
                    batch
                });
                if batch.is_empty() {
                    break;
                }
                let r = store.current_revision().await;
                for tx in batch {
                    let _ = tx.send(r.clone());
                }
            }
        });
    }
    rx.await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("the revision probe ended".into())))
}

/// How one request serves cached versions of its resource: what is the same for every item
/// (the served apiVersion, whether the stored bytes are already the served message, the
/// metadata field, the slot key) worked out once, not per item.
pub struct View<'a> {
    pub res: &'a Resource,
    /// Names the encodings this view keeps in a version's slots (FNV-1a of
    /// group/version/kind: stable and unique among the registry's few dozen kinds).
    id: u32,
    budget: Arc<Budget>,
    api_version: String,
    msg: Option<MsgId>,
    /// The stored bytes are the served version's protobuf: serving is a splice, whose
    /// metadata field number this is.
    splice_field: Option<u32>,
}

impl<'a> View<'a> {
    /// `res` served from `cache` (whose budget caps kept encodings).
    pub fn new(res: &'a Resource, cache: &Cache) -> View<'a> {
        let mut id: u32 = 0x811c_9dc5;
        for b in res
            .group
            .bytes()
            .chain([b'/'])
            .chain(res.version.bytes())
            .chain([b'/'])
            .chain(res.kind.bytes())
        {
            id ^= b as u32;
            id = id.wrapping_mul(0x0100_0193);
        }
        let api_version = res.api_version();
        let stored_as_served = matches!(&res.storage, Storage::Protobuf { api_version: a, kind }
            if *a == api_version && *kind == res.kind);
        View {
            res,
            id,
            budget: cache.budget.clone(),
            msg: res.msg,
            splice_field: res
                .msg
                .filter(|_| stored_as_served)
                .and_then(metadata_field),
            api_version,
        }
    }

    fn msg(&self) -> Result<MsgId, Status> {
        self.msg
            .ok_or_else(|| Status::internal(format!("no schema for {}", self.res.kind)))
    }

    /// The served message of a cached version, with its resourceVersion, appended to `out`.
    pub fn write_served(&self, obj: &Obj, rev: i64, out: &mut Vec<u8>) -> Result<(), Status> {
        self.write_stored(obj, rev, out).map_err(|e| {
            // A value encrypted at rest is only cached as stored when no provider read it.
            if obj
                .value
                .starts_with(crate::storage::encryption::providers::ENCRYPTED_PREFIX)
            {
                Status::internal(format!(
                    "unable to transform key {:?}: no provider of the encryption configuration \
                     reads the stored value",
                    String::from_utf8_lossy(&obj.key)
                ))
            } else {
                e
            }
        })
    }

    fn write_stored(&self, obj: &Obj, rev: i64, out: &mut Vec<u8>) -> Result<(), Status> {
        if let Some(number) = self.splice_field {
            let msg = self.msg()?;
            let rv = rev.to_string();
            if let Some(plan) = &obj.attrs.splice {
                plan.write(number, &obj.value, &rv, out);
                return Ok(());
            }
            let env = Envelope::parse(&obj.value).map_err(unreadable)?;
            return set_resource_version(msg, env.raw, &rv, out).map_err(unreadable);
        }
        let res = self.res;
        if rev == obj.mod_revision {
            let wire = obj.wire.get_or_make(self.id, &self.budget, || {
                objects::served(res, &obj.value, rev).map(|s| Bytes::from(s.raw))
            })?;
            out.extend_from_slice(&wire);
            return Ok(());
        }
        out.extend_from_slice(&objects::served(res, &obj.value, rev)?.raw);
        Ok(())
    }

    /// The length of what `write_served` appends.
    pub fn served_len(&self, obj: &Obj, rev: i64) -> Result<usize, Status> {
        if let Some(number) = self.splice_field {
            let msg = self.msg()?;
            if let Some(plan) = &obj.attrs.splice {
                return Ok(plan.len(number, &rev.to_string()));
            }
            let env = Envelope::parse(&obj.value).map_err(unreadable)?;
            return kapi_codec::meta::served_len(msg, env.raw, &rev.to_string())
                .map_err(unreadable);
        }
        let mut raw = Vec::new();
        self.write_served(obj, rev, &mut raw)?;
        Ok(raw.len())
    }

    pub fn served(&self, obj: &Obj) -> Result<Served, Status> {
        let mut raw = Vec::with_capacity(obj.value.len() + 16);
        self.write_served(obj, obj.mod_revision, &mut raw)?;
        Ok(Served { raw, own: false })
    }

    /// The JSON of a cached version as a list item (no apiVersion/kind), made once and kept.
    pub fn item_json(&self, obj: &Obj) -> Result<Bytes, Status> {
        obj.json
            .get_or_make(self.id, &self.budget, || self.make_item_json(obj))
    }

    /// The same, kept if it was made before but not kept if made now: a watch event's frame
    /// is kept (for a while) instead, and most updated versions are never listed.
    fn item_json_unkept(&self, obj: &Obj) -> Result<Bytes, Status> {
        match obj.json.get(self.id) {
            Some(b) => Ok(b),
            None => self.make_item_json(obj),
        }
    }

    fn make_item_json(&self, obj: &Obj) -> Result<Bytes, Status> {
        let mut raw = Vec::with_capacity(obj.value.len() + 16);
        self.write_served(obj, obj.mod_revision, &mut raw)?;
        if self.res.is_custom() {
            // A custom resource's served form is its JSON, apiVersion and kind included (as
            // upstream lists unstructured objects).
            return Ok(Bytes::from(raw));
        }
        let msg = self.msg()?;
        let mut json = Vec::with_capacity(raw.len() * 2);
        PbToJson::served(Schema::get())
            .message(msg, &raw, 0, None, &mut json)
            .map_err(|e| Status::internal(format!("encoding {}: {e}", self.res.kind)))?;
        Ok(Bytes::from(json))
    }

    /// `item` with apiVersion and kind in front, as a single object or watch event carries them.
    pub fn with_type_meta(&self, item: &[u8], out: &mut Vec<u8>) {
        if self.res.is_custom() {
            out.extend_from_slice(item);
            return;
        }
        let kind = &self.res.kind;
        out.reserve(item.len() + self.api_version.len() + kind.len() + 32);
        out.extend_from_slice(b"{\"kind\":");
        kapi_codec::json_write::write_str(out, kind.as_bytes());
        out.extend_from_slice(b",\"apiVersion\":");
        kapi_codec::json_write::write_str(out, self.api_version.as_bytes());
        if item.len() > 2 {
            out.push(b',');
            out.extend_from_slice(&item[1..]);
        } else {
            out.push(b'}');
        }
    }

    /// A watch frame of type `ty` around version `obj` at revision `rev`; a version at its own
    /// revision uses its JSON (kept, or made and not kept unless `keep`).
    pub fn frame(
        &self,
        obj: &Obj,
        rev: i64,
        ty: EventType,
        enc: Encoding,
        keep: bool,
    ) -> Result<Bytes, Status> {
        let mut out = Vec::new();
        match enc {
            Encoding::Protobuf => {
                let mut raw = Vec::with_capacity(obj.value.len() + 16);
                self.write_served(obj, rev, &mut raw)?;
                let mut env = Vec::with_capacity(raw.len() + 32);
                write_envelope(&self.api_version, &self.res.kind, &raw, &mut env);
                write_pb_event(ty, &env, &mut out);
            }
            _ => {
                let mut json = Vec::new();
                if rev == obj.mod_revision {
                    let item = if keep {
                        self.item_json(obj)?
                    } else {
                        self.item_json_unkept(obj)?
                    };
                    self.with_type_meta(&item, &mut json);
                } else if self.res.is_custom() {
                    self.write_served(obj, rev, &mut json)?;
                } else {
                    // A version at a later revision than its own (deletions): made here.
                    let mut raw = Vec::with_capacity(obj.value.len() + 16);
                    self.write_served(obj, rev, &mut raw)?;
                    json = objects::encode_message(
                        self.msg,
                        &self.api_version,
                        &self.res.kind,
                        &raw,
                        Encoding::Json,
                        false,
                    )?;
                    json.pop();
                }
                write_json_event(ty, &json, &mut out);
            }
        }
        Ok(Bytes::from(out))
    }

    /// A watch frame for `ev` as a watcher of type `ty` sees it: the frame of the event's
    /// natural type is made once and shared by every watcher in the same encoding.
    pub fn event_frame(
        &self,
        ev: &CachedEvent,
        ty: CacheEventType,
        enc: Encoding,
    ) -> Result<Bytes, Status> {
        // A change that moves an object out of a watcher's selectors is a DELETED of the
        // version it last saw (the previous one), at the change's revision, as upstream sends.
        let obj = match (&ev.prev, ev.kind, ty) {
            (Some(prev), kapi_cache::EventKind::Put, CacheEventType::Deleted) => prev,
            _ => &ev.obj,
        };
        let make = || self.frame(obj, ev.revision, wire_type(ty), enc, false);
        if ty != ev.natural_type() {
            return make();
        }
        let slot = match enc {
            Encoding::Protobuf => &ev.frames[1],
            _ => &ev.frames[0],
        };
        slot.get_or_make(self.id, &self.budget, make)
    }
}

fn unreadable(e: kapi_codec::CodecError) -> Status {
    Status::internal(format!("stored object is not readable: {e}"))
}

pub fn wire_type(t: CacheEventType) -> EventType {
    match t {
        CacheEventType::Added => EventType::Added,
        CacheEventType::Modified => EventType::Modified,
        CacheEventType::Deleted => EventType::Deleted,
    }
}
