//! Tests of the embedded store as a whole: requests in batches, watches, compaction, durability
//! across reopen, torn logs, and a real `kill -9` of a writer process.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc::error::TryRecvError, oneshot};

use super::{EmbeddedBackend, Limits, open};
use crate::storage::{
    Event, KeyValue, RangeResult, Reply, Request, Revision, StoreClient, StoreError, WatchItem,
    WatchStream, start,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Serves one request by hand and returns its answer.
fn call<T>(
    store: &mut EmbeddedBackend,
    request: impl FnOnce(Reply<T>) -> Request,
) -> Result<T, StoreError> {
    let (reply, mut answer) = oneshot::channel();
    store.serve_batch(vec![request(reply)]);
    answer.try_recv().expect("answered within its batch")
}

fn create(store: &mut EmbeddedBackend, key: &str, value: &str) -> KeyValue {
    call(store, |reply| Request::Create {
        key: b(key),
        value: b(value),
        lease_ttl_seconds: None,
        reply,
    })
    .expect("create")
}

fn update(store: &mut EmbeddedBackend, key: &str, value: &str, expected: Revision) -> KeyValue {
    call(store, |reply| Request::Update {
        key: b(key),
        value: b(value),
        expected_mod_revision: expected,
        lease_ttl_seconds: None,
        reply,
    })
    .expect("update")
}

fn delete(store: &mut EmbeddedBackend, key: &str) -> KeyValue {
    call(store, |reply| Request::Delete {
        key: b(key),
        expected_mod_revision: None,
        reply,
    })
    .expect("delete")
}

fn get(store: &mut EmbeddedBackend, key: &str) -> Option<KeyValue> {
    call(store, |reply| Request::Get { key: b(key), reply }).expect("get")
}

fn range(
    store: &mut EmbeddedBackend,
    prefix: &str,
    revision: Revision,
) -> Result<RangeResult, StoreError> {
    call(store, |reply| Request::Range {
        prefix: b(prefix),
        start: Bytes::new(),
        revision,
        limit: 0,
        reply,
    })
}

fn watch(
    store: &mut EmbeddedBackend,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StoreError> {
    call(store, |reply| Request::Watch {
        prefix: b(prefix),
        after,
        reply,
    })
}

/// Everything a stream holds now: its events, and how it ended if it did.
fn drain(stream: &mut WatchStream) -> (Vec<Event>, Option<StoreError>) {
    let mut events = Vec::new();
    loop {
        match stream.try_next() {
            Ok(WatchItem::Events(batch)) => events.extend(batch),
            Ok(WatchItem::Progress(_)) => {}
            Ok(WatchItem::Error(e)) => {
                assert!(matches!(stream.try_next(), Err(TryRecvError::Disconnected)));
                return (events, Some(e));
            }
            Err(_) => return (events, None),
        }
    }
}

fn small_limits() -> Limits {
    Limits {
        watch_buffer_items: 4,
        replay_chunk_events: 3,
        ..Limits::DEFAULT
    }
}

/// A mixed history under /w/ and /x/; returns every event in order, as the store made them.
fn write_history(store: &mut EmbeddedBackend, rounds: usize) -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..rounds {
        for prefix in ["/w/", "/x/"] {
            let key = format!("{prefix}{}", i % 7);
            let prev = get(store, &key);
            let event = match &prev {
                None => Event::Put {
                    kv: create(store, &key, &format!("v{i}")),
                    prev: None,
                },
                Some(kv) if i % 3 == 0 => {
                    let deleted = delete(store, &key);
                    Event::Delete {
                        key: b(&key),
                        mod_revision: deleted.mod_revision,
                        prev: prev.clone(),
                    }
                }
                Some(kv) => Event::Put {
                    kv: update(store, &key, &format!("v{i}"), kv.mod_revision),
                    prev: prev.clone(),
                },
            };
            events.push(event);
        }
    }
    events
}

#[test]
fn writes_answer_with_etcd_revisions_and_conflicts_carry_the_current_kv() {
    let dir = tempdir();
    let mut store = open(dir.path()).expect("open");
    assert_eq!(
        call(&mut store, |reply| Request::CurrentRevision { reply }),
        Ok(1)
    );
    let a = create(&mut store, "/a", "1");
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version, a.lease),
        (2, 2, 1, 0)
    );
    let again = call(&mut store, |reply| Request::Create {
        key: b("/a"),
        value: b("2"),
        lease_ttl_seconds: None,
        reply,
    });
    assert_eq!(again, Err(StoreError::AlreadyExists));
    let stale = call(&mut store, |reply| Request::Update {
        key: b("/a"),
        value: b("2"),
        expected_mod_revision: 1,
        lease_ttl_seconds: None,
        reply,
    });
    assert_eq!(
        stale,
        Err(StoreError::Conflict {
            current: Some(a.clone())
        })
    );
    let a2 = update(&mut store, "/a", "2", 2);
    assert_eq!((a2.create_revision, a2.mod_revision, a2.version), (2, 3, 2));
    let stale_delete = call(&mut store, |reply| Request::Delete {
        key: b("/a"),
        expected_mod_revision: Some(2),
        reply,
    });
    assert_eq!(
        stale_delete,
        Err(StoreError::Conflict {
            current: Some(a2.clone())
        })
    );
    let deleted = delete(&mut store, "/a");
    assert_eq!(
        deleted,
        KeyValue {
            mod_revision: 4,
            ..a2
        }
    );
    assert_eq!(get(&mut store, "/a"), None);
    assert_eq!(
        call(&mut store, |reply| Request::CurrentRevision { reply }),
        Ok(4)
    );
    let too_large = call(&mut store, |reply| Request::Create {
        key: b("/big"),
        value: Bytes::from(vec![0u8; Limits::DEFAULT.max_request_bytes]),
        lease_ttl_seconds: None,
        reply,
    });
    assert!(matches!(too_large, Err(StoreError::Internal(_))));
    assert_eq!(
        call(&mut store, |reply| Request::CurrentRevision { reply }),
        Ok(4)
    );
}

