//! API Priority and Fairness: the stage between authentication and authorization. Each request
//! is classified (FlowSchema, flow), then runs on a seat of its priority level, waits in a
//! fair queue, or is refused with 429; seats are shared by every core. With
//! `--enable-priority-and-fairness=false`, upstream's max-in-flight limits instead.

mod bootstrap;
mod borrowing;
mod classify;
mod config;
mod dispatch;
mod metrics;
mod queueset;
mod retry;
mod seat;
mod status;
mod width;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kapi_cache::Cache;

use crate::storage::StoreClient;

pub use bootstrap::ensure as ensure_bootstrap;
pub use classify::Target;
pub use seat::{Rejection, Seat};

use classify::{Classifier, Digest};
use config::{FlowSchema, PriorityLevel};
use dispatch::{Admission, Dispatcher, Waiting};
use queueset::{RejectReason, flow_hash};
use seat::SeatKind;

/// How long a request may wait in its queue: upstream allows a quarter of the request's
/// deadline (60 s by default), capped at a minute.
pub const QUEUE_WAIT_LIMIT: Duration = Duration::from_secs(15);
/// How often the configuration thread looks at the cache's FlowSchemas and
/// PriorityLevelConfigurations: a change is in force within this.
const CONFIG_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// `Retry-After` of max-in-flight's 429s (upstream's constant "1").
const RETRY_AFTER_SECONDS: i64 = 1;
/// Priority levels whose dropped requests are tracked for Retry-After; past it (a churn of
/// user-created levels) the record starts over.
const MAX_TRACKED_LEVELS: usize = 1024;
/// Priority levels in force at once: each holds up to `queueset::MAX_QUEUES` queues, so a
/// configuration of thousands of levels must not cost gigabytes. Past it, levels (other than
/// the mandatory ones) are left out by name order, and FlowSchemas naming them dangle.
const MAX_LEVELS: usize = 200;

/// The flags (named as kube-apiserver's).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub max_requests_inflight: u32,
    pub max_mutating_requests_inflight: u32,
    pub enable_priority_and_fairness: bool,
}

/// What flow control needs to know of a request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub user: &'a str,
    /// With `system:authenticated` or `system:unauthenticated`.
    pub groups: &'a [String],
    pub target: Target<'a>,
    /// A watch: it holds its seat only while it is set up.
    pub long_running: bool,
}

impl Request<'_> {
    /// Upstream's rule: everything but get, list and watch (a non-resource request's verb is
    /// its lower-case method, so HEAD counts as mutating there too).
    fn mutating(&self) -> bool {
        let verb = match &self.target {
            Target::Resource { verb, .. } | Target::NonResource { verb, .. } => *verb,
        };
        !matches!(verb, "get" | "list" | "watch")
    }
}

/// The configuration in force: the classifier and the levels' identities.
struct Config {
    classifier: Classifier,
    /// name → (uid, exempt).
    levels: HashMap<String, (String, bool)>,
    /// Nominal limits, for the widest a request may be.
    limits: HashMap<String, u32>,
    /// Each FlowSchema's metric series.
    meters: HashMap<String, Arc<metrics::FlowMeters>>,
}

/// Upstream's max-in-flight filter: two counters, no queues.
struct MaxInFlight {
    readonly: AtomicU32,
    mutating: AtomicU32,
    readonly_limit: u32,
    mutating_limit: u32,
}

pub struct FlowControl {
    apf: bool,
    server_limit: u64,
    config: RwLock<Arc<Config>>,
    dispatcher: Arc<Dispatcher>,
    /// Each level's dropped requests, for the Retry-After of its 429s.
    dropped: Mutex<HashMap<String, retry::Dropped>>,
    inflight: MaxInFlight,
    cache: Arc<Cache>,
    /// (group, resource) → the cache's key prefix, for LIST widths.
    prefixes: HashMap<(String, String), Bytes>,
    /// `--etcd-prefix` with its slash.
    store_prefix: String,
}

