//! The transport: TCP accept on every core, TLS, HTTP/1.1 and HTTP/2, up to a `Request` handed
//! to the core's `Handler` and the `Response` written back. Knows nothing of Kubernetes.

mod connection;
mod http1;
mod http2;
mod runtime;
#[cfg(test)]
mod tests;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub use runtime::serve;

/// A write of which the client takes no byte for this long ends its connection: it is gone or
/// stalled, and holds buffers meanwhile.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request head (request line and headers, or an HTTP/2 header list) accepted:
/// upstream's `MaxHeaderBytes` (1 MiB), so a label selector of a hundred kilobytes in the URL is
/// served as upstream serves it; 431 with a `Status` beyond.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// Largest request body accepted, upstream's `MaxRequestBodyBytes` (3 MiB): etcd refuses
/// values much past 1.5 MiB anyway; 413 beyond.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Concurrent HTTP/2 streams per connection (upstream's `--http2-max-streams-per-connection`
/// default is 1000): a client-go program multiplexes all its watches over one connection.
pub const MAX_H2_STREAMS: u32 = 1000;
/// Connections open at once on one core; past it new connections are closed at accept, so a
/// flood of idle sockets cannot exhaust memory.
pub const MAX_CONNECTIONS_PER_CORE: usize = 16 * 1024;
/// An HTTP/1.1 connection waiting for its next request is closed after this (upstream's
/// `IdleTimeout`, 90 s, matching Go's client-side keep-alive).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// A request head must arrive within this once its first byte has (upstream's
/// `ReadHeaderTimeout`, 32 s): a client trickling a header byte by byte is cut off (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);
/// The TLS handshake, and the HTTP/2 preface after it, must finish within this, for the same
/// reason as `HEADER_READ_TIMEOUT`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body must arrive within this once its head has: bounds how long a slow uploader
/// holds a connection (a 3 MiB body needs only ~100 KiB/s).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the transport knows of a client for the life of its connection: the certificate chain
/// it proved (verified by rustls against the client CA) and where it connects from. Who that
/// makes the client is authentication's business (`crate::authn`), not the transport's.
pub struct Peer {
    /// The verified client certificate chain, leaf first; empty when the client sent none
    /// (rustls keeps only certificates its verifier accepted).
    pub certificates: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub remote: Option<SocketAddr>,
    /// The handler's memo for this connection (the user its certificate names, say), so that
    /// what follows from the connection is worked out once, not per request.
    pub memo: std::cell::OnceCell<Rc<dyn std::any::Any>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("certificates", &self.certificates.len())
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A client with no certificate, for requests made in-process (tests, fuzzing).
    pub fn anonymous() -> Rc<Peer> {
        Rc::new(Peer {
            certificates: Vec::new(),
            remote: None,
            memo: std::cell::OnceCell::new(),
        })
    }
}

/// One request, its body read in full (bounded by `MAX_BODY_BYTES`).
#[derive(Debug)]
pub struct Request {
    pub method: http::Method,
    pub uri: RequestTarget,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
    /// The client of the connection this request came on.
    pub peer: Rc<Peer>,
    /// For handlers that report the protocol (audit, metrics); none reads it yet.
    #[allow(dead_code)]
    pub http2: bool,
}

pub enum Body {
    Full(bytes::Bytes),
    /// A bounded stream; the transport writes each chunk as it comes and ends the response when
    /// the sender is dropped; if the client goes away, the receiver is dropped (the producer sees
    /// send errors).
    Stream(futures::channel::mpsc::Receiver<bytes::Bytes>),
    /// A stream as above whose writing someone observes (metrics): each chunk written is
    /// reported, and the observer is dropped when the transport is done with the stream.
    Observed(
        futures::channel::mpsc::Receiver<bytes::Bytes>,
        Box<dyn StreamObserver>,
    ),
    /// A connection upgrade (`101 Switching Protocols`: exec, attach, port-forward): after the
    /// head, what the backend sends (the receiver) is written to the client as it comes, and
    /// what the client sends goes to the backend (the sender), until either side ends. HTTP/1.1
    /// only; on HTTP/2 the body is empty.
    Tunnel(
        futures::channel::mpsc::Receiver<bytes::Bytes>,
        futures::channel::mpsc::Sender<bytes::Bytes>,
    ),
}

/// Watches a streamed body being written (see `Body::Observed`); its `Drop` marks the end.
pub trait StreamObserver {
    fn chunk(&self, len: usize);
    /// Whether the stream is long-running (a watch): at shutdown it ends cleanly, where any
    /// other stream still open is cut.
    fn long_running(&self) -> bool;
}

/// Whether a stream open at shutdown ends cleanly: a watch does; so does a stream no one
/// observes, which the transport cannot tell apart.
fn ends_cleanly(observer: Option<&dyn StreamObserver>) -> bool {
    observer.is_none_or(|o| o.long_running())
}