#[test]
fn a_batch_answers_in_order_and_reads_see_earlier_writes_of_the_batch() {
    let dir = tempdir();
    let mut store = open(dir.path()).expect("open");
    let (c1, mut a1) = oneshot::channel();
    let (c2, mut a2) = oneshot::channel();
    let (g, mut ag) = oneshot::channel();
    let (r, mut ar) = oneshot::channel();
    store.serve_batch(vec![
        Request::Create {
            key: b("/k"),
            value: b("1"),
            lease_ttl_seconds: None,
            reply: c1,
        },
        Request::Create {
            key: b("/k"),
            value: b("2"),
            lease_ttl_seconds: None,
            reply: c2,
        },
        Request::Get {
            key: b("/k"),
            reply: g,
        },
        Request::CurrentRevision { reply: r },
    ]);
    let first = a1.try_recv().expect("answered").expect("created");
    assert_eq!(
        a2.try_recv().expect("answered"),
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(ag.try_recv().expect("answered"), Ok(Some(first)));
    assert_eq!(ar.try_recv().expect("answered"), Ok(2));
}

#[test]
fn watch_from_a_past_revision_replays_exactly_the_history_then_streams_live() {
    let dir = tempdir();
    let mut store = EmbeddedBackend::open_with(dir.path(), small_limits()).expect("open");
    let history = write_history(&mut store, 30);
    let after = history[9].revision();
    let mut stream = watch(&mut store, "/w/", after).expect("watch");
    let expected: Vec<Event> = history
        .iter()
        .filter(|e| e.revision() > after && e.key().starts_with(b"/w/"))
        .cloned()
        .collect();
    // The history is longer than the buffer holds: the watcher catches up a chunk per pass.
    let mut seen = Vec::new();
    let mut passes = 0;
    while seen.len() < expected.len() {
        let (events, end) = drain(&mut stream);
        assert_eq!(end, None);
        seen.extend(events);
        store.maintain(Instant::now(), 0);
        passes += 1;
        assert!(
            passes < 1000,
            "catch-up made no progress: {} of {}",
            seen.len(),
            expected.len()
        );
    }
    assert!(passes > 1, "the replay should not fit the buffer at once");
    assert_eq!(seen, expected);
    let current = get(&mut store, "/w/1").map_or(0, |kv| kv.mod_revision);
    let live = update(&mut store, "/w/1", "live", current);
    create(&mut store, "/x/live", "not watched");
    let (events, end) = drain(&mut stream);
    assert_eq!(end, None);
    assert!(matches!(&events[..], [Event::Put { kv, .. }] if *kv == live));
}

#[test]
fn watch_from_now_sees_only_later_writes_and_only_its_prefix() {
    let dir = tempdir();
    let mut store = open(dir.path()).expect("open");
    create(&mut store, "/w/old", "1");
    let mut stream = watch(&mut store, "/w/", 0).expect("watch");
    let new = create(&mut store, "/w/new", "1");
    create(&mut store, "/wx", "not under /w/");
    let deleted = delete(&mut store, "/w/old");
    let (events, end) = drain(&mut stream);
    assert_eq!(end, None);
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[0], Event::Put { kv, prev: None } if *kv == new));
    assert!(
        matches!(&events[1], Event::Delete { mod_revision, prev: Some(prev), .. }
        if *mod_revision == deleted.mod_revision && prev.value == b("1"))
    );
}

