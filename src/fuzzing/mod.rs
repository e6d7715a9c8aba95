//! The in-process request harness: the real `Api::handle` over the embedded store in a data
//! directory, inside one monoio runtime as a core runs it, fed requests as the transport would
//! hand them over. Used by the fuzz crate (`fuzz/`, feature `fuzzing`) and the unit tests.

mod input;
#[cfg(test)]
mod tests;

pub use input::{Model, PARAMS, RawRequest, USER_HEADER, User};

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

use crate::api::server::Api;
use crate::transport::{Body, MAX_BODY_BYTES, MAX_HEADER_BYTES, Request};

/// Response bytes kept for the checks; a long list or watch is read this far, then dropped
/// (its producer sees the client leave, as with a real one).
const MAX_DRAINED_BYTES: usize = 128 * 1024;
/// Times a streamed body may find nothing ready before the harness stops reading it: a watch
/// idles forever, a list's producer needs a few turns of the runtime per chunk.
const MAX_IDLE_POLLS: usize = 8;
/// Objects the store may hold before the harness empties it: generated names make the state
/// grow without end over millions of inputs, and a large state slows every list (2,000 until
/// session 5: lists of a thousand objects, encoded and parsed back as YAML, took a third of
/// the time).
const MAX_OBJECTS: usize = 400;
/// Largest YAML body the checks parse back, and largest JSON one they read through: parsing
/// large lists back took a quarter of the fuzzer's time (perf, session 5); a larger body is
/// still produced and read, and its first bytes are checked to open a document.
const MAX_YAML_CHECKED: usize = 8 * 1024;
const MAX_JSON_CHECKED: usize = 64 * 1024;
/// Inputs between two checks of `MAX_OBJECTS`.
const RESET_CHECK_EVERY: u64 = 256;
/// Inputs between two resets of the request metrics' series: without them a `/metrics` scrape
/// grew to tens of milliseconds and took 80 % of the fuzzer's time (perf, session 5).
const METRICS_RESET_EVERY: u64 = 2_048;
/// `/metrics` is served for the first of its inputs and one in this many after: its answer is
/// the registry's text encoding whatever the input (past the path, authentication and flow
/// control, which every other input exercises too), and at tens of milliseconds under the
/// fuzzer's instrumentation a scrape took two thirds of its time (perf, session 5).
const METRICS_SCRAPE_EVERY: u64 = 1_000;
/// Cache bytes of kept encodings: as kapi's default would never be reached, a small cap makes
/// the "encode per request" path run too.
const CACHE_ENCODED_BYTES: usize = 4 << 20;

/// Namespaces kapi makes at start, kept (with their default ServiceAccounts) when the harness
/// empties the store.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// The request path of one core, driven one request at a time.
pub struct Harness {
    runtime: monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>>,
    api: Arc<Api>,
    model: Model,
    served: u64,
    /// `/metrics` inputs seen (see `METRICS_SCRAPE_EVERY`).
    scrapes: u64,
}

/// What came back, as far as the checks need it.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub content_type: Option<String>,
    /// The body, or its first `MAX_DRAINED_BYTES` when streamed.
    pub body: Vec<u8>,
    pub streamed: bool,
    /// The whole body was read (a streamed one ended within `MAX_DRAINED_BYTES`).
    pub complete: bool,
}

impl Harness {
    /// Opens the embedded store in `data_dir` (a fresh temporary directory; on tmpfs it is
    /// fastest) and assembles the API as `kapi` does.
    pub fn new(data_dir: &Path) -> Result<Harness, String> {
        let backend = crate::storage::embedded::open(data_dir)
            .map_err(|e| format!("opening {}: {e}", data_dir.display()))?;
        let store = crate::storage::start(Box::new(backend))
            .map_err(|e| format!("starting the store: {e}"))?;
        let api = crate::serve::assemble(
            store,
            "/registry/".into(),
            crate::serve::Assembly {
                cache_encoded_bytes: CACHE_ENCODED_BYTES,
                flowcontrol: crate::flowcontrol::Options {
                    max_requests_inflight: 400,
                    max_mutating_requests_inflight: 200,
                    enable_priority_and_fairness: true,
                },
                lifecycle: crate::shutdown::Lifecycle::new(crate::shutdown::Options {
                    delay: std::time::Duration::ZERO,
                    send_retry_after: false,
                    watch_grace: std::time::Duration::ZERO,
                }),
                authentication: crate::authn::options::Authentication::client_certificates(
                    input::harness_ca()
                        .and_then(|(_, _, pem)| {
                            crate::authn::x509::CaBundle::from_pem(pem.as_bytes()).ok()
                        })
                        .ok_or("the harness's CA")?,
                ),
                admission: crate::admission::Chain::defaults(),
                authz: crate::authz::Flags::default(),
                authn: crate::authn::flags::Settings::zero_config(
                    &data_dir.join("service-account"),
                )?,
                encryption: Default::default(),
                audit: Default::default(),
            },
        )?;
        let model = Model::new(&api.registry);
        let runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let mut harness = Harness {
            runtime,
            api: Arc::new(api),
            model,
            served: 0,
            scrapes: 0,
        };
        harness.default_service_accounts();
        Ok(harness)
    }

