//! Requests to kubelets, off the serving cores: one thread runs a single-threaded tokio
//! runtime with reqwest over rustls (the client certificate of `--kubelet-client-certificate`,
//! the kubelet verified with `--kubelet-certificate-authority`), each request a task of its own.
//! An answer comes back as a stream of chunks (logs, proxied responses); an upgrade (`101`:
//! exec, attach, port-forward) as a tunnel, a pair of channels the transport splices to the
//! client's connection.
//!
//! Bounded: at most `QUEUE_DEPTH` requests wait for the thread (a full queue is a 503), each
//! stream holds at most `STREAM_DEPTH` chunks in flight (a slow client slows the kubelet down),
//! and a request that has not been answered within `--kubelet-timeout` fails.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::admission::webhook::client::chain;

/// Requests that may wait for the kubelet thread.
const QUEUE_DEPTH: usize = 256;
/// Chunks of one stream (each a read's worth) in flight between the kubelet and the client.
const STREAM_DEPTH: usize = 16;
/// Bytes read from an upgraded connection at a time.
const TUNNEL_READ_BYTES: usize = 32 * 1024;

/// What kapi presents to kubelets and how it checks them.
#[derive(Clone, Default)]
pub struct Credentials {
    /// PEM: the CA kubelets' serving certificates chain to; none: the system's roots, as Go's
    /// default (kapi does not skip verification).
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate and key.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
    pub timeout: Duration,
    /// Do not verify the server (an APIService's `insecureSkipTLSVerify`).
    pub insecure: bool,
}

/// One request to a kubelet.
pub struct Outbound {
    pub method: http::Method,
    pub url: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// An upgrade request (exec, attach, port-forward): HTTP/1.1, its answer may be a tunnel.
    pub upgrade: bool,
    /// Other credentials than the kubelets' (an aggregated API server's: the proxy client
    /// certificate and the APIService's CA), and the address the URL's host is reached at.
    pub other: Option<(Credentials, Option<(String, std::net::SocketAddr)>)>,
}

/// Clients kept for other credentials than the kubelets' (one per APIService backend).
const MAX_OTHER_CLIENTS: usize = 64;

/// A kubelet's answer: its status and headers, its body as chunks, and for a `101` the sender
/// of what the client sends.
pub struct Inbound {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: mpsc::Receiver<Bytes>,
    pub tunnel: Option<mpsc::Sender<Bytes>>,
}

type Job = (Outbound, oneshot::Sender<Result<Inbound, String>>);

static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();

/// Sets the credentials, once, at start (before the first request).
pub fn init(credentials: Credentials) {
    let _ = CREDENTIALS.set(credentials);
}

fn queue() -> &'static tokio::sync::mpsc::Sender<Job> {
    static QUEUE: OnceLock<tokio::sync::mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| crate::offthread::spawn("kapi-kubelets", QUEUE_DEPTH, serve))
}

/// Sends the request and waits for the kubelet's answer head, without blocking the core.
pub async fn send(out: Outbound) -> Result<Inbound, String> {
    let (tx, rx) = oneshot::channel();
    queue()
        .try_send((out, tx))
        .map_err(|_| "too many kubelet requests in flight".to_string())?;
    rx.await
        .map_err(|_| "the kubelet client stopped".to_string())?
}

async fn serve(mut rx: tokio::sync::mpsc::Receiver<Job>) {
    let credentials = CREDENTIALS.get().cloned().unwrap_or_default();
    // Upgrades need HTTP/1.1; the rest may use either.
    let clients = (client(&credentials, false), client(&credentials, true));
    type OtherKey = (
        Option<Vec<u8>>,
        bool,
        Option<(String, std::net::SocketAddr)>,
        bool,
    );
    let mut others: std::collections::HashMap<OtherKey, reqwest::Client> =
        std::collections::HashMap::new();
    while let Some((mut out, reply)) = rx.recv().await {
        let mut timeout = credentials.timeout;
        let client = if let Some((creds, resolve)) = out.other.take() {
            timeout = creds.timeout;
            let key = (
                creds.ca.clone(),
                creds.insecure,
                resolve.clone(),
                out.upgrade,
            );
            match others.get(&key) {
                Some(c) => c.clone(),
                None => match client_for(&creds, out.upgrade, resolve) {
                    Ok(c) => {
                        if others.len() >= MAX_OTHER_CLIENTS {
                            others.clear();
                        }
                        others.insert(key, c.clone());
                        c
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                },
            }
        } else {
            match (&clients, out.upgrade) {
                ((Ok(c), _), false) | ((_, Ok(c)), true) => c.clone(),
                ((Err(e), _), _) | ((_, Err(e)), _) => {
                    let _ = reply.send(Err(e.clone()));
                    continue;
                }
            }
        };
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(timeout, perform(&client, out)).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("timed out after {timeout:?}")),
            };
            let _ = reply.send(answer);
        });
    }
}

fn client(credentials: &Credentials, http1_only: bool) -> Result<reqwest::Client, String> {
    client_for(credentials, http1_only, None)
}

/// Accepts any server certificate (`insecureSkipTLSVerify`), still checking signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_for(
    credentials: &Credentials,
    http1_only: bool,
    resolve: Option<(String, std::net::SocketAddr)>,
) -> Result<reqwest::Client, String> {
    let pem = match &credentials.ca {
        Some(ca) => ca.clone(),
        None => std::fs::read(crate::admission::webhook::client::SYSTEM_ROOTS).unwrap_or_default(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("--kubelet-certificate-authority: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("--kubelet-certificate-authority: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let builder = if credentials.insecure {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        builder
    };
    let mut tls = match &credentials.client {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--kubelet-client-certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| format!("--kubelet-client-key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--kubelet-client-certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls);
    if http1_only {
        builder = builder.http1_only();
    }
    if let Some((host, addr)) = &resolve {
        builder = builder.resolve(host, *addr);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn perform(client: &reqwest::Client, out: Outbound) -> Result<Inbound, String> {
    let url = out.url.clone();
    let resp = client
        .request(out.method, &out.url)
        .headers(out.headers)
        .body(out.body)
        .send()
        .await
        .map_err(|e| format!("error dialing backend: {}", chain(&e)))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    if status == http::StatusCode::SWITCHING_PROTOCOLS {
        let upgraded = resp
            .upgrade()
            .await
            .map_err(|e| format!("upgrading {url}: {}", chain(&e)))?;
        let (mut rd, mut wr) = tokio::io::split(upgraded);
        let (mut to_client, body) = mpsc::channel::<Bytes>(STREAM_DEPTH);
        let (tunnel, mut from_client) = mpsc::channel::<Bytes>(STREAM_DEPTH);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; TUNNEL_READ_BYTES];
            loop {
                match rd.read(&mut buf).await {
                    Ok(n) if n > 0 => {
                        if to_client
                            .send(Bytes::copy_from_slice(&buf[..n]))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        });
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(chunk) = from_client.next().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        return Ok(Inbound {
            status,
            headers,
            body,
            tunnel: Some(tunnel),
        });
    }
    let (mut tx, body) = mpsc::channel::<Bytes>(STREAM_DEPTH);
    let mut resp = resp;
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = resp.chunk().await {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    Ok(Inbound {
        status,
        headers,
        body,
        tunnel: None,
    })
}
