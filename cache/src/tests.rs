use super::*;
use std::future::Future;
use std::sync::Arc;

fn attrs(v: &[u8]) -> Attrs {
    // Test values look like "node=<n>;<payload>".
    let s = std::str::from_utf8(v).unwrap_or("");
    let node = s
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("node="))
        .map(|n| n.into());
    Attrs {
        labels: Box::new([]),
        index: node,
        splice: None,
    }
}

fn cache() -> Arc<Cache> {
    let extract: Extractor = Arc::new(attrs);
    Arc::new(Cache::new(
        vec![
            ResourceSpec {
                prefix: Bytes::from_static(b"/r/pods/"),
                namespaced: true,
                extract: Some(extract),
                indexed: true,
            },
            ResourceSpec {
                prefix: Bytes::from_static(b"/r/nodes/"),
                namespaced: false,
                extract: None,
                indexed: false,
            },
        ],
        1 << 20,
    ))
}

fn put(key: &str, rev: i64, created: bool, value: &str) -> Change {
    Change {
        kind: EventKind::Put,
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        revision: rev,
        created,
    }
}

fn del(key: &str, rev: i64) -> Change {
    Change {
        kind: EventKind::Delete,
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::new(),
        revision: rev,
        created: false,
    }
}

fn keys(s: &Snapshot, prefix: &str) -> Vec<String> {
    s.range(prefix.as_bytes(), b"")
        .map(|o| String::from_utf8_lossy(&o.key).into_owned())
        .collect()
}