impl FlowControl {
    /// Flow control over `cache` (which holds the configuration objects under `store_prefix`);
    /// `prefixes` maps each resource to its cache prefix.
    pub fn new(
        opts: Options,
        cache: Arc<Cache>,
        store_prefix: &str,
        prefixes: HashMap<(String, String), Bytes>,
    ) -> Arc<FlowControl> {
        let fc = Arc::new(FlowControl {
            apf: opts.enable_priority_and_fairness,
            server_limit: u64::from(opts.max_requests_inflight)
                + u64::from(opts.max_mutating_requests_inflight),
            config: RwLock::new(Arc::new(Config {
                classifier: Classifier::new(Vec::new(), |_| false),
                levels: HashMap::new(),
                limits: HashMap::new(),
                meters: HashMap::new(),
            })),
            dispatcher: Arc::new(Dispatcher::new()),
            dropped: Mutex::new(HashMap::new()),
            inflight: MaxInFlight {
                readonly: AtomicU32::new(0),
                mutating: AtomicU32::new(0),
                readonly_limit: opts.max_requests_inflight,
                mutating_limit: opts.max_mutating_requests_inflight,
            },
            cache,
            prefixes,
            store_prefix: store_prefix.to_string(),
        });
        if fc.apf {
            // Upstream's bootstrap objects until the cache has the stored ones.
            let levels = bootstrap::priority_levels()
                .iter()
                .filter_map(|o| PriorityLevel::from_json(&o.object))
                .collect();
            let schemas = bootstrap::flow_schemas()
                .iter()
                .filter_map(|o| FlowSchema::from_json(&o.object))
                .collect();
            fc.apply(levels, schemas);
        }
        fc
    }

