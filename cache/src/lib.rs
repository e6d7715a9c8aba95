//! The watch cache: the current state and recent history of every resource, fed in revision
//! order by a single ingest, read by every core without locks. Lists and gets are answered
//! from snapshots (persistent maps: taking one is O(1)); watches replay history and then
//! follow live events through per-core hubs with indexes. Each object version keeps its
//! encodings, made once and shared. It knows nothing of HTTP or of the store: the server
//! adapts both.

mod hub;
mod object;
mod resource;

pub use hub::{
    Closed, Filter, Hub, INBOX_CAPACITY, Next, Predicate, WATCHER_QUEUE, WaitFor, Watch,
};
pub use object::{
    Attrs, Budget, CachedEvent, EventKind, EventType, Extractor, Obj, Slot, pb_extractor,
};
pub use resource::{
    FRAME_TTL, HISTORY_MAX_BYTES, HISTORY_MAX_EVENTS, HISTORY_MIN_EVENTS, HISTORY_WINDOW,
    HistoryCursor, KEPT_SNAPSHOTS, ResourceCache, Snapshot, Stats, TooOld,
};

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;

use hub::{Inbox, InboxItem};

/// A resource the cache holds.
pub struct ResourceSpec {
    /// Its key prefix, e.g. `/registry/pods/` (ending in `/`).
    pub prefix: Bytes,
    pub namespaced: bool,
    /// Reads labels and the indexed field off stored bytes.
    pub extract: Option<Extractor>,
    /// Whether lists may find objects by the indexed field (pods by spec.nodeName).
    pub indexed: bool,
}

/// A change, as the ingest feeds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: EventKind,
    pub key: Bytes,
    /// The new value (Put); unused for Delete.
    pub value: Bytes,
    pub revision: i64,
    /// For a Put: whether the key was created by this change.
    pub created: bool,
}

