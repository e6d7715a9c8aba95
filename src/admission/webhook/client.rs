//! Calls to webhooks (admission, CRD conversion, the authorization webhook), off the serving
//! cores: one thread runs a single-threaded tokio runtime with reqwest (HTTP/1.1 and HTTP/2
//! over rustls), each call a task of its own, its answer sent back to the waiting request
//! through a oneshot channel. Clients are kept per (CA bundle, address override, client
//! certificate), so connections to a webhook are reused. A call may ask to be retried with
//! back-off (the authorization webhook's); the retries run on the caller thread too.
//!
//! Bounded: at most `QUEUE_DEPTH` calls wait for the thread (a full queue fails the call, and
//! the webhook's failure policy decides), `MAX_CLIENTS` clients are kept (the map is emptied
//! when it is full), and at most `MAX_ANSWER_BYTES` of an answer are read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::channel::oneshot;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Calls that may wait for the caller thread.
const QUEUE_DEPTH: usize = 256;

/// Clients kept (one per CA bundle and address override).
const MAX_CLIENTS: usize = 64;

/// Most bytes of a webhook's answer read (an AdmissionReview with its patch).
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// Where the system's trusted roots are, for webhooks that give no CA bundle.
pub(crate) const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One POST of a review (AdmissionReview, ConversionReview, SubjectAccessReview).
#[derive(Default)]
pub struct Call {
    pub url: String,
    /// The address the URL's host is connected at (a Service's cluster IP or endpoint).
    pub resolve: Option<(String, SocketAddr)>,
    /// PEM roots to trust; the system's when `None`.
    pub ca_bundle: Option<Vec<u8>>,
    /// A client certificate chain and its key (PEM), from a kubeconfig's user.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// A bearer token, from a kubeconfig's user.
    pub token: Option<String>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// Tries again after a transient failure; `None`: one try.
    pub backoff: Option<Backoff>,
}

/// Upstream's `wait.Backoff` for webhook retries: up to `steps` tries, the pause between
/// them starting at `initial` and growing by `factor`, each with up to `jitter` of itself
/// added.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub steps: u32,
    pub initial: Duration,
    pub factor: f64,
    pub jitter: f64,
}

/// Upstream's `DefaultAuthWebhookRetryBackoff`: 5 tries from 500ms, growing by 1.5, 20%
/// jitter (about 4s in all before a webhook that keeps failing is given up).
pub const AUTH_WEBHOOK_BACKOFF: Backoff = Backoff {
    steps: 5,
    initial: Duration::from_millis(500),
    factor: 1.5,
    jitter: 0.2,
};

type Answer = Result<Vec<u8>, String>;

/// What a kept client is for: its CA bundle, address override and client certificate.
type ClientKey = (
    Option<Vec<u8>>,
    Option<(String, SocketAddr)>,
    Option<(Vec<u8>, Vec<u8>)>,
);

/// A failed try, and whether upstream's `DefaultShouldRetry` would try again (a reset
/// connection, an answer of 429, 500 or 504, or one that sends Retry-After).
struct Failure {
    message: String,
    transient: bool,
}
type Job = (Call, oneshot::Sender<Answer>);

fn queue() -> &'static tokio::sync::mpsc::Sender<Job> {
    static QUEUE: OnceLock<tokio::sync::mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| crate::offthread::spawn("kapi-webhooks", QUEUE_DEPTH, serve))
}

/// Sends the call and waits for its answer body (a 2xx answer's), without blocking the core.
pub async fn post(call: Call) -> Answer {
    let (tx, rx) = oneshot::channel();
    queue()
        .try_send((call, tx))
        .map_err(|_| "too many webhook calls in flight".to_string())?;
    rx.await
        .map_err(|_| "the webhook caller stopped".to_string())?
}

async fn serve(mut rx: tokio::sync::mpsc::Receiver<Job>) {
    let mut clients: HashMap<ClientKey, reqwest::Client> = HashMap::new();
    while let Some((call, reply)) = rx.recv().await {
        let key = (
            call.ca_bundle.clone(),
            call.resolve.clone(),
            call.identity.clone(),
        );
        let client = match clients.get(&key) {
            Some(c) => c.clone(),
            None => match client(&call) {
                Ok(c) => {
                    if clients.len() >= MAX_CLIENTS {
                        clients.clear();
                    }
                    clients.insert(key, c.clone());
                    c
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                    continue;
                }
            },
        };
        tokio::spawn(async move {
            let _ = reply.send(send_retrying(&client, call).await);
        });
    }
}

