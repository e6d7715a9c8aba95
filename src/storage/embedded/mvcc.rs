//! The embedded store's in-memory state, etcd's MVCC model without the disk: every key's versions
//! back to the compaction revision, the event of every retained revision, lease deadlines. Pure and
//! synchronous; `EmbeddedBackend` drives it and makes each change durable before anyone sees it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use bytes::Bytes;

use crate::storage::{Event, KeyValue, RangeResult, Revision, StoreError};

/// The revision of the empty store, as in etcd: the first write is revision 2.
pub const FIRST_REVISION: Revision = 1;

#[derive(Debug)]
pub struct Mvcc {
    /// Every key with a version the retained history can still see, in key order (ranges walk it).
    keys: BTreeMap<Bytes, KeyHistory>,
    /// The event of each revision in (max(compacted, FIRST_REVISION), revision], oldest first:
    /// every write makes exactly one, so the event of revision r is at r - first_event_revision.
    events: VecDeque<Event>,
    revision: Revision,
    /// Reads at revisions below this fail with `Compacted`.
    compacted: Revision,
    /// (deadline in unix ms, key) of every live key with a lease, soonest first.
    deadlines: BTreeSet<(i64, Bytes)>,
}

#[derive(Debug, Default)]
struct KeyHistory {
    /// (revision, the key's state from it on; None once deleted), oldest first. Only the newest
    /// entry may be at or below the compaction revision, and then it is a live one.
    versions: Vec<(Revision, Option<KeyValue>)>,
    /// When the live version's lease expires (unix ms).
    deadline: Option<i64>,
}

impl KeyHistory {
    fn current(&self) -> Option<&KeyValue> {
        self.versions.last().and_then(|(_, kv)| kv.as_ref())
    }

    fn at(&self, revision: Revision) -> Option<&KeyValue> {
        self.versions
            .iter()
            .rev()
            .find(|(r, _)| *r <= revision)
            .and_then(|(_, kv)| kv.as_ref())
    }
}

impl Default for Mvcc {
    fn default() -> Self {
        Mvcc {
            keys: BTreeMap::new(),
            events: VecDeque::new(),
            revision: FIRST_REVISION,
            compacted: 0,
            deadlines: BTreeSet::new(),
        }
    }
}

impl Mvcc {
    /// An empty store whose history starts after `revision` (a snapshot's base); `load` fills it.
    pub fn starting_at(revision: Revision, compacted: Revision) -> Mvcc {
        Mvcc {
            revision,
            compacted,
            ..Mvcc::default()
        }
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn compacted(&self) -> Revision {
        self.compacted
    }

    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.keys.get(key).and_then(KeyHistory::current)
    }

