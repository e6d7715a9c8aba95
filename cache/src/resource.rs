//! One resource's cache: its current state as a persistent ordered map (a snapshot is an O(1)
//! clone), its recent history, and the snapshots that paginated lists are being served from.
//! The single writer builds the next state on its own copy and publishes it with one atomic
//! pointer swap; readers load the pointer and never lock.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use imbl::{OrdMap, OrdSet, Vector};

use crate::object::{CachedEvent, EventKind, Extractor, Obj};

/// History is kept for at least this long (upstream's watch cache keeps 75 s of events so
/// that a client that lost its watch can resume without re-listing)...
pub const HISTORY_WINDOW: Duration = Duration::from_secs(75);
/// ...and at least this many events per resource, however old...
pub const HISTORY_MIN_EVENTS: usize = 1_000;
/// ...but never more than this many events...
pub const HISTORY_MAX_EVENTS: usize = 250_000;
/// ...nor more than this many bytes of object versions per resource.
pub const HISTORY_MAX_BYTES: usize = 512 << 20;

/// How long an event keeps its watch frames: its live fan-out is over by then; a watcher
/// replaying it later makes its own.
pub const FRAME_TTL: Duration = Duration::from_secs(10);

/// Snapshots kept per resource for the later pages of paginated lists, each for at most
/// HISTORY_WINDOW.
pub const KEPT_SNAPSHOTS: usize = 32;

/// A resource's state at one revision, with the history that led to it.
#[derive(Clone)]
pub struct Snapshot {
    /// The revision of the last change to this resource included (the state is also the state
    /// at any later revision up to the cache's revision when it was loaded).
    pub revision: i64,
    objects: OrdMap<Bytes, Arc<Obj>>,
    /// (indexed value, key) of every object, for resources with an index ("" for objects
    /// without the field); None for other resources and for rebuilt past states.
    index: Option<OrdSet<(Box<str>, Bytes)>>,
    /// Recent events of this resource, oldest first.
    history: Vector<Arc<CachedEvent>>,
    /// Every event with a revision above this one is in `history`.
    history_start: i64,
}

/// The start asked for is older than the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    pub requested: i64,
    pub oldest: i64,
}

