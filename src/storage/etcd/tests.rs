//! Tests of the etcd backend against a real etcd (`test_support`), through `StoreClient` as kapi
//! uses it: the embedded store's semantics, and keys shared with other etcd clients.

use std::time::Duration;

use bytes::Bytes;

use super::test_support::{Etcd, ServerTls};
use super::{EtcdConfig, orders_requested_progress, start_etcd, tls_config};
use crate::storage::{Event, KeyValue, StoreClient, StoreError, WatchItem, WatchStream};

/// How long a test waits for a watch item before failing (progress comes every second).
const ITEM_TIMEOUT: Duration = Duration::from_secs(10);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn store(etcd: &Etcd) -> StoreClient {
    start_etcd(EtcdConfig {
        endpoints: vec![etcd.endpoint.clone()],
        ..Default::default()
    })
    .expect("connecting to the test etcd")
}

async fn next(stream: &mut WatchStream) -> WatchItem {
    tokio::time::timeout(ITEM_TIMEOUT, stream.next())
        .await
        .expect("a watch item in time")
        .expect("the watch is open")
}

/// The next `n` events, skipping progress notes.
async fn events(stream: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut events = Vec::new();
    while events.len() < n {
        match next(stream).await {
            WatchItem::Events(batch) => events.extend(batch),
            WatchItem::Progress(_) => {}
            WatchItem::Error(e) => panic!("the watch ended: {e}"),
        }
    }
    assert_eq!(events.len(), n, "exactly the events expected");
    events
}

fn put(kv: &KeyValue, prev: Option<&KeyValue>) -> Event {
    Event::Put {
        kv: kv.clone(),
        prev: prev.cloned(),
    }
}

#[tokio::test]
async fn writes_answer_with_etcd_revisions_and_refusals_carry_the_current_kv() {
    let etcd = Etcd::start();
    let store = store(&etcd);

    let a = store.create(b"/r/a", b("1"), None).await.unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version, a.lease),
        (2, 2, 1, 0),
        "etcd's first write is revision 2"
    );
    assert_eq!(store.get(b"/r/a").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.create(b"/r/a", b("again"), None).await,
        Err(StoreError::AlreadyExists)
    );

    assert_eq!(
        store.update(b"/r/a", b("2"), a.mod_revision + 7).await,
        Err(StoreError::Conflict {
            current: Some(a.clone())
        })
    );
    let a2 = store.update(b"/r/a", b("2"), a.mod_revision).await.unwrap();
    assert_eq!(
        a2,
        KeyValue {
            value: b("2"),
            mod_revision: 3,
            version: 2,
            ..a.clone()
        }
    );
    assert_eq!(
        store.update(b"/r/missing", b("x"), 0).await,
        Err(StoreError::NotFound),
        "an update never creates"
    );

    assert_eq!(
        store.delete(b"/r/a", Some(a.mod_revision)).await,
        Err(StoreError::Conflict {
            current: Some(a2.clone())
        })
    );
    let deleted = store.delete(b"/r/a", Some(a2.mod_revision)).await.unwrap();
    assert_eq!(
        deleted,
        KeyValue {
            mod_revision: 4,
            ..a2.clone()
        },
        "the deleted kv at the deletion's revision"
    );
    assert_eq!(store.delete(b"/r/a", None).await, Err(StoreError::NotFound));
    assert_eq!(store.get(b"/r/a").await.unwrap(), None);

    let again = store.create(b"/r/a", b("3"), None).await.unwrap();
    assert_eq!((again.create_revision, again.version), (5, 1));
    let gone = store.delete(b"/r/a", None).await.unwrap();
    assert_eq!(gone.mod_revision, 6);
    assert_eq!(store.current_revision().await.unwrap(), 6);
    store.health().await.unwrap();

    // Requests run concurrently, each answered on its own.
    let creates = (0..64).map(|i| {
        let store = store.clone();
        async move {
            store
                .create(format!("/c/{i:02}").as_bytes(), b("x"), None)
                .await
        }
    });
    let mut revisions: Vec<i64> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap().mod_revision)
        .collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (7..7 + 64).collect::<Vec<_>>());
}

