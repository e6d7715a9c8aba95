//! A webhook server for tests: HTTPS on a loopback port with a self-signed certificate (for
//! 127.0.0.1 and `hook.default.svc`), answering each JSON review POSTed to it with the test's
//! function of (path, review) (`{"httpStatus": <code>}` answers with that status instead),
//! and keeping every review it got.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;

/// What the server answers a review POSTed at a path.
pub type Answer = fn(&str, &Value) -> Value;

pub struct Hook {
    pub port: u16,
    pub ca_pem: String,
    reviews: Arc<Mutex<Vec<Value>>>,
    /// The `Authorization` header of every request that had one.
    authorizations: Arc<Mutex<Vec<String>>>,
}

fn serve_connection(
    tls: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    reviews: Arc<Mutex<Vec<Value>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
    answer: Answer,
) -> Option<()> {
    let conn = rustls::ServerConnection::new(tls).ok()?;
    let mut stream = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let path = line.split_whitespace().nth(1)?.to_string();
        let mut length = 0usize;
        let mut identity: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            stream.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().ok()?;
                }
                if k.eq_ignore_ascii_case("authorization") {
                    authorizations.lock().unwrap().push(v.trim().to_string());
                }
                if k.to_ascii_lowercase().starts_with("x-remote-") {
                    identity.push((k.to_ascii_lowercase(), v.trim().to_string()));
                }
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).ok()?;
        // A request without a body (an extension API server's GET) is kept as its path and
        // the identity headers it came with.
        let review: Value = if body.is_empty() {
            serde_json::json!({"path": path, "identity": identity})
        } else {
            serde_json::from_slice(&body).ok()?
        };
        let out = answer(&path, &review);
        reviews.lock().unwrap().push(review);
        // An answer `{"httpStatus": <code>}` is that status, without a body.
        let (status, out) = match out["httpStatus"].as_u64() {
            Some(code) => (code, String::new()),
            None => (200, out.to_string()),
        };
        let reason = if status == 200 { "OK" } else { "Error" };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            out.len()
        );
        let s = stream.get_mut();
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(out.as_bytes()).ok()?;
        s.flush().ok()?;
    }
}

impl Hook {
    pub fn start(answer: Answer) -> Hook {
        let key = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "hook.default.svc".to_string(),
        ])
        .expect("a certificate");
        let ca_pem = key.cert.pem();
        let cert = key.cert.der().clone();
        let private = rustls_pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der())
            .expect("a key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], private)
            .expect("a server config");
        let tls = Arc::new(tls);
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().unwrap().port();
        let reviews = Arc::new(Mutex::new(Vec::new()));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&reviews);
        let seen = Arc::clone(&authorizations);
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let tls = Arc::clone(&tls);
                let kept = Arc::clone(&kept);
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve_connection(tls, tcp, kept, seen, answer));
            }
        });
        Hook {
            port,
            ca_pem,
            reviews,
            authorizations,
        }
    }

    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    pub fn reviews(&self) -> Vec<Value> {
        self.reviews.lock().unwrap().clone()
    }

    pub fn authorizations(&self) -> Vec<String> {
        self.authorizations.lock().unwrap().clone()
    }
}

impl Hook {
    /// Puts the hook behind the Service `default/hook` (its certificate's name): the Service and
    /// an EndpointSlice with the hook's loopback address, for kapi started with
    /// `--enable-aggregator-routing`.
    pub fn behind_service(&self, c: &super::client::Client) {
        let (code, body) = c.json(
            "POST",
            "/api/v1/namespaces/default/services",
            "application/json",
            &serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hook"},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": self.port}]}}),
        );
        assert_eq!(code, 201, "{body}");
        let (code, body) = c.json(
            "POST",
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            "application/json",
            &serde_json::json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "hook-1", "labels": {"kubernetes.io/service-name": "hook"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}]}),
        );
        assert_eq!(code, 201, "{body}");
    }
}
