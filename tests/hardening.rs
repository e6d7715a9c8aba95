//! No request can stop kapi: a panic in a task a request spawned ends only that request, every
//! number a client sends is parsed and bounded as upstream does, and heads and bodies over the
//! limits get a `Status` over HTTP/2 as over HTTP/1.1. Against the real binary.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::kapi::Kapi;

/// One client per HTTP version, with kapi's admin certificate.
fn client(k: &Kapi, http2: bool) -> reqwest::blocking::Client {
    let alpn: &[&[u8]] = if http2 { &[b"h2"] } else { &[b"http/1.1"] };
    let tls = support::kapi::admin_tls(&k.data_dir, alpn);
    let mut b = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_backend_preconfigured(tls);
    b = if http2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    };
    b.build().expect("an HTTP client")
}

fn base(k: &Kapi) -> String {
    format!("https://127.0.0.1:{}", k.port)
}

/// (status, version, body as JSON or Null).
fn get(c: &reqwest::blocking::Client, url: &str) -> (u16, reqwest::Version, Value) {
    let resp = c
        .get(url)
        .header("Accept", "application/json")
        .send()
        .expect("a response");
    let (status, version) = (resp.status().as_u16(), resp.version());
    let body = resp.bytes().expect("a body");
    (
        status,
        version,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

#[test]
fn a_panic_in_a_spawned_watch_task_ends_only_that_watch() {
    let k = Kapi::start(&[], &[("KAPI_FAULTS", "watch-task")]);
    for http2 in [false, true] {
        let c = client(&k, http2);
        // Several watches, so that every core (one runtime each) has had one panic.
        for _ in 0..4 {
            let url = format!(
                "{}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=5",
                base(&k)
            );
            let resp = c.get(&url).send().expect("the watch's head");
            assert_eq!(resp.status().as_u16(), 200);
            // The task that would feed the stream panicked: the stream ends (cleanly or
            // not) instead of waiting out its timeout, and no event came.
            let started = std::time::Instant::now();
            let body = resp.bytes().unwrap_or_default();
            assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        let (code, _, body) = get(&c, &format!("{}/api/v1/namespaces", base(&k)));
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["kind"], "NamespaceList");
    }
    k.ok(&["create", "configmap", "after-panics", "--from-literal=a=b"]);
    assert!(k.ok(&["get", "--raw", "/livez"]).contains("ok"));
    assert!(
        k.log().contains("injected fault: watch-task"),
        "{}",
        k.log()
    );
}

#[test]
fn watch_timeouts_are_parsed_and_bounded_as_upstream() {
    let k = Kapi::start(&[], &[]);
    for http2 in [false, true] {
        let c = client(&k, http2);
        // Not an int64: upstream's parameter codec answers 400 with Go's message.
        let (code, _, body) = get(
            &c,
            &format!(
                "{}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=18446744073709551615",
                base(&k)
            ),
        );
        assert_status(&body, 400, "BadRequest");
        assert_eq!(code, 400);
        assert_eq!(
            body["message"],
            "strconv.ParseInt: parsing \"18446744073709551615\": value out of range"
        );
        let (code, _, body) = get(&c, &format!("{}/api/v1/configmaps?limit=abc", base(&k)));
        assert_eq!(code, 400, "{body}");
        assert_eq!(
            body["message"],
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        // A negative limit is no limit, as upstream.
        let (code, _, body) = get(&c, &format!("{}/api/v1/namespaces?limit=-3", base(&k)));
        assert_eq!(code, 200, "{body}");
        assert!(body["items"].as_array().is_some_and(|i| i.len() >= 4));
    }
    // The largest int64 is a watch that lasts (capped), not a panic: it delivers events and
    // the server keeps serving.
    let c = client(&k, true);
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=9223372036854775807&resourceVersion=0",
        base(&k)
    );
    let mut resp = c.get(&url).send().expect("the watch's head");
    assert_eq!(resp.status().as_u16(), 200);
    k.ok(&[
        "create",
        "configmap",
        "seen-by-long-watch",
        "--from-literal=a=b",
    ]);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("seen-by-long-watch") {
        use std::io::Read;
        let n = resp.read(&mut buf).expect("watch bytes");
        assert!(n > 0, "the watch ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    drop(resp);
    assert!(k.ok(&["get", "--raw", "/livez"]).contains("ok"));
}

/// A label selector of `n` bytes or more that matches nothing.
fn long_selector(n: usize) -> String {
    let mut s = String::from("app+in+(");
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!("v{i},"));
        i += 1;
    }
    s.push_str("last)");
    s
}

/// One HTTP/1.1 request written by hand over TLS (reqwest, like every client built on the
/// `http` crate, cannot send a target over 64 KiB; Go's clients can): (status, body).
fn raw_http1_get(k: &Kapi, target: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let tls = support::kapi::admin_tls(&k.data_dir, &[b"http/1.1"]);
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(tls), name).expect("TLS");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", k.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("request written");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn a_long_selector_is_served_and_an_oversized_head_gets_a_status() {
    let k = Kapi::start(&[], &[]);
    // 90 KB of selector in the URL, under upstream's 1 MiB head limit: served over HTTP/1.1.
    let target = format!(
        "/api/v1/namespaces/default/configmaps?labelSelector={}",
        long_selector(90 * 1024)
    );
    let (code, body) = raw_http1_get(&k, &target);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["kind"], "ConfigMapList");
    for http2 in [false, true] {
        let c = client(&k, http2);
        // The longest target the `http` crate (and so the h2 crate) represents.
        let url = format!(
            "{}/api/v1/namespaces/default/configmaps?labelSelector={}",
            base(&k),
            long_selector(60 * 1024)
        );
        let (code, version, body) = get(&c, &url);
        assert_eq!(
            version,
            if http2 {
                reqwest::Version::HTTP_2
            } else {
                reqwest::Version::HTTP_11
            }
        );
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["kind"], "ConfigMapList");
        // A head over upstream's 1 MiB limit: a 431 Status on both protocols.
        let resp = c
            .get(format!("{}/api/v1/namespaces", base(&k)))
            .header("Accept", "application/json")
            .header("X-Padding", "p".repeat(1200 * 1024))
            .send()
            .expect("a response, not a reset");
        assert_eq!(resp.status().as_u16(), 431);
        let body: Value = serde_json::from_slice(&resp.bytes().unwrap()).unwrap_or(Value::Null);
        assert_status(&body, 431, "RequestHeaderFieldsTooLarge");
    }
    let (code, body) = raw_http1_get(
        &k,
        &format!(
            "/api/v1/namespaces?labelSelector={}",
            long_selector(1200 * 1024)
        ),
    );
    assert_eq!(code, 431);
    assert_status(&body, 431, "RequestHeaderFieldsTooLarge");
    assert!(k.ok(&["get", "--raw", "/livez"]).contains("ok"));
}