/// A streamed body as the transport writes it: its chunks, and who observes them.
type Chunks = (
    futures::channel::mpsc::Receiver<bytes::Bytes>,
    Option<Box<dyn StreamObserver>>,
);

impl Body {
    /// A streamed body's chunks and its observer, if any; `Err` with a whole body.
    fn into_stream(self) -> Result<Chunks, bytes::Bytes> {
        match self {
            Body::Full(body) => Err(body),
            Body::Stream(chunks) => Ok((chunks, None)),
            Body::Observed(chunks, observer) => Ok((chunks, Some(observer))),
            Body::Tunnel(..) => Err(bytes::Bytes::new()),
        }
    }
}

pub struct Response {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Body,
}

impl Response {
    /// A short plain-text response, for the errors the transport itself answers.
    pub fn text(status: http::StatusCode, text: &'static str) -> Response {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Response {
            status,
            headers,
            body: Body::Full(bytes::Bytes::from_static(text.as_bytes())),
        }
    }
}

/// The rest of the server, as the transport sees it. One per core (created by a factory on each
/// core); not Send.
pub trait Handler: 'static {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Response>>>;

    /// The response to a request the transport itself refuses (head or body over its limit, a
    /// body that timed out, malformed framing): the transport knows the status and why, the
    /// handler how the API words it. The default is a short plain-text answer.
    fn refuse(&self, refusal: Refusal) -> Response {
        Response::text(refusal.status, refusal.text)
    }
}

/// A request the transport refuses before the handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: http::StatusCode,
    /// A short plain-text reason, ending in a newline.
    pub text: &'static str,
}

/// Runs `task` on this core as its own task, isolated as a connection is: a panic in it (a bug)
/// ends only that task, never the core and so never the process. Every task spawned on behalf of
/// a request (a watch, a streamed list) goes through here. The default panic hook has already
/// printed the panic when it is caught.
pub fn spawn_isolated<F>(task: F)
where
    F: Future<Output = ()> + 'static,
{
    use futures::FutureExt;
    monoio::spawn(async move {
        let _ = std::panic::AssertUnwindSafe(task).catch_unwind().await;
    });
}

/// The request target as handlers see it, whatever the HTTP version: the path and query of the
/// origin form (an absolute-form HTTP/1.1 target and HTTP/2's pseudo-headers lose their scheme
/// and authority). Kept as text rather than `http::Uri`, whose 64 KiB cap is far below the head
/// limit: a label selector of 100 KB is a valid request upstream serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget(String);

impl RequestTarget {
    /// An origin-form target (`/path?query`), or an absolute-form one (`https://host/path`) cut
    /// to its origin form. `None` for anything else (`*`, authority form, no path).
    pub fn parse(target: &str) -> Option<RequestTarget> {
        if target.starts_with('/') {
            return Some(RequestTarget(target.to_string()));
        }
        let (scheme, rest) = target.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let path = rest.find(['/', '?']).map_or("/", |i| &rest[i..]);
        Some(RequestTarget(if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        }))
    }

    /// `/`, for an HTTP/2 request whose `:path` the h2 crate left empty (CONNECT only).
    pub fn root() -> RequestTarget {
        RequestTarget("/".to_string())
    }

    pub fn path(&self) -> &str {
        self.0.split_once('?').map_or(&self.0, |(p, _)| p)
    }

    /// The query string, without its `?`; `None` when the target has none.
    pub fn query(&self) -> Option<&str> {
        self.0.split_once('?').map(|(_, q)| q)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct ServerConfig {
    pub bind: SocketAddr,
    pub cores: usize,
    /// Built by `pki::server_tls`; its ALPN list decides which HTTP versions are offered.
    pub tls: Arc<rustls::ServerConfig>,
    /// When to stop accepting, let idle connections go and end open streams.
    pub lifecycle: crate::shutdown::Lifecycle,
}

#[cfg(test)]
mod target_tests {
    use super::RequestTarget;

    #[test]
    fn targets_keep_path_and_query_of_any_length() {
        let t = RequestTarget::parse("/api/v1/pods?labelSelector=a%3Db&limit=5").unwrap();
        assert_eq!(t.path(), "/api/v1/pods");
        assert_eq!(t.query(), Some("labelSelector=a%3Db&limit=5"));
        let t = RequestTarget::parse("https://example:6443/api?x=1").unwrap();
        assert_eq!(t.as_str(), "/api?x=1");
        assert_eq!(RequestTarget::parse("http://h").unwrap().as_str(), "/");
        assert_eq!(RequestTarget::parse("http://h?q").unwrap().as_str(), "/?q");
        assert_eq!(RequestTarget::parse("*"), None);
        assert_eq!(RequestTarget::parse("host:443"), None);
        let long = format!("/api?labelSelector={}", "a".repeat(200_000));
        assert_eq!(
            RequestTarget::parse(&long).unwrap().query().unwrap().len(),
            200_014
        );
    }
}
