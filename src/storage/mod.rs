//! The storage layer: `StoreClient`, the handle every core uses to reach the storage thread, and
//! `Backend`, what that thread runs (the embedded store, or etcd). The semantics are etcd
//! v3's: one global revision, per-key create/mod revision and version, watch from a revision.

pub mod embedded;
pub mod encryption;
pub mod etcd;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::storage::Operation;

pub use watch::{WATCH_BUFFER_ITEMS, WatchItem, WatchStream};

/// etcd's revision: a counter of the whole store, one step per write.
pub type Revision = i64;

/// Requests waiting for the storage thread, from all cores together. Large enough to hold a burst
/// of writes that arrive while one group commit syncs; when full, the cores' write paths wait,
/// which is the back-pressure we want instead of a growing queue.
pub const REQUEST_QUEUE: usize = 1024;

/// Most requests served as one batch (and so one group commit). Bounds how long the first request
/// of a batch waits behind the others; the queue refills while the batch syncs.
pub const MAX_BATCH: usize = 256;

/// How often the storage thread does its background work: feeding watchers that are behind,
/// expiring leases, automatic compaction, progress notifications (etcd's unsynced-watcher loop
/// also runs every 100 ms).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(100);

/// One key's state at one revision, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
    /// 1 at creation, +1 per update; a deleted and re-created key starts again at 1.
    pub version: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// One change, as a watch delivers it. Every write makes exactly one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    Delete {
        key: Bytes,
        /// The revision of the deletion.
        mod_revision: i64,
        prev: Option<KeyValue>,
    },
}

