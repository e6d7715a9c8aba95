//! The watch cache, first cut: every object's current stored bytes and the recent event
//! history, fed in revision order by a single ingest, read by every core. Lists and gets are
//! answered from here; watches replay history and then follow live events. It knows nothing
//! of HTTP or of the store: the server adapts both.
//!
//! This version keeps state in a `RwLock`ed ordered map; the watch-cache issue replaces it with
//! persistent snapshots, per-core fan-out and indexes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures_channel::mpsc;

/// How many recent events are kept for watches that start in the past: at 1,000 writes/s
/// this covers the 10 s a client typically needs to resume; older starts get "too old".
pub const HISTORY_CAPACITY: usize = 10_000;

/// Events a watcher may have queued before it is considered too slow and closed (its client
/// re-lists): enough for a burst of writes to one namespace.
pub const WATCHER_BUFFER: usize = 1_000;

/// One object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change, as the ingest feeds it and watchers receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub key: Bytes,
    /// The new value (Put) or the last value before deletion (Delete).
    pub value: Bytes,
    /// The value before this change, if there was one.
    pub prev_value: Option<Bytes>,
    /// The change's revision.
    pub revision: i64,
    /// For a Put: whether the key was created by this change.
    pub created: bool,
}

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    Event(Event),
    /// The cache has caught up to this revision with nothing for this watcher (bookmarks).
    Progress(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// The requested start is older than the retained history: (requested, oldest retained).
    TooOld { requested: i64, oldest: i64 },
}

struct Watcher {
    prefix: Bytes,
    tx: mpsc::Sender<WatchItem>,
}

struct State {
    revision: i64,
    objects: BTreeMap<Bytes, Entry>,
    /// Recent events, oldest first; bounded by HISTORY_CAPACITY.
    history: VecDeque<Event>,
    /// Revision before which history is incomplete (starts older than this are too old).
    history_start: i64,
    watchers: Vec<Watcher>,
}