#[test]
fn an_oversized_body_gets_upstreams_status_on_both_protocols() {
    let k = Kapi::start(&[], &[]);
    let big = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"a": "x".repeat(4 * 1024 * 1024)},
    });
    let body = serde_json::to_vec(&big).unwrap();
    for http2 in [false, true] {
        let c = client(&k, http2);
        let resp = c
            .post(format!("{}/api/v1/namespaces/default/configmaps", base(&k)))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.clone())
            .send()
            .expect("a response, not a reset stream");
        assert_eq!(resp.status().as_u16(), 413);
        let status: Value = serde_json::from_slice(&resp.bytes().unwrap()).unwrap();
        assert_status(&status, 413, "RequestEntityTooLarge");
        assert_eq!(
            status["message"],
            "Request entity too large: limit is 3145728"
        );
    }
    // The connection-level state is fine: the next request on a fresh client works.
    let (code, _, _) = get(
        &client(&k, true),
        &format!("{}/api/v1/namespaces", base(&k)),
    );
    assert_eq!(code, 200);
}

#[test]
fn delete_options_are_parsed_and_validated_as_upstream() {
    let k = Kapi::start(&[], &[]);
    k.ok(&["create", "configmap", "victim", "--from-literal=a=b"]);
    let c = client(&k, true);
    let url = |q: &str| {
        format!(
            "{}/api/v1/namespaces/default/configmaps/victim?{q}",
            base(&k)
        )
    };
    let delete = |q: &str| {
        let resp = c
            .delete(url(q))
            .header("Accept", "application/json")
            .send()
            .expect("a response");
        let code = resp.status().as_u16();
        (
            code,
            serde_json::from_slice::<Value>(&resp.bytes().unwrap()).unwrap_or(Value::Null),
        )
    };
    let (code, body) = delete("gracePeriodSeconds=99999999999999999999");
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
    );
    let (code, body) = delete("orphanDependents=maybe");
    assert_eq!(code, 400, "{body}");
    let (code, body) = delete("propagationPolicy=Sometimes");
    assert_eq!(code, 422, "{body}");
    assert_status(&body, 422, "Invalid");
    assert_eq!(body["details"]["kind"], "DeleteOptions");
    assert_eq!(body["details"]["group"], "meta.k8s.io");
    let (code, body) = delete("propagationPolicy=Background&orphanDependents=true");
    assert_eq!(code, 422, "{body}");
    // Still there after every refusal; a valid delete removes it.
    k.ok(&["get", "configmap", "victim"]);
    // (Foreground would leave it to the garbage collector, with its finalizer.)
    let (code, body) = delete("gracePeriodSeconds=0&propagationPolicy=Background");
    assert_eq!(code, 200, "{body}");
    assert!(!k.kubectl(&["get", "configmap", "victim"]).status.success());
}