#[test]
fn compaction_refuses_older_reads_and_watches_and_ends_watchers_left_behind() {
    let dir = tempdir();
    let mut store = EmbeddedBackend::open_with(dir.path(), small_limits()).expect("open");
    let history = write_history(&mut store, 30);
    let mut behind = watch(&mut store, "/", 1).expect("watch from the start");
    let cut = history[40].revision();
    assert_eq!(
        call(&mut store, |reply| Request::Compact {
            revision: cut,
            reply
        }),
        Ok(())
    );
    assert_eq!(
        range(&mut store, "/", cut - 1).map(|r| r.count),
        Err(StoreError::Compacted {
            compact_revision: cut
        })
    );
    assert!(range(&mut store, "/", cut).is_ok());
    assert!(matches!(
        watch(&mut store, "/", cut - 1),
        Err(StoreError::Compacted { compact_revision }) if compact_revision == cut
    ));
    assert!(watch(&mut store, "/", cut).is_ok());
    assert_eq!(
        call(&mut store, |reply| Request::Compact {
            revision: cut,
            reply
        }),
        Err(StoreError::Compacted {
            compact_revision: cut
        })
    );
    // The early watcher had not caught up past the cut: it is ended, after what it was sent.
    store.maintain(Instant::now(), 0);
    let (events, end) = drain(&mut behind);
    assert!(!events.is_empty() && events.len() < history.len());
    assert_eq!(events, history[..events.len()]);
    assert_eq!(
        end,
        Some(StoreError::Compacted {
            compact_revision: cut
        })
    );
}

#[test]
fn compaction_in_a_batch_does_not_hide_the_batch_writes_from_watchers() {
    let dir = tempdir();
    let mut store = open(dir.path()).expect("open");
    let mut stream = watch(&mut store, "/", 0).expect("watch");
    let (c, mut ac) = oneshot::channel();
    let (k, mut ak) = oneshot::channel();
    store.serve_batch(vec![
        Request::Create {
            key: b("/a"),
            value: b("1"),
            lease_ttl_seconds: None,
            reply: c,
        },
        Request::Compact {
            revision: 2,
            reply: k,
        },
    ]);
    assert!(ac.try_recv().is_ok_and(|r| r.is_ok()));
    assert_eq!(ak.try_recv().expect("answered"), Ok(()));
    let (events, end) = drain(&mut stream);
    assert_eq!((events.len(), end), (1, None));
}

