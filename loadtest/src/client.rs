//! The connection to the API server under test: a kubeconfig (or a bare `--server` URL) turned
//! into HTTP/2 clients, and one `call` through which every timed request goes. Only standard API
//! paths and kubeconfig credentials (client certificates, bearer tokens), so upstream works too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use crate::metrics::{OpKey, Recorder, Scope};

/// A single request may take this long before it counts as failed (status 0); generous, because
/// cluster-scoped lists of a large cluster are allowed 30 s by the SLO.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct ClusterEntry {
    server: Option<String>,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct UserEntry {
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    token: Option<String>,
    token_file: Option<String>,
}

#[derive(Deserialize, Default)]
struct ContextEntry {
    cluster: String,
    user: Option<String>,
}

/// Where to connect and with which credentials; `client()` opens a new connection pool.
#[derive(Clone)]
pub struct Target {
    pub server: String,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<Vec<u8>>,
    token: Option<String>,
    insecure: bool,
}

fn pem(
    data: &Option<String>,
    file: &Option<String>,
    what: &str,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(d) = data {
        return base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map(Some)
            .map_err(|e| format!("{what}: bad base64: {e}"));
    }
    if let Some(f) = file {
        return std::fs::read(f)
            .map(Some)
            .map_err(|e| format!("{what}: {f}: {e}"));
    }
    Ok(None)
}

impl Target {
    pub fn from_server(server: &str) -> Target {
        Target {
            server: server.trim_end_matches('/').to_string(),
            ca_pem: None,
            identity_pem: None,
            token: None,
            insecure: true,
        }
    }

    pub fn from_kubeconfig(path: &str, context: Option<&str>) -> Result<Target, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let kc: Kubeconfig =
            serde_saphyr::from_str(&text).map_err(|e| format!("{path}: not a kubeconfig: {e}"))?;
        let ctx_name = context
            .map(str::to_string)
            .or(kc.current_context.clone())
            .or_else(|| kc.contexts.first().map(|c| c.name.clone()))
            .ok_or("kubeconfig has no context")?;
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .and_then(|c| c.value.as_ref())
            .ok_or(format!("context {ctx_name} not found"))?;
        let cluster = kc
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.value.as_ref())
            .ok_or(format!("cluster {} not found", ctx.cluster))?;
        let default_user = UserEntry::default();
        let user = ctx
            .user
            .as_ref()
            .and_then(|u| kc.users.iter().find(|n| &n.name == u))
            .and_then(|u| u.value.as_ref())
            .unwrap_or(&default_user);
        let server = cluster.server.clone().ok_or("cluster has no server")?;
        let cert = pem(
            &user.client_certificate_data,
            &user.client_certificate,
            "client certificate",
        )?;
        let key = pem(&user.client_key_data, &user.client_key, "client key")?;
        let identity_pem = match (cert, key) {
            (Some(mut c), Some(k)) => {
                c.push(b'\n');
                c.extend_from_slice(&k);
                Some(c)
            }
            _ => None,
        };
        let token = match (&user.token, &user.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| format!("token file {f}: {e}"))?
                    .trim()
                    .to_string(),
            ),
            _ => None,
        };
        Ok(Target {
            server: server.trim_end_matches('/').to_string(),
            ca_pem: pem(
                &cluster.certificate_authority_data,
                &cluster.certificate_authority,
                "CA",
            )?,
            identity_pem,
            token,
            insecure: cluster.insecure_skip_tls_verify.unwrap_or(false),
        })
    }

    /// A new client with its own connection (HTTP/2 over TLS via ALPN, or h2c prior knowledge
    /// for `http://`), like one client-go process.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        self.client_with_timeout(REQUEST_TIMEOUT)
    }

    /// A client for large bodies (full LISTs of a big cluster): each request may take `timeout`.
    pub fn bulk_client(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        self.client_with_timeout(timeout)
    }

    /// Adds the bearer token, if any, to a request of a client made by this target.
    pub fn authorize(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    fn client_with_timeout(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(1);
        if self.server.starts_with("http://") {
            b = b.http2_prior_knowledge();
        }
        if let Some(ca) = &self.ca_pem {
            for c in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| format!("CA: {e}"))? {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(id) = &self.identity_pem {
            b = b.identity(
                reqwest::Identity::from_pem(id).map_err(|e| format!("client cert: {e}"))?,
            );
        }
        if self.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        b.build().map_err(|e| format!("http client: {e}"))
    }
}

/// A request to time: the clusterloader2 grouping plus what to send.
pub struct Call<'a> {
    pub verb: &'static str,
    pub resource: &'static str,
    pub scope: Scope,
    pub method: reqwest::Method,
    pub path: &'a str,
    pub body: Option<Vec<u8>>,
    pub content_type: &'static str,
    pub protobuf: bool,
    /// Non-2xx statuses that answer the call rather than fail it.
    pub expected: &'static [u16],
}