impl Event {
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { mod_revision, .. } => *mod_revision,
        }
    }

    pub fn key(&self) -> &Bytes {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// Whether keys past the limit were left out.
    pub more: bool,
    /// How many keys the range holds from `start` on, limit or not.
    pub count: i64,
    /// The revision the range was read at: the one asked for, or the current one.
    pub revision: Revision,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    NotFound,
    AlreadyExists,
    /// The key's mod_revision was not the expected one; `current` is what is there now.
    Conflict {
        current: Option<KeyValue>,
    },
    /// The revision asked for is older than the oldest one kept.
    Compacted {
        compact_revision: Revision,
    },
    FutureRevision,
    /// The store cannot serve now (stopped, failed, or the caller fell behind); retry or re-list.
    Unavailable(String),
    /// A request the store refuses (too large, malformed) or a bug.
    Internal(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("key not found"),
            StoreError::AlreadyExists => f.write_str("key already exists"),
            StoreError::Conflict { current: Some(kv) } => write!(
                f,
                "conflict: the key was modified at revision {}",
                kv.mod_revision
            ),
            StoreError::Conflict { current: None } => f.write_str("conflict: the key is gone"),
            StoreError::Compacted { compact_revision } => write!(
                f,
                "required revision has been compacted (compacted to {compact_revision})"
            ),
            StoreError::FutureRevision => f.write_str("required revision is a future revision"),
            StoreError::Unavailable(why) => write!(f, "storage unavailable: {why}"),
            StoreError::Internal(why) => write!(f, "storage error: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Where a request's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One call of a `StoreClient`, with the channel its answer goes back on. Backends receive these
/// in batches: a durable backend commits a batch's writes with one sync, a remote one can run
/// them concurrently.
#[derive(Debug)]
pub enum Request {
    Get {
        key: Bytes,
        reply: Reply<Option<KeyValue>>,
    },
    Range {
        prefix: Bytes,
        start: Bytes,
        revision: Revision,
        limit: i64,
        reply: Reply<RangeResult>,
    },
    Create {
        key: Bytes,
        value: Bytes,
        lease_ttl_seconds: Option<i64>,
        reply: Reply<KeyValue>,
    },
    Update {
        key: Bytes,
        value: Bytes,
        expected_mod_revision: Revision,
        /// A new lease for the key (its TTL restarts); none: the key keeps its lease.
        lease_ttl_seconds: Option<i64>,
        reply: Reply<KeyValue>,
    },
    Delete {
        key: Bytes,
        expected_mod_revision: Option<Revision>,
        reply: Reply<KeyValue>,
    },
    CurrentRevision {
        reply: Reply<Revision>,
    },
    Compact {
        revision: Revision,
        reply: Reply<()>,
    },
    Watch {
        prefix: Bytes,
        after: Revision,
        reply: Reply<WatchStream>,
    },
    Health {
        reply: Reply<()>,
    },
}

impl Request {
    /// Answers the request with `error`, whatever its kind.
    pub fn fail(self, error: StoreError) {
        // A caller that stopped waiting (dropped its receiver) needs no answer: ignore send errors.
        match self {
            Request::Get { reply, .. } => drop(reply.send(Err(error))),
            Request::Range { reply, .. } => drop(reply.send(Err(error))),
            Request::Create { reply, .. }
            | Request::Update { reply, .. }
            | Request::Delete { reply, .. } => drop(reply.send(Err(error))),
            Request::CurrentRevision { reply } => drop(reply.send(Err(error))),
            Request::Compact { reply, .. } | Request::Health { reply } => {
                drop(reply.send(Err(error)))
            }
            Request::Watch { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// What a backend implements. It runs on the storage thread (a current-thread tokio runtime) and
/// owns everything it keeps; nothing else touches it.
#[async_trait::async_trait]
pub trait Backend: Send + 'static {
    /// Serves requests that arrived together, in arrival order, answering each on its own `reply`.
    /// A write's answer (and its watch event) must not leave before the write is durable.
    async fn serve(&mut self, batch: Vec<Request>);

    /// Background work, called every `MAINTENANCE_INTERVAL`: watchers that are behind, lease
    /// expiry, compaction, progress notifications.
    async fn tick(&mut self);

    /// For an in-process store: its last durable revision, kept current before any answer of a
    /// write leaves. Consistent reads then need no revision probe.
    fn committed_revision(&self) -> Option<Arc<std::sync::atomic::AtomicI64>> {
        None
    }
}

/// The handle to the storage thread: cheap to clone, `Send + Sync`, and usable from any async
/// executor (monoio on the cores): it is a tokio mpsc sender, and answers come on tokio oneshots,
/// neither of which needs a tokio runtime on the waiting side.
#[derive(Clone, Debug)]
pub struct StoreClient {
    requests: mpsc::Sender<Request>,
    committed: Option<Arc<std::sync::atomic::AtomicI64>>,
    /// `--encryption-provider-config`: values are sealed on their way to the store and opened
    /// on their way back. `None`: they pass untouched.
    encryption: Option<Arc<encryption::Encryption>>,
}

const STOPPED: &str = "the storage thread has stopped";

impl StoreClient {
    /// A call on `key` timed for `etcd_request_duration_seconds`, by upstream's operation
    /// names; a refusal the caller asked for (absent, exists, conflict) is not a failure.
    async fn timed<T>(
        &self,
        op: Operation,
        key: &Bytes,
        request: impl FnOnce(Reply<T>) -> Request,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let result = self.call(request).await;
        let failed = matches!(
            result,
            Err(StoreError::Unavailable(_) | StoreError::Internal(_))
        );
        crate::metrics::storage::observe(op, key, started, !failed);
        result
    }

    async fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| StoreError::Unavailable(STOPPED.into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(STOPPED.into()))?
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let key = Bytes::copy_from_slice(key);
        let kv = self
            .timed(Operation::Get, &key.clone(), |reply| Request::Get {
                key,
                reply,
            })
            .await?;
        match kv {
            Some(kv) => self.open(kv).await.map(Some),
            None => Ok(None),
        }
    }

    /// The keys under `prefix`, in key order, from `start` (inclusive; empty = from `prefix`), at
    /// `revision` (0 = current), at most `limit` of them (0 or less = all).
    pub async fn range(
        &self,
        prefix: &[u8],
        start: &[u8],
        revision: Revision,
        limit: i64,
    ) -> Result<RangeResult, StoreError> {
        let prefix = Bytes::copy_from_slice(prefix);
        let start = Bytes::copy_from_slice(start);
        let mut result = self
            .timed(Operation::List, &prefix.clone(), |reply| Request::Range {
                prefix,
                start,
                revision,
                limit,
                reply,
            })
            .await?;
        if let Some(e) = &self.encryption {
            for kv in &mut result.kvs {
                open_or_keep(e, kv).await;
            }
        }
        Ok(result)
    }

    /// Creates `key` if it is absent (`AlreadyExists` if not). With a TTL the key is attached to a
    /// lease and deleted when it expires.
    pub async fn create(
        &self,
        key: &[u8],
        value: Bytes,
        lease_ttl_seconds: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        let key = Bytes::copy_from_slice(key);
        let (stored, plain) = self.seal(&key, value)?;
        let kv = self
            .timed(Operation::Create, &key.clone(), |reply| Request::Create {
                key,
                value: stored,
                lease_ttl_seconds,
                reply,
            })
            .await;
        self.written(kv, plain).await
    }

    /// Replaces `key`'s value if its mod_revision is `expected_mod_revision`: `Conflict` with the
    /// current kv if not, `NotFound` if the key is absent. The key keeps its lease.
    pub async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError> {
        self.update_leased(key, value, expected_mod_revision, None)
            .await
    }

    /// `update`, attaching the key to a new lease of `lease_ttl_seconds` when given: its TTL
    /// starts again (upstream's GuaranteedUpdate with a TTL, as the apiservers' leases use).
    pub async fn update_leased(
        &self,
        key: &[u8],
        value: Bytes,
        expected_mod_revision: Revision,
        lease_ttl_seconds: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        let key = Bytes::copy_from_slice(key);
        let (stored, plain) = self.seal(&key, value)?;
        let kv = self
            .timed(Operation::Update, &key.clone(), |reply| Request::Update {
                key,
                value: stored,
                expected_mod_revision,
                lease_ttl_seconds,
                reply,
            })
            .await;
        self.written(kv, plain).await
    }

    /// Deletes `key` (if its mod_revision is `expected_mod_revision`, when given). Returns the
    /// deleted kv with `mod_revision` set to the revision of the deletion (as upstream's store
    /// returns a deleted object at the delete's revision); its other fields are the deleted
    /// version's.
    pub async fn delete(
        &self,
        key: &[u8],
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue, StoreError> {
        let key = Bytes::copy_from_slice(key);
        let result = self
            .timed(Operation::Delete, &key.clone(), |reply| Request::Delete {
                key,
                expected_mod_revision,
                reply,
            })
            .await;
        match (result, &self.encryption) {
            // The key is gone whatever its value was: an unreadable one is returned as stored.
            (Ok(mut kv), Some(e)) => {
                open_or_keep(e, &mut kv).await;
                Ok(kv)
            }
            (result, _) => self.opened_conflict(result).await,
        }
    }

    /// The store's last durable revision, when it is known in-process (the embedded store).
    pub fn local_revision(&self) -> Option<Revision> {
        self.committed
            .as_ref()
            .map(|c| c.load(std::sync::atomic::Ordering::Acquire))
    }

    pub async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.call(|reply| Request::CurrentRevision { reply }).await
    }

    /// Forgets history before `revision`: reads and watches older than it fail with `Compacted`.
    pub async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.call(|reply| Request::Compact { revision, reply })
            .await
    }

    /// The events of keys under `prefix` with revision > `after` (0 = from now on), in revision
    /// order, with progress notifications carrying the store's revision. `Compacted` if `after` is
    /// older than the history kept.
    pub async fn watch(&self, prefix: &[u8], after: Revision) -> Result<WatchStream, StoreError> {
        let prefix = Bytes::copy_from_slice(prefix);
        let stream = self
            .call(|reply| Request::Watch {
                prefix,
                after,
                reply,
            })
            .await?;
        Ok(match &self.encryption {
            Some(e) => stream.opened_by(e.clone()),
            None => stream,
        })
    }

    /// Whether the value stored at `key` (if still at `mod_revision`) was sealed otherwise than
    /// a write would seal it now (an older key or provider): then an unchanged update still
    /// writes it, which is how keys are rotated. Without encryption: false, at no cost.
    pub async fn stale(&self, key: &[u8], mod_revision: Revision) -> bool {
        let Some(e) = &self.encryption else {
            return false;
        };
        if !e.encrypts(key) {
            return false;
        }
        let key = Bytes::copy_from_slice(key);
        let raw = self
            .timed(Operation::Get, &key.clone(), |reply| Request::Get {
                key,
                reply,
            })
            .await;
        match raw {
            Ok(Some(kv)) if kv.mod_revision == mod_revision => e.is_stale(&kv.key, &kv.value),
            _ => false,
        }
    }

    /// The same store with `--encryption-provider-config` applied to every value.
    pub fn with_encryption(mut self, encryption: Arc<encryption::Encryption>) -> StoreClient {
        self.encryption = Some(encryption);
        self
    }

    /// The value to send for `key` and, when it was sealed, the plaintext to answer with.
    fn seal(&self, key: &Bytes, value: Bytes) -> Result<(Bytes, Option<Bytes>), StoreError> {
        match &self.encryption {
            None => Ok((value, None)),
            Some(e) => {
                let sealed = e.seal(key, value.clone()).map_err(StoreError::Internal)?;
                Ok((sealed, Some(value)))
            }
        }
    }

    /// A write's answer as its caller sees it: the plaintext it wrote, a conflict's current
    /// value opened.
    async fn written(
        &self,
        result: Result<KeyValue, StoreError>,
        plain: Option<Bytes>,
    ) -> Result<KeyValue, StoreError> {
        match (result, plain) {
            (Ok(mut kv), Some(plain)) => {
                kv.value = plain;
                Ok(kv)
            }
            (result, _) => self.opened_conflict(result).await,
        }
    }

    async fn opened_conflict(
        &self,
        result: Result<KeyValue, StoreError>,
    ) -> Result<KeyValue, StoreError> {
        match result {
            Err(StoreError::Conflict { current: Some(kv) }) if self.encryption.is_some() => {
                Err(StoreError::Conflict {
                    current: Some(self.open(kv).await?),
                })
            }
            other => other,
        }
    }

    /// `kv` with its value opened; a value no provider reads is an error for this key.
    async fn open(&self, mut kv: KeyValue) -> Result<KeyValue, StoreError> {
        if let Some(e) = &self.encryption {
            kv.value = e
                .open(&kv.key, kv.value.clone())
                .await
                .map_err(StoreError::Internal)?;
        }
        Ok(kv)
    }

    /// The `kms-providers` health check of `--encryption-provider-config`; `None` when there is
    /// none.
    pub async fn kms_health(&self) -> Option<Result<(), String>> {
        match &self.encryption {
            Some(e) => e.kms_health().await,
            None => None,
        }
    }

    pub async fn health(&self) -> Result<(), StoreError> {
        self.call(|reply| Request::Health { reply }).await
    }
}

/// Opens `kv`'s value in place for a listing or a watch, where one unreadable value must not
/// fail the others: it is kept as stored (so serving that object fails, and only it) and
/// logged.
async fn open_or_keep(encryption: &encryption::Encryption, kv: &mut KeyValue) {
    match encryption.open(&kv.key, kv.value.clone()).await {
        Ok(plain) => kv.value = plain,
        Err(e) => eprintln!("kapi: storage: {e}"),
    }
}

/// Starts the storage thread (a current-thread tokio runtime on its own OS thread) running
/// `backend`, and returns the handle to it. The thread ends when the last handle is dropped.
pub fn start(backend: Box<dyn Backend>) -> std::io::Result<StoreClient> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let (requests, queue) = mpsc::channel(REQUEST_QUEUE);
    let committed = backend.committed_revision();
    std::thread::Builder::new()
        .name("kapi-storage".into())
        .spawn(move || runtime.block_on(run(backend, queue)))?;
    Ok(StoreClient {
        requests,
        committed,
        encryption: None,
    })
}

/// The storage thread's loop: requests in batches of what has arrived, background work between.
async fn run(mut backend: Box<dyn Backend>, mut queue: mpsc::Receiver<Request>) {
    let mut ticks = tokio::time::interval(MAINTENANCE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            first = queue.recv() => {
                let Some(first) = first else { break };
                let mut batch = Vec::with_capacity(MAX_BATCH.min(queue.len() + 1));
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(request) => batch.push(request),
                        Err(_) => break,
                    }
                }
                backend.serve(batch).await;
            }
            _ = ticks.tick() => backend.tick().await,
        }
    }
}