fn client(call: &Call) -> Result<reqwest::Client, String> {
    https_client(
        call.ca_bundle.as_deref(),
        call.resolve.as_ref(),
        call.identity.as_ref(),
    )
}

/// A client trusting `ca_bundle` (PEM; the system's roots when `None`), connecting the host
/// of `resolve` at its address, presenting `identity` (a certificate chain and key, PEM) when
/// there is one. Shared with the other outbound HTTPS callers (OIDC issuers).
pub(crate) fn https_client(
    ca_bundle: Option<&[u8]>,
    resolve: Option<&(String, SocketAddr)>,
    identity: Option<&(Vec<u8>, Vec<u8>)>,
) -> Result<reqwest::Client, String> {
    let pem = match ca_bundle {
        Some(b) => b.to_vec(),
        None => std::fs::read(SYSTEM_ROOTS).unwrap_or_default(),
    };
    let mut tls = tls_config(&pem, "caBundle", identity)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls);
    if let Some((host, addr)) = resolve {
        builder = builder.resolve(host, *addr);
    }
    builder.build().map_err(|e| e.to_string())
}

/// A TLS client configuration trusting the PEM `roots` (`what` names them in errors),
/// presenting `identity` (a certificate chain and key, PEM) when there is one.
pub(crate) fn tls_config(
    roots: &[u8],
    what: &str,
    identity: Option<&(Vec<u8>, Vec<u8>)>,
) -> Result<rustls::ClientConfig, String> {
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots) {
        let cert = cert.map_err(|e| format!("{what}: {e}"))?;
        store.add(cert).map_err(|e| format!("{what}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store);
    match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client-certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("client-key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The call, tried again after transient failures as its back-off allows.
async fn send_retrying(client: &reqwest::Client, mut call: Call) -> Answer {
    // Shared by every try, never copied.
    let body = bytes::Bytes::from(std::mem::take(&mut call.body));
    let Some(backoff) = call.backoff else {
        return send(client, &call, body).await.map_err(|f| f.message);
    };
    let mut pause = backoff.initial;
    let mut tries = 1;
    loop {
        match send(client, &call, body.clone()).await {
            Ok(body) => return Ok(body),
            Err(f) if !f.transient || tries >= backoff.steps.max(1) => return Err(f.message),
            Err(_) => {
                let jitter = pause.mul_f64(backoff.jitter * fastrand::f64());
                tokio::time::sleep(pause + jitter).await;
                pause = pause.mul_f64(backoff.factor);
                tries += 1;
            }
        }
    }
}

/// Whether an error's causes include a reset connection or a lost HTTP/2 connection.
fn connection_lost(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        if s.downcast_ref::<h2::Error>()
            .is_some_and(|h| h.is_go_away() || h.is_io())
        {
            return true;
        }
        source = s.source();
    }
    false
}

async fn send(
    client: &reqwest::Client,
    call: &Call,
    body: bytes::Bytes,
) -> Result<Vec<u8>, Failure> {
    let url = &call.url;
    let network = |e: reqwest::Error| Failure {
        message: format!("Post {url:?}: {}", chain(&e)),
        transient: connection_lost(&e),
    };
    let mut request = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .timeout(call.timeout)
        .body(body);
    if let Some(token) = &call.token {
        request = request.bearer_auth(token);
    }
    let mut resp = request.send().await.map_err(network)?;
    let status = resp.status();
    let retry_after = resp.headers().contains_key(reqwest::header::RETRY_AFTER);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failure {
                message: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                transient: false,
            });
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(Failure {
            message: format!(
                "the server responded with the status code {} but did not return more information",
                status.as_u16()
            ),
            transient: retry_after || matches!(status.as_u16(), 429 | 500 | 504),
        });
    }
    Ok(body)
}

/// An error with its causes (reqwest's own message names only the outermost).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
