//! The scenarios and the run that composes them: every scenario is a set of tasks bounded by
//! the run's deadline and by its own counts; the run waits for all of them, then reports.

pub mod churn;
pub mod kubelet;
pub mod list;
pub mod overload;
pub mod populate;
pub mod stall;
pub mod updates;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::client::{Api, Call, Target};
use crate::metrics::{AckBook, Recorder, Scope};
use crate::objects;
use crate::procstat::{ProcSample, Sampler};
use crate::watch::{InformerMode, informer};

/// How long the server may take to answer /readyz before the run gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Tasks still running this long after the deadline are aborted (a hung request, say).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What to run; each field bounds a scenario in count, the deadline bounds them all in time.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub duration_s: u64,
    pub namespaces: usize,
    pub nodes: usize,
    /// `populate`: pods to create (bound to the nodes round-robin), at `populate_rate` per second.
    pub populate: bool,
    pub pods: usize,
    pub populate_rate: f64,
    pub clients: usize,
    /// `kubelets`: simulate the `nodes` nodes.
    pub kubelets: bool,
    /// Kubelets only LIST+WATCH their pods: no Node, Lease or pod status writes.
    #[serde(default)]
    pub watch_only: bool,
    /// Kubelets watch from the resourceVersion of one shared LIST (limit=1) instead of each
    /// LISTing first: kubelets that listed long ago (steady state, no relist storm).
    #[serde(default)]
    pub skip_list: bool,
    /// Kubelets sharing one HTTP/2 connection (real kubelets have one each: 1).
    #[serde(default = "one")]
    pub kubelets_per_connection: usize,
    /// `controllers`: informers, and which list mode they use.
    pub controllers: usize,
    pub informer_mode: String,
    /// `churn`: create/update/delete operations per second, and at most this many.
    pub churn_rate: f64,
    pub churn_max: usize,
    /// `list`: clients issuing LISTs, each at most once per `list_interval_ms`.
    pub list_clients: usize,
    pub list_interval_ms: u64,
    /// `updates`: PATCHes of existing pods bound to the `nodes` nodes per second, over
    /// `update_clients` connections.
    #[serde(default)]
    pub update_rate: f64,
    #[serde(default = "one")]
    pub update_clients: usize,
    /// The run id in pod names (`pod-<run id>-<i>`); a fresh one per run when absent. `bench`
    /// gives every cluster the same one, so that every server holds the same objects.
    #[serde(default)]
    pub run_id: Option<u64>,
    /// `updates` addresses the `known_pods` pods an earlier populate of `run_id` created by
    /// name (pod i: namespace i mod namespaces, node i mod nodes) instead of LISTing them: a full
    /// LIST would take most of a short run against a slow server and skew what is compared.
    #[serde(default)]
    pub known_pods: usize,
    /// Kubelets only heartbeat: Lease renewals and Node status patches, no pod watch.
    #[serde(default)]
    pub heartbeat_only: bool,
    /// Informers all watch this resource (e.g. `pods`) instead of pods, nodes, leases and
    /// namespaces in rotation.
    #[serde(default)]
    pub informer_resource: Option<String>,
    /// Bytes of padding annotation on every created pod: makes one server's objects bigger
    /// (what a server that stores more per object looks like), to test the size warning.
    #[serde(default)]
    pub pod_padding: usize,
}

fn one() -> usize {
    1
}

/// Claims evenly spaced send slots so that many clients together keep one target rate.
pub struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(rate_per_s: f64) -> Arc<Pacer> {
        let interval = if rate_per_s > 0.0 {
            Duration::from_secs_f64(1.0 / rate_per_s)
        } else {
            Duration::ZERO
        };
        Arc::new(Pacer {
            interval,
            next: Mutex::new(Instant::now()),
        })
    }

    /// Waits for the next slot; false if that slot is past the deadline.
    pub async fn wait(&self, deadline: Instant) -> bool {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        if slot >= deadline {
            return false;
        }
        tokio::time::sleep_until(slot.into()).await;
        true
    }
}

