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

use rustls_pki_types::ServerName;

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

/// Reads the kubeconfig: its current context's (else its first) cluster and user.
pub fn target(config_file: &Path) -> Result<Target, String> {
    let config = crate::kubeconfig::Kubeconfig::read(config_file)?;
    let server = config.server.as_str();
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
        "https" => Some(tls_config(&config, &host)?),
        other => return Err(format!("server {server:?}: unsupported scheme {other:?}")),
    };
    Ok(Target {
        host,
        port,
        path: path.to_string(),
        tls,
        token: config.token.clone(),
    })
}

fn tls_config(
    config: &crate::kubeconfig::Kubeconfig,
    host: &str,
) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), String> {
    if config.insecure_skip_tls_verify {
        return Err("insecure-skip-tls-verify is not supported: give certificate-authority".into());
    }
    let ca = config
        .certificate_authority
        .as_deref()
        .ok_or("an https server needs certificate-authority (or -data)")?;
    let identity = config.identity();
    let tls = crate::admission::webhook::client::tls_config(
        ca,
        "certificate-authority",
        identity.as_ref(),
    )?;
    let name =
        ServerName::try_from(host.to_string()).map_err(|e| format!("server name {host:?}: {e}"))?;
    Ok((Arc::new(tls), name))
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
