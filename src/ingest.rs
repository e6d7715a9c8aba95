//! The single ingest: one watch on the whole key prefix of the store feeds the cache, in
//! revision order. It runs on its own thread; if the watch is lost (compaction, store
//! restart) it re-lists and starts again, and the cache closes its watchers so their clients
//! re-list too.

use std::sync::Arc;
use std::time::Duration;

use kapi_cache::{Cache, Change, EventKind, Listed};

use crate::storage::{Event, RangeResult, StoreClient, StoreError, WatchItem};

/// Pause before re-listing after the store failed, so a down store is not hammered.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// How far back (in revisions) the ingest starts when it (re)loads the cache: it lists the
/// state that many revisions ago, if the store still has it, and replays the changes since as
/// history, so clients that watched a previous kapi (or this one, before its watch on the
/// store was lost) resume from their last resourceVersion instead of re-listing.
const HISTORY_PRELOAD_REVISIONS: i64 = 10_000;

/// Starts the ingest thread for keys under `prefix`; returns once the cache holds the
/// store's current state.
pub fn start(store: StoreClient, cache: Arc<Cache>, prefix: String) -> std::io::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("kapi-ingest".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(run(store, cache, prefix, ready_tx));
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => Err(std::io::Error::other(
            "the ingest thread ended before the cache was ready",
        )),
    }
}

async fn run(
    store: StoreClient,
    cache: Arc<Cache>,
    prefix: String,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    loop {
        // List everything (on the first load as of a while ago, when the store still has it),
        // then follow from the list's revision.
        let listed = match list(&store, prefix.as_bytes(), ready.is_some()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("kapi: ingest: listing {prefix}: {e}");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        let revision = listed.revision;
        // Custom resources are cached once their definitions are known: those listed here
        // first, so the reset below routes their objects.
        for kv in &listed.kvs {
            if let Some(spec) = custom_spec(&prefix, &kv.key, &kv.value) {
                cache.add_resource(spec, std::iter::empty());
            }
        }
        cache.reset(
            revision,
            listed.kvs.into_iter().map(|kv| Listed {
                key: kv.key,
                value: kv.value,
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
            }),
        );
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        follow(&store, &cache, &prefix).await;
        tokio::time::sleep(RETRY_DELAY).await;
    }
}

/// Applies the store's changes from the cache's revision on. A lost watch is taken up again
/// where it left off (history and watchers survive a store restart); returns when the store
/// no longer has the changes since (compacted): the caller re-lists.
async fn follow(store: &StoreClient, cache: &Cache, prefix: &str) {
    loop {
        let mut stream = match store.watch(prefix.as_bytes(), cache.revision()).await {
            Ok(s) => s,
            Err(StoreError::Compacted { .. }) => return,
            Err(e) => {
                eprintln!("kapi: ingest: watching {prefix}: {e}");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            match item {
                WatchItem::Events(events) => {
                    add_custom_resources(store, cache, prefix, &events).await;
                    cache.apply(events.into_iter().map(to_cache).collect())
                }
                WatchItem::Progress(rev) => cache.progress(rev),
                WatchItem::Error(StoreError::Compacted { .. }) => {
                    eprintln!("kapi: ingest: the store compacted past the cache; re-listing");
                    return;
                }
                WatchItem::Error(e) => {
                    eprintln!("kapi: ingest: watch ended: {e}; watching again");
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}

/// The cache spec of the custom resource a CRD put (`key`, `value`) defines, if its prefix is
/// new to the cache.
fn custom_spec(prefix: &str, key: &[u8], value: &[u8]) -> Option<kapi_cache::ResourceSpec> {
    let crds = format!("{prefix}{}", crate::crd::CRD_KEY_PREFIX);
    if !key.starts_with(crds.as_bytes()) {
        return None;
    }
    crate::crd::cache_spec(prefix, value)
}

/// Adds the cache of every custom resource whose CRD these events create, holding what the
/// store has under its prefix (instances left from an earlier definition) at the cache's
/// revision, before the events are applied.
async fn add_custom_resources(store: &StoreClient, cache: &Cache, prefix: &str, events: &[Event]) {
    for ev in events {
        let Event::Put { kv, .. } = ev else { continue };
        let Some(spec) = custom_spec(prefix, &kv.key, &kv.value) else {
            continue;
        };
        if cache.resource(&spec.prefix).is_some() {
            continue;
        }
        let listed = match store.range(&spec.prefix, b"", cache.revision(), 0).await {
            Ok(r) => r.kvs,
            Err(e) => {
                eprintln!("kapi: ingest: listing {:?}: {e}", spec.prefix);
                Vec::new()
            }
        };
        cache.add_resource(
            spec,
            listed.into_iter().map(|kv| Listed {
                key: kv.key,
                value: kv.value,
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
            }),
        );
    }
}

/// The state HISTORY_PRELOAD_REVISIONS ago (as far back as the store has kept) when
/// `preload`, else the current one.
async fn list(
    store: &StoreClient,
    prefix: &[u8],
    preload: bool,
) -> Result<RangeResult, StoreError> {
    let current = store.current_revision().await?;
    let past = (current - HISTORY_PRELOAD_REVISIONS).max(1);
    if preload && past < current {
        match store.range(prefix, b"", past, 0).await {
            Err(StoreError::Compacted { compact_revision }) if compact_revision < current => {
                match store.range(prefix, b"", compact_revision, 0).await {
                    Err(StoreError::Compacted { .. }) => {}
                    other => return other,
                }
            }
            Err(StoreError::Compacted { .. }) => {}
            other => return other,
        }
    }
    store.range(prefix, b"", 0, 0).await
}

fn to_cache(ev: Event) -> Change {
    match ev {
        Event::Put { kv, .. } => Change {
            kind: EventKind::Put,
            created: kv.create_revision == kv.mod_revision,
            revision: kv.mod_revision,
            key: kv.key,
            value: kv.value,
        },
        Event::Delete {
            key, mod_revision, ..
        } => Change {
            kind: EventKind::Delete,
            created: false,
            revision: mod_revision,
            key,
            value: bytes::Bytes::new(),
        },
    }
}
