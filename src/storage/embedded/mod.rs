//! The embedded store, kapi's backend when no etcd is given: etcd's revisioned model in memory
//! (`mvcc`), made durable by a log (`wal`) with group commit: the writes of a batch are synced
//! together, and no answer nor watch event of the batch leaves before that sync.

mod mvcc;
mod wal;
mod watchers;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mvcc::Mvcc;
use wal::{Record, RewriteError, Wal};
use watchers::Watchers;

use super::{Backend, Event, Reply, Request, Revision, StoreError, WATCH_BUFFER_ITEMS};

/// Every limit of the embedded store, each with the reason for its size. `Limits::DEFAULT` is what
/// kapi runs with; tests shrink them to reach the edges quickly.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest key plus value: etcd's default `--max-request-bytes` (1.5 MiB), so both backends
    /// refuse the same objects.
    pub max_request_bytes: usize,
    /// A watcher's buffer, in items (see `WATCH_BUFFER_ITEMS`).
    pub watch_buffer_items: usize,
    /// Events per item when a watcher catches up from history: large items, few wake-ups.
    pub replay_chunk_events: usize,
    /// History kept at most, in revisions (older is compacted automatically): bounds memory.
    pub history_revisions: i64,
    /// History kept at most, in time: kube-apiserver compacts every 5 minutes too.
    pub history_age: Duration,
    /// Log size past which it is rewritten as a snapshot (when it is also twice the snapshot).
    pub log_rewrite_bytes: u64,
    /// Keys expired per maintenance pass: bounds the pass; the rest go in the next ones.
    pub expiries_per_tick: usize,
    /// How often caught-up, idle watchers are told the store's revision.
    pub progress_interval: Duration,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_request_bytes: 3 << 19,
        watch_buffer_items: WATCH_BUFFER_ITEMS,
        replay_chunk_events: 256,
        history_revisions: 10_000,
        history_age: Duration::from_secs(5 * 60),
        log_rewrite_bytes: 64 << 20,
        expiries_per_tick: 1_000,
        progress_interval: Duration::from_secs(1),
    };
}

/// The embedded backend. Runs on the storage thread; see the module header.
#[derive(Debug)]
pub struct EmbeddedBackend {
    mvcc: Mvcc,
    wal: Wal,
    watchers: Watchers,
    limits: Limits,
    /// Why the store stopped serving: a write or sync failed, so memory may hold writes the disk
    /// does not (and after a failed fsync, the disk's state is unknown). A restart replays the log.
    failed: Option<String>,
    /// (when, revision) at each maintenance pass within `history_age`, oldest first: where
    /// time-based compaction may cut.
    revision_times: VecDeque<(Instant, Revision)>,
    last_progress: Instant,
    /// The last durable revision, readable without a round trip to this thread (consistent
    /// reads need no revision probe with this store). Set before any answer of it leaves.
    committed: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Held open for its lock: one process per data directory.
    _lock: File,
}

/// Opens (or creates) the embedded store in `data_dir`, replaying its log.
pub fn open(data_dir: &Path) -> io::Result<EmbeddedBackend> {
    EmbeddedBackend::open_with(data_dir, Limits::DEFAULT)
}