#[test]
fn history_is_compacted_automatically_past_its_revision_limit() {
    let dir = tempdir();
    let limits = Limits {
        history_revisions: 10,
        ..Limits::DEFAULT
    };
    let mut store = EmbeddedBackend::open_with(dir.path(), limits).expect("open");
    write_history(&mut store, 20);
    let revision = call(&mut store, |reply| Request::CurrentRevision { reply }).expect("revision");
    store.maintain(Instant::now(), 0);
    assert!(range(&mut store, "/", revision - 10).is_ok());
    assert_eq!(
        range(&mut store, "/", revision - 11).map(|r| r.count),
        Err(StoreError::Compacted {
            compact_revision: revision - 10
        })
    );
}

#[test]
fn history_is_compacted_automatically_past_its_age_limit() {
    let dir = tempdir();
    let limits = Limits {
        history_age: Duration::from_secs(60),
        ..Limits::DEFAULT
    };
    let mut store = EmbeddedBackend::open_with(dir.path(), limits).expect("open");
    write_history(&mut store, 5);
    let start = Instant::now();
    store.maintain(start, 0);
    let sampled = call(&mut store, |reply| Request::CurrentRevision { reply }).expect("revision");
    write_history(&mut store, 5);
    store.maintain(start + Duration::from_secs(30), 0);
    assert!(
        range(&mut store, "/", 2).is_ok(),
        "nothing is a minute old yet"
    );
    store.maintain(start + Duration::from_secs(61), 0);
    assert_eq!(
        range(&mut store, "/", sampled - 1).map(|r| r.count),
        Err(StoreError::Compacted {
            compact_revision: sampled
        })
    );
}

#[test]
fn leased_keys_expire_with_a_delete_event_that_survives_reopen() {
    let dir = tempdir();
    let mut store = open(dir.path()).expect("open");
    let mut stream = watch(&mut store, "/", 0).expect("watch");
    let leased = call(&mut store, |reply| Request::Create {
        key: b("/events/e1"),
        value: b("1"),
        lease_ttl_seconds: Some(3660),
        reply,
    })
    .expect("create");
    assert_ne!(leased.lease, 0);
    create(&mut store, "/plain", "1");
    let created_ms = super::unix_ms();
    store.maintain(Instant::now(), created_ms + 3_000_000);
    assert!(get(&mut store, "/events/e1").is_some(), "not due yet");
    store.maintain(Instant::now(), created_ms + 3_661_000);
    assert_eq!(get(&mut store, "/events/e1"), None);
    let (events, _) = drain(&mut stream);
    assert!(matches!(events.last(), Some(Event::Delete { key, .. }) if key == "/events/e1"));
    drop(store);
    let mut store = open(dir.path()).expect("reopen");
    assert_eq!(get(&mut store, "/events/e1"), None);
    assert!(get(&mut store, "/plain").is_some());
}

#[test]
fn a_lease_is_kept_across_reopen_and_still_expires() {
    let dir = tempdir();
    let mut store = open(dir.path()).expect("open");
    let leased = call(&mut store, |reply| Request::Create {
        key: b("/events/e1"),
        value: b("1"),
        lease_ttl_seconds: Some(10),
        reply,
    })
    .expect("create");
    drop(store);
    let mut store = open(dir.path()).expect("reopen");
    assert_eq!(get(&mut store, "/events/e1"), Some(leased));
    store.maintain(Instant::now(), super::unix_ms() + 11_000);
    assert_eq!(get(&mut store, "/events/e1"), None);
}

#[test]
fn every_acknowledged_write_is_there_after_reopen() {
    let dir = tempdir();
    let mut store = open(dir.path()).expect("open");
    let history = write_history(&mut store, 40);
    let before = range(&mut store, "/", 0).expect("range");
    // No shutdown step exists: dropping is all a crash skips, and acknowledged writes are synced.
    drop(store);
    let mut store = open(dir.path()).expect("reopen");
    assert_eq!(range(&mut store, "/", 0), Ok(before));
    // The history survives too: a watch from the first revision replays it.
    let mut stream = watch(&mut store, "/", 1).expect("watch");
    let (events, _) = drain(&mut stream);
    assert_eq!(events, history);
}