    pub fn deadline(&self, key: &[u8]) -> Option<i64> {
        self.keys.get(key).and_then(|h| h.deadline)
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub fn range(
        &self,
        prefix: &[u8],
        start: &[u8],
        revision: Revision,
        limit: i64,
    ) -> Result<RangeResult, StoreError> {
        let at = self.readable(revision)?;
        let from = if start > prefix { start } else { prefix };
        let limit = usize::try_from(limit)
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let mut kvs = Vec::new();
        let mut count = 0i64;
        for (key, history) in self
            .keys
            .range::<[u8], _>((Bound::Included(from), Bound::Unbounded))
        {
            if !key.starts_with(prefix) {
                break;
            }
            if let Some(kv) = history.at(at) {
                count += 1;
                if kvs.len() < limit {
                    kvs.push(kv.clone());
                }
            }
        }
        Ok(RangeResult {
            more: count > kvs.len() as i64,
            kvs,
            count,
            revision: at,
        })
    }

    /// The revision a read at `revision` (0 = current) sees, if it can be served.
    fn readable(&self, revision: Revision) -> Result<Revision, StoreError> {
        match revision {
            0 => Ok(self.revision),
            r if r < 0 => Err(StoreError::Internal(format!("negative revision {r}"))),
            r if r > self.revision => Err(StoreError::FutureRevision),
            r if r < self.compacted => Err(StoreError::Compacted {
                compact_revision: self.compacted,
            }),
            r => Ok(r),
        }
    }

    pub fn create(
        &mut self,
        key: Bytes,
        value: Bytes,
        lease_ttl_seconds: Option<i64>,
        now_ms: i64,
    ) -> Result<KeyValue, StoreError> {
        if self.get(&key).is_some() {
            return Err(StoreError::AlreadyExists);
        }
        let revision = self.revision + 1;
        let (lease, deadline) = match lease_ttl_seconds {
            None => (0, None),
            Some(ttl) if ttl > 0 => (
                // One lease per key, named by the key's create revision, which no other key has.
                revision,
                Some(now_ms.saturating_add(ttl.saturating_mul(1000))),
            ),
            Some(ttl) => return Err(StoreError::Internal(format!("invalid lease TTL {ttl}"))),
        };
        let kv = KeyValue {
            key,
            value,
            create_revision: revision,
            mod_revision: revision,
            version: 1,
            lease,
        };
        self.put(kv.clone(), deadline);
        Ok(kv)
    }

    /// Replaces a key's value; with `lease` (TTL seconds, now in ms) the key gets a new lease
    /// (named by this revision) and its deadline starts again, else it keeps its own.
    pub fn update(
        &mut self,
        key: Bytes,
        value: Bytes,
        expected_mod_revision: Revision,
        lease: Option<(i64, i64)>,
    ) -> Result<KeyValue, StoreError> {
        let current = self.get(&key).ok_or(StoreError::NotFound)?;
        if current.mod_revision != expected_mod_revision {
            return Err(StoreError::Conflict {
                current: Some(current.clone()),
            });
        }
        let revision = self.revision + 1;
        let (lease_id, deadline) = match lease {
            None => (current.lease, self.deadline(&key)),
            Some((ttl, now_ms)) if ttl > 0 => (
                revision,
                Some(now_ms.saturating_add(ttl.saturating_mul(1000))),
            ),
            Some((ttl, _)) => {
                return Err(StoreError::Internal(format!("invalid lease TTL {ttl}")));
            }
        };
        let kv = KeyValue {
            key,
            value,
            mod_revision: revision,
            version: current.version + 1,
            lease: lease_id,
            ..current.clone()
        };
        self.put(kv.clone(), deadline);
        Ok(kv)
    }

    /// Returns the deleted kv with `mod_revision` set to the deletion's revision.
    pub fn delete(
        &mut self,
        key: &[u8],
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue, StoreError> {
        let current = self.get(key).ok_or(StoreError::NotFound)?;
        if expected_mod_revision.is_some_and(|r| r != current.mod_revision) {
            return Err(StoreError::Conflict {
                current: Some(current.clone()),
            });
        }
        let deleted = KeyValue {
            mod_revision: self.revision + 1,
            ..current.clone()
        };
        self.remove(deleted.key.clone(), deleted.mod_revision);
        Ok(deleted)
    }

    /// Deletes up to `max` keys whose lease deadline is at or before `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: i64, max: usize) -> usize {
        let mut expired = 0;
        while expired < max {
            let Some((deadline, key)) = self.deadlines.first().cloned() else {
                break;
            };
            if deadline > now_ms {
                break;
            }
            self.remove(key, self.revision + 1);
            expired += 1;
        }
        expired
    }

    /// Writes `kv` (at `kv.mod_revision`, the next revision) with its lease deadline.
    pub fn put(&mut self, kv: KeyValue, deadline: Option<i64>) {
        debug_assert_eq!(kv.mod_revision, self.revision + 1);
        let history = self.keys.entry(kv.key.clone()).or_default();
        let prev = history.current().cloned();
        if let Some(old) = history.deadline.take() {
            self.deadlines.remove(&(old, kv.key.clone()));
        }
        if let Some(new) = deadline {
            self.deadlines.insert((new, kv.key.clone()));
        }
        history.deadline = deadline;
        history.versions.push((kv.mod_revision, Some(kv.clone())));
        self.revision = kv.mod_revision;
        self.events.push_back(Event::Put { kv, prev });
    }

    /// Deletes `key` at `revision` (the next revision); the key need not be live.
    pub fn remove(&mut self, key: Bytes, revision: Revision) {
        debug_assert_eq!(revision, self.revision + 1);
        let history = self.keys.entry(key.clone()).or_default();
        let prev = history.current().cloned();
        if let Some(old) = history.deadline.take() {
            self.deadlines.remove(&(old, key.clone()));
        }
        history.versions.push((revision, None));
        self.revision = revision;
        self.events.push_back(Event::Delete {
            key,
            mod_revision: revision,
            prev,
        });
    }

    /// The event of the latest write, if it is retained.
    pub fn last_event(&self) -> Option<&Event> {
        self.events.back()
    }

    /// Puts a key's state as of the base revision, from a snapshot: no event, no history.
    pub fn load(&mut self, kv: KeyValue, deadline: Option<i64>) {
        debug_assert!(kv.mod_revision <= self.revision && self.events.is_empty());
        if let Some(d) = deadline {
            self.deadlines.insert((d, kv.key.clone()));
        }
        let history = self.keys.entry(kv.key.clone()).or_default();
        history.versions = vec![(kv.mod_revision, Some(kv))];
        history.deadline = deadline;
    }

    /// Forgets every version that no read at or after `revision` can see.
    pub fn compact(&mut self, revision: Revision) -> Result<(), StoreError> {
        if revision > self.revision {
            return Err(StoreError::FutureRevision);
        }
        if revision <= self.compacted {
            return Err(StoreError::Compacted {
                compact_revision: self.compacted,
            });
        }
        // Only keys written in the forgotten revisions have versions to drop.
        let mut touched = BTreeSet::new();
        while self
            .events
            .front()
            .is_some_and(|e| e.revision() <= revision)
        {
            if let Some(event) = self.events.pop_front() {
                touched.insert(event.key().clone());
            }
        }
        for key in touched {
            let Some(history) = self.keys.get_mut(&key) else {
                continue;
            };
            let visible = history
                .versions
                .iter()
                .rposition(|(r, _)| *r <= revision)
                .unwrap_or(0);
            history.versions.drain(..visible);
            if matches!(history.versions.first(), Some((r, None)) if *r <= revision) {
                history.versions.remove(0);
            }
            if history.versions.is_empty() {
                self.keys.remove(&key);
            }
        }
        self.compacted = revision;
        Ok(())
    }

    /// The revision of the oldest retained event; the next revision if none is retained.
    pub fn first_event_revision(&self) -> Revision {
        self.revision - self.events.len() as i64 + 1
    }

    /// Retained events with revision >= `from`, oldest first.
    pub fn events_from(&self, from: Revision) -> impl Iterator<Item = &Event> {
        let skip = (from - self.first_event_revision()).max(0) as usize;
        self.events.iter().skip(skip)
    }

    /// Whether a watch can get every event after `after`.
    pub fn has_events_after(&self, after: Revision) -> bool {
        after >= self.compacted && after + 1 >= self.first_event_revision()
    }

    /// The state as a snapshot: the base revision (the compaction revision, at least the first),
    /// every key's state at the base with its deadline, then the retained events with the
    /// deadline each written key has now.
    pub fn snapshot(&self) -> Snapshot<'_> {
        let base = self.first_event_revision() - 1;
        Snapshot {
            base,
            compacted: self.compacted,
            kvs: Box::new(
                self.keys
                    .values()
                    .filter_map(move |h| h.at(base).map(|kv| (kv, h.deadline))),
            ),
            events: Box::new(
                self.events
                    .iter()
                    .map(|e| (e, self.keys.get(e.key()).and_then(|h| h.deadline))),
            ),
        }
    }
}