impl EmbeddedBackend {
    pub fn open_with(data_dir: &Path, limits: Limits) -> io::Result<EmbeddedBackend> {
        std::fs::create_dir_all(data_dir)?;
        let lock = File::create(data_dir.join("LOCK"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another kapi", data_dir.display()),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let mut mvcc = Mvcc::default();
        let (wal, recovery) = Wal::open(data_dir, |record| replay(&mut mvcc, record))?;
        if recovery.discarded_bytes > 0 {
            eprintln!(
                "kapi: storage: discarded {} bytes of torn log tail in {} (writes never acknowledged)",
                recovery.discarded_bytes,
                data_dir.display()
            );
        }
        let committed = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(mvcc.revision()));
        Ok(EmbeddedBackend {
            mvcc,
            wal,
            watchers: Watchers::default(),
            limits,
            failed: None,
            revision_times: VecDeque::new(),
            last_progress: Instant::now(),
            committed,
            _lock: lock,
        })
    }

    /// Serves a batch: every request against memory, then one sync for all its writes, then the
    /// answers and the watch events. Watches start after the sync, so they replay durable history.
    pub fn serve_batch(&mut self, batch: Vec<Request>) {
        if let Some(why) = &self.failed {
            for request in batch {
                request.fail(StoreError::Unavailable(why.clone()));
            }
            return;
        }
        let first_new = self.mvcc.revision() + 1;
        let now = unix_ms();
        let mut answers = Answers::default();
        let mut watches = Vec::new();
        let mut compactions = Vec::new();
        for request in batch {
            match request {
                Request::Get { key, reply } => {
                    answers.push(reply, Ok(self.mvcc.get(&key).cloned()));
                }
                Request::Range {
                    prefix,
                    start,
                    revision,
                    limit,
                    reply,
                } => answers.push(reply, self.mvcc.range(&prefix, &start, revision, limit)),
                Request::Create {
                    key,
                    value,
                    lease_ttl_seconds,
                    reply,
                } => {
                    let result = self
                        .check_size(&key, &value)
                        .and_then(|()| self.mvcc.create(key, value, lease_ttl_seconds, now));
                    answers.push(reply, self.log(result));
                }
                Request::Update {
                    key,
                    value,
                    expected_mod_revision,
                    lease_ttl_seconds,
                    reply,
                } => {
                    let result = self.check_size(&key, &value).and_then(|()| {
                        let lease = lease_ttl_seconds.map(|ttl| (ttl, now));
                        self.mvcc.update(key, value, expected_mod_revision, lease)
                    });
                    answers.push(reply, self.log(result));
                }
                Request::Delete {
                    key,
                    expected_mod_revision,
                    reply,
                } => {
                    let result = self.mvcc.delete(&key, expected_mod_revision);
                    answers.push(reply, self.log(result));
                }
                Request::CurrentRevision { reply } => answers.push(reply, Ok(self.mvcc.revision())),
                // After the batch's events are published: compacting first could drop them.
                Request::Compact { revision, reply } => compactions.push((revision, reply)),
                Request::Watch {
                    prefix,
                    after,
                    reply,
                } => watches.push((prefix, after, reply)),
                Request::Health { reply } => answers.push(reply, Ok(())),
            }
        }
        if let Err(e) = self.commit(first_new) {
            answers.send(Some(&e));
            for (_, _, reply) in watches {
                let _ = reply.send(Err(e.clone()));
            }
            for (_, reply) in compactions {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        answers.send(None);
        if !compactions.is_empty() {
            let mut answers = Answers::default();
            for (revision, reply) in compactions {
                let result = self.mvcc.compact(revision);
                if result.is_ok() {
                    self.wal.append(&Record::Compact { revision });
                }
                answers.push(reply, result);
            }
            let committed = self.commit(self.mvcc.revision() + 1);
            answers.send(committed.err().as_ref());
        }
        for (prefix, after, reply) in watches {
            let stream = self.watchers.add(
                prefix,
                after,
                &self.mvcc,
                self.limits.watch_buffer_items,
                self.limits.replay_chunk_events,
            );
            let _ = reply.send(stream);
        }
    }

    /// Background work; `now` is passed in so tests can move time.
    pub fn maintain(&mut self, now: Instant, now_ms: i64) {
        if self.failed.is_some() {
            return;
        }
        let first_new = self.mvcc.revision() + 1;
        self.mvcc.expire(now_ms, self.limits.expiries_per_tick);
        for event in self.mvcc.events_from(first_new) {
            self.wal.append(&Record::Delete {
                key: event.key().clone(),
                revision: event.revision(),
            });
        }
        if self.commit(first_new).is_err() {
            return;
        }
        self.compact_automatically(now);
        self.watchers
            .catch_up(&self.mvcc, self.limits.replay_chunk_events);
        if now.duration_since(self.last_progress) >= self.limits.progress_interval {
            self.watchers.progress(self.mvcc.revision());
            self.last_progress = now;
        }
    }

    /// Keeps at most `history_revisions` revisions and `history_age` of history.
    fn compact_automatically(&mut self, now: Instant) {
        let revision = self.mvcc.revision();
        if self
            .revision_times
            .back()
            .is_none_or(|(_, r)| *r != revision)
        {
            self.revision_times.push_back((now, revision));
        }
        let mut by_age = 0;
        while let Some(&(at, r)) = self.revision_times.front() {
            if now.duration_since(at) < self.limits.history_age {
                break;
            }
            by_age = r;
            self.revision_times.pop_front();
        }
        let target = by_age.max(revision - self.limits.history_revisions);
        if target > self.mvcc.compacted() && target > mvcc::FIRST_REVISION {
            // Neither can fail: compacted < target <= revision.
            if self.mvcc.compact(target).is_ok() {
                self.wal.append(&Record::Compact { revision: target });
                let _ = self.commit(revision + 1);
            }
        }
    }

    fn check_size(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if key.len() + value.len() > self.limits.max_request_bytes {
            return Err(StoreError::Internal("request is too large".into()));
        }
        Ok(())
    }

    /// Appends the log record of a successful write (whose event is the latest).
    fn log<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let (Ok(_), Some(event)) = (&result, self.mvcc.last_event()) {
            let record = match event {
                Event::Put { kv, .. } => Record::Put {
                    kv: kv.clone(),
                    deadline: self.mvcc.deadline(&kv.key),
                },
                Event::Delete {
                    key, mod_revision, ..
                } => Record::Delete {
                    key: key.clone(),
                    revision: *mod_revision,
                },
            };
            self.wal.append(&record);
        }
        result
    }

    /// Makes the pending writes durable, then hands the events from `first_new` on to watchers,
    /// and rewrites the log if it has grown. A failure stops the store for good.
    fn commit(&mut self, first_new: Revision) -> Result<(), StoreError> {
        if let Err(e) = self.wal.commit() {
            return Err(self.fail(format!("writing the log failed: {e}")));
        }
        self.committed
            .store(self.mvcc.revision(), std::sync::atomic::Ordering::Release);
        let events: Vec<Event> = self.mvcc.events_from(first_new).cloned().collect();
        self.watchers.publish(&events);
        if self.wal.wants_rewrite(self.limits.log_rewrite_bytes) {
            let rewritten = self.rewrite_log();
            match rewritten {
                Ok(()) => {}
                // The old log is intact: keep appending to it, try again after more growth.
                Err(RewriteError::Failed(e)) => {
                    eprintln!("kapi: storage: rewriting the log failed (will retry): {e}");
                }
                Err(RewriteError::Uncertain(e)) => {
                    // Everything so far is acknowledged and durable in one log or the other;
                    // stop before a write lands in the one a restart might not find.
                    self.fail(format!("rewriting the log failed: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Replaces the log by a snapshot of memory: the state at the oldest retained revision, then
    /// the retained history, so a restart keeps what watches can replay.
    fn rewrite_log(&mut self) -> Result<(), RewriteError> {
        let snapshot = self.mvcc.snapshot();
        let records = std::iter::once(Record::Snapshot {
            base: snapshot.base,
            compacted: snapshot.compacted,
        })
        .chain(snapshot.kvs.map(|(kv, deadline)| Record::Kv {
            kv: kv.clone(),
            deadline,
        }))
        .chain(snapshot.events.map(|(event, deadline)| match event {
            Event::Put { kv, .. } => Record::Put {
                kv: kv.clone(),
                deadline,
            },
            Event::Delete {
                key, mod_revision, ..
            } => Record::Delete {
                key: key.clone(),
                revision: *mod_revision,
            },
        }));
        self.wal.rewrite(records)
    }

    fn fail(&mut self, why: String) -> StoreError {
        eprintln!("kapi: storage: {why}; the store stops serving until restarted");
        let error = StoreError::Unavailable(why.clone());
        self.watchers.end_all(&error);
        self.failed = Some(why);
        error
    }
}

#[async_trait::async_trait]
impl Backend for EmbeddedBackend {
    async fn serve(&mut self, batch: Vec<Request>) {
        // Blocking (the sync) on purpose: the storage thread is this store's alone, and requests
        // arriving meanwhile queue up to form the next group commit.
        self.serve_batch(batch);
    }

    async fn tick(&mut self) {
        self.maintain(Instant::now(), unix_ms());
    }

    fn committed_revision(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicI64>> {
        Some(self.committed.clone())
    }
}

/// Rebuilds memory from one log record.
fn replay(mvcc: &mut Mvcc, record: Record) -> io::Result<()> {
    let next = mvcc.revision() + 1;
    match record {
        Record::Snapshot { base, compacted } => *mvcc = Mvcc::starting_at(base, compacted),
        // Only between the snapshot record and the first event.
        Record::Kv { kv, deadline }
            if kv.mod_revision <= mvcc.revision() && mvcc.last_event().is_none() =>
        {
            mvcc.load(kv, deadline)
        }
        Record::Put { kv, deadline } if kv.mod_revision == next => {
            mvcc.put(kv, deadline);
        }
        Record::Delete { key, revision } if revision == next => {
            mvcc.remove(key, revision);
        }
        Record::Compact { revision } => {
            // An automatic compaction may be logged after the snapshot that already covers it.
            if revision > mvcc.compacted() {
                mvcc.compact(revision)
                    .map_err(|e| wal::invalid(format!("compaction to {revision}: {e}")))?;
            }
        }
        other => {
            return Err(wal::invalid(format!(
                "record out of order at revision {}: {other:?}",
                mvcc.revision()
            )));
        }
    }
    Ok(())
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The answers of a batch, held until its writes are durable.
#[derive(Default)]
struct Answers(Vec<Answer>);

/// Sends one held answer, or the failure given in its place.
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;

impl Answers {
    fn push<T: Send + 'static>(&mut self, reply: Reply<T>, result: Result<T, StoreError>) {
        self.0.push(Box::new(move |failure: Option<&StoreError>| {
            let result = match failure {
                Some(error) => Err(error.clone()),
                None => result,
            };
            // A caller that stopped waiting needs no answer.
            let _ = reply.send(result);
        }));
    }

    /// Sends every answer, or `failure` in place of each.
    fn send(self, failure: Option<&StoreError>) {
        for answer in self.0 {
            answer(failure);
        }
    }
}