#[test]
fn snapshots_are_isolated_from_later_changes() {
    let c = cache();
    c.reset(1, []);
    c.apply(vec![put("/r/pods/a/x", 2, true, "node=n1;1")]);
    let pods = c.resource(b"/r/pods/").unwrap();
    let before = pods.snapshot();
    c.apply(vec![
        put("/r/pods/a/y", 3, true, "node=n2;1"),
        put("/r/nodes/n1", 4, true, "n"),
        del("/r/pods/a/x", 5),
    ]);
    assert_eq!(keys(&before, "/r/pods/"), ["/r/pods/a/x"]);
    let now = pods.snapshot();
    assert_eq!(keys(&now, "/r/pods/"), ["/r/pods/a/y"]);
    assert_eq!((now.revision, c.revision()), (5, 5));
    assert_eq!(
        keys(&c.resource(b"/r/nodes/").unwrap().snapshot(), "/r/"),
        ["/r/nodes/n1"]
    );
    let by_node = |s: &Snapshot, node: &str| {
        s.range_indexed(node, b"/r/pods/", b"")
            .unwrap()
            .map(|o| String::from_utf8_lossy(&o.key).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(by_node(&before, "n1"), ["/r/pods/a/x"]);
    assert_eq!(by_node(&now, "n1"), Vec::<String>::new());
    assert_eq!(by_node(&now, "n2"), ["/r/pods/a/y"]);
    c.apply(vec![
        put("/r/pods/a/y", 6, false, "node=n1;2"),
        put("/r/pods/b/z", 7, true, ";unbound"),
    ]);
    let later = pods.snapshot();
    assert_eq!(by_node(&later, "n2"), Vec::<String>::new());
    assert_eq!(by_node(&later, "n1"), ["/r/pods/a/y"]);
    assert_eq!(by_node(&later, ""), ["/r/pods/b/z"]);
    assert!(
        c.resource(b"/r/nodes/")
            .unwrap()
            .snapshot()
            .range_indexed("", b"/r/", b"")
            .is_none()
    );
    let y = now.get(b"/r/pods/a/y").unwrap();
    assert_eq!((y.create_revision, y.mod_revision), (3, 3));
    assert_eq!(y.attrs.index.as_deref(), Some("n2"));
}

#[test]
fn past_states_are_rebuilt_from_history() {
    let c = cache();
    c.reset(10, []);
    c.apply(vec![put("/r/pods/a/x", 11, true, "v1")]);
    c.apply(vec![put("/r/pods/a/y", 12, true, "v1")]);
    c.apply(vec![put("/r/pods/a/x", 13, false, "v2")]);
    c.apply(vec![del("/r/pods/a/y", 14)]);
    let pods = c.resource(b"/r/pods/").unwrap();
    let at = |r| {
        let s = pods.at(r, c.revision()).unwrap();
        s.range(b"/r/pods/", b"")
            .map(|o| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&o.key),
                    String::from_utf8_lossy(&o.value)
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(at(10), Vec::<String>::new());
    assert_eq!(at(11), ["/r/pods/a/x=v1"]);
    assert_eq!(at(12), ["/r/pods/a/x=v1", "/r/pods/a/y=v1"]);
    assert_eq!(at(13), ["/r/pods/a/x=v2", "/r/pods/a/y=v1"]);
    assert_eq!(at(14), ["/r/pods/a/x=v2"]);
    assert_eq!(
        pods.at(9, c.revision()).err(),
        Some(TooOld {
            requested: 9,
            oldest: 10
        })
    );
}

fn drain(w: &mut Watch) -> Vec<(i64, EventType)> {
    let mut out = Vec::new();
    while let Some(Next::Event(ev, ty)) = w.try_next() {
        out.push((ev.revision, ty));
    }
    out
}

#[test]
fn watches_replay_history_then_follow_through_the_hub() {
    let c = cache();
    let hub = c.attach_core();
    c.reset(10, []);
    c.apply(vec![put("/r/pods/a/x", 11, true, "node=n1;")]);
    c.apply(vec![put("/r/pods/b/y", 12, true, "node=n2;")]);
    let pods = c.resource(b"/r/pods/").unwrap().index;
    let (mut all, start) = hub.watch(pods, Some(10), Filter::default()).unwrap();
    assert_eq!(start, 10);
    let (mut ns_b, _) = hub
        .watch(
            pods,
            Some(11),
            Filter {
                namespace: Some(Bytes::from_static(b"b")),
                ..Filter::default()
            },
        )
        .unwrap();
    let (mut node1, now) = hub
        .watch(
            pods,
            None,
            Filter {
                index: Some("n1".into()),
                ..Filter::default()
            },
        )
        .unwrap();
    assert_eq!(now, 12);
    c.apply(vec![put("/r/pods/b/y", 13, false, "node=n1;")]);
    c.apply(vec![del("/r/pods/a/x", 14)]);
    c.apply(vec![put("/r/nodes/n9", 15, true, "")]);
    futures_executor::block_on(hub.wait_for(15));
    hub.pump();
    assert_eq!(
        drain(&mut all),
        [
            (11, EventType::Added),
            (12, EventType::Added),
            (13, EventType::Modified),
            (14, EventType::Deleted)
        ]
    );
    assert_eq!(
        drain(&mut ns_b),
        [(12, EventType::Added), (13, EventType::Modified)]
    );
    // y moved onto n1: for n1's kubelet it appears (ADDED); x left with its deletion.
    assert_eq!(
        drain(&mut node1),
        [(13, EventType::Added), (14, EventType::Deleted)]
    );
    // The scheduler's watch of unbound pods (`spec.nodeName=`) sees them by the same index.
    let (mut unbound, _) = hub
        .watch(
            pods,
            None,
            Filter {
                index: Some("".into()),
                ..Filter::default()
            },
        )
        .unwrap();
    c.apply(vec![put("/r/pods/a/new", 16, true, "")]);
    c.apply(vec![put("/r/pods/a/new", 17, false, "node=n2;")]);
    hub.pump();
    assert_eq!(
        drain(&mut unbound),
        [(16, EventType::Added), (17, EventType::Deleted)]
    );
    drain(&mut all);
    assert_eq!(hub.watcher_count(), 4);
    drop(all);
    assert_eq!(hub.watcher_count(), 3);
    assert!(hub.watch(pods, Some(9), Filter::default()).is_err());
}

#[test]
fn a_slow_watcher_is_closed_without_blocking_the_ingest_or_others() {
    let c = cache();
    let hub = c.attach_core();
    c.reset(1, []);
    let pods = c.resource(b"/r/pods/").unwrap().index;
    let (mut slow, _) = hub.watch(pods, None, Filter::default()).unwrap();
    let (mut other, _) = hub
        .watch(
            pods,
            None,
            Filter {
                index: Some("quiet".into()),
                ..Filter::default()
            },
        )
        .unwrap();
    let n = WATCHER_QUEUE as i64 + 10;
    for i in 0..n {
        c.apply(vec![put("/r/pods/a/x", i + 2, i == 0, "node=busy;")]);
    }
    futures_executor::block_on(hub.wait_for(n + 1));
    hub.pump();
    assert!(matches!(
        slow.try_next(),
        Some(Next::Closed(Closed::TooSlow))
    ));
    assert!(other.try_next().is_none());
    assert_eq!(c.revision(), n + 1);
}

#[test]
fn a_reset_closes_watches() {
    let c = cache();
    let hub = c.attach_core();
    c.reset(1, []);
    let pods = c.resource(b"/r/pods/").unwrap().index;
    let (mut w, _) = hub.watch(pods, None, Filter::default()).unwrap();
    c.reset(
        5,
        [Listed {
            key: Bytes::from_static(b"/r/pods/a/z"),
            value: Bytes::from_static(b"v"),
            create_revision: 4,
            mod_revision: 5,
        }],
    );
    futures_executor::block_on(hub.wait_for(5));
    hub.pump();
    assert!(matches!(w.try_next(), Some(Next::Closed(Closed::Reset))));
    assert_eq!(c.resource(b"/r/pods/").unwrap().snapshot().len(), 1);
}

#[test]
fn encodings_are_kept_once_within_the_budget() {
    let budget = Budget::new(10);
    let slot = Slot::default();
    let mut made = 0;
    for _ in 0..3 {
        let b = slot
            .get_or_make::<()>(1, &budget, || {
                made += 1;
                Ok(Bytes::from_static(b"12345678"))
            })
            .unwrap();
        assert_eq!(&b[..], b"12345678");
    }
    assert_eq!((made, budget.used()), (1, 8));
    // Another view is made each time, not kept; a second slot does not fit the budget.
    let other = Slot::default();
    other
        .get_or_make::<()>(1, &budget, || Ok(Bytes::from_static(b"abcdefgh")))
        .unwrap();
    assert_eq!((other.kept_len(), budget.used()), (0, 8));
    slot.clear();
    assert_eq!((slot.kept_len(), budget.used()), (0, 0));
}

#[test]
fn superseded_versions_let_go_of_their_encodings() {
    let c = cache();
    c.reset(1, []);
    c.apply(vec![put("/r/pods/a/x", 2, true, "v1")]);
    let pods = c.resource(b"/r/pods/").unwrap();
    let v1 = pods.snapshot().get(b"/r/pods/a/x").unwrap().clone();
    v1.json
        .get_or_make::<()>(1, &c.budget, || Ok(Bytes::from_static(b"{\"v\":1}")))
        .unwrap();
    assert_eq!(c.budget.used(), 7);
    c.apply(vec![put("/r/pods/a/x", 3, false, "v2")]);
    // v1 is still in history (and in the old snapshot), but its JSON is gone.
    assert_eq!((v1.json.kept_len(), c.budget.used()), (0, 0));
}

#[test]
fn an_abandoned_wait_leaves_no_waker_behind() {
    let c = cache();
    let hub = c.attach_core();
    c.reset(1, []);
    let mut wait = Box::pin(hub.wait_for(5));
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    assert_eq!(hub.waiter_count(), 1);
    drop(wait);
    assert_eq!(hub.waiter_count(), 0);
    // And one that is reached is ready.
    c.apply(vec![put("/r/pods/a/x", 5, true, "")]);
    assert!(Box::pin(hub.wait_for(5)).as_mut().poll(&mut cx).is_ready());
}