#[tokio::test]
async fn range_pages_with_limit_and_start_and_reads_past_revisions() {
    let etcd = Etcd::start();
    let store = store(&etcd);
    let mut kvs = Vec::new();
    for key in ["/p/a", "/p/b", "/p/c", "/p/d", "/p/e", "/q/x"] {
        kvs.push(store.create(key.as_bytes(), b(key), None).await.unwrap());
    }
    let now = kvs[5].mod_revision;

    let first = store.range(b"/p/", b"", 0, 2).await.unwrap();
    assert_eq!(first.kvs, kvs[..2]);
    assert!(first.more);
    assert_eq!((first.count, first.revision), (5, now));

    let rest = store.range(b"/p/", b"/p/c", 0, 0).await.unwrap();
    assert_eq!(rest.kvs, kvs[2..5]);
    assert!(!rest.more);
    assert_eq!(rest.count, 3, "counted from the start key");

    let then = kvs[1].mod_revision;
    let past = store.range(b"/p/", b"", then, 0).await.unwrap();
    assert_eq!(past.kvs, kvs[..2]);
    assert_eq!(past.revision, then, "read at the revision asked for");

    let all = store.range(b"", b"", 0, 0).await.unwrap();
    assert_eq!(all.kvs, kvs, "an empty prefix is every key");

    assert_eq!(
        store.range(b"/p/", b"", now + 10, 0).await,
        Err(StoreError::FutureRevision)
    );
}

#[tokio::test]
async fn watch_from_a_past_revision_replays_exactly_the_history_then_streams_live() {
    let etcd = Etcd::start();
    let store = store(&etcd);
    let before = store.create(b"/w/early", b("0"), None).await.unwrap();
    let a = store.create(b"/w/a", b("1"), None).await.unwrap();
    store
        .create(b"/other/x", b("not watched"), None)
        .await
        .unwrap();
    let a2 = store.update(b"/w/a", b("2"), a.mod_revision).await.unwrap();
    let deleted = store.delete(b"/w/a", None).await.unwrap();

    let mut stream = store.watch(b"/w/", before.mod_revision).await.unwrap();
    let history = events(&mut stream, 3).await;
    assert_eq!(
        history,
        vec![
            put(&a, None),
            put(&a2, Some(&a)),
            Event::Delete {
                key: b("/w/a"),
                mod_revision: deleted.mod_revision,
                prev: Some(a2.clone()),
            },
        ]
    );

    let live = store.create(b"/w/b", b("3"), None).await.unwrap();
    assert_eq!(events(&mut stream, 1).await, vec![put(&live, None)]);

    // Idle, the watch hears of progress up to the store's revision.
    store
        .create(b"/other/y", b("not watched"), None)
        .await
        .unwrap();
    let current = store.current_revision().await.unwrap();
    loop {
        match next(&mut stream).await {
            WatchItem::Progress(revision) if revision == current => break,
            WatchItem::Progress(revision) => assert!(revision < current),
            item => panic!("expected progress, got {item:?}"),
        }
    }

    let mut from_now = store.watch(b"/w/", 0).await.unwrap();
    let later = store.create(b"/w/c", b("4"), None).await.unwrap();
    assert_eq!(events(&mut from_now, 1).await, vec![put(&later, None)]);
}

#[tokio::test]
async fn compaction_refuses_older_reads_and_watches() {
    let etcd = Etcd::start();
    let store = store(&etcd);
    let a = store.create(b"/k/a", b("1"), None).await.unwrap();
    let a2 = store.update(b"/k/a", b("2"), a.mod_revision).await.unwrap();
    let a3 = store
        .update(b"/k/a", b("3"), a2.mod_revision)
        .await
        .unwrap();

    let mut watching = store.watch(b"/k/", a3.mod_revision).await.unwrap();
    store.compact(a3.mod_revision).await.unwrap();
    let compacted = StoreError::Compacted {
        compact_revision: a3.mod_revision,
    };

    assert_eq!(
        store.range(b"/k/", b"", a2.mod_revision, 0).await,
        Err(compacted.clone())
    );
    let at_compaction = store.range(b"/k/", b"", a3.mod_revision, 0).await.unwrap();
    assert_eq!(at_compaction.kvs, vec![a3.clone()]);

    let mut old = store.watch(b"/k/", a.mod_revision).await.unwrap();
    match next(&mut old).await {
        WatchItem::Error(e) => assert_eq!(e, compacted),
        item => panic!("expected the compaction error, got {item:?}"),
    }
    assert!(old.next().await.is_none(), "nothing follows the error");

    assert_eq!(store.compact(a2.mod_revision).await, Err(compacted));
    assert_eq!(
        store.compact(a3.mod_revision + 100).await,
        Err(StoreError::FutureRevision)
    );

    // A watch already past the compacted revision goes on.
    let a4 = store
        .update(b"/k/a", b("4"), a3.mod_revision)
        .await
        .unwrap();
    assert_eq!(events(&mut watching, 1).await, vec![put(&a4, Some(&a3))]);
}