/// One stored key-value, for `reset`.
pub struct Listed {
    pub key: Bytes,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// Resources added while serving (custom resources): appended only, so an index stays valid.
#[derive(Default)]
struct Added {
    list: Vec<Arc<ResourceCache>>,
    by_prefix: HashMap<Bytes, usize>,
}

/// Most resources a cache may add while serving: each is a CRD's plural, and upstream's
/// etcd holds a few hundred CRDs in the largest clusters; past this a new one is not cached.
pub const MAX_ADDED_RESOURCES: usize = 10_000;

/// Shared by every core; clone the `Arc`.
pub struct Cache {
    resources: Vec<Arc<ResourceCache>>,
    by_prefix: HashMap<Bytes, usize>,
    /// Resources added by `add_resource`, indexed after `resources`.
    added: ArcSwap<Added>,
    /// The revision the cache has reached: every change up to it is in the snapshots.
    revision: AtomicI64,
    /// Cap on lazily made encodings, across all objects.
    pub budget: Arc<Budget>,
    inboxes: ArcSwap<Vec<Arc<Inbox>>>,
    /// Incremented by every reset, before its state is published.
    epoch: AtomicU64,
    /// Watches open on all cores.
    pub(crate) watchers: AtomicUsize,
}

impl Cache {
    /// A cache of `resources` whose kept encodings may take up to `encoded_budget` bytes.
    pub fn new(resources: Vec<ResourceSpec>, encoded_budget: usize) -> Cache {
        let mut by_prefix = HashMap::new();
        let resources = resources
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                by_prefix.insert(r.prefix.clone(), i);
                Arc::new(ResourceCache::new(
                    r.prefix,
                    r.namespaced,
                    i,
                    r.extract,
                    r.indexed,
                ))
            })
            .collect();
        Cache {
            resources,
            by_prefix,
            added: ArcSwap::from_pointee(Added::default()),
            revision: AtomicI64::new(0),
            budget: Budget::new(encoded_budget),
            inboxes: ArcSwap::from_pointee(Vec::new()),
            epoch: AtomicU64::new(0),
            watchers: AtomicUsize::new(0),
        }
    }

    /// The resource whose key prefix is `prefix`.
    pub fn resource(&self, prefix: &[u8]) -> Option<Arc<ResourceCache>> {
        if let Some(&i) = self.by_prefix.get(prefix) {
            return Some(self.resources[i].clone());
        }
        let added = self.added.load();
        added.by_prefix.get(prefix).map(|&i| added.list[i].clone())
    }

    pub fn resource_at(&self, index: usize) -> Arc<ResourceCache> {
        match self.resources.get(index) {
            Some(r) => r.clone(),
            None => self.added.load().list[index - self.resources.len()].clone(),
        }
    }

    /// Every resource, the added ones last.
    pub fn resources(&self) -> Vec<Arc<ResourceCache>> {
        let mut all = self.resources.clone();
        all.extend(self.added.load().list.iter().cloned());
        all
    }

    /// Adds a resource while serving (a custom resource whose definition appeared), holding
    /// `kvs`, the store's listing of its prefix at the cache's current revision. Called by the
    /// single ingest, between two `apply`s. A prefix already held is left as it is.
    pub fn add_resource(&self, spec: ResourceSpec, kvs: impl IntoIterator<Item = Listed>) -> bool {
        if self.resource(&spec.prefix).is_some() {
            return false;
        }
        let current = self.added.load_full();
        if current.list.len() >= MAX_ADDED_RESOURCES {
            return false;
        }
        let index = self.resources.len() + current.list.len();
        let rc = Arc::new(ResourceCache::new(
            spec.prefix.clone(),
            spec.namespaced,
            index,
            spec.extract,
            spec.indexed,
        ));
        let objs = kvs
            .into_iter()
            .filter(|kv| kv.key.starts_with(&spec.prefix))
            .map(|kv| {
                let attrs = rc.attrs(&kv.value);
                Arc::new(Obj::new(
                    kv.key,
                    kv.value,
                    kv.create_revision,
                    kv.mod_revision,
                    attrs,
                ))
            })
            .collect();
        rc.reset(self.revision(), objs);
        let mut next = Added {
            list: current.list.clone(),
            by_prefix: current.by_prefix.clone(),
        };
        next.by_prefix.insert(spec.prefix, next.list.len());
        next.list.push(rc);
        self.added.store(Arc::new(next));
        true
    }

    /// The resource a key belongs to: the shortest registered prefix of it.
    fn route(&self, key: &[u8]) -> Option<usize> {
        let slashes = || {
            key.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .map(|(i, _)| i)
        };
        if let Some(i) = slashes().find_map(|i| self.by_prefix.get(&key[..=i]).copied()) {
            return Some(i);
        }
        let added = self.added.load();
        if added.list.is_empty() {
            return None;
        }
        slashes()
            .find_map(|i| added.by_prefix.get(&key[..=i]).copied())
            .map(|i| i + self.resources.len())
    }

    /// Watches open on all cores.
    pub fn watcher_count(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }

    /// How many times the cache has re-listed.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The revision the cache has reached.
    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Replaces every resource's state with a store listing at `revision` (initial load, or a
    /// re-list after the ingest lost its watch). Every watch is closed: it cannot be continued
    /// across the gap.
    pub fn reset(&self, revision: i64, kvs: impl IntoIterator<Item = Listed>) {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let all = self.resources();
        let mut per: Vec<Vec<Arc<Obj>>> = vec![Vec::new(); all.len()];
        for kv in kvs {
            if let Some(i) = self.route(&kv.key) {
                let attrs = all[i].attrs(&kv.value);
                per[i].push(Arc::new(Obj::new(
                    kv.key,
                    kv.value,
                    kv.create_revision,
                    kv.mod_revision,
                    attrs,
                )));
            }
        }
        for (rc, objs) in all.iter().zip(per) {
            rc.reset(revision, objs);
        }
        self.revision.store(revision, Ordering::Release);
        self.send(InboxItem::Reset { revision, epoch });
    }

    /// Applies changes of one or more revisions, in order. Called by the single ingest; it
    /// never waits for a reader.
    pub fn apply(&self, changes: Vec<Change>) {
        let now = Instant::now();
        let mut events = Vec::with_capacity(changes.len());
        let mut touched: Vec<usize> = Vec::new();
        let mut revision = self.revision();
        for c in changes {
            revision = revision.max(c.revision);
            let Some(i) = self.route(&c.key) else {
                continue;
            };
            if let Some(ev) = self
                .resource_at(i)
                .apply(c.kind, c.key, c.value, c.revision, c.created, now)
            {
                events.push(ev);
            }
            if !touched.contains(&i) {
                touched.push(i);
            }
        }
        for i in touched {
            self.resource_at(i).publish();
        }
        self.revision.store(revision, Ordering::Release);
        self.send(InboxItem::Events { events, revision });
    }

    /// The store moved to `revision` with no change the cache holds (progress notification).
    pub fn progress(&self, revision: i64) {
        if revision <= self.revision() {
            return;
        }
        let now = Instant::now();
        for rc in self.resources() {
            rc.expire(now);
        }
        self.revision.store(revision, Ordering::Release);
        self.send(InboxItem::Progress(revision));
    }

    fn send(&self, item: InboxItem) {
        let item = Arc::new(item);
        for inbox in self.inboxes.load().iter() {
            inbox.push(&item);
        }
    }

    /// This core's hub and its dispatcher, which the caller spawns on the core. Call once per
    /// core (thread).
    pub fn attach_core(self: &Arc<Self>) -> Rc<Hub> {
        let inbox = Arc::new(Inbox::new());
        self.inboxes.rcu(|v| {
            let mut v = Vec::clone(v);
            v.push(inbox.clone());
            v
        });
        Rc::new(Hub::new(self.clone(), inbox, self.revision()))
    }
}

#[cfg(test)]
mod tests;
