//! The kubelet-facing subresources against the real binary and kubectl: `kubectl logs`,
//! `kubectl exec` (a WebSocket upgrade spliced through kapi) and `nodes/proxy`, answered by a
//! kubelet stand-in in the test — an HTTPS server on a loopback port that, as a kubelet does,
//! accepts only clients with a certificate of its CA (kapi's `--kubelet-client-certificate`),
//! serves `/containerLogs/...`, speaks the `v5.channel.k8s.io` WebSocket protocol on `/exec/...`
//! and answers `/healthz`. Real kubelets cannot run here.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use support::client::Client;
use support::kapi::Kapi;
use support::openssl::{make_ca, sign};

/// The stand-in kubelet: its port and every request line it served.
struct Kubelet {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

/// The client certificate's common name, as the kubelet sees it.
fn peer_name(conn: &rustls::ServerConnection) -> String {
    let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) else {
        return "anonymous".into();
    };
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return "unparsable".into();
    };
    parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string()
}

/// One unmasked server-to-client WebSocket frame (binary, or close with `opcode` 8).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    if payload.len() < 126 {
        out.push(payload.len() as u8);
    } else {
        out.push(126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn serve(tls: Arc<rustls::ServerConfig>, tcp: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let mut line = String::new();
    if stream.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if stream.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    seen.lock().unwrap().push(format!(
        "{} {target}",
        line.split_whitespace().next().unwrap_or("")
    ));
    let client = peer_name(&stream.get_ref().conn);
    let s = stream.get_mut();
    if target.starts_with("/exec/") && header("upgrade").eq_ignore_ascii_case("websocket") {
        let mut sha = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        sha.update(header("sec-websocket-key").as_bytes());
        sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        let accept = base64::engine::general_purpose::STANDARD.encode(sha.finish());
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
        );
        let _ = s.write_all(head.as_bytes());
        let mut stdout = vec![1u8];
        stdout.extend_from_slice(format!("exec as {client}: {target}\n").as_bytes());
        let _ = s.write_all(&frame(2, &stdout));
        let mut status = vec![3u8];
        status.extend_from_slice(br#"{"metadata":{},"status":"Success"}"#);
        let _ = s.write_all(&frame(2, &status));
        let _ = s.write_all(&frame(8, &[0x03, 0xe8]));
        let _ = s.flush();
        // Wait for the client's close, then end.
        let mut rest = [0u8; 256];
        let _ = s.read(&mut rest);
        return;
    }
    let body = if target.starts_with("/containerLogs/") {
        format!("log of {target}\nsecond line\n")
    } else if target.split('?').next() == Some("/healthz") {
        format!("ok, {client}")
    } else {
        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body.as_bytes());
    let _ = s.flush();
}

impl Kubelet {
    /// Serves with `dir/kubelet.{crt,key}`, trusting clients of `dir/ca.crt`.
    fn start(dir: &Path) -> Kubelet {
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read("kubelet.crt"))
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&read("kubelet.key")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&read("ca.crt")) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Arc::new(tls);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&seen);
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (tls, kept) = (Arc::clone(&tls), Arc::clone(&kept));
                std::thread::spawn(move || serve(tls, tcp, kept));
            }
        });
        Kubelet { port, seen }
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn logs_exec_and_the_node_proxy_reach_the_pods_kubelet() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    make_ca(dir, "ca");
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    sign(
        dir,
        "kubelet",
        "/CN=n1",
        &ca_crt,
        &ca_key,
        Some("server.ext"),
    );
    sign(
        dir,
        "apiserver-kubelet-client",
        "/CN=kube-apiserver-kubelet-client/O=system:masters",
        &ca_crt,
        &ca_key,
        Some("client.ext"),
    );
    let kubelet = Kubelet::start(dir);
    let flags = [
        format!("--kubelet-certificate-authority={}", ca_crt.display()),
        format!(
            "--kubelet-client-certificate={}",
            dir.join("apiserver-kubelet-client.crt").display()
        ),
        format!(
            "--kubelet-client-key={}",
            dir.join("apiserver-kubelet-client.key").display()
        ),
        "--kubelet-preferred-address-types=InternalIP".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let k = Kapi::start(&flags, &[]);
    let c = Client::new(&k);

    let (code, body) = c.json(
        "POST",
        "/api/v1/nodes",
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    );
    assert_eq!(code, 201, "{body}");
    let mut node = body;
    node["status"] = json!({"addresses": [{"type": "Hostname", "address": "n1"},
                                           {"type": "InternalIP", "address": "127.0.0.1"}],
                            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}});
    let (code, body) = c.json("PUT", "/api/v1/nodes/n1/status", "application/json", &node);
    assert_eq!(code, 200, "{body}");
    let (code, body) = c.json(
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}),
    );
    assert_eq!(code, 201, "{body}");

    // kubectl logs: streamed from the kubelet, with the options passed on.
    let out = k.kubectl(&["logs", "web", "--tail=5", "--timestamps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "log of /containerLogs/default/web/c?timestamps=true&tailLines=5\nsecond line\n"
    );
    // A container the pod does not have is upstream's 400.
    let out = k.kubectl(&["logs", "web", "-c", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container nope is not valid for pod web"),
        "{}",
        stderr(&out)
    );

    // kubectl exec: a WebSocket upgrade through kapi, the kubelet's frames back to kubectl.
    let out = k.kubectl(&["exec", "web", "--", "echo", "hi"]);
    assert!(
        out.status.success(),
        "{}\n{:?}\n{}",
        stderr(&out),
        kubelet.seen.lock().unwrap(),
        k.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "exec as kube-apiserver-kubelet-client: /exec/default/web/c?output=1&error=1&command=echo&command=hi\n"
    );

    // nodes/proxy: any path, with kapi's client certificate.
    let out = k.kubectl(&["get", "--raw", "/api/v1/nodes/n1/proxy/healthz"]);
    assert!(
        out.status.success(),
        "{}\n{:?}",
        stderr(&out),
        kubelet.seen.lock().unwrap()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok, kube-apiserver-kubelet-client"
    );

    // A pod without a node cannot be exec'ed into.
    let (code, _) = c.json(
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pending"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    );
    assert_eq!(code, 201);
    let out = k.kubectl(&["exec", "pending", "--", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pod pending does not have a host assigned"),
        "{}",
        stderr(&out)
    );
    let seen = kubelet.seen.lock().unwrap().clone();
    assert!(seen.iter().any(|l| l.starts_with("GET /exec/")), "{seen:?}");
}