/// Writes keys /t/0.. one per batch; returns the log's path.
fn write_keys(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut store = open(dir).expect("open");
    for i in 0..n {
        create(&mut store, &format!("/t/{i}"), "value");
    }
    dir.join("wal")
}

fn present(dir: &Path, n: usize) -> Vec<bool> {
    let mut store = open(dir).expect("reopen");
    (0..n)
        .map(|i| get(&mut store, &format!("/t/{i}")).is_some())
        .collect()
}

#[test]
fn a_torn_last_record_is_discarded_and_writing_goes_on_after_it() {
    let dir = tempdir();
    let log = write_keys(dir.path(), 10);
    let len = std::fs::metadata(&log).expect("log").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("log")
        .set_len(len - 3)
        .expect("cut");
    assert_eq!(
        present(dir.path(), 10),
        [vec![true; 9], vec![false]].concat()
    );
    // The cut is at the last whole record: a write now lands after it and survives.
    {
        let mut store = open(dir.path()).expect("reopen");
        create(&mut store, "/t/9", "again");
    }
    let mut store = open(dir.path()).expect("reopen");
    assert_eq!(get(&mut store, "/t/9").map(|kv| kv.value), Some(b("again")));
    assert_eq!(range(&mut store, "/t/", 0).map(|r| r.count), Ok(10));
}

#[test]
fn a_corrupt_last_record_is_discarded() {
    let dir = tempdir();
    let log = write_keys(dir.path(), 10);
    let mut bytes = std::fs::read(&log).expect("log");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x40;
    std::fs::write(&log, &bytes).expect("write");
    assert_eq!(
        present(dir.path(), 10),
        [vec![true; 9], vec![false]].concat()
    );
}

#[test]
fn garbage_after_the_last_record_is_discarded() {
    let dir = tempdir();
    let log = write_keys(dir.path(), 10);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("log");
    file.write_all(&[0x17, 0, 0, 0, 1, 2, 3, 4, 5, 6])
        .expect("append");
    drop(file);
    assert_eq!(present(dir.path(), 10), vec![true; 10]);
    let healed = std::fs::metadata(&log).expect("log").len();
    assert_eq!(present(dir.path(), 10), vec![true; 10]);
    assert_eq!(std::fs::metadata(&log).expect("log").len(), healed);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempdir();
    let _store = open(dir.path()).expect("open");
    let second = open(dir.path());
    assert!(second.is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock));
}

#[test]
fn a_grown_log_is_rewritten_as_a_snapshot_that_keeps_state_and_history() {
    let dir = tempdir();
    let limits = Limits {
        log_rewrite_bytes: 8 << 10,
        history_revisions: 50,
        ..Limits::DEFAULT
    };
    let mut store = EmbeddedBackend::open_with(dir.path(), limits).expect("open");
    let mut largest = 0;
    let mut value = String::new();
    for i in 0..400 {
        let key = format!("/r/{}", i % 5);
        value = format!("{i:0>100}");
        match get(&mut store, &key) {
            None => create(&mut store, &key, &value),
            Some(kv) => update(&mut store, &key, &value, kv.mod_revision),
        };
        if i % 20 == 0 {
            store.maintain(Instant::now(), 0);
        }
        largest = largest.max(store.wal.len());
    }
    assert!(largest < 3 * (8 << 10), "the log stays bounded: {largest}");
    let before = range(&mut store, "/", 0).expect("range");
    let oldest = store.mvcc.compacted();
    let history: Vec<Event> = store.mvcc.events_from(0).cloned().collect();
    drop(store);
    let mut store = EmbeddedBackend::open_with(dir.path(), limits).expect("reopen");
    assert_eq!(range(&mut store, "/", 0), Ok(before));
    assert_eq!(get(&mut store, "/r/4").map(|kv| kv.value), Some(b(&value)));
    let mut stream = watch(&mut store, "/", oldest).expect("watch the kept history");
    let mut replayed = Vec::new();
    for _ in 0..100 {
        replayed.extend(drain(&mut stream).0);
        store.maintain(Instant::now(), 0);
    }
    assert_eq!(replayed, history);
}