    /// The `default` ServiceAccount of every namespace that lacks one, as kube-controller-manager
    /// makes them: without one the ServiceAccount admission plugin refuses pods there, after
    /// retries that would make every such input wait. At start, and after a namespace is made.
    fn default_service_accounts(&mut self) {
        let api = self.api.clone();
        let _ = self
            .runtime
            .block_on(async move { api.catch_up_cache().await });
        let namespaces: Vec<String> = self
            .api
            .cache
            .resource(format!("{}namespaces/", self.api.prefix).as_bytes())
            .map(|rc| {
                let dir = format!("{}namespaces/", self.api.prefix);
                rc.snapshot()
                    .range(dir.as_bytes(), b"")
                    .filter_map(|o| {
                        std::str::from_utf8(&o.key[dir.len()..])
                            .ok()
                            .map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let lookup = self.api.service_accounts.lookup.clone();
        for ns in namespaces {
            if lookup
                .identity(crate::authn::lookup::Kind::ServiceAccount, &ns, "default")
                .is_some()
            {
                continue;
            }
            let text = format!(
                "POST /api/v1/namespaces/{ns}/serviceaccounts HTTP/2\ncontent-type: application/json\n\n\
                 {{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{{\"name\":\"default\"}}}}"
            );
            if let Some(req) = to_request(&RawRequest::parse_text(text.as_bytes())) {
                self.run(req);
            }
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn api(&self) -> &Arc<Api> {
        &self.api
    }

    /// Serves one request. `None` when the transport would not have handed it over (a method,
    /// target or header it cannot parse) or when it is a known, reported panic.
    pub fn serve(&mut self, raw: &RawRequest) -> Option<Outcome> {
        let req = to_request(raw)?;
        if req.uri.path() == "/metrics" {
            self.scrapes += 1;
            if self.scrapes % METRICS_SCRAPE_EVERY != 1 {
                return None;
            }
        }
        self.served += 1;
        if self.served.is_multiple_of(RESET_CHECK_EVERY) {
            self.reset_if_large();
        }
        if self.served.is_multiple_of(METRICS_RESET_EVERY) {
            crate::metrics::request::forget_series();
        }
        let creates_namespace = req.method == Method::POST
            && req.uri.path().trim_end_matches('/') == "/api/v1/namespaces";
        let outcome = self.run(req);
        if creates_namespace && outcome.status == StatusCode::CREATED {
            self.default_service_accounts();
        }
        Some(outcome)
    }

    /// One request through `Api::handle`, its streamed body drained.
    fn run(&mut self, req: Request) -> Outcome {
        let api = self.api.clone();
        self.runtime.block_on(async move {
            let resp = api.handle(req).await;
            let content_type = resp
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let (body, streamed, complete) = match resp.body {
                Body::Full(b) => (b.to_vec(), false, true),
                Body::Tunnel(..) => (Vec::new(), false, true),
                Body::Stream(rx) | Body::Observed(rx, _) => {
                    let (body, complete) = drain(rx).await;
                    (body, true, complete)
                }
            };
            Outcome {
                status: resp.status,
                content_type,
                body,
                streamed,
                complete,
            }
        })
    }

    /// Empties the store (all but the system namespaces) when it has grown past `MAX_OBJECTS`.
    fn reset_if_large(&mut self) {
        let objects: usize = self
            .api
            .cache
            .resources()
            .iter()
            .map(|rc| rc.stats().objects)
            .sum();
        if objects <= MAX_OBJECTS {
            return;
        }
        let store = self.api.store.clone();
        let prefix = self.api.prefix.clone();
        self.runtime.block_on(async move {
            let Ok(all) = store.range(prefix.as_bytes(), b"", 0, 0).await else {
                return;
            };
            for kv in all.kvs {
                let key = &kv.key;
                let kept = |dir: &str| {
                    key.strip_prefix(format!("{prefix}{dir}").as_bytes())
                        .is_some_and(|rest| {
                            SYSTEM_NAMESPACES.iter().any(|ns| {
                                rest == ns.as_bytes() || rest == format!("{ns}/default").as_bytes()
                            })
                        })
                };
                if kept("namespaces/") || kept("serviceaccounts/") {
                    continue;
                }
                let _ = store.delete(key, None).await;
            }
        });
    }
}

/// The transport's `Request` for `raw`, as the HTTP/1.1 and HTTP/2 readers build it (and refuse
/// it: their 400s and 431s never reach the handler).
pub fn to_request(raw: &RawRequest) -> Option<Request> {
    let method = Method::from_bytes(raw.method.as_bytes()).ok()?;
    let uri = crate::transport::RequestTarget::parse(&raw.target)?;
    if !raw.target.starts_with('/') {
        return None;
    }
    let mut headers = HeaderMap::new();
    let mut head_bytes = raw.target.len();
    for (name, value) in &raw.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let value = HeaderValue::from_str(value).ok()?;
        head_bytes += name.as_str().len() + value.len();
        headers.append(name, value);
    }
    if head_bytes > MAX_HEADER_BYTES || raw.body.len() > MAX_BODY_BYTES {
        return None;
    }
    Some(Request {
        method,
        uri,
        headers,
        body: Bytes::from(raw.body.clone()),
        peer: raw.user.peer(),
        http2: raw.http2,
    })
}

/// Reads a streamed body while its producer keeps up, up to `MAX_DRAINED_BYTES`; and whether
/// it ended.
async fn drain(mut rx: futures::channel::mpsc::Receiver<Bytes>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut idle = 0;
    while out.len() < MAX_DRAINED_BYTES && idle < MAX_IDLE_POLLS {
        match futures::FutureExt::now_or_never(rx.next()) {
            Some(Some(chunk)) => out.extend_from_slice(&chunk),
            Some(None) => return (out, true),
            None => {
                idle += 1;
                YieldNow(false).await;
            }
        }
    }
    (out, false)
}

/// Gives the runtime one turn, so spawned producers run.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What every response must be, whatever the request: a status a client can read, a body that
/// parses as its Content-Type says, and on the API's paths (`/api`, `/apis`) every error a
/// `Status` object in the negotiated encoding, as upstream answers. Returns what is wrong.
pub fn check(raw: &RawRequest, out: &Outcome) -> Result<(), String> {
    let code = out.status.as_u16();
    if !(100..600).contains(&code) {
        return Err(format!("status {code} is outside 100-599"));
    }
    if out.complete && !out.body.is_empty() {
        parses(out).map_err(|e| format!("{code}: the body does not parse: {e}"))?;
    }
    let path = raw.target.split('?').next().unwrap_or("");
    let api_path = path == "/api"
        || path == "/apis"
        || path.starts_with("/api/")
        || path.starts_with("/apis/");
    if !api_path || code < 400 || out.streamed {
        return Ok(());
    }
    let ct = out.content_type.as_deref().unwrap_or("");
    let status: serde_json::Value = if ct.starts_with("application/vnd.kubernetes.protobuf") {
        let mut json = Vec::new();
        kapi_codec::to_json::envelope_to_json(&out.body, &mut json)
            .map_err(|e| format!("{code}: protobuf body is no object: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("{code}: {e}"))?
    } else if ct.starts_with("application/yaml") {
        kapi_codec::yaml::from_yaml(&out.body).map_err(|e| format!("{code}: YAML body: {e:?}"))?
    } else if ct.starts_with("application/json") {
        serde_json::from_slice(&out.body).map_err(|e| format!("{code}: JSON body: {e}"))?
    } else {
        return Err(format!("{code}: error body of type {ct:?}, not a Status"));
    };
    if status["kind"] != "Status" || status["apiVersion"] != "v1" {
        return Err(format!("{code}: error body is not a v1 Status: {status}"));
    }
    if status["code"] != code {
        return Err(format!("{code}: Status says code {}", status["code"]));
    }
    if status["status"] != "Failure" {
        return Err(format!("{code}: Status is not a Failure: {status}"));
    }
    Ok(())
}

/// Whether a whole body is what its Content-Type says: one JSON or YAML document, or a
/// protobuf object in the `k8s\0` envelope (a watch stream is frames, not checked here).
fn parses(out: &Outcome) -> Result<(), String> {
    let ct = out.content_type.as_deref().unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if ct.contains("stream=watch") || out.streamed && mime != "application/json" {
        return Ok(());
    }
    match mime {
        "application/json" | "application/yaml"
            if out.body.len() > MAX_JSON_CHECKED
                || (mime == "application/yaml" && out.body.len() > MAX_YAML_CHECKED) =>
        {
            // Too large to parse back on every input: it must at least start a document.
            let first = out.body.iter().find(|b| !b.is_ascii_whitespace());
            match (mime, first) {
                ("application/json", Some(b'{' | b'[')) | ("application/yaml", Some(_)) => Ok(()),
                _ => Err("the body does not start a document".into()),
            }
        }
        "application/json" if out.streamed => {
            // A watch in JSON is a sequence of objects; a list, one.
            for v in
                serde_json::Deserializer::from_slice(&out.body).into_iter::<serde::de::IgnoredAny>()
            {
                v.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "application/json" => serde_json::from_slice::<serde::de::IgnoredAny>(&out.body)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "application/yaml" => kapi_codec::yaml::from_yaml(&out.body)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "application/vnd.kubernetes.protobuf" => {
            let mut json = Vec::new();
            kapi_codec::to_json::envelope_to_json(&out.body, &mut json).map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }
}
