//! Calls to admission webhooks, off the serving cores: one thread runs a single-threaded tokio
//! runtime with reqwest (HTTP/1.1 and HTTP/2 over rustls), each call a task of its own, its
//! answer sent back to the waiting request through a oneshot channel. Clients are kept per
//! (CA bundle, address override), so connections to a webhook are reused.
//!
//! Bounded: at most `QUEUE_DEPTH` calls wait for the thread (a full queue fails the call, and
//! the webhook's failure policy decides), `MAX_CLIENTS` clients are kept (the map is emptied
//! when it is full), and at most `MAX_ANSWER_BYTES` of an answer are read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::channel::oneshot;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Calls that may wait for the caller thread.
const QUEUE_DEPTH: usize = 256;

/// Clients kept (one per CA bundle and address override).
const MAX_CLIENTS: usize = 64;

/// Most bytes of a webhook's answer read (an AdmissionReview with its patch).
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// Where the system's trusted roots are, for webhooks that give no CA bundle.
pub(crate) const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One POST of an AdmissionReview.
pub struct Call {
    pub url: String,
    /// The address the URL's host is connected at (a Service's cluster IP or endpoint).
    pub resolve: Option<(String, SocketAddr)>,
    /// PEM roots to trust; the system's when `None`.
    pub ca_bundle: Option<Vec<u8>>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// A bearer token to present (a kubeconfig user's `token`), if any.
    pub bearer_token: Option<String>,
}

type Answer = Result<Vec<u8>, String>;
/// What a kept client is for: its CA bundle and address override.
type ClientKey = (Option<Vec<u8>>, Option<(String, SocketAddr)>);
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
        let key = (call.ca_bundle.clone(), call.resolve.clone());
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
            let _ = reply.send(send(&client, call).await);
        });
    }
}

fn client(call: &Call) -> Result<reqwest::Client, String> {
    https_client(call.ca_bundle.as_deref(), call.resolve.as_ref())
}

/// A client trusting `ca_bundle` (PEM; the system's roots when `None`), connecting the host
/// of `resolve` at its address. Shared with the other outbound HTTPS callers (OIDC issuers).
pub(crate) fn https_client(
    ca_bundle: Option<&[u8]>,
    resolve: Option<&(String, SocketAddr)>,
) -> Result<reqwest::Client, String> {
    let pem = match ca_bundle {
        Some(b) => b.to_vec(),
        None => std::fs::read(SYSTEM_ROOTS).unwrap_or_default(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("caBundle: {e}"))?;
        roots.add(cert).map_err(|e| format!("caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls);
    if let Some((host, addr)) = resolve {
        builder = builder.resolve(host, *addr);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn send(client: &reqwest::Client, call: Call) -> Answer {
    let url = call.url.clone();
    let request = client
        .post(&call.url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .timeout(call.timeout)
        .body(call.body);
    let request = match &call.bearer_token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let mut resp = request
        .send()
        .await
        .map_err(|e| format!("Post {url:?}: {}", chain(&e)))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("Post {url:?}: {}", chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(format!(
            "the server responded with the status code {} but did not return more information",
            status.as_u16()
        ));
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