    /// Follows the stored configuration: a thread that, whenever the cache's FlowSchemas or
    /// PriorityLevelConfigurations change, rebuilds the classifier and the levels, puts back
    /// the bootstrap objects as the ensurer's rules say, and updates Dangling conditions.
    pub fn follow_configuration(self: &Arc<Self>, store: StoreClient) -> std::io::Result<()> {
        if !self.apf {
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let fc = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("kapi-flowcontrol".into())
            .spawn(move || {
                let mut seen = (-1, -1);
                let mut adjusted = Instant::now();
                while let Some(fc) = fc.upgrade() {
                    if adjusted.elapsed() >= borrowing::ADJUSTMENT_PERIOD {
                        adjusted = Instant::now();
                        fc.dispatcher.adjust();
                    }
                    let now = fc.revisions();
                    if now != seen && now.0 > 0 && now.1 > 0 {
                        seen = now;
                        let (schemas, levels) = fc.reload();
                        rt.block_on(async {
                            if let Err(e) = bootstrap::ensure(&store, &fc.store_prefix).await {
                                eprintln!("kapi: flow control configuration: {e}");
                            }
                            status::update_dangling(&store, &schemas, &levels).await;
                        });
                    }
                    drop(fc);
                    std::thread::sleep(CONFIG_POLL_INTERVAL);
                }
            })
            .map(|_| ())
    }

    fn resource(&self, name: &str) -> Option<Arc<kapi_cache::ResourceCache>> {
        self.cache
            .resource(format!("{}{name}/", self.store_prefix).as_bytes())
    }

    /// The revisions of the last change to the FlowSchemas and to the levels (0: none yet).
    fn revisions(&self) -> (i64, i64) {
        let rev = |name| self.resource(name).map_or(0, |r| r.snapshot().revision);
        (rev("flowschemas"), rev("prioritylevelconfigurations"))
    }

    /// Reads the stored configuration from the cache and puts it in force; the stored
    /// FlowSchemas and the names of the levels, for their status.
    fn reload(&self) -> (Vec<status::StoredSchema>, Vec<String>) {
        let read = |name: &str| -> Vec<status::StoredSchema> {
            let Some(rc) = self.resource(name) else {
                return Vec::new();
            };
            let snap = rc.snapshot();
            snap.range(&rc.prefix, b"")
                .filter_map(|o| {
                    Some(status::StoredSchema {
                        key: o.key.clone(),
                        mod_revision: o.mod_revision,
                        object: bootstrap::decode(&o.value)?,
                    })
                })
                .collect()
        };
        let levels: Vec<PriorityLevel> = read("prioritylevelconfigurations")
            .iter()
            .filter_map(|o| PriorityLevel::from_json(&o.object))
            .collect();
        let stored = read("flowschemas");
        let schemas: Vec<FlowSchema> = stored
            .iter()
            .filter_map(|o| FlowSchema::from_json(&o.object))
            .collect();
        let names = levels.iter().map(|l| l.name.clone()).collect();
        if !levels.is_empty() && !schemas.is_empty() {
            self.apply(levels, schemas);
        }
        (stored, names)
    }

    fn apply(&self, mut levels: Vec<PriorityLevel>, mut schemas: Vec<FlowSchema>) {
        // Mandatory objects missing from the store (deleted, not yet put back) are in force
        // anyway, as upstream imagines them.
        for b in bootstrap::priority_levels().iter().filter(|b| b.mandatory) {
            if let Some(pl) = PriorityLevel::from_json(&b.object)
                && !levels.iter().any(|l| l.name == pl.name)
            {
                levels.push(pl);
            }
        }
        for b in bootstrap::flow_schemas().iter().filter(|b| b.mandatory) {
            if let Some(fs) = FlowSchema::from_json(&b.object)
                && !schemas.iter().any(|s| s.name == fs.name)
            {
                schemas.push(fs);
            }
        }
        if levels.len() > MAX_LEVELS {
            levels.sort_by(|a, b| {
                let optional =
                    |l: &PriorityLevel| !matches!(l.name.as_str(), "exempt" | "catch-all");
                (optional(a), &a.name).cmp(&(optional(b), &b.name))
            });
            levels.truncate(MAX_LEVELS);
        }
        let limits = config::nominal_limits(self.server_limit, &levels);
        let with_limits: Vec<(PriorityLevel, u32)> =
            levels.iter().cloned().zip(limits.iter().copied()).collect();
        self.dispatcher.configure(&with_limits);
        let meters = schemas
            .iter()
            .filter_map(|fs| {
                Some((
                    fs.name.clone(),
                    metrics::FlowMeters::new(&fs.priority_level, &fs.name)?,
                ))
            })
            .collect();
        let config = Config {
            meters,
            classifier: Classifier::new(schemas, |l| levels.iter().any(|p| p.name == l)),
            levels: levels
                .iter()
                .map(|l| (l.name.clone(), (l.uid.clone(), l.limited.is_none())))
                .collect(),
            limits: with_limits
                .iter()
                .map(|(l, cl)| (l.name.clone(), *cl))
                .collect(),
        };
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    fn current(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Admits a request: a `Seat` to hold while it executes (a watch: while it is set up),
    /// after waiting in its queue if need be; or the 429 to answer.
    pub async fn admit(self: &Arc<Self>, req: &Request<'_>) -> Result<Seat, Rejection> {
        if !self.apf {
            return self.admit_max_inflight(req);
        }
        let config = self.current();
        let digest = Digest {
            user: req.user,
            groups: req.groups,
            target: req.target.clone(),
        };
        let Some(class) = config.classifier.classify(&digest) else {
            // No catch-all in force (deleted and not yet restored): nothing to limit by.
            return Ok(Seat::unlimited());
        };
        let level = class.schema.priority_level.as_str();
        let fs = class.schema.name.as_str();
        let (pl_uid, exempt) = config.levels.get(level).cloned().unwrap_or_default();
        let headers = seat::PfHeaders {
            flow_schema_uid: class.schema.uid.clone(),
            priority_level_uid: pl_uid,
        };
        let meters = config.meters.get(fs).cloned();
        if exempt {
            return Ok(Seat::exempt(meters, headers));
        }
        let max_width = config.limits.get(level).copied().unwrap_or(1);
        let width = width::estimate(self, req, max_width);
        let hash = flow_hash(fs, &class.flow);
        let since = Instant::now();
        match self.dispatcher.arrive(level, hash, width) {
            Admission::Run(held) => Ok(Seat::granted(
                self.dispatcher.clone(),
                held,
                meters,
                headers,
                since,
            )),
            Admission::Reject(reason) => Err(self.reject(level, fs, reason, headers)),
            Admission::Wait {
                id,
                queue,
                width,
                rx,
            } => {
                if let Some(m) = &meters {
                    m.inqueue.inc();
                }
                let mut waiting = Waiting {
                    dispatcher: self.dispatcher.clone(),
                    level: level.to_string(),
                    flow_schema: fs.to_string(),
                    id,
                    queue,
                    width,
                    rx,
                    meters: meters.clone(),
                    settled: false,
                };
                let granted = match monoio::time::timeout(QUEUE_WAIT_LIMIT, &mut waiting.rx).await {
                    Ok(r) => r.is_ok(),
                    // Out of time: out of the queue, unless dispatched at the same moment.
                    Err(_) => {
                        !self.dispatcher.withdraw(level, id, queue)
                            && matches!(waiting.rx.try_recv(), Ok(Some(())))
                    }
                };
                waiting.settled = true;
                if let Some(m) = &meters {
                    m.inqueue.dec();
                }
                if granted {
                    Ok(Seat::granted(
                        self.dispatcher.clone(),
                        waiting.held(),
                        meters,
                        headers,
                        since,
                    ))
                } else {
                    if let Some(m) = metrics::get() {
                        m.wait_duration
                            .with_label_values(&[level, fs, "false"])
                            .observe(since.elapsed().as_secs_f64());
                    }
                    Err(self.reject(level, fs, RejectReason::TimeOut, headers))
                }
            }
        }
    }

    /// Upstream's max-in-flight filter: watches are not limited; `system:masters` is served
    /// even over the limit.
    fn admit_max_inflight(self: &Arc<Self>, req: &Request<'_>) -> Result<Seat, Rejection> {
        if req.long_running {
            return Ok(Seat::unlimited());
        }
        let mutating = req.mutating();
        let (counter, limit) = if mutating {
            (&self.inflight.mutating, self.inflight.mutating_limit)
        } else {
            (&self.inflight.readonly, self.inflight.readonly_limit)
        };
        if limit == 0 {
            return Ok(Seat::unlimited());
        }
        let before = counter.fetch_add(1, Ordering::AcqRel);
        if before >= limit && !req.groups.iter().any(|g| g == "system:masters") {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::new(
                "",
                "",
                RejectReason::ConcurrencyLimit,
                None,
                RETRY_AFTER_SECONDS,
            ));
        }
        Ok(Seat::new(SeatKind::InFlight {
            limits: self.clone(),
            mutating,
        }))
    }

    /// A 429 of `level`, its Retry-After from the level's recent drops.
    fn reject(
        &self,
        level: &str,
        fs: &str,
        reason: RejectReason,
        headers: seat::PfHeaders,
    ) -> Rejection {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let retry_after = {
            let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
            if dropped.len() >= MAX_TRACKED_LEVELS && !dropped.contains_key(level) {
                dropped.clear();
            }
            let d = dropped.entry(level.to_string()).or_default();
            d.record(now);
            d.retry_after()
        };
        Rejection::new(level, fs, reason, Some(headers), retry_after)
    }

    fn release_inflight(&self, mutating: bool) {
        let counter = if mutating {
            &self.inflight.mutating
        } else {
            &self.inflight.readonly
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }

    /// Objects the cache holds of a resource (a LIST's work), when it is cached.
    fn stored_objects(&self, group: &str, resource: &str) -> Option<usize> {
        let prefix = self
            .prefixes
            .get(&(group.to_string(), resource.to_string()))?;
        Some(self.cache.resource(prefix)?.snapshot().len())
    }
}