pub struct Snapshot<'a> {
    pub base: Revision,
    pub compacted: Revision,
    pub kvs: Box<dyn Iterator<Item = (&'a KeyValue, Option<i64>)> + 'a>,
    pub events: Box<dyn Iterator<Item = (&'a Event, Option<i64>)> + 'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn keys(r: &RangeResult) -> Vec<&[u8]> {
        r.kvs.iter().map(|kv| &kv.key[..]).collect()
    }

    #[test]
    fn writes_step_the_revision_and_key_versions_like_etcd() {
        let mut m = Mvcc::default();
        assert_eq!(m.revision(), 1);
        let created = m
            .create(b("/a"), b("1"), None, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                created.create_revision,
                created.mod_revision,
                created.version
            ),
            (2, 2, 1)
        );
        assert_eq!(
            m.last_event(),
            Some(&Event::Put {
                kv: created.clone(),
                prev: None
            })
        );
        assert_eq!(
            m.create(b("/a"), b("x"), None, 0),
            Err(StoreError::AlreadyExists)
        );
        assert_eq!(m.revision(), 2, "a failed write does not step the revision");
        assert_eq!(
            m.update(b("/a"), b("2"), 1, None),
            Err(StoreError::Conflict {
                current: Some(created.clone())
            })
        );
        let updated = m
            .update(b("/a"), b("2"), 2, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                updated.create_revision,
                updated.mod_revision,
                updated.version
            ),
            (2, 3, 2)
        );
        assert_eq!(
            m.last_event(),
            Some(&Event::Put {
                kv: updated.clone(),
                prev: Some(created.clone())
            })
        );
        assert_eq!(
            m.update(b("/b"), b("1"), 1, None),
            Err(StoreError::NotFound)
        );
        assert!(matches!(
            m.delete(b"/a", Some(2)),
            Err(StoreError::Conflict { .. })
        ));
        let deleted = m.delete(b"/a", Some(3)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            deleted,
            KeyValue {
                mod_revision: 4,
                ..updated.clone()
            }
        );
        assert_eq!(
            m.last_event(),
            Some(&Event::Delete {
                key: b("/a"),
                mod_revision: 4,
                prev: Some(updated)
            })
        );
        assert_eq!(m.delete(b"/a", None), Err(StoreError::NotFound));
        assert_eq!(m.get(b"/a"), None);
        let again = m
            .create(b("/a"), b("3"), None, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (again.create_revision, again.mod_revision, again.version),
            (5, 5, 1)
        );
    }

    #[test]
    fn range_pages_with_limit_and_start_and_reads_past_revisions() {
        let mut m = Mvcc::default();
        for k in ["/p/a", "/p/b", "/p/c", "/q/a", "/p"] {
            m.create(b(k), b("v1"), None, 0)
                .map(|_| ())
                .unwrap_or_default();
        }
        // revisions: /p/a 2, /p/b 3, /p/c 4, /q/a 5, /p 6
        let page = m.range(b"/p/", b"", 0, 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys(&page), [b"/p/a", b"/p/b"]);
        assert_eq!((page.more, page.count, page.revision), (true, 3, 6));
        let next = m
            .range(b"/p/", b"/p/b\0", 0, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys(&next), [b"/p/c"]);
        assert_eq!((next.more, next.count), (false, 1));
        let all = m
            .range(b"/p/", b"/a", 0, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            keys(&all).len(),
            3,
            "a start before the prefix reads from the prefix"
        );
        assert!(m.range(b"/p/", b"/r", 0, 0).is_ok_and(|r| r.kvs.is_empty()));

        let _ = m.update(b("/p/a"), b("v2"), 2, None); // rev 7
        let _ = m.delete(b"/p/b", None); // rev 8
        let at4 = m.range(b"/p/", b"", 4, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys(&at4), [b"/p/a", b"/p/b", b"/p/c"]);
        assert_eq!(at4.kvs[0].value, b("v1"));
        assert_eq!(at4.revision, 4);
        let at3 = m.range(b"/p/", b"", 3, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys(&at3), [b"/p/a", b"/p/b"]);
        let now = m.range(b"/p/", b"", 0, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys(&now), [b"/p/a", b"/p/c"]);
        assert_eq!(now.kvs[0].value, b("v2"));
        assert_eq!(m.range(b"/p/", b"", 9, 0), Err(StoreError::FutureRevision));
    }

    #[test]
    fn compaction_keeps_what_reads_at_or_after_it_see() {
        let mut m = Mvcc::default();
        let _ = m.create(b("/a"), b("1"), None, 0); // 2
        let _ = m.update(b("/a"), b("2"), 2, None); // 3
        let _ = m.create(b("/b"), b("1"), None, 0); // 4
        let _ = m.delete(b"/b", None); // 5
        let _ = m.update(b("/a"), b("3"), 3, None); // 6
        assert_eq!(m.compact(5), Ok(()));
        assert_eq!(
            m.range(b"/", b"", 4, 0).map(|r| r.count),
            Err(StoreError::Compacted {
                compact_revision: 5
            })
        );
        let at5 = m.range(b"/", b"", 5, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys(&at5), [b"/a"]);
        assert_eq!(at5.kvs[0].value, b("2"));
        assert_eq!(m.key_count(), 1, "the deleted key is forgotten");
        assert_eq!(m.first_event_revision(), 6);
        assert!(m.has_events_after(5));
        assert!(!m.has_events_after(4));
        assert_eq!(
            m.compact(5),
            Err(StoreError::Compacted {
                compact_revision: 5
            })
        );
        assert_eq!(m.compact(7), Err(StoreError::FutureRevision));
    }

    #[test]
    fn leases_expire_keys_at_their_deadline_and_survive_updates() {
        let mut m = Mvcc::default();
        let lease = m
            .create(b("/e"), b("1"), Some(10), 1_000)
            .map(|kv| kv.lease);
        assert_eq!(lease, Ok(2));
        let _ = m.create(b("/plain"), b("1"), None, 1_000);
        let _ = m.update(b("/e"), b("2"), 2, None);
        assert_eq!(m.get(b"/e").map(|kv| kv.lease), Some(2));
        assert_eq!(m.expire(10_999, 100), 0);
        assert_eq!(m.expire(11_000, 100), 1);
        assert_eq!(m.get(b"/e"), None);
        assert!(m.get(b"/plain").is_some());
        assert!(matches!(
            m.events_from(0).last(),
            Some(Event::Delete { .. })
        ));
        assert_eq!(
            m.create(b("/e"), b("1"), Some(0), 0),
            Err(StoreError::Internal("invalid lease TTL 0".into()))
        );
    }
}