/// Shared by every core; clone the `Arc`.
pub struct Cache {
    state: RwLock<State>,
    revision_tx: tokio::sync::watch::Sender<i64>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new()
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache {
            state: RwLock::new(State {
                revision: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_start: 0,
                watchers: Vec::new(),
            }),
            revision_tx: tokio::sync::watch::channel(0).0,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated (every update is
        // one insert or remove), so a poisoned lock is still consistent.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole state with a store listing at `revision` (initial load, or a
    /// re-list after the ingest lost its watch). Watchers are closed: they cannot be
    /// continued across a gap.
    pub fn reset(&self, revision: i64, objects: impl IntoIterator<Item = (Bytes, Entry)>) {
        let mut s = self.write();
        s.objects = objects.into_iter().collect();
        s.revision = revision;
        s.history.clear();
        s.history_start = revision;
        s.watchers.clear();
        drop(s);
        self.revision_tx.send_replace(revision);
    }

    /// Applies events of one revision (or several, in order). Called by the single ingest.
    pub fn apply(&self, events: Vec<Event>) {
        let mut s = self.write();
        for ev in events {
            match ev.kind {
                EventKind::Put => {
                    let create_revision = s
                        .objects
                        .get(&ev.key)
                        .filter(|_| !ev.created)
                        .map_or(ev.revision, |e| e.create_revision);
                    s.objects.insert(
                        ev.key.clone(),
                        Entry {
                            value: ev.value.clone(),
                            create_revision,
                            mod_revision: ev.revision,
                        },
                    );
                }
                EventKind::Delete => {
                    s.objects.remove(&ev.key);
                }
            }
            s.revision = s.revision.max(ev.revision);
            // Fan out; a watcher whose buffer is full or whose client left is dropped.
            s.watchers.retain_mut(|w| {
                if !ev.key.starts_with(&w.prefix) {
                    return !w.tx.is_closed();
                }
                w.tx.try_send(WatchItem::Event(ev.clone())).is_ok()
            });
            if s.history.len() == HISTORY_CAPACITY
                && let Some(old) = s.history.pop_front()
            {
                s.history_start = old.revision;
            }
            s.history.push_back(ev);
        }
        let rev = s.revision;
        drop(s);
        self.revision_tx.send_replace(rev);
    }

    /// The store moved to `revision` with no change the cache holds (progress notify).
    pub fn progress(&self, revision: i64) {
        let mut s = self.write();
        if revision <= s.revision {
            return;
        }
        s.revision = revision;
        // A full buffer only means this progress note is skipped; the next event decides.
        s.watchers
            .retain_mut(|w| match w.tx.try_send(WatchItem::Progress(revision)) {
                Ok(()) => true,
                Err(e) => e.is_full(),
            });
        drop(s);
        self.revision_tx.send_replace(revision);
    }

    pub fn revision(&self) -> i64 {
        self.read().revision
    }

    /// Waits until the cache has seen `revision` (consistent reads).
    pub async fn wait_for(&self, revision: i64) {
        let mut rx = self.revision_tx.subscribe();
        // The sender lives as long as the cache, so `wait_for` ends only by reaching it.
        let _ = rx.wait_for(|&r| r >= revision).await;
    }

    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        self.read().objects.get(key).cloned()
    }

    /// Objects under `prefix`, from `start` (inclusive; empty: from the prefix), at most
    /// `limit` (0: all), with the cache revision they were read at and whether more remain.
    pub fn list(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> (Vec<(Bytes, Entry)>, bool, i64) {
        let s = self.read();
        let from: &[u8] = if start.is_empty() { prefix } else { start };
        let mut out = Vec::new();
        let mut more = false;
        for (k, e) in s
            .objects
            .range::<[u8], _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
        {
            if !k.starts_with(prefix) {
                break;
            }
            if limit > 0 && out.len() == limit {
                more = true;
                break;
            }
            out.push((k.clone(), e.clone()));
        }
        (out, more, s.revision)
    }

    /// Number of objects under `prefix` from `start` on (remainingItemCount).
    pub fn count_from(&self, prefix: &[u8], start: &[u8]) -> usize {
        let s = self.read();
        s.objects
            .range::<[u8], _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    /// Starts a watch of keys under `prefix` for events after `after` (0: from now). The
    /// receiver ends when the watcher falls behind or the cache resets.
    pub fn watch(
        &self,
        prefix: Bytes,
        after: i64,
    ) -> Result<(mpsc::Receiver<WatchItem>, i64), CacheError> {
        let mut s = self.write();
        let after = if after == 0 { s.revision } else { after };
        if after < s.history_start {
            return Err(CacheError::TooOld {
                requested: after,
                oldest: s.history_start,
            });
        }
        // futures' bounded channel holds `buffer` + one slot per sender.
        let (mut tx, rx) = mpsc::channel(WATCHER_BUFFER - 1);
        for ev in s
            .history
            .iter()
            .filter(|e| e.revision > after && e.key.starts_with(&prefix))
        {
            if tx.try_send(WatchItem::Event(ev.clone())).is_err() {
                // More history than one buffer: the watcher starts too far back to replay.
                return Err(CacheError::TooOld {
                    requested: after,
                    oldest: s.history_start,
                });
            }
        }
        let rev = s.revision;
        s.watchers.push(Watcher { prefix, tx });
        Ok((rx, rev))
    }
}

/// Shared handle.
pub type SharedCache = Arc<Cache>;

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn put(key: &str, rev: i64, created: bool) -> Event {
        Event {
            kind: EventKind::Put,
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::from(format!("v{rev}")),
            prev_value: None,
            revision: rev,
            created,
        }
    }

    #[test]
    fn lists_reflect_applied_events_in_key_order() {
        let c = Cache::new();
        c.apply(vec![
            put("/p/ns/b", 2, true),
            put("/p/ns/a", 3, true),
            put("/q/x", 4, true),
        ]);
        let (items, more, rev) = c.list(b"/p/", b"", 0);
        assert_eq!(
            items.iter().map(|(k, _)| &k[..]).collect::<Vec<_>>(),
            [&b"/p/ns/a"[..], b"/p/ns/b"]
        );
        assert!(!more);
        assert_eq!(rev, 4);
        let (page, more, _) = c.list(b"/p/", b"", 1);
        assert_eq!((page.len(), more), (1, true));
        c.apply(vec![put("/p/ns/a", 5, false)]);
        let e = c.get(b"/p/ns/a").unwrap();
        assert_eq!((e.create_revision, e.mod_revision), (3, 5));
    }

    #[test]
    fn watch_replays_history_then_follows_and_refuses_too_old_starts() {
        let c = Cache::new();
        c.reset(10, []);
        c.apply(vec![
            put("/p/a", 11, true),
            put("/q/b", 12, true),
            put("/p/c", 13, true),
        ]);
        let (mut rx, _) = c.watch(Bytes::from_static(b"/p/"), 11).unwrap();
        c.apply(vec![put("/p/d", 14, true)]);
        let got: Vec<i64> = futures_executor::block_on(async {
            let mut v = Vec::new();
            for _ in 0..2 {
                if let Some(WatchItem::Event(e)) = rx.next().await {
                    v.push(e.revision);
                }
            }
            v
        });
        assert_eq!(got, [13, 14]);
        assert_eq!(
            c.watch(Bytes::from_static(b"/p/"), 5).unwrap_err(),
            CacheError::TooOld {
                requested: 5,
                oldest: 10
            }
        );
    }

    #[test]
    fn a_slow_watcher_is_closed_without_blocking_the_ingest() {
        let c = Cache::new();
        let (mut rx, _) = c.watch(Bytes::from_static(b"/p/"), 0).unwrap();
        for i in 0..(WATCHER_BUFFER as i64 + 10) {
            c.apply(vec![put("/p/x", i + 1, i == 0)]);
        }
        let n = futures_executor::block_on(async {
            let mut n = 0;
            while rx.next().await.is_some() {
                n += 1;
            }
            n
        });
        assert_eq!(n, WATCHER_BUFFER);
        assert_eq!(c.revision(), WATCHER_BUFFER as i64 + 10);
    }
}