#[tokio::test]
async fn keys_created_with_a_ttl_are_on_a_lease_of_at_least_that_ttl() {
    let etcd = Etcd::start();
    let store = store(&etcd);
    let first = store.create(b"/e/1", b("1"), Some(100)).await.unwrap();
    let second = store.create(b"/e/2", b("2"), Some(100)).await.unwrap();
    let other_ttl = store.create(b"/e/3", b("3"), Some(200)).await.unwrap();
    assert_ne!(first.lease, 0);
    assert_eq!(
        second.lease, first.lease,
        "a burst with one TTL shares a lease"
    );
    assert_ne!(other_ttl.lease, first.lease);
    assert_eq!(
        store.create(b"/e/4", b("4"), Some(0)).await,
        Err(StoreError::Internal("invalid lease TTL 0".into()))
    );

    let output = etcd.etcdctl(&[
        "lease",
        "timetolive",
        &format!("{:x}", first.lease),
        "--keys",
        "-w",
        "json",
    ]);
    let lease: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let granted = lease["granted-ttl"].as_i64().unwrap();
    let remaining = lease["ttl"].as_i64().unwrap();
    assert_eq!(granted, 105, "the TTL and a 5 % reuse window");
    assert!((100..=105).contains(&remaining), "{remaining}s left");
    let keys: Vec<String> = lease["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 2, "both keys are on the lease: {keys:?}");

    let updated = store
        .update(b"/e/1", b("1b"), first.mod_revision)
        .await
        .unwrap();
    assert_eq!(updated.lease, first.lease, "an update keeps the lease");
    assert_eq!(store.get(b"/e/1").await.unwrap(), Some(updated));
}

#[tokio::test]
async fn keys_written_by_another_etcd_client_are_seen_by_range_and_watch() {
    let etcd = Etcd::start();
    let store = store(&etcd);
    let mut stream = store.watch(b"/i/", 0).await.unwrap();

    etcd.etcdctl(&["put", "/i/from-etcdctl", "hello"]);
    let put = match events(&mut stream, 1).await.remove(0) {
        Event::Put { kv, prev: None } => kv,
        event => panic!("expected a put, got {event:?}"),
    };
    assert_eq!((put.key, put.value), (b("/i/from-etcdctl"), b("hello")));
    let listed = store.range(b"/i/", b"", 0, 0).await.unwrap();
    assert_eq!(listed.kvs.len(), 1);
    assert_eq!(listed.kvs[0].mod_revision, put.mod_revision);

    let mine = store.create(b"/i/from-kapi", b("hi"), None).await.unwrap();
    let output = etcd.etcdctl(&["get", "/i/from-kapi", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "hi");
    assert_eq!(
        events(&mut stream, 1).await,
        vec![Event::Put {
            kv: mine,
            prev: None
        }]
    );

    etcd.etcdctl(&["del", "/i/from-etcdctl"]);
    match events(&mut stream, 1).await.remove(0) {
        Event::Delete { key, prev, .. } => {
            assert_eq!(key, b("/i/from-etcdctl"));
            assert_eq!(prev.map(|p| p.value), Some(b("hello")));
        }
        event => panic!("expected a delete, got {event:?}"),
    }
}

#[tokio::test]
async fn dropping_a_watch_stream_cancels_the_etcd_watch() {
    let etcd = Etcd::start();
    let store = store(&etcd);
    let watchers = || etcd.metric("etcd_debugging_mvcc_watcher_total");
    let stream = store.watch(b"/d/", 0).await.unwrap();
    assert_eq!(watchers(), 1.0);
    drop(stream);
    let deadline = std::time::Instant::now() + ITEM_TIMEOUT;
    while watchers() != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the etcd watch is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn requested_progress_is_used_only_on_etcd_versions_that_order_it() {
    for (version, orders) in [
        ("3.4.23", false),
        ("3.4.31", true),
        ("3.5.12", false),
        ("3.5.13", true),
        ("3.6.0", true),
        ("3.3.27", false),
        ("", false),
    ] {
        assert_eq!(orders_requested_progress(version), orders, "{version}");
    }
}

#[test]
fn a_client_certificate_needs_its_key_and_a_ca() {
    let only_cert = EtcdConfig {
        cert_file: Some("/nonexistent/cert.pem".into()),
        ..Default::default()
    };
    assert!(matches!(
        tls_config(&only_cert),
        Err(StoreError::Internal(_))
    ));
    assert!(matches!(tls_config(&EtcdConfig::default()), Ok(None)));
    let https_without_ca = EtcdConfig {
        endpoints: vec!["https://127.0.0.1:2379".into()],
        ..Default::default()
    };
    assert!(start_etcd(https_without_ca).is_err());
}

#[tokio::test]
async fn lists_and_watch_replays_larger_than_grpc_default_message_limit_arrive_whole() {
    let etcd = Etcd::start();
    let store = store(&etcd);
    // Five values of 1 MiB (under etcd's 1.5 MiB request limit): 5 MiB in one answer, past the
    // 4 MiB a gRPC client accepts by default.
    let value = Bytes::from(vec![b'x'; 1 << 20]);
    let mut created = Vec::new();
    for i in 0..5 {
        let key = format!("/big/{i}");
        created.push(
            store
                .create(key.as_bytes(), value.clone(), None)
                .await
                .unwrap(),
        );
    }
    let listed = store.range(b"/big/", b"", 0, 0).await.unwrap();
    assert_eq!(listed.kvs, created);

    let mut stream = store.watch(b"/big/", 1).await.unwrap();
    let replayed = events(&mut stream, 5).await;
    assert_eq!(
        replayed,
        created.iter().map(|kv| put(kv, None)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn while_etcd_is_down_requests_fail_unavailable_and_watches_end_then_it_serves_again() {
    let mut etcd = Etcd::start();
    let store = store(&etcd);
    let a = store.create(b"/u/a", b("1"), None).await.unwrap();
    let mut stream = store.watch(b"/u/", 0).await.unwrap();

    etcd.kill();
    match next(&mut stream).await {
        WatchItem::Error(StoreError::Unavailable(_)) => {}
        item => panic!("expected the watch to end unavailable, got {item:?}"),
    }
    assert!(matches!(
        store.get(b"/u/a").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.health().await,
        Err(StoreError::Unavailable(_))
    ));

    etcd.start_again();
    let deadline = std::time::Instant::now() + ITEM_TIMEOUT;
    loop {
        match store.get(b"/u/a").await {
            Ok(found) => {
                assert_eq!(found, Some(a));
                break;
            }
            Err(StoreError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("etcd is back but the store is not: {e}"),
        }
    }
    store.health().await.unwrap();
}

#[tokio::test]
async fn tls_with_a_client_certificate_reaches_an_etcd_that_demands_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::pki::ensure(dir.path(), &[]).unwrap();
    let etcd = Etcd::start_with_tls(ServerTls {
        cert_file: pki.serving_cert.clone(),
        key_file: pki.serving_key.clone(),
        client_ca_file: pki.ca_cert.clone(),
    });
    assert!(etcd.endpoint.starts_with("https://"));
    let store = start_etcd(EtcdConfig {
        // Without a scheme: https, since TLS is configured.
        endpoints: vec![etcd.endpoint.trim_start_matches("https://").to_string()],
        ca_file: Some(pki.ca_cert.clone()),
        cert_file: Some(pki.admin_cert.clone()),
        key_file: Some(pki.admin_key.clone()),
    })
    .expect("connecting over TLS");
    let kv = store.create(b"/t/a", b("1"), None).await.unwrap();
    assert_eq!(store.get(b"/t/a").await.unwrap(), Some(kv));
    let mut stream = store.watch(b"/t/", 0).await.unwrap();
    let next_kv = store.create(b"/t/b", b("2"), None).await.unwrap();
    assert_eq!(events(&mut stream, 1).await, vec![put(&next_kv, None)]);
}

#[tokio::test]
async fn with_several_endpoints_requests_go_to_the_ones_that_answer() {
    let etcd = Etcd::start();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let store = start_etcd(EtcdConfig {
        endpoints: vec![dead, etcd.endpoint.clone()],
        ..Default::default()
    })
    .expect("connecting while one endpoint is down");
    for i in 0..20 {
        let key = format!("/m/{i}");
        store.create(key.as_bytes(), b("x"), None).await.unwrap();
    }
    let mut stream = store.watch(b"/m/", 0).await.unwrap();
    let kv = store.create(b"/m/last", b("y"), None).await.unwrap();
    assert_eq!(events(&mut stream, 1).await, vec![put(&kv, None)]);
}
