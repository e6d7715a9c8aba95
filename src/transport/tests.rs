//! The transport driven end to end: `serve` on a loopback port with a test handler, and real
//! clients (reqwest over HTTP/1.1 and HTTP/2, and a raw TLS client for what reqwest won't send).

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{Body, Handler, MAX_BODY_BYTES, MAX_HEADER_BYTES, Request, Response, ServerConfig};
use crate::pki::{self, Pki};

/// Chunks a streaming test response may queue: small, so the producer feels back-pressure.
const TEST_STREAM_CAPACITY: usize = 4;
/// Gap between streamed chunks: wide enough that each chunk reaches the client on its own.
const CHUNK_GAP: Duration = Duration::from_millis(100);
/// How long `/wait` takes: long enough that serial requests would add up visibly.
const WAIT: Duration = Duration::from_millis(300);

/// Pieces of `/big-stream`'s body: many, so the stream outruns any flow-control window.
const BIG_STREAM_PIECE: usize = 64 * 1024;

/// `n` bytes of a pattern a test can check byte by byte.
fn big_body(n: usize) -> Bytes {
    (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// The test handler. `/echo` answers the request back; `/stream?n=N` streams N chunks;
/// `/forever` streams until the client leaves and counts that in `left`; `/big?n=N` and `/big-stream?n=N` send N
/// bytes whole or in pieces; `/wait` answers after
/// `WAIT`; `/panic` panics.
struct TestHandler {
    left: Arc<AtomicUsize>,
    /// The client CA: `/echo` names the certificate's user.
    ca: crate::authn::x509::CaBundle,
}

impl Handler for TestHandler {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Response>>> {
        let left = Arc::clone(&self.left);
        let x509 = crate::authn::x509::X509 {
            ca: self.ca.clone(),
        };
        Box::pin(async move {
            let n = req
                .uri
                .query()
                .and_then(|q| q.strip_prefix("n="))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(3);
            match req.uri.path() {
                "/echo" => {
                    let mut headers = HeaderMap::new();
                    use crate::authn::{Authenticator, Outcome};
                    let (user, groups) = match x509.authenticate(&req) {
                        Outcome::User(u) => (u.name.clone(), u.groups.join(",")),
                        _ => ("system:anonymous".to_string(), String::new()),
                    };
                    let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
                        headers.insert(name, HeaderValue::from_str(&value).unwrap());
                    };
                    set(&mut headers, "x-user", user);
                    set(&mut headers, "x-groups", groups);
                    set(&mut headers, "x-http2", req.http2.to_string());
                    set(&mut headers, "x-method", req.method.to_string());
                    set(&mut headers, "x-uri", req.uri.to_string());
                    Response {
                        status: StatusCode::OK,
                        headers,
                        body: Body::Full(req.body),
                    }
                }
                "/stream" | "/forever" => {
                    let forever = req.uri.path() == "/forever";
                    let (mut tx, rx) = futures::channel::mpsc::channel(TEST_STREAM_CAPACITY);
                    monoio::spawn(async move {
                        let mut i = 0;
                        while forever || i < n {
                            if tx.send(Bytes::from(format!("chunk-{i}\n"))).await.is_err() {
                                left.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            i += 1;
                            let gap = if forever { CHUNK_GAP / 5 } else { CHUNK_GAP };
                            monoio::time::sleep(gap).await;
                        }
                    });
                    Response {
                        status: StatusCode::OK,
                        headers: HeaderMap::new(),
                        body: Body::Stream(rx),
                    }
                }
                "/big" => Response {
                    status: StatusCode::OK,
                    headers: HeaderMap::new(),
                    body: Body::Full(big_body(n)),
                },
                "/big-stream" => {
                    let (mut tx, rx) = futures::channel::mpsc::channel(TEST_STREAM_CAPACITY);
                    monoio::spawn(async move {
                        let body = big_body(n);
                        for piece in body.chunks(BIG_STREAM_PIECE) {
                            if tx.send(body.slice_ref(piece)).await.is_err() {
                                return;
                            }
                        }
                    });
                    Response {
                        status: StatusCode::OK,
                        headers: HeaderMap::new(),
                        body: Body::Stream(rx),
                    }
                }
                "/wait" => {
                    monoio::time::sleep(WAIT).await;
                    Response::text(StatusCode::OK, "waited\n")
                }
                "/panic" => panic!("the test handler panics, as asked"),
                _ => Response::text(StatusCode::NOT_FOUND, "not found\n"),
            }
        })
    }
}

struct TestServer {
    addr: SocketAddr,
    pki: Pki,
    /// Producers of `/forever` that saw their client leave.
    left: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

/// Starts `serve` on two cores on a free loopback port, in a thread that lives as long as the
/// test process, and waits until it accepts connections.
fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::ensure(dir.path(), &[]).unwrap();
    let ca = crate::authn::x509::CaBundle::from_pem_file(&pki.ca_cert).unwrap();
    let tls = pki::server_tls(&pki.serving_cert, &pki.serving_key, &[&ca]).unwrap();
    let handler_ca = ca.clone();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let left = Arc::new(AtomicUsize::new(0));
    let factory_left = Arc::clone(&left);
    std::thread::spawn(move || {
        let cfg = ServerConfig {
            bind: addr,
            cores: 2,
            tls,
            lifecycle: crate::shutdown::Lifecycle::new(Default::default()),
        };
        serve_or_panic(cfg, move || TestHandler {
            left: Arc::clone(&factory_left),
            ca: handler_ca.clone(),
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    TestServer {
        addr,
        pki,
        left,
        _dir: dir,
    }
}

fn serve_or_panic<F: Fn() -> TestHandler + Send + Sync + 'static>(cfg: ServerConfig, f: F) {
    super::serve(cfg, f).unwrap();
}

fn client_tls(pki: &Pki, with_cert: bool, alpn: &[u8]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&pki.ca_cert).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = if with_cert {
        let chain = vec![CertificateDer::from_pem_file(&pki.admin_cert).unwrap()];
        let key = PrivateKeyDer::from_pem_file(&pki.admin_key).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

/// A reqwest client speaking HTTP/2 (ALPN `h2`) or HTTP/1.1 only.
fn client(server: &TestServer, with_cert: bool, http2: bool) -> reqwest::blocking::Client {
    let alpn: &[u8] = if http2 { b"h2" } else { b"http/1.1" };
    let builder = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_backend_preconfigured(client_tls(&server.pki, with_cert, alpn));
    let builder = if http2 { builder } else { builder.http1_only() };
    builder.build().unwrap()
}

fn url(server: &TestServer, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", server.addr.port())
}

/// Client connections to the server's port now established, from /proc/net/tcp: how a test
/// tells one reused connection from several.
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields[2].rsplit(':').next().unwrap();
            u16::from_str_radix(remote_port, 16).unwrap() == port && fields[3] == "01"
        })
        .count()
}

/// A bare HTTP/1.1-over-TLS client, for requests reqwest will not send.
struct RawClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl RawClient {
    fn connect(server: &TestServer) -> RawClient {
        let config = Arc::new(client_tls(&server.pki, false, b"http/1.1"));
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        RawClient {
            stream: rustls::StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    /// Reads more; false once the server has closed the connection.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response (Content-Length framed), or `None` if the connection closed first.
    fn response(&mut self) -> Option<RawResponse> {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut slots);
            if let Ok(httparse::Status::Complete(len)) = parsed.parse(&self.buf) {
                let status = parsed.code.unwrap();
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                while self.buf.len() < len + length {
                    if !self.fill() {
                        return None;
                    }
                }
                let body = self.buf[len..len + length].to_vec();
                self.buf.drain(..len + length);
                return Some(RawResponse {
                    status,
                    headers,
                    body,
                });
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Whether the server closed the connection (after any pending responses are read).
    fn closed(&mut self) -> bool {
        !self.fill()
    }
}

#[test]
fn identity_comes_from_the_client_certificate_over_http1_and_http2() {
    let server = start();
    for http2 in [false, true] {
        let resp = client(&server, true, http2)
            .post(url(&server, "/echo"))
            .body("hello")
            .send()
            .unwrap();
        let expected = if http2 {
            reqwest::Version::HTTP_2
        } else {
            reqwest::Version::HTTP_11
        };
        assert_eq!(resp.version(), expected);
        assert_eq!(resp.headers()["x-user"], "kapi-admin");
        assert_eq!(resp.headers()["x-groups"], "system:masters");
        assert_eq!(resp.headers()["x-http2"], http2.to_string());
        assert_eq!(resp.headers()["x-method"], "POST");
        assert_eq!(resp.text().unwrap(), "hello");
    }
}

#[test]
fn a_client_without_a_certificate_is_anonymous() {
    let server = start();
    for http2 in [false, true] {
        let resp = client(&server, false, http2)
            .get(url(&server, "/echo?x=1"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-user"], "system:anonymous");
        // HTTP/2's absolute target reaches the handler as path and query, as HTTP/1.1's does.
        assert_eq!(resp.headers()["x-uri"], "/echo?x=1");
    }
}

#[test]
fn http1_keeps_the_connection_alive_across_requests() {
    let server = start();
    let mut raw = RawClient::connect(&server);
    for i in 0..3 {
        let body = format!("request {i}");
        let req = format!(
            "POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        raw.send(req.as_bytes());
        let resp = raw.response().expect("a response on the same connection");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, body.as_bytes());
    }
    // Pipelined: two requests in one write, two responses in order.
    raw.send(b"GET /echo?a HTTP/1.1\r\nhost: a\r\n\r\nGET /echo?b HTTP/1.1\r\nhost: a\r\n\r\n");
    assert_eq!(raw.response().unwrap().header("x-uri"), Some("/echo?a"));
    assert_eq!(raw.response().unwrap().header("x-uri"), Some("/echo?b"));
    // `connection: close` is honoured.
    raw.send(b"GET /echo HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
    assert_eq!(raw.response().unwrap().header("connection"), Some("close"));
    assert!(raw.closed());

    // reqwest's pool reuses one connection for sequential requests.
    let http1 = client(&server, true, false);
    for _ in 0..5 {
        assert_eq!(
            http1.get(url(&server, "/echo")).send().unwrap().status(),
            200
        );
    }
    assert_eq!(established_to(server.addr.port()), 1);
}

#[test]
fn a_chunked_request_body_is_read_whole() {
    let server = start();
    let mut raw = RawClient::connect(&server);
    raw.send(b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n");
    raw.send(b"5\r\nhello\r\n");
    raw.send(b"6;ext=1\r\n world\r\n0\r\n\r\n");
    let resp = raw.response().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"hello world");
    // And the connection serves the next request.
    raw.send(b"GET /echo HTTP/1.1\r\nhost: a\r\n\r\n");
    assert_eq!(raw.response().unwrap().status, 200);
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = start();
    let mut raw = RawClient::connect(&server);
    raw.send(b"PUT /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n");
    assert_eq!(raw.response().unwrap().status, 100);
    raw.send(b"ok");
    assert_eq!(raw.response().unwrap().body, b"ok");
}

/// Reads a streamed response and returns each read's bytes: chunks sent `CHUNK_GAP` apart arrive
/// in separate reads when the transport flushes each one.
fn read_stream(resp: &mut reqwest::blocking::Response) -> Vec<String> {
    let mut reads = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = resp.read(&mut buf).unwrap();
        if n == 0 {
            return reads;
        }
        reads.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

#[test]
fn a_streamed_body_arrives_chunk_by_chunk() {
    let server = start();
    for http2 in [false, true] {
        let started = Instant::now();
        let mut resp = client(&server, true, http2)
            .get(url(&server, "/stream?n=5"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        if !http2 {
            assert_eq!(resp.headers()["transfer-encoding"], "chunked");
        }
        let reads = read_stream(&mut resp);
        let expected: Vec<String> = (0..5).map(|i| format!("chunk-{i}\n")).collect();
        assert_eq!(reads, expected, "http2={http2}");
        assert!(started.elapsed() >= CHUNK_GAP * 4);
    }
}

#[test]
fn a_client_leaving_a_stream_drops_the_receiver() {
    let server = start();
    for (i, http2) in [false, true].into_iter().enumerate() {
        let mut resp = client(&server, true, http2)
            .get(url(&server, "/forever"))
            .send()
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(resp.read(&mut buf).unwrap() > 0);
        drop(resp);
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.left.load(Ordering::SeqCst) <= i {
            assert!(
                Instant::now() < deadline,
                "producer never saw the client leave (http2={http2})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn large_responses_arrive_intact_through_flow_control() {
    // Past the client's HTTP/2 windows (hyper's are 2 MiB per stream, 5 MiB per connection),
    // so the sender has to wait for WINDOW_UPDATEs.
    const LEN: usize = 12 * 1024 * 1024;
    let server = start();
    let expected = big_body(LEN);
    for http2 in [false, true] {
        let c = client(&server, true, http2);
        for path in ["/big", "/big-stream"] {
            let resp = c
                .get(url(&server, &format!("{path}?n={LEN}")))
                .send()
                .unwrap();
            let body = resp.bytes().unwrap();
            assert!(
                body == expected,
                "{path} http2={http2}: {} bytes",
                body.len()
            );
        }
        let head = c
            .head(url(&server, &format!("/big?n={LEN}")))
            .send()
            .unwrap();
        assert_eq!(head.headers()["content-length"], LEN.to_string().as_str());
        assert!(head.bytes().unwrap().is_empty());
    }
}

#[test]
fn many_http2_streams_run_concurrently_on_one_connection() {
    const STREAMS: usize = 100;
    let server = start();
    let h2 = client(&server, true, true);
    // The first request opens the connection; the rest must share it.
    assert_eq!(
        h2.get(url(&server, "/echo")).send().unwrap().version(),
        reqwest::Version::HTTP_2
    );
    let started = Instant::now();
    let threads: Vec<_> = (0..STREAMS)
        .map(|_| {
            let h2 = h2.clone();
            let url = url(&server, "/wait");
            std::thread::spawn(move || {
                let resp = h2.get(url).send().unwrap();
                (resp.version(), resp.status())
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(
            thread.join().unwrap(),
            (reqwest::Version::HTTP_2, StatusCode::OK)
        );
    }
    // Served one after another they would take STREAMS * WAIT (30 s).
    assert!(
        started.elapsed() < WAIT * 20,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(established_to(server.addr.port()), 1);
}

#[test]
fn oversized_headers_are_refused_with_431() {
    let server = start();
    let big = "x".repeat(MAX_HEADER_BYTES + 1);
    let mut raw = RawClient::connect(&server);
    raw.send(format!("GET /echo HTTP/1.1\r\nhost: a\r\nx-big: {big}\r\n\r\n").as_bytes());
    let resp = raw.response().unwrap();
    assert_eq!(resp.status, 431);
    assert!(raw.closed());

    let resp = client(&server, true, true)
        .get(url(&server, "/echo"))
        .header("x-big", big)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 431);
}

#[test]
fn oversized_bodies_are_refused_with_413() {
    let server = start();
    let mut raw = RawClient::connect(&server);
    let head = format!(
        "POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    raw.send(head.as_bytes());
    assert_eq!(raw.response().unwrap().status, 413);
    assert!(raw.closed());

    let mut raw = RawClient::connect(&server);
    raw.send(b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n");
    raw.send(format!("{:x}\r\n", MAX_BODY_BYTES + 1).as_bytes());
    assert_eq!(raw.response().unwrap().status, 413);

    let body = vec![b'x'; MAX_BODY_BYTES + 1];
    for http2 in [false, true] {
        let resp = client(&server, true, http2)
            .post(url(&server, "/echo"))
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 413, "http2={http2}");
    }
    // A body at the limit is served.
    let resp = client(&server, true, true)
        .post(url(&server, "/echo"))
        .body(vec![b'x'; MAX_BODY_BYTES])
        .send()
        .unwrap();
    assert_eq!(resp.bytes().unwrap().len(), MAX_BODY_BYTES);
}

#[test]
fn garbage_and_panics_do_not_stop_the_server() {
    let server = start();
    // Garbage after the TLS handshake: 400, connection closed.
    let mut raw = RawClient::connect(&server);
    raw.send(b"\x00\x01\x02 not http\r\n\r\n");
    assert_eq!(raw.response().unwrap().status, 400);
    assert!(raw.closed());
    // Garbage instead of a TLS handshake.
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\n\r\n\x16\x03\x01\xff\xffjunk");
        let _ = tcp.read(&mut [0u8; 64]);
    }
    // A handler that panics ends its connection or stream only, on either protocol.
    for http2 in [false, true] {
        let c = client(&server, true, http2);
        assert!(c.get(url(&server, "/panic")).send().is_err());
    }
    for http2 in [false, true] {
        let resp = client(&server, true, http2)
            .get(url(&server, "/echo"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

#[test]
fn a_port_another_server_listens_on_is_refused() {
    // The other server's listeners have SO_REUSEPORT too, yet the port is not shared.
    let other = start();
    let tls = pki::server_tls(&other.pki.serving_cert, &other.pki.serving_key, &[]).unwrap();
    let cfg = ServerConfig {
        bind: other.addr,
        cores: 2,
        tls,
        lifecycle: crate::shutdown::Lifecycle::new(Default::default()),
    };
    // Run in a thread: a server that wrongly shares the port would serve forever.
    let (result_tx, result_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = super::serve(cfg, || TestHandler {
            left: Arc::new(AtomicUsize::new(0)),
            ca: crate::authn::x509::CaBundle::default(),
        });
        let _ = result_tx.send(result);
    });
    let result = result_rx.recv_timeout(Duration::from_secs(10));
    let err = result.expect("serve shared a port in use").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn report_the_io_driver() {
    // Not a check: says which driver the suite ran on (io_uring unless the kernel lacks it or
    // MONOIO_FORCE_LEGACY_DRIVER=1).
    eprintln!(
        "io_uring available to monoio: {}",
        monoio::utils::detect_uring()
    );
}
