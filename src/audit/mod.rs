//! Auditing (`--audit-policy-file`, `--audit-log-*`, `--audit-webhook-*`): after
//! authentication the request pipeline asks `Audit::begin` for a `Recorder` (none when auditing
//! is off: then it costs one branch), which notes the authorization decision and, when the
//! response leaves (or, for a streamed one, when it ends), sends the stage events to each
//! backend's bounded queue. The log's writer thread renders them (`event`) and appends them
//! (`log`); the webhook's thread POSTs them (`webhook`); so a slow disk or webhook never holds a
//! core.

pub mod event;
mod flags;
pub mod log;
pub mod policy;
mod recorder;
pub mod webhook;

pub use flags::Flags;
pub use recorder::Recorder;

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use http::HeaderValue;
use prometheus::{IntCounter, IntCounterVec, Opts};

use crate::api::request::Target;
use crate::authn::UserInfo;
use crate::metrics::{Stability, help, register};
use crate::transport::{Request, Response};
use event::{Event, ObjectRef, User};
use policy::{Level, Policy, Stage};

/// Events waiting for the writer in blocking mode: a burst of a few seconds of busy traffic.
/// When full, the core that audits waits for room (upstream's blocking mode makes every request
/// wait for its write; this waits only when the writer is behind).
pub const BLOCKING_QUEUE_EVENTS: usize = 10_000;

/// Longest client-given `Audit-ID` taken as the request's (a UUID is 36); a longer one is
/// replaced by a new UUID.
const MAX_AUDIT_ID_BYTES: usize = 64;

/// Events the writer renders before it looks at the queue again (bounds its buffer).
const WRITER_BATCH_EVENTS: usize = 256;

static EVENTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::with_opts(Opts::new(
            "apiserver_audit_event_total",
            help(
                Stability::Alpha,
                None,
                "Counter of audit events generated and sent to the audit backend.",
            ),
        ))
        .expect("a valid metric"),
    )
});

static ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "apiserver_audit_error_total",
                help(
                    Stability::Alpha,
                    None,
                    "Counter of audit events that failed to be audited properly. Plugin identifies the plugin affected by the error.",
                ),
            ),
            &["plugin"],
        )
        .expect("a valid metric"),
    )
});

static LEVELS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "apiserver_audit_level_total",
                help(
                    Stability::Alpha,
                    None,
                    "Counter of policy levels for audit events (1 per request).",
                ),
            ),
            &["level"],
        )
        .expect("a valid metric"),
    )
});

static REJECTED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::with_opts(Opts::new(
            "apiserver_audit_requests_rejected_total",
            help(
                Stability::Alpha,
                None,
                "Counter of apiserver requests rejected due to an error in audit logging backend.",
            ),
        ))
        .expect("a valid metric"),
    )
});

/// Auditing as the flags configure it: off (`None`) unless there is a policy and a backend.
#[derive(Clone, Default)]
pub struct Audit(Option<Arc<Auditor>>);

struct Auditor {
    policy: Policy,
    /// The log and/or the webhook, each with its queue and mode.
    backends: Vec<Backend>,
}

/// One backend's end of its bounded queue.
struct Backend {
    queue: SyncSender<Arc<Event>>,
    mode: Mode,
    /// `log` or `webhook`: the `plugin` label of `apiserver_audit_error_total`.
    plugin: &'static str,
}

impl Auditor {
    fn strict(&self) -> bool {
        self.backends.iter().any(|b| b.mode == Mode::BlockingStrict)
    }
}

