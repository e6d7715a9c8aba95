//! A blocking HTTPS client with kapi's admin certificate, for tests that send API requests and
//! read JSON answers: (status, body as JSON or Null).

use std::time::Duration;

use serde_json::Value;

use super::kapi::{Kapi, admin_tls};

pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    pub fn new(k: &Kapi) -> Client {
        let tls = admin_tls(&k.data_dir, &[b"h2", b"http/1.1"]);
        Client {
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .tls_backend_preconfigured(tls)
                .build()
                .expect("an HTTP client"),
            base: format!("https://127.0.0.1:{}", k.port),
        }
    }

    /// `body` as given, with `ctype` when there is one.
    pub fn send(&self, method: &str, path: &str, ctype: &str, body: Vec<u8>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .header("Accept", "application/json");
        if !body.is_empty() {
            req = req.header("Content-Type", ctype).body(body);
        }
        let resp = req.send().expect("a response");
        let code = resp.status().as_u16();
        let bytes = resp.bytes().expect("a body");
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A JSON body (or none) of type `ctype`.
    pub fn call(&self, method: &str, path: &str, ctype: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map_or_else(Vec::new, |b| serde_json::to_vec(&b).expect("JSON"));
        self.send(method, path, ctype, bytes)
    }

    /// The answer to a request without a body, unread: a streamed body is read as it comes.
    pub fn raw(&self, method: &str, path: &str) -> reqwest::blocking::Response {
        self.bare(method, path)
    }

    fn bare(&self, method: &str, path: &str) -> reqwest::blocking::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        self.http
            .request(m, format!("{}{path}", self.base))
            .header("Accept", "application/json")
            .send()
            .expect("a response")
    }

    /// The body as text (a watch's lines), for a request without a body.
    pub fn text(&self, method: &str, path: &str) -> (u16, String) {
        let resp = self.bare(method, path);
        let code = resp.status().as_u16();
        (code, resp.text().expect("a body"))
    }

    /// The Warning headers of a request without a body, with its status and JSON answer.
    pub fn warned(&self, method: &str, path: &str) -> (u16, Vec<String>, Value) {
        let resp = self.bare(method, path);
        let code = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let body = resp.bytes().expect("a body");
        (
            code,
            warnings,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }

    pub fn json(&self, method: &str, path: &str, ctype: &str, body: &Value) -> (u16, Value) {
        self.send(method, path, ctype, serde_json::to_vec(body).expect("JSON"))
    }
}