#[test]
fn a_watcher_that_does_not_read_is_ended_without_holding_up_writes_or_other_watchers() {
    let dir = tempdir();
    let limits = Limits {
        watch_buffer_items: 8,
        ..Limits::DEFAULT
    };
    let store = EmbeddedBackend::open_with(dir.path(), limits).expect("open");
    let client = start(Box::new(store)).expect("start");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut slow = client.watch(b"/", 0).await.expect("watch");
        let mut fast = client.watch(b"/", 0).await.expect("watch");
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < 100 {
                match fast.next().await {
                    Some(WatchItem::Events(events)) => seen.extend(events),
                    Some(WatchItem::Progress(_)) => {}
                    other => panic!("the reading watcher ended: {other:?}"),
                }
            }
            seen
        });
        let mut written = Vec::new();
        for i in 0..100 {
            written.push(
                client
                    .create(format!("/s/{i}").as_bytes(), b("v"), None)
                    .await
                    .expect("write"),
            );
        }
        let seen = reader.await.expect("reader");
        let seen: Vec<KeyValue> = seen
            .into_iter()
            .map(|e| match e {
                Event::Put { kv, .. } => kv,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seen, written);
        let mut items = 0;
        let end = loop {
            match slow.next().await {
                Some(WatchItem::Error(e)) => break e,
                Some(_) => items += 1,
                None => panic!("ended without an error"),
            }
        };
        assert_eq!(end, StoreError::Unavailable("watcher fell behind".into()));
        assert!(items <= 7);
        assert!(slow.next().await.is_none());
    });
}

#[test]
fn the_client_works_from_a_thread_with_no_tokio_runtime() {
    let dir = tempdir();
    let client = start(Box::new(open(dir.path()).expect("open"))).expect("start");
    let kv = block_on(client.create(b"/k", b("v"), None)).expect("create");
    assert_eq!(block_on(client.get(b"/k")), Ok(Some(kv)));
    assert_eq!(block_on(client.health()), Ok(()));
}

/// A minimal executor (park the thread until woken), standing in for monoio.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[test]
fn concurrent_clients_all_get_durable_answers_through_group_commit() {
    let dir = tempdir();
    let client = start(Box::new(open(dir.path()).expect("open"))).expect("start");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let written = runtime.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    client
                        .create(format!("/g/{i}").as_bytes(), b("v"), None)
                        .await
                })
            })
            .collect();
        let mut revisions = Vec::new();
        for task in tasks {
            revisions.push(task.await.expect("task").expect("create").mod_revision);
        }
        revisions.sort();
        revisions
    });
    assert_eq!(
        written,
        (2..202).collect::<Vec<_>>(),
        "one revision per write, none lost"
    );
    let listed = runtime
        .block_on(client.range(b"/g/", b"", 0, 0))
        .expect("range");
    assert_eq!(listed.count, 200);
}

