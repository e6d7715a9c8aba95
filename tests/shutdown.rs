//! Graceful shutdown and health checks as upstream's kube-apiserver, against the real kapi
//! binary: SIGTERM fails `/readyz` at once while everything else is served for
//! `--shutdown-delay-duration`, open watches over HTTP/1.1 and HTTP/2 end cleanly, and the
//! process exits 0.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::kapi::Kapi;

/// The delay the tests ask for: long enough to probe during it on a busy machine.
const DELAY: Duration = Duration::from_secs(2);
/// How long kapi may take to exit after SIGTERM: the delay, then draining and ending the
/// streams, with room for a slow debug build on a shared machine.
const EXIT_BOUND: Duration = Duration::from_secs(30);

/// A watch held open by curl over `http` (`--http1.1` or `--http2`), its body to `out`.
fn open_watch(k: &Kapi, http: &str, out: &std::path::Path) -> Child {
    let file = std::fs::File::create(out).expect("watch output file");
    k.curl(
        &[http, "-N"],
        "/api/v1/namespaces/default/configmaps?watch=1",
    )
    .stdout(file)
    .stderr(Stdio::piped())
    .spawn()
    .expect("curl runs")
}

/// Waits until `out` holds the initial ADDED event: the watch is established.
fn wait_for_event(out: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = std::fs::read_to_string(out).unwrap_or_default();
        if body.contains("\"ADDED\"") && body.contains("before-shutdown") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the watch never started: {body:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(status code, body)` of a GET by curl.
fn get(k: &Kapi, path: &str) -> (u16, String) {
    let out = k
        .curl(&["-w", "\n%{http_code}"], path)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Waits up to `bound` for curl to exit; its exit code.
fn curl_exit(child: &mut Child, bound: Duration) -> Option<i32> {
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_fails_readyz_serves_through_the_delay_ends_watches_cleanly_and_exits_zero() {
    let mut k = Kapi::start(&["--shutdown-delay-duration=2s"], &[]);
    k.ok(&[
        "create",
        "configmap",
        "before-shutdown",
        "--from-literal=a=b",
    ]);
    let h1_out = k.data_dir.join("watch-h1.out");
    let h2_out = k.data_dir.join("watch-h2.out");
    let mut h1 = open_watch(&k, "--http1.1", &h1_out);
    let mut h2 = open_watch(&k, "--http2", &h2_out);
    wait_for_event(&h1_out);
    wait_for_event(&h2_out);

    let signalled = Instant::now();
    k.signal("TERM");
    let (code, body) = get(&k, "/readyz");
    assert_eq!(code, 500, "{body}");
    assert!(
        body.contains("[-]shutdown failed: reason withheld\n"),
        "{body}"
    );
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    let (code, body) = get(&k, "/readyz/shutdown");
    assert_eq!(
        (code, body.as_str()),
        (500, "internal server error: process is shutting down\n")
    );
    assert_eq!(get(&k, "/livez"), (200, "ok".to_string()));
    let (code, body) = get(&k, "/api/v1/namespaces/default/configmaps/before-shutdown");
    assert_eq!(code, 200, "{body}");
    // Still within the delay: the probes above must have run while kapi served everything.
    assert!(
        signalled.elapsed() < DELAY,
        "probing took longer than the delay; the machine is too slow for this test"
    );

    // curl exits 0 only on a clean end of the body: HTTP/1.1's last chunk, HTTP/2's
    // END_STREAM (a reset or a cut connection is 18, 56 or 92).
    assert_eq!(curl_exit(&mut h1, EXIT_BOUND), Some(0), "HTTP/1.1 watch");
    assert_eq!(curl_exit(&mut h2, EXIT_BOUND), Some(0), "HTTP/2 watch");
    let ended_after = signalled.elapsed();
    assert!(
        ended_after >= DELAY,
        "watches ended after {ended_after:?}, before the delay"
    );
    let status = k
        .wait_exit(EXIT_BOUND)
        .expect("kapi exits within the bound");
    assert!(status.success(), "kapi exited with {status}: {}", k.log());
}

#[test]
fn retry_after_answers_429_while_draining() {
    let mut k = Kapi::start(
        &[
            "--shutdown-delay-duration=1s",
            "--shutdown-send-retry-after=true",
            "--shutdown-watch-termination-grace-period=3s",
        ],
        &[],
    );
    k.ok(&[
        "create",
        "configmap",
        "before-shutdown",
        "--from-literal=a=b",
    ]);
    // An open watch holds the drain for the grace period, so the listener stays open.
    let out = k.data_dir.join("watch.out");
    let mut watch = open_watch(&k, "--http1.1", &out);
    wait_for_event(&out);
    k.signal("TERM");
    std::thread::sleep(Duration::from_millis(1500));
    let out = k
        .curl(
            &["-i"],
            "/api/v1/namespaces/default/configmaps/before-shutdown",
        )
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.starts_with("http/2 429") || text.starts_with("http/1.1 429"),
        "{text}"
    );
    assert!(text.contains("retry-after: 5"), "{text}");
    assert!(
        text.contains("the apiserver is shutting down, please try again later."),
        "{text}"
    );
    // Health checks are exempt.
    assert_eq!(get(&k, "/livez"), (200, "ok".to_string()));
    assert_eq!(
        curl_exit(&mut watch, EXIT_BOUND),
        Some(0),
        "the watch ends cleanly"
    );
    let status = k
        .wait_exit(EXIT_BOUND)
        .expect("kapi exits within the bound");
    assert!(status.success(), "kapi exited with {status}: {}", k.log());
}

#[test]
fn health_endpoints_list_upstreams_check_names() {
    let k = Kapi::start(&[], &[]);
    let (code, readyz) = get(&k, "/readyz?verbose");
    assert_eq!(code, 200);
    let names: Vec<&str> = readyz
        .lines()
        .filter_map(|l| l.strip_prefix("[+]")?.strip_suffix(" ok"))
        .collect();
    assert_eq!(
        names,
        [
            "ping",
            "log",
            "etcd",
            "etcd-readiness",
            "informer-sync",
            "poststarthook/generic-apiserver-start-informers",
            "poststarthook/storage-object-count-tracker-hook",
            "poststarthook/start-system-namespaces-controller",
            "poststarthook/storage-readiness",
            "shutdown",
        ]
    );
    assert!(readyz.ends_with("readyz check passed\n"), "{readyz}");
    let (_, livez) = get(&k, "/livez?verbose");
    assert!(
        livez.starts_with("[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]poststarthook/"),
        "{livez}"
    );
    assert!(
        !livez.contains("shutdown") && !livez.contains("informer-sync"),
        "{livez}"
    );
    assert_eq!(get(&k, "/healthz"), (200, "ok".to_string()));
    // Each check alone, upstream's way.
    for check in [
        "shutdown",
        "etcd",
        "informer-sync",
        "poststarthook/storage-readiness",
    ] {
        assert_eq!(
            get(&k, &format!("/readyz/{check}")),
            (200, "ok".to_string()),
            "{check}"
        );
    }
    assert_eq!(get(&k, "/livez/ping"), (200, "ok".to_string()));
    assert_eq!(get(&k, "/readyz/no-such-check").0, 404);
    assert_eq!(
        get(&k, "/livez/shutdown").0,
        404,
        "shutdown is a readyz check only"
    );
    let (code, excluded) = get(&k, "/readyz?verbose&exclude=etcd&exclude=nope");
    assert_eq!(code, 200);
    assert!(!excluded.contains("[+]etcd ok"), "{excluded}");
    assert!(excluded.contains("[+]etcd-readiness ok"), "{excluded}");
    assert!(
        excluded.contains("warn: some health checks cannot be excluded: no matches for \"nope\"\n"),
        "{excluded}"
    );
}

#[test]
fn sigint_shuts_down_as_sigterm_does_and_a_second_signal_exits_at_once() {
    let mut k = Kapi::start(&[], &[]);
    k.signal("INT");
    let status = k
        .wait_exit(EXIT_BOUND)
        .expect("kapi exits within the bound");
    assert!(status.success(), "kapi exited with {status}: {}", k.log());

    // A second signal during a long delay ends the process at once, with status 1.
    let mut k = Kapi::start(&["--shutdown-delay-duration=60s"], &[]);
    k.signal("TERM");
    // The first signal's handling has started once /readyz fails.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&k, "/readyz/shutdown").0 != 500 {
        assert!(Instant::now() < deadline, "shutdown never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    k.signal("TERM");
    let status = k
        .wait_exit(EXIT_BOUND)
        .expect("a second signal ends kapi at once");
    assert_eq!(status.code(), Some(1), "{}", k.log());
}

#[test]
fn a_list_in_flight_at_shutdown_drains_completely_before_kapi_exits() {
    let mut k = Kapi::start(&[], &[]);
    // 300 configmaps of 40 KB: a streamed list (256 items or more) of 12 MB, read at about
    // 3 MB/s through a 16 KiB receive buffer, so that kapi's side of it lasts seconds, not as
    // long as the kernel takes to buffer it. Were it not counted as in flight, its stream
    // would be cut at once.
    let data = "x".repeat(40_000);
    let items: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("big-{i}")}, "data": {"d": data}})
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out = k.kubectl_stdin(
        &["create", "--validate=false", "-f", "-", "-o", "name"],
        &list.to_string(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = SlowReader::connect(&k, "/api/v1/namespaces/default/configmaps");
    reader.read_until(|got| got.len() > 64 * 1024);
    k.signal("TERM");
    reader.read_until(|_| false);
    let body = dechunk(&reader.got).expect("the whole chunked body, its last chunk included");
    let listed: serde_json::Value = serde_json::from_slice(&body).expect("a whole list");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(300));
    let status = k
        .wait_exit(EXIT_BOUND)
        .expect("kapi exits within the bound");
    assert!(status.success(), "kapi exited with {status}: {}", k.log());
}

/// An HTTP/1.1 client that reads its response slowly through a small receive buffer.
struct SlowReader {
    tls: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    got: Vec<u8>,
}

/// Receive buffer of the slow reader: small, so that the kernel holds little of the response.
const SLOW_RECEIVE_BUFFER: usize = 16 * 1024;

impl SlowReader {
    fn connect(k: &Kapi, path: &str) -> SlowReader {
        use std::io::Write;
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket
            .set_recv_buffer_size(SLOW_RECEIVE_BUFFER)
            .expect("a receive buffer size");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], k.port).into();
        socket.connect(&addr.into()).expect("kapi accepts");
        let tcp: std::net::TcpStream = socket.into();
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        let config = support::kapi::admin_tls(&k.data_dir, &[b"http/1.1"]);
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
        let conn =
            rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("a TLS client");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n");
        tls.write_all(request.as_bytes())
            .expect("the request is sent");
        SlowReader {
            tls,
            got: Vec::new(),
        }
    }

    /// Reads 32 KiB every 10 ms until `enough` or the end of the connection.
    fn read_until(&mut self, enough: impl Fn(&[u8]) -> bool) {
        use std::io::Read;
        let mut buf = vec![0; 32 * 1024];
        let deadline = Instant::now() + EXIT_BOUND;
        while !enough(&self.got) && Instant::now() < deadline {
            match self.tls.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The body of a chunked HTTP/1.1 response, if it is whole (ends with its last chunk).
fn dechunk(response: &[u8]) -> Option<Vec<u8>> {
    let start = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut rest = &response[start..];
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line_end]).ok()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