impl<'a> Call<'a> {
    pub fn new(verb: &'static str, resource: &'static str, scope: Scope, path: &'a str) -> Self {
        let method = match verb {
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            "DELETE" => reqwest::Method::DELETE,
            _ => reqwest::Method::GET,
        };
        Call {
            verb,
            resource,
            scope,
            method,
            path,
            body: None,
            content_type: "application/json",
            protobuf: false,
            expected: &[],
        }
    }
    /// A GET that asks whether an object exists: 404 is an answer, not an error.
    pub fn probe(mut self) -> Self {
        self.expected = &[404];
        self
    }
    /// A create whose object may exist already (a second run): 409 is an answer, not an error.
    pub fn may_exist(mut self) -> Self {
        self.expected = &[409];
        self
    }
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }
    pub fn merge_patch(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.content_type = "application/merge-patch+json";
        self
    }
    pub fn protobuf(mut self) -> Self {
        self.protobuf = true;
        self
    }
}

/// One simulated client process: its own connection, the shared recorder.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub server: Arc<str>,
    token: Option<Arc<str>>,
    pub rec: Arc<Recorder>,
}

impl Api {
    pub fn new(target: &Target, rec: Arc<Recorder>) -> Result<Api, String> {
        Ok(Api {
            http: target.client()?,
            server: target.server.as_str().into(),
            token: target.token.as_deref().map(Into::into),
            rec,
        })
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.server, path));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// Sends a call, reads the whole body, and records its latency and status.
    /// Returns the status (0 = no response) and the body.
    pub async fn call(&self, c: Call<'_>) -> (u16, Bytes) {
        let mut r = self.request(c.method, c.path).header(
            "Accept",
            if c.protobuf {
                "application/vnd.kubernetes.protobuf"
            } else {
                "application/json"
            },
        );
        if let Some(b) = c.body {
            r = r.header("Content-Type", c.content_type).body(b);
        }
        let start = Instant::now();
        let (status, body) = match r.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(b) => (status, b),
                    Err(_) => (0, Bytes::new()),
                }
            }
            Err(_) => (0, Bytes::new()),
        };
        let key = OpKey {
            verb: c.verb,
            resource: c.resource,
            scope: c.scope,
            format: if c.protobuf { "protobuf" } else { "json" },
        };
        self.rec.request(key, status, start.elapsed(), c.expected);
        (status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubeconfig_with_a_token_and_inline_ca_is_read() {
        let dir = std::env::temp_dir().join(format!("kapi-load-kc-{}", std::process::id()));
        let text = "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443/\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: a\n  context:\n    cluster: c\n    user: u\n";
        std::fs::write(&dir, text).unwrap();
        let t = Target::from_kubeconfig(dir.to_str().unwrap(), None).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(t.server, "https://127.0.0.1:6443");
        assert_eq!(t.token.as_deref(), Some("abc"));
        assert!(t.insecure);
    }
}
