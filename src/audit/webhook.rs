//! The webhook backend (`--audit-webhook-config-file`): events POSTed as an `audit.k8s.io/v1
//! EventList` to the server a kubeconfig names (http, or https with its CA, client certificate
//! and/or bearer token), from a thread of its own. In batch mode events are gathered up to
//! `--audit-webhook-batch-max-size` or `--audit-webhook-batch-max-wait`; a failed POST is retried
//! with a doubling back-off from `--audit-webhook-initial-backoff`, then its events are counted
//! in `apiserver_audit_error_total{plugin="webhook"}` and dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

use super::event::Event;

/// How long one POST may take (connect, send, answer).
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// Tries of one batch before its events are dropped (upstream's webhook retries too, with
/// back-off, then gives the batch up).
const ATTEMPTS: u32 = 3;

/// Most bytes of the webhook's answer read: only its status line matters.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Where events go.
pub struct Target {
    host: String,
    port: u16,
    path: String,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    token: Option<String>,
}

pub struct Batching {
    pub max_size: usize,
    pub max_wait: Duration,
    pub initial_backoff: Duration,
}

/// A kubeconfig's current context's (else its first) cluster and user, and the folder its
/// relative paths start from. Shared with the webhook token authenticator.
pub(crate) fn kubeconfig(config_file: &Path) -> Result<(Value, Value, &Path), String> {
    let data = std::fs::read(config_file)
        .map_err(|e| format!("reading {}: {e}", config_file.display()))?;
    let doc = kapi_codec::yaml::from_yaml(&data).map_err(|e| e.to_string())?;
    let named = |list: &str, name: &str, field: &str| -> Value {
        let items = doc[list].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .find(|i| !name.is_empty() && i["name"] == name)
            .or_else(|| items.first())
            .map(|i| i[field].clone())
            .unwrap_or(Value::Null)
    };
    let current = doc["current-context"].as_str().unwrap_or_default();
    let context = named("contexts", current, "context");
    let cluster = named(
        "clusters",
        context["cluster"].as_str().unwrap_or_default(),
        "cluster",
    );
    let user = named(
        "users",
        context["user"].as_str().unwrap_or_default(),
        "user",
    );
    let base = config_file.parent().unwrap_or(Path::new("."));
    Ok((cluster, user, base))
}

/// Reads the kubeconfig: its current context's (else its first) cluster and user.
pub fn target(config_file: &Path) -> Result<Target, String> {
    let (cluster, user, base) = kubeconfig(config_file)?;
    let server = cluster["server"]
        .as_str()
        .ok_or("the kubeconfig names no cluster server")?;
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| format!("server {server:?} is not a URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse::<u16>()
                .map_err(|_| format!("server {server:?}: bad port"))?,
        ),
        _ => (authority.to_string(), default_port),
    };
    let tls = match scheme {
        "http" => None,
        "https" => Some(tls_config(&cluster, &user, base, &host)?),
        other => return Err(format!("server {server:?}: unsupported scheme {other:?}")),
    };
    Ok(Target {
        host,
        port,
        path: path.to_string(),
        tls,
        token: user["token"].as_str().map(str::to_string),
    })
}

/// `<field>-data` (base64) or `<field>` (a path, relative to the kubeconfig).
pub(crate) fn file_or_data(v: &Value, field: &str, base: &Path) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = v[format!("{field}-data")].as_str() {
        return base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(Some)
            .map_err(|e| format!("{field}-data: {e}"));
    }
    match v[field].as_str() {
        Some(path) => std::fs::read(base.join(path))
            .map(Some)
            .map_err(|e| format!("{field} {path}: {e}")),
        None => Ok(None),
    }
}

fn tls_config(
    cluster: &Value,
    user: &Value,
    base: &Path,
    host: &str,
) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), String> {
    if cluster["insecure-skip-tls-verify"].as_bool() == Some(true) {
        return Err("insecure-skip-tls-verify is not supported: give certificate-authority".into());
    }
    let ca = file_or_data(cluster, "certificate-authority", base)?
        .ok_or("an https server needs certificate-authority (or -data)")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots
            .add(cert.map_err(|e| format!("certificate-authority: {e}"))?)
            .map_err(|e| format!("certificate-authority: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let cert = file_or_data(user, "client-certificate", base)?;
    let key = file_or_data(user, "client-key", base)?;
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client-certificate: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(&key).map_err(|e| format!("client-key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    let name =
        ServerName::try_from(host.to_string()).map_err(|e| format!("server name {host:?}: {e}"))?;
    Ok((Arc::new(config), name))
}

/// The sender thread: batches events and POSTs them until every sender is gone.
pub fn run(events: Receiver<Arc<Event>>, target: Target, batching: Batching) {
    let max_size = batching.max_size.max(1);
    while let Ok(first) = events.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + batching.max_wait;
        while batch.len() < max_size {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(e) => batch.push(e),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let body = event_list(&batch);
        let mut backoff = batching.initial_backoff;
        let mut sent = false;
        for attempt in 1..=ATTEMPTS {
            match post(&target, &body) {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(e) => {
                    eprintln!(
                        "kapi: audit webhook: POST failed (try {attempt} of {ATTEMPTS}): {e}"
                    );
                    if attempt < ATTEMPTS {
                        std::thread::sleep(backoff);
                        backoff = backoff.saturating_mul(2);
                    }
                }
            }
        }
        if !sent {
            super::ERRORS
                .with_label_values(&["webhook"])
                .inc_by(batch.len() as u64);
        }
    }
}

fn event_list(batch: &[Arc<Event>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len() * 1024);
    out.extend_from_slice(
        br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#,
    );
    for (i, e) in batch.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        e.write_json(&mut out);
        if out.last() == Some(&b'\n') {
            out.pop();
        }
    }
    out.extend_from_slice(b"]}");
    out
}

/// One POST on a new connection; Ok when the answer is 2xx.
fn post(target: &Target, body: &[u8]) -> Result<(), String> {
    let addr = (target.host.as_str(), target.port);
    let tcp = {
        use std::net::ToSocketAddrs;
        let sock = addr
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("the server's name resolves to nothing")?;
        TcpStream::connect_timeout(&sock, POST_TIMEOUT).map_err(|e| e.to_string())?
    };
    tcp.set_read_timeout(Some(POST_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(POST_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        target.path,
        target.host,
        body.len()
    );
    if let Some(token) = &target.token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    let answer = match &target.tls {
        None => exchange(tcp, head.as_bytes(), body)?,
        Some((config, name)) => {
            let conn = rustls::ClientConnection::new(config.clone(), name.clone())
                .map_err(|e| e.to_string())?;
            exchange(rustls::StreamOwned::new(conn, tcp), head.as_bytes(), body)?
        }
    };
    let status = answer
        .split(|b| *b == b'\n')
        .next()
        .and_then(|line| std::str::from_utf8(line).ok())
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or("no HTTP status in the answer")?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the webhook answered {status}"))
    }
}

fn exchange(mut stream: impl Read + Write, head: &[u8], body: &[u8]) -> Result<Vec<u8>, String> {
    stream
        .write_all(head)
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // A server that closes without TLS close_notify still gave its status line.
    let _ = stream.take(MAX_ANSWER_BYTES).read_to_end(&mut answer);
    Ok(answer)
}