/// Everything a scenario task needs.
#[derive(Clone)]
pub struct Ctx {
    pub target: Target,
    pub rec: Arc<Recorder>,
    pub acks: Arc<AckBook>,
    pub plan: Arc<Plan>,
    pub deadline: Instant,
    /// Part of every pod name, so that runs against the same cluster do not collide.
    pub run_id: u64,
    /// Kubelets whose first watch is open (response headers received).
    pub watching: Arc<AtomicUsize>,
}

impl Ctx {
    pub fn api(&self) -> Result<Api, String> {
        Api::new(&self.target, self.rec.clone())
    }
    /// Records a write's acknowledgement from its response body, for watch delivery latency.
    pub fn acknowledged(&self, body: &[u8]) {
        // The time before the parse: the write was acknowledged when its response arrived.
        let at = Instant::now();
        if let Ok(o) = serde_json::from_slice::<crate::watch::Object>(body) {
            let m = &o.metadata;
            let early = self.acks.acknowledged(
                format!("{}/{}@{}", m.namespace, m.name, m.resource_version),
                at,
            );
            for e in early {
                self.rec
                    .early_delivery(e.watcher, e.resource, e.at.saturating_duration_since(at));
            }
        }
    }
}

async fn wait_ready(api: &Api) -> Result<(), String> {
    let until = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(r) = api.request(reqwest::Method::GET, "/readyz").send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!(
                "{} was not ready within {READY_TIMEOUT:?}",
                api.server
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Namespaces every scenario writes into, and the node-lease namespace.
async fn setup(ctx: &Ctx) -> Result<(), String> {
    let api = ctx.api()?;
    wait_ready(&api).await?;
    let mut names: Vec<String> = (0..ctx.plan.namespaces)
        .map(objects::namespace_name)
        .collect();
    names.push(objects::LEASE_NAMESPACE.to_string());
    for n in names {
        // Only missing namespaces are created, so a run against a cluster that has them
        // (kube-node-lease always exists) records no 409.
        let path = format!("/api/v1/namespaces/{n}");
        let (existing, _) = api
            .call(Call::new("GET", "namespaces", Scope::Resource, &path).probe())
            .await;
        if existing == 200 {
            continue;
        }
        let (status, _) = api
            .call(
                Call::new("POST", "namespaces", Scope::Cluster, "/api/v1/namespaces")
                    .json(&objects::namespace(&n)),
            )
            .await;
        if status != 201 && status != 409 && status != 200 {
            return Err(format!("creating namespace {n}: HTTP {status}"));
        }
    }
    for i in 0..ctx.plan.namespaces {
        default_account(&api, &objects::namespace_name(i)).await?;
    }
    Ok(())
}

/// Makes `namespace`'s `default` ServiceAccount unless it exists: the ServiceAccount admission
/// plugin refuses pods without it, and without a kube-controller-manager nobody else makes it.
pub(crate) async fn default_account(api: &Api, namespace: &str) -> Result<(), String> {
    let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts");
    let (existing, _) = api
        .call(
            Call::new(
                "GET",
                "serviceaccounts",
                Scope::Resource,
                &format!("{path}/default"),
            )
            .probe(),
        )
        .await;
    if existing == 200 {
        return Ok(());
    }
    let account = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": "default"}});
    let (status, _) = api
        .call(Call::new("POST", "serviceaccounts", Scope::Namespace, &path).json(&account))
        .await;
    if status != 201 && status != 409 {
        return Err(format!(
            "creating the default ServiceAccount of {namespace}: HTTP {status}"
        ));
    }
    Ok(())
}

pub struct Outcome {
    pub server: Vec<ProcSample>,
    /// kapi-load's own CPU and RSS: a busy client measures itself, not the server.
    pub client: Vec<ProcSample>,
    pub elapsed: Duration,
}

/// Runs the plan to its deadline and returns what the sampler saw.
pub async fn run(
    target: Target,
    plan: Plan,
    rec: Arc<Recorder>,
    server_pid: Option<u32>,
) -> Result<Outcome, String> {
    let plan = Arc::new(plan);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(plan.duration_s);
    let ctx = Ctx {
        target,
        rec: rec.clone(),
        acks: Arc::new(AckBook::default()),
        plan: plan.clone(),
        deadline,
        run_id: plan.run_id.unwrap_or_else(fresh_run_id),
        watching: Arc::new(AtomicUsize::new(0)),
    };
    setup(&ctx).await?;
    let mut tasks = JoinSet::new();
    let sampler = server_pid.map(|pid| Sampler::start(pid, deadline));
    let own = Sampler::start(std::process::id(), deadline);
    let watches = plan.kubelets.then(|| ctx.watching.clone());
    let progress = tokio::spawn(progress(rec.clone(), deadline, watches));
    if plan.kubelets {
        kubelet::spawn(&ctx, &mut tasks)?;
    }
    for i in 0..plan.controllers {
        let (path, resource) = match &plan.informer_resource {
            Some(r) => *INFORMED
                .iter()
                .find(|(_, name)| name == r)
                .ok_or_else(|| format!("informers cannot watch {r}"))?,
            None => INFORMED[i % INFORMED.len()],
        };
        let mode = match plan.informer_mode.as_str() {
            "list-watch" => InformerMode::ListWatch,
            "watch-list" => InformerMode::WatchList,
            // Alternate per round of INFORMED, so every resource gets both modes.
            _ if (i / INFORMED.len()).is_multiple_of(2) => InformerMode::ListWatch,
            _ => InformerMode::WatchList,
        };
        tasks.spawn(informer(
            ctx.api()?,
            path.to_string(),
            resource,
            mode,
            deadline,
            ctx.acks.clone(),
        ));
    }
    if plan.populate {
        populate::spawn(&ctx, &mut tasks)?;
    }
    if plan.churn_rate > 0.0 && plan.churn_max > 0 {
        churn::spawn(&ctx, &mut tasks)?;
    }
    if plan.update_rate > 0.0 {
        updates::spawn(&ctx, &mut tasks)?;
    }
    for c in 0..plan.list_clients {
        tasks.spawn(list::client(ctx.clone(), ctx.api()?, c));
    }
    let hard_stop = deadline + SHUTDOWN_GRACE;
    while !tasks.is_empty() {
        if tokio::time::timeout_at(hard_stop.into(), tasks.join_next())
            .await
            .is_err()
        {
            tasks.abort_all();
            break;
        }
    }
    // The run ends when every scenario has (populate alone ends once its pods exist).
    progress.abort();
    let server = match sampler {
        Some(s) => s.finish().await,
        None => Vec::new(),
    };
    Ok(Outcome {
        server,
        client: own.finish().await,
        elapsed: start.elapsed(),
    })
}

/// A run id from the clock: runs against the same cluster a millisecond apart do not collide.
pub fn fresh_run_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64 % 1_000_000_000)
        .unwrap_or(0)
}

/// The resources informers watch, in rotation, like a controller manager's shared informers.
const INFORMED: [(&str, &str); 4] = [
    ("/api/v1/pods", "pods"),
    ("/api/v1/nodes", "nodes"),
    ("/apis/coordination.k8s.io/v1/leases", "leases"),
    ("/api/v1/namespaces", "namespaces"),
];

/// The live progress line, at most once per second; with kubelets, how many watches are open.
async fn progress(rec: Arc<Recorder>, deadline: Instant, watches: Option<Arc<AtomicUsize>>) {
    let mut last = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < deadline {
        tick.tick().await;
        let req = rec.requests.load(Ordering::Relaxed);
        let ev = rec.events.load(Ordering::Relaxed);
        let err = rec.failures.load(Ordering::Relaxed);
        let open = watches
            .as_ref()
            .map(|w| format!("  kubelet watches open {}", w.load(Ordering::Relaxed)))
            .unwrap_or_default();
        eprintln!(
            "[{:>4}s] requests {req} ({}/s)  errors {err}  watch events {ev} ({}/s){open}",
            rec.start.elapsed().as_secs(),
            req - last.0,
            ev - last.1
        );
        last = (req, ev);
    }
}