/// A backend's queue capacity for its mode.
fn mode(name: &str, batch_buffer: usize) -> (Mode, usize) {
    match name {
        "batch" => (Mode::Batch, batch_buffer.max(1)),
        "blocking-strict" => (Mode::BlockingStrict, BLOCKING_QUEUE_EVENTS),
        _ => (Mode::Blocking, BLOCKING_QUEUE_EVENTS),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Wait for room in the queue.
    Blocking,
    /// As blocking; a request whose first event cannot be queued fails.
    BlockingStrict,
    /// Drop an event the queue has no room for, and count it.
    Batch,
}

impl Audit {
    /// Reads the policy and opens the log and the webhook; warns of what kapi does not do yet.
    pub fn start(flags: &Flags) -> Result<Audit, String> {
        if flags.audit_log_compress {
            eprintln!(
                "kapi: warning: --audit-log-compress: rotated audit logs are not compressed yet"
            );
        }
        for (flag, version) in [
            ("--audit-log-version", &flags.audit_log_version),
            ("--audit-webhook-version", &flags.audit_webhook_version),
        ] {
            if version != "audit.k8s.io/v1" {
                return Err(format!(
                    "{flag}: unsupported version {version:?}: only audit.k8s.io/v1"
                ));
            }
        }
        let Some(policy_file) = &flags.audit_policy_file else {
            return Ok(Audit(None));
        };
        if flags.audit_log_path.is_none() && flags.audit_webhook_config_file.is_none() {
            return Ok(Audit(None));
        }
        let data = std::fs::read(policy_file).map_err(|e| {
            format!(
                "--audit-policy-file: reading {}: {e}",
                policy_file.display()
            )
        })?;
        let policy = policy::parse(&data).map_err(|e| {
            format!(
                "--audit-policy-file: loading audit policy file {}: {e}",
                policy_file.display()
            )
        })?;
        let mut backends = Vec::new();
        if let Some(path) = &flags.audit_log_path {
            let sink = log::Sink::open(
                path,
                log::Rotation {
                    max_megabytes: flags.audit_log_maxsize,
                    max_backups: flags.audit_log_maxbackup,
                    max_age_days: flags.audit_log_maxage,
                },
            )
            .map_err(|e| format!("--audit-log-path: opening {path}: {e}"))?;
            let (mode, capacity) = mode(&flags.audit_log_mode, flags.audit_log_batch_buffer_size);
            let (queue, events) = std::sync::mpsc::sync_channel(capacity);
            let legacy = flags.audit_log_format == "legacy";
            std::thread::Builder::new()
                .name("kapi-audit".into())
                .spawn(move || write_events(events, sink, legacy))
                .map_err(|e| format!("starting the audit writer: {e}"))?;
            backends.push(Backend {
                queue,
                mode,
                plugin: "log",
            });
        }
        if let Some(config) = &flags.audit_webhook_config_file {
            let target =
                webhook::target(config).map_err(|e| format!("--audit-webhook-config-file: {e}"))?;
            let (mode, capacity) = mode(
                &flags.audit_webhook_mode,
                flags.audit_webhook_batch_buffer_size,
            );
            // Blocking modes send each event as it comes, as upstream's do.
            let batching = webhook::Batching {
                max_size: if mode == Mode::Batch {
                    flags.audit_webhook_batch_max_size
                } else {
                    1
                },
                max_wait: flags.audit_webhook_batch_max_wait,
                initial_backoff: flags.audit_webhook_initial_backoff,
            };
            let (queue, events) = std::sync::mpsc::sync_channel(capacity);
            std::thread::Builder::new()
                .name("kapi-audit-webhook".into())
                .spawn(move || webhook::run(events, target, batching))
                .map_err(|e| format!("starting the audit webhook: {e}"))?;
            backends.push(Backend {
                queue,
                mode,
                plugin: "webhook",
            });
        }
        LazyLock::force(&EVENTS);
        LazyLock::force(&ERRORS);
        LazyLock::force(&LEVELS);
        LazyLock::force(&REJECTED);
        Ok(Audit(Some(Arc::new(Auditor { policy, backends }))))
    }

    /// The recorder of a request the policy audits; `None` (at the cost of one branch when
    /// auditing is off) otherwise. Sends the RequestReceived event. `Err` is the response
    /// to give instead when the strict mode cannot audit it.
    pub fn begin(
        &self,
        req: &Request,
        user: &UserInfo,
        target: Option<&Target>,
        path: &str,
    ) -> Result<Option<Box<Recorder>>, Response> {
        if self.0.is_none() {
            return Ok(None);
        }
        self.begin_stages(req, user, target, path, true)
    }

    fn begin_stages(
        &self,
        req: &Request,
        user: &UserInfo,
        target: Option<&Target>,
        path: &str,
        received: bool,
    ) -> Result<Option<Box<Recorder>>, Response> {
        let Some(auditor) = &self.0 else {
            return Ok(None);
        };
        let attrs = crate::authz::Attributes::new(user, &req.method, path, target);
        let rr = attrs.resource;
        let decision = auditor.policy.decide(&policy::Attributes {
            user: &user.name,
            groups: &user.groups,
            verb: attrs.verb,
            resource: rr.map(|rr| policy::ResourceAttributes {
                group: &rr.group,
                resource: &rr.resource,
                subresource: rr.subresource.as_deref().unwrap_or(""),
                namespace: rr.namespace.as_deref().unwrap_or(""),
                name: rr.name.as_deref().unwrap_or(""),
            }),
            path,
        });
        LEVELS.with_label_values(&[decision.level.as_str()]).inc();
        let audit_id = req
            .headers
            .get("audit-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_AUDIT_ID_BYTES)
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if decision.level == Level::None {
            // Not logged, but the response still names its audit ID, as upstream's does.
            return Ok(Some(Box::new(Recorder::unlogged(
                auditor.clone(),
                audit_id,
            ))));
        }
        let keep_body = decision.level >= Level::Request || attrs.verb == "create";
        let request = Arc::new(event::Request {
            level: decision.level,
            audit_id,
            request_uri: match req.uri.query() {
                Some(q) => format!("{}?{q}", req.uri.path()),
                None => req.uri.path().to_string(),
            },
            verb: attrs.verb.to_string(),
            user: User {
                username: user.name.clone(),
                uid: user.uid.clone(),
                groups: user.groups.clone(),
                extra: user
                    .extra
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            impersonated_user: None,
            source_ips: source_ips(req),
            user_agent: req
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            object_ref: rr.map(|rr| ObjectRef {
                resource: rr.resource.clone(),
                namespace: rr.namespace.clone().unwrap_or_default(),
                name: rr
                    .name
                    .clone()
                    .or_else(|| {
                        (attrs.verb == "create")
                            .then(|| created_name(&req.body))
                            .flatten()
                    })
                    .unwrap_or_default(),
                api_group: rr.group.clone(),
                api_version: rr.version.clone(),
                subresource: rr.subresource.clone().unwrap_or_default(),
            }),
            request_body: (keep_body && !req.body.is_empty()).then(|| req.body.clone()),
            received_micros: now_micros(),
            omit_managed_fields: decision.omit_managed_fields,
        });
        let recorder = Box::new(Recorder {
            auditor: auditor.clone(),
            request,
            omit: decision.omit_stages,
            long_running: matches!(target, Some(Target::Resource(rr)) if rr.verb == crate::api::request::Verb::Watch),
            decision: None,
            annotations: Vec::new(),
            finished: false,
        });
        if received && !recorder.emit(Stage::RequestReceived, None) && auditor.strict() {
            REJECTED.inc();
            let mut recorder = recorder;
            recorder.finished = true;
            return Err(crate::api::server::status_response(
                &crate::api::status::Status::internal("failed to create audit event".to_string()),
                crate::api::negotiate::Encoding::Json,
                false,
            ));
        }
        Ok(Some(recorder))
    }
}

impl Audit {
    /// A request no authenticator accepted: one ResponseStarted event (no user; the methods
    /// tried in the message), as upstream's failed-authentication audit.
    pub fn failed_authentication(
        &self,
        req: &Request,
        target: Option<&Target>,
        path: &str,
        response: Response,
    ) -> Response {
        if self.0.is_none() {
            return response;
        }
        let Ok(Some(mut recorder)) =
            self.begin_stages(req, &UserInfo::default(), target, path, false)
        else {
            return response;
        };
        let mut methods = Vec::new();
        if req.headers.contains_key(http::header::AUTHORIZATION) {
            methods.push("bearer");
        }
        if !req.peer.certificates.is_empty() {
            methods.push("x509");
        }
        recorder.finished = true;
        recorder.emit(
            Stage::ResponseStarted,
            Some(event::Response {
                code: response.status.as_u16(),
                body: None,
                panic: false,
                message: Some(format!(
                    "Authentication failed, attempted: {}",
                    methods.join(", ")
                )),
            }),
        );
        let mut response = response;
        if let Ok(id) = HeaderValue::from_str(&recorder.request.audit_id) {
            response.headers.insert("audit-id", id);
        }
        response
    }
}

/// The writer thread: renders and appends events until every sender is gone.
fn write_events(events: Receiver<Arc<Event>>, mut sink: log::Sink, legacy: bool) {
    let mut line = Vec::with_capacity(4096);
    while let Ok(first) = events.recv() {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(event) = next.take() {
            line.clear();
            if legacy {
                event.write_legacy(&mut line);
            } else {
                event.write_json(&mut line);
            }
            if let Err(e) = sink.write_lines(&line) {
                ERRORS.with_label_values(&["log"]).inc();
                eprintln!("kapi: audit: writing the log: {e}");
            }
            written += 1;
            if written < WRITER_BATCH_EVENTS {
                next = events.try_recv().ok();
            }
        }
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// As upstream's `utilnet.SourceIPs`: X-Forwarded-For, then X-Real-Ip, then the peer.
fn source_ips(req: &Request) -> Vec<String> {
    let mut ips: Vec<String> = Vec::new();
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(xff) = header("x-forwarded-for") {
        for part in xff.split(',') {
            if let Ok(ip) = part.trim().parse::<std::net::IpAddr>() {
                ips.push(ip.to_string());
            }
        }
    }
    if let Some(ip) = header("x-real-ip").and_then(|v| v.trim().parse::<std::net::IpAddr>().ok()) {
        let ip = ip.to_string();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if let Some(remote) = req.peer.remote {
        let ip = remote.ip().to_string();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

/// `metadata.name` of a create body, JSON or protobuf (upstream's objectRef names the created
/// object).
fn created_name(body: &[u8]) -> Option<String> {
    if body.starts_with(kapi_codec::envelope::PROTOBUF_MAGIC) {
        let env = kapi_codec::envelope::Envelope::parse(body).ok()?;
        let schema = kapi_codec::Schema::get();
        let msg = schema.kind(env.api_version, env.kind)?;
        let meta = kapi_codec::meta::meta_from_pb(msg, env.raw, 0).ok()?;
        return Some(meta.name.to_string()).filter(|n| !n.is_empty());
    }
    if body.first() != Some(&b'{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["metadata"]["name"].as_str().map(str::to_string)
}