impl Snapshot {
    fn empty(revision: i64) -> Snapshot {
        Snapshot {
            revision,
            objects: OrdMap::new(),
            index: None,
            history: Vector::new(),
            history_start: revision,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Arc<Obj>> {
        self.objects.get(key)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Objects whose key starts with `prefix`, from `start` (inclusive; it must itself start
    /// with `prefix`, or be empty for the whole prefix), in key order.
    pub fn range<'a>(
        &'a self,
        prefix: &'a [u8],
        start: &'a [u8],
    ) -> impl Iterator<Item = &'a Arc<Obj>> + 'a {
        let from: &[u8] = if start.is_empty() { prefix } else { start };
        self.objects
            .range::<(Bound<&[u8]>, Bound<&[u8]>), [u8]>((Bound::Included(from), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
    }

    /// Like `range`, but only objects whose indexed field is `value`, found by the index; None
    /// when this snapshot has no index.
    pub fn range_indexed<'a>(
        &'a self,
        value: &str,
        prefix: &'a [u8],
        start: &'a [u8],
    ) -> Option<impl Iterator<Item = &'a Arc<Obj>> + 'a> {
        let index = self.index.as_ref()?;
        let from: &[u8] = if start.is_empty() { prefix } else { start };
        let value: Box<str> = value.into();
        let lower = (value.clone(), Bytes::copy_from_slice(from));
        Some(
            index
                .range((Bound::Included(lower), Bound::Unbounded))
                .take_while(move |(v, k)| *v == value && k.starts_with(prefix))
                .filter_map(|(_, k)| self.objects.get(k)),
        )
    }

    /// The revision below which history is incomplete.
    pub fn history_start(&self) -> i64 {
        self.history_start
    }

    /// Events after `after`, oldest first: `Err` if `after` is older than the history kept.
    pub fn events_after(&self, after: i64) -> Result<HistoryCursor, TooOld> {
        if after < self.history_start {
            return Err(TooOld {
                requested: after,
                oldest: self.history_start,
            });
        }
        let pos = self
            .history
            .binary_search_by(|e| {
                if e.revision <= after {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            })
            .unwrap_or_else(|i| i);
        Ok(HistoryCursor {
            history: self.history.clone(),
            pos,
        })
    }

    /// The state at `revision` (which must not be newer than the cache's revision), rebuilt
    /// from this one by undoing the later events; `Err` if history does not reach back.
    pub fn at(&self, revision: i64) -> Result<Snapshot, TooOld> {
        if revision >= self.revision {
            return Ok(self.clone());
        }
        let too_old = TooOld {
            requested: revision,
            oldest: self.history_start,
        };
        if revision < self.history_start {
            return Err(too_old);
        }
        let mut objects = self.objects.clone();
        let mut history = self.history.clone();
        while let Some(ev) = history.last() {
            if ev.revision <= revision {
                break;
            }
            match (&ev.kind, &ev.prev) {
                (EventKind::Put, Some(prev)) => {
                    objects.insert(prev.key.clone(), prev.clone());
                }
                (EventKind::Put, None) => {
                    objects.remove(&ev.obj.key);
                }
                (EventKind::Delete, _) => {
                    objects.insert(ev.obj.key.clone(), ev.obj.clone());
                }
            }
            history.pop_back();
        }
        Ok(Snapshot {
            revision: history.last().map_or(self.history_start, |e| e.revision),
            objects,
            index: None,
            history,
            history_start: self.history_start,
        })
    }
}

/// A position in a snapshot's history; owns what it reads, so a watcher can replay at its own
/// pace while the cache moves on.
pub struct HistoryCursor {
    history: Vector<Arc<CachedEvent>>,
    pos: usize,
}

impl Iterator for HistoryCursor {
    type Item = Arc<CachedEvent>;

    fn next(&mut self) -> Option<Arc<CachedEvent>> {
        let e = self.history.get(self.pos)?.clone();
        self.pos += 1;
        Some(e)
    }
}

/// What the single writer keeps of one resource between publications.
struct Writer {
    /// Recent events whose frames may still be kept, oldest first.
    framed: VecDeque<Arc<CachedEvent>>,
    objects: OrdMap<Bytes, Arc<Obj>>,
    index: Option<OrdSet<(Box<str>, Bytes)>>,
    history: Vector<Arc<CachedEvent>>,
    history_bytes: usize,
    history_start: i64,
    revision: i64,
    dirty: bool,
}

/// One resource's cache.
pub struct ResourceCache {
    /// The resource's key prefix, e.g. `/registry/pods/`.
    pub prefix: Bytes,
    pub namespaced: bool,
    pub index: usize,
    extract: Option<Extractor>,
    current: ArcSwap<Snapshot>,
    /// Only the ingest takes this lock; readers never do.
    writer: Mutex<Writer>,
    /// Snapshots that paginated lists were cut from (taken by readers only).
    kept: Mutex<VecDeque<(Instant, i64, Arc<Snapshot>)>>,
}

impl ResourceCache {
    pub(crate) fn new(
        prefix: Bytes,
        namespaced: bool,
        index: usize,
        extract: Option<Extractor>,
        indexed: bool,
    ) -> ResourceCache {
        ResourceCache {
            prefix,
            namespaced,
            index,
            extract,
            current: ArcSwap::from_pointee(Snapshot::empty(0)),
            writer: Mutex::new(Writer {
                framed: VecDeque::new(),
                objects: OrdMap::new(),
                index: indexed.then(OrdSet::new),
                history: Vector::new(),
                history_bytes: 0,
                history_start: 0,
                revision: 0,
                dirty: false,
            }),
            kept: Mutex::new(VecDeque::new()),
        }
    }

    /// The current state (and history). Never blocks.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The namespace part of a key of this resource ("" for cluster-scoped resources).
    pub fn namespace_of<'a>(&self, key: &'a [u8]) -> &'a [u8] {
        if !self.namespaced || !key.starts_with(&self.prefix) {
            return b"";
        }
        let rest = &key[self.prefix.len()..];
        match rest.iter().position(|&b| b == b'/') {
            Some(i) => &rest[..i],
            None => b"",
        }
    }

    pub(crate) fn attrs(&self, value: &[u8]) -> crate::object::Attrs {
        self.extract.as_ref().map(|f| f(value)).unwrap_or_default()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        // Every writer step leaves the state whole, so a poisoned lock is still consistent.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the state with a listing at `revision`; history starts over.
    pub(crate) fn reset(&self, revision: i64, objects: Vec<Arc<Obj>>) {
        let mut w = self.writer();
        if w.index.is_some() {
            w.index = Some(
                objects
                    .iter()
                    .map(|o| (index_value(o), o.key.clone()))
                    .collect(),
            );
        }
        w.objects = objects.into_iter().map(|o| (o.key.clone(), o)).collect();
        w.history = Vector::new();
        w.framed.clear();
        w.history_bytes = 0;
        w.history_start = revision;
        w.revision = revision;
        w.dirty = true;
        self.publish_locked(&mut w);
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Applies one change; returns the event made of it. Published by `publish`.
    pub(crate) fn apply(
        &self,
        kind: EventKind,
        key: Bytes,
        value: Bytes,
        revision: i64,
        created: bool,
        now: Instant,
    ) -> Option<Arc<CachedEvent>> {
        let mut w = self.writer();
        let prev = if created {
            None
        } else {
            w.objects.get(&key).cloned()
        };
        let obj = match kind {
            EventKind::Put => {
                let create_revision = prev.as_ref().map_or(revision, |p| p.create_revision);
                let attrs = self.attrs(&value);
                let obj = Arc::new(Obj::new(
                    key.clone(),
                    value,
                    create_revision,
                    revision,
                    attrs,
                ));
                w.objects.insert(key.clone(), obj.clone());
                if let Some(index) = &mut w.index {
                    let now = index_value(&obj);
                    let before = prev.as_deref().map(index_value);
                    if before.as_ref() != Some(&now) {
                        if let Some(b) = before {
                            index.remove(&(b, key.clone()));
                        }
                        index.insert((now, key));
                    }
                }
                obj
            }
            EventKind::Delete => {
                // The cache may not hold it (a watch that started after a re-list raced a
                // delete): then there is nothing to tell watchers.
                let last = w.objects.remove(&key)?;
                if let Some(index) = &mut w.index {
                    index.remove(&(index_value(&last), key));
                }
                last
            }
        };
        let ev = Arc::new(CachedEvent {
            kind,
            revision,
            prev: if kind == EventKind::Put { prev } else { None },
            obj,
            resource: self.index,
            at: now,
            frames: Default::default(),
        });
        if let Some(p) = &ev.prev {
            p.release();
        }
        if kind == EventKind::Delete {
            ev.obj.release();
        }
        w.framed.push_back(ev.clone());
        w.history_bytes += event_cost(&ev);
        w.history.push_back(ev.clone());
        w.revision = w.revision.max(revision);
        w.dirty = true;
        trim(&mut w, now);
        Some(ev)
    }

    /// Makes the changes applied so far visible to readers.
    pub(crate) fn publish(&self) {
        let mut w = self.writer();
        self.publish_locked(&mut w);
    }

    fn publish_locked(&self, w: &mut Writer) {
        if !w.dirty {
            return;
        }
        w.dirty = false;
        self.current.store(Arc::new(Snapshot {
            revision: w.revision,
            objects: w.objects.clone(),
            index: w.index.clone(),
            history: w.history.clone(),
            history_start: w.history_start,
        }));
    }

    /// Trims history by age (called on progress, when no event does it).
    pub(crate) fn expire(&self, now: Instant) {
        let mut w = self.writer();
        let before = w.history.len();
        trim(&mut w, now);
        if w.history.len() != before {
            w.dirty = true;
            self.publish_locked(&mut w);
        }
    }

    /// Remembers `snap`, the state at `revision`, for the next pages of a paginated list.
    pub fn keep(&self, revision: i64, snap: &Arc<Snapshot>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        kept.retain(|(t, _, _)| now.duration_since(*t) < HISTORY_WINDOW);
        if kept.iter().any(|(_, r, _)| *r == revision) {
            return;
        }
        if kept.len() == KEPT_SNAPSHOTS {
            kept.pop_front();
        }
        kept.push_back((now, revision, snap.clone()));
    }

    /// The state at `revision`: a kept snapshot, the current one, or one rebuilt from history.
    /// `cache_revision` is the cache's revision read before this call.
    pub fn at(&self, revision: i64, cache_revision: i64) -> Result<Arc<Snapshot>, TooOld> {
        {
            let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, _, s)) = kept.iter().rev().find(|(_, r, _)| *r == revision) {
                return Ok(s.clone());
            }
        }
        let cur = self.snapshot();
        if revision >= cur.revision && revision <= cache_revision.max(cur.revision) {
            return Ok(cur);
        }
        cur.at(revision).map(Arc::new)
    }

    /// What this resource's cache holds, for metrics and reports.
    pub fn stats(&self) -> Stats {
        let s = self.snapshot();
        let mut st = Stats {
            objects: s.objects.len(),
            history_events: s.history.len(),
            ..Stats::default()
        };
        for o in s.objects.values() {
            st.stored_bytes += o.value.len();
            st.object_bytes += o.footprint();
            st.encoded_bytes += o.json.kept_len() + o.wire.kept_len();
        }
        // The map's own nodes: a key and a pointer per entry, in nodes of up to 64 entries.
        st.object_bytes += s.objects.len() * (std::mem::size_of::<Bytes>() + 8) * 3 / 2;
        st
    }
}

/// A resource cache's size.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub objects: usize,
    /// The stored bytes of the objects.
    pub stored_bytes: usize,
    /// Everything the objects hold: stored bytes, kept encodings, attributes, map entries.
    pub object_bytes: usize,
    /// Kept encodings (part of object_bytes).
    pub encoded_bytes: usize,
    pub history_events: usize,
}

fn trim(w: &mut Writer, now: Instant) {
    while let Some(ev) = w.framed.front() {
        if now.duration_since(ev.at) < FRAME_TTL && w.framed.len() <= HISTORY_MAX_EVENTS {
            break;
        }
        for f in &ev.frames {
            f.clear();
        }
        w.framed.pop_front();
    }
    while let Some(front) = w.history.front() {
        let len = w.history.len();
        let old = now.duration_since(front.at) > HISTORY_WINDOW && len > HISTORY_MIN_EVENTS;
        if !(old || len > HISTORY_MAX_EVENTS || w.history_bytes > HISTORY_MAX_BYTES) {
            break;
        }
        let Some(ev) = w.history.pop_front() else {
            break;
        };
        w.history_bytes -= event_cost(&ev);
        w.history_start = w.history_start.max(ev.revision);
    }
}

/// What an event is counted for against HISTORY_MAX_BYTES: the version it holds.
fn event_cost(ev: &CachedEvent) -> usize {
    std::mem::size_of::<CachedEvent>() + ev.obj.value.len() + ev.obj.key.len()
}

/// An object's value in its resource's index ("" without the field).
fn index_value(o: &Obj) -> Box<str> {
    o.attrs.index.clone().unwrap_or_default()
}
