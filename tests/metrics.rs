//! `/metrics` with upstream's names and labels, against the real kapi binary: after kubectl
//! writes, lists, gets and a watch, the series they touch exist with upstream's labels and
//! their counts moved.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::kapi::Kapi;

/// The samples of a text exposition: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn scrape(k: &Kapi) -> (String, HashMap<String, f64>) {
    let text = k.ok(&["get", "--raw", "/metrics"]);
    let parsed = samples(&text);
    (text, parsed)
}

/// The value of `series`, 0 when absent.
fn value(s: &HashMap<String, f64>, series: &str) -> f64 {
    s.get(series).copied().unwrap_or(0.0)
}

const POST_CONFIGMAPS: &str = r#"apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"}"#;

#[test]
fn metrics_count_requests_watches_and_store_calls_with_upstreams_labels() {
    let k = Kapi::start(&[], &[]);
    let (_, before) = scrape(&k);
    for i in 0..3 {
        k.ok(&[
            "create",
            "configmap",
            &format!("m{i}"),
            "--from-literal=a=b",
        ]);
    }
    k.ok(&["get", "configmaps"]);
    k.ok(&["get", "configmap", "m0"]);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--dry-run=server",
    ]);
    // A watch open while /metrics is scraped: it is long-running.
    let mut watch = k
        .curl(
            &["--http2", "-N"],
            "/api/v1/namespaces/default/configmaps?watch=1",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl runs");
    let open = r#"apiserver_longrunning_requests{component="apiserver",group="",resource="configmaps",scope="namespace",subresource="",verb="WATCH",version="v1"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (text, after) = loop {
        let (text, s) = scrape(&k);
        if value(&s, open) == 1.0 {
            break (text, s);
        }
        assert!(
            Instant::now() < deadline,
            "the open watch was never counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = watch.kill();
    let _ = watch.wait();

    assert_eq!(
        value(&after, POST_CONFIGMAPS) - value(&before, POST_CONFIGMAPS),
        3.0
    );
    let list = r#"apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"}"#;
    assert!(value(&after, list) >= 1.0, "{text}");
    let get = r#"apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="GET",version="v1"}"#;
    assert!(value(&after, get) >= 1.0, "{text}");
    let dry_run = r#"apiserver_request_total{code="201",component="apiserver",dry_run="All",group="apps",resource="deployments",scope="resource",subresource="",verb="POST",version="v1"}"#;
    assert_eq!(value(&after, dry_run), 1.0, "{text}");
    let duration = r#"apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"}"#;
    assert!(value(&after, duration) >= 3.0, "{text}");
    let sli = r#"apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1",le="60"}"#;
    assert!(value(&after, sli) >= 3.0, "{text}");
    let sizes = r#"apiserver_response_sizes_count{component="apiserver",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"}"#;
    assert!(value(&after, sizes) >= 1.0, "{text}");
    let creates =
        r#"etcd_request_duration_seconds_count{group="",operation="create",resource="configmaps"}"#;
    assert_eq!(
        value(&after, creates) - value(&before, creates),
        3.0,
        "{text}"
    );
    let objects = r#"apiserver_storage_objects{resource="configmaps"}"#;
    assert_eq!(
        value(&after, objects) - value(&before, objects),
        3.0,
        "{text}"
    );
    assert!(
        value(
            &after,
            r#"apiserver_storage_objects{resource="namespaces"}"#
        ) >= 4.0,
        "{text}"
    );
    assert!(
        text.contains(r#"apiserver_current_inflight_requests{request_kind="readOnly"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"apiserver_current_inflight_requests{request_kind="mutating"}"#),
        "{text}"
    );
    assert!(
        value(
            &after,
            r#"apiserver_watch_cache_initializations_total{group="",resource="configmaps"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(
        text.contains(r#"watch_cache_capacity{group="",resource="configmaps"}"#),
        "{text}"
    );
    assert!(
        text.contains("\nkapi_watch_cache_revision "),
        "kapi's own gauges stay:\n{text}"
    );
    assert!(
        value(&after, "process_resident_memory_bytes") > 0.0,
        "{text}"
    );
    // Upstream's help texts, stability level first.
    assert!(text.contains("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n"), "{text}");

    // The watch is no longer open once its client left.
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        let (_, s) = scrape(&k);
        if value(&s, open) == 0.0 {
            break s;
        }
        assert!(Instant::now() < deadline, "the closed watch stayed counted");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The watch's initial events were sent and counted by the watched resource (merged into
    // the series at the latest when the watch ended).
    let events = r#"apiserver_watch_events_total{group="",resource="configmaps",version="v1"}"#;
    assert_eq!(value(&closed, events), 3.0);
    let sizes =
        r#"apiserver_watch_events_sizes_count{group="",resource="configmaps",version="v1"}"#;
    assert_eq!(value(&closed, sizes), 3.0);
}

#[test]
fn metrics_refuse_anonymous_clients_as_upstreams_rbac() {
    let k = Kapi::start(&[], &[]);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-k", "-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/metrics", k.port))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n403"), "{text}");
    assert!(
        text.contains(r#"forbidden: User \"system:anonymous\" cannot get path \"/metrics\""#),
        "{text}"
    );
}

#[test]
fn made_up_paths_add_no_series() {
    let k = Kapi::start(&[], &[]);
    for path in [
        "/apis/made.up.example/v1/things-a1b2c3",
        "/apis/apps/v1/namespaces/default/deployments/d/subresource-x9y8",
        "/api/v1/widgets-q7w8",
        "/readyz/made-up-check-z5",
    ] {
        let out = k
            .curl(&["-o", "/dev/null", "-w", "%{http_code}"], path)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "404", "{path}");
    }
    let (text, _) = scrape(&k);
    for made_up in [
        "things-a1b2c3",
        "subresource-x9y8",
        "widgets-q7w8",
        "made-up-check-z5",
    ] {
        assert!(!text.contains(made_up), "a series names {made_up}");
    }
}