#[test]
fn the_client_reaches_every_operation_of_the_storage_thread() {
    let dir = tempdir();
    let client = start(Box::new(open(dir.path()).expect("open"))).expect("start");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        assert_eq!(client.health().await, Ok(()));
        let mut stream = client.watch(b"/c/", 0).await.expect("watch");
        let a = client.create(b"/c/a", b("1"), None).await.expect("create");
        client.create(b"/c/b", b("1"), None).await.expect("create");
        client.create(b"/c/c", b("1"), None).await.expect("create");
        assert_eq!(
            client.update(b"/c/a", b("2"), 1).await,
            Err(StoreError::Conflict {
                current: Some(a.clone())
            })
        );
        let a2 = client
            .update(b"/c/a", b("2"), a.mod_revision)
            .await
            .expect("update");
        let page = client.range(b"/c/", b"/c/b", 0, 1).await.expect("range");
        assert_eq!((page.kvs.len(), page.more, page.count), (1, true, 2));
        assert_eq!(&page.kvs[0].key[..], b"/c/b");
        let old = client
            .range(b"/c/", b"", a.mod_revision, 0)
            .await
            .expect("range at a past revision");
        assert_eq!(old.kvs, vec![a.clone()]);
        let deleted = client
            .delete(b"/c/a", Some(a2.mod_revision))
            .await
            .expect("delete");
        let revision = client.current_revision().await.expect("revision");
        assert_eq!(deleted.mod_revision, revision);
        assert_eq!(client.get(b"/c/a").await, Ok(None));
        assert_eq!(client.compact(revision).await, Ok(()));
        assert_eq!(
            client
                .range(b"/c/", b"", revision - 1, 0)
                .await
                .map(|r| r.count),
            Err(StoreError::Compacted {
                compact_revision: revision
            })
        );
        let mut revisions = Vec::new();
        while revisions.len() < 5 {
            match stream.next().await {
                Some(WatchItem::Events(events)) => {
                    revisions.extend(events.iter().map(Event::revision))
                }
                Some(WatchItem::Progress(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(revisions, (2..=6).collect::<Vec<_>>());
    });
    drop(client);
}

#[test]
fn a_whole_record_out_of_order_is_an_error_not_a_tail_to_discard() {
    let dir = tempdir();
    write_keys(dir.path(), 3);
    let (mut wal, _) = super::wal::Wal::open(dir.path(), |_| Ok(())).expect("log");
    wal.append(&super::wal::Record::Put {
        kv: KeyValue {
            key: b("/t/x"),
            value: b("v"),
            create_revision: 100,
            mod_revision: 100,
            version: 1,
            lease: 0,
        },
        deadline: None,
    });
    wal.commit().expect("append");
    drop(wal);
    let reopened = open(dir.path());
    assert!(reopened.is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidData));
}

/// Where the crash test's writer process writes; set only in that child process.
const CRASH_WRITER_DIR: &str = "KAPI_STORAGE_CRASH_WRITER_DIR";

/// Not a test on its own: the writer process of `kill_9_loses_no_acknowledged_write`. It writes
/// keys from several tasks at once (so group commits hold several writes) and prints each one
/// once it is acknowledged, until it is killed.
#[test]
fn crash_writer() {
    let Some(dir) = std::env::var_os(CRASH_WRITER_DIR) else {
        return;
    };
    let client: StoreClient = start(Box::new(open(Path::new(&dir)).expect("open"))).expect("start");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("/crash/{w}/{i}");
                        match client
                            .create(key.as_bytes(), Bytes::from(key.clone()), None)
                            .await
                        {
                            Ok(kv) => println!("ACK {key} {}", kv.mod_revision),
                            Err(e) => {
                                println!("ERR {e}");
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            let _ = writer.await;
        }
    });
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    const ACKS_BEFORE_KILL: usize = 2_000;
    let dir = tempdir();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "storage::embedded::tests::crash_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_WRITER_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: Vec<(String, Revision)> = Vec::new();
    let record = |line: &str, acked: &mut Vec<(String, Revision)>| {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (key, revision) = rest.split_once(' ').expect("ACK key revision");
            acked.push((key.to_owned(), revision.parse().expect("revision")));
        }
        assert!(!line.starts_with("ERR"), "the writer failed: {line}");
    };
    while acked.len() < ACKS_BEFORE_KILL {
        match lines.next() {
            Some(Ok(line)) => record(&line, &mut acked),
            _ => break,
        }
    }
    // SIGKILL, mid-stream: the writer is still writing.
    child.kill().expect("kill -9");
    // What it printed before it died was acknowledged too.
    for line in lines.map_while(Result::ok) {
        record(&line, &mut acked);
    }
    child.wait().expect("reap");
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "the writer stopped early: {} acks",
        acked.len()
    );

    let mut store = open(dir.path()).expect("reopen after kill -9");
    for (key, revision) in &acked {
        let kv = get(&mut store, key);
        assert_eq!(
            kv.map(|kv| (kv.value, kv.mod_revision)),
            Some((b(key), *revision)),
            "acknowledged {key} lost"
        );
    }
}
