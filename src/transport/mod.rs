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
use std::sync::Arc;
use std::time::Duration;

pub use runtime::serve;

/// A write of which the client takes no byte for this long ends its connection: it is gone or
/// stalled, and holds buffers meanwhile.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request head (request line and headers, or an HTTP/2 header list) accepted: a
/// bearer token, impersonation headers and a long selector fit many times over; 431 beyond.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
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

/// Who the client proved to be with its TLS client certificate: CN is the user, each O a group
/// (as upstream's x509 authenticator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// One request, its body read in full (bounded by `MAX_BODY_BYTES`).
#[derive(Debug)]
pub struct Request {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
    /// From a verified client certificate; `None` for an anonymous TLS client.
    pub identity: Option<Identity>,
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
}

/// The request target as handlers see it, whatever the HTTP version: path and query (HTTP/2 and
/// absolute-form HTTP/1.1 targets also carry scheme and authority).
fn origin_form(uri: http::Uri) -> http::Uri {
    match uri.path_and_query() {
        Some(path_and_query) if uri.scheme().is_some() => http::Uri::from(path_and_query.clone()),
        _ => uri,
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
