//! `bench`: one suite of phases — populate, LIST, watches + updates, lease renewals, informers,
//! cold start — run against each cluster in turn with the same seed and sizes, measured the same
//! way, and written as one side-by-side report (`report.rs`) with its fairness warnings.
//!
//! Each phase is a bounded `scenario::run` (or `listbench`) wrapped in a `Probe` that reads the
//! server's and kapi-load's own CPU before and after, so every figure has its cost beside it.

pub mod report;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::{Api, Target};
use crate::listbench;
use crate::metrics::Recorder;
use crate::procstat::{self, Sampler};
use crate::report::{OpReport, Report};
use crate::scenario::{self, Plan};

pub use report::{BenchReport, Phase, ServerRun};

/// A tool thread busier than this share of a core (or the whole process busier than this share
/// of its worker threads) may have been the bottleneck of its phase.
const SATURATED_SHARE: f64 = 0.9;
/// The server sampler runs at most this long (a bench of any size ends well before).
const SAMPLER_HORIZON: Duration = Duration::from_secs(24 * 3600);
/// How often the cold start polls /readyz.
const READY_POLL: Duration = Duration::from_millis(50);
/// Slack after a phase's planned duration before its scenario is considered hung (the scenario
/// run itself aborts its tasks 10 s after its deadline).
const PHASE_GRACE: Duration = Duration::from_secs(60);
/// A phase starts once the server answers a small GET within `SETTLED_LATENCY`, waiting at most
/// `SETTLE_TIMEOUT`: the backlog the previous phase left (requests the server still works
/// through after the tool gave up on them) must not count against the next one.
const SETTLED_LATENCY: Duration = Duration::from_millis(500);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);
const SETTLE_POLL: Duration = Duration::from_millis(200);
/// The most padding a pod may carry (a test knob; far below the 1.5 MiB object limit).
pub const MAX_POD_PADDING: usize = 256 << 10;

/// The phases, in the order they run.
pub const PHASES: [&str; 6] = [
    "populate",
    "list",
    "watch",
    "leases",
    "informers",
    "cold-start",
];

/// The suite's sizes: the same for every cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    pub namespaces: usize,
    /// Nodes populate creates and kubelets watch from (one watch each).
    pub nodes: usize,
    pub pods_per_node: usize,
    /// Populate's creations per second (0: as fast as `populate_clients` go).
    pub populate_rate: f64,
    pub populate_clients: usize,
    pub populate_timeout_s: u64,
    /// Timed full LISTs per encoding (the median is reported), and how long one may take.
    pub list_count: usize,
    pub list_timeout_s: u64,
    pub update_rate: f64,
    pub update_clients: usize,
    pub watch_duration_s: u64,
    pub kubelets_per_connection: usize,
    /// Kubelets renewing Leases and patching Node status, and for how long.
    pub lease_nodes: usize,
    pub lease_duration_s: u64,
    /// Pod informers per mode (list-watch, then watch-list), and how long each mode runs.
    pub informers: usize,
    pub informer_duration_s: u64,
    pub cold_start_timeout_s: u64,
    pub phases: Vec<String>,
    /// kapi-load's worker threads.
    pub threads: usize,
}

impl Sizes {
    /// The named suites: `default` fits a 2-core machine in under 20 minutes for two release
    /// servers; `smoke` is seconds per server (CI, a first try).
    pub fn suite(name: &str) -> Result<Sizes, String> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let all = PHASES.iter().map(|p| p.to_string()).collect();
        match name {
            "default" => Ok(Sizes {
                namespaces: 100,
                nodes: 10_000,
                pods_per_node: 2,
                populate_rate: 0.0,
                populate_clients: 16,
                populate_timeout_s: 600,
                list_count: 3,
                list_timeout_s: 600,
                update_rate: 500.0,
                update_clients: 4,
                watch_duration_s: 60,
                kubelets_per_connection: 100,
                lease_nodes: 10_000,
                lease_duration_s: 75,
                informers: 2,
                informer_duration_s: 30,
                cold_start_timeout_s: 300,
                phases: all,
                threads,
            }),
            "smoke" => Ok(Sizes {
                namespaces: 3,
                nodes: 20,
                pods_per_node: 3,
                populate_rate: 0.0,
                populate_clients: 4,
                populate_timeout_s: 60,
                list_count: 3,
                list_timeout_s: 60,
                update_rate: 50.0,
                update_clients: 2,
                watch_duration_s: 4,
                kubelets_per_connection: 10,
                lease_nodes: 20,
                lease_duration_s: 12,
                informers: 1,
                informer_duration_s: 3,
                cold_start_timeout_s: 60,
                phases: all,
                threads,
            }),
            _ => Err(format!("unknown suite {name}: default or smoke")),
        }
    }

    pub fn pods(&self) -> usize {
        self.nodes * self.pods_per_node
    }

    fn has(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

/// One server under test.
pub struct Cluster {
    pub name: String,
    pub target: Target,
    /// The server's process first, then any it stores in (its etcd): CPU and RSS are their sum,
    /// so that a server with its store inside compares with one whose store is outside.
    pub pids: Vec<u32>,
    /// A shell command that restarts the server (prints the new pid as its last line, if known).
    pub restart_hook: Option<String>,
    /// Test knobs: padding on this cluster's pods, and its own update rate.
    pub pod_padding: usize,
    pub update_rate: Option<f64>,
}

/// Runs the suite against every cluster, one after the other, and builds the report.
/// After each cluster, the report so far is written to `out`: a long suite cut short keeps the
/// servers it finished.
pub async fn run(
    clusters: Vec<Cluster>,
    sizes: Sizes,
    seed: u64,
    out: &std::path::Path,
) -> Result<BenchReport, String> {
    let mut servers = Vec::new();
    let last = clusters.len();
    for (i, c) in clusters.into_iter().enumerate() {
        eprintln!("bench: {} ({}), seed {seed}", c.name, c.target.server);
        servers.push(run_cluster(c, &sizes, seed).await?);
        if i + 1 < last {
            BenchReport::build(sizes.clone(), seed, servers.clone()).write(out)?;
        }
    }
    Ok(BenchReport::build(sizes, seed, servers))
}

/// CPU before a phase, to be read again after it.
struct Probe {
    start: Instant,
    server_pids: Vec<u32>,
    server_cpu: Option<f64>,
    own_cpu: f64,
    own_threads: Vec<(u32, f64)>,
    threads: usize,
}

impl Probe {
    fn start(server_pids: &[u32], threads: usize) -> Probe {
        Probe {
            start: Instant::now(),
            server_pids: server_pids.to_vec(),
            server_cpu: known(server_pids).and_then(procstat::cpu_seconds_of),
            own_cpu: procstat::cpu_seconds(std::process::id()).unwrap_or(0.0),
            own_threads: procstat::own_thread_cpu_seconds(),
            threads,
        }
    }

    /// The phase record with its CPU figures, the metrics to be added by the caller.
    fn finish(self, name: &str) -> Phase {
        let elapsed_s = self.start.elapsed().as_secs_f64().max(1e-3);
        let server_cpu_s = match (known(&self.server_pids), self.server_cpu) {
            (Some(pids), Some(before)) => procstat::cpu_seconds_of(pids).map(|now| now - before),
            _ => None,
        };
        let tool_cpu_s = procstat::cpu_seconds(std::process::id()).unwrap_or(0.0) - self.own_cpu;
        let busiest = procstat::own_thread_cpu_seconds()
            .iter()
            .map(|(tid, now)| {
                // A thread started during the phase spent all of its CPU in it.
                let before = self
                    .own_threads
                    .iter()
                    .find(|(t, _)| t == tid)
                    .map_or(0.0, |(_, c)| *c);
                now - before
            })
            .fold(0.0, f64::max)
            / elapsed_s;
        let tool_cores = tool_cpu_s / elapsed_s;
        Phase {
            name: name.to_string(),
            elapsed_s,
            asked_rate: None,
            achieved_rate: None,
            server_cpu_s,
            server_rss_bytes: known(&self.server_pids).and_then(procstat::rss_bytes_of),
            tool_cpu_s,
            tool_busiest_thread_cores: busiest,
            tool_saturated: busiest > SATURATED_SHARE
                || tool_cores > SATURATED_SHARE * self.threads.max(1) as f64,
            metrics: Vec::new(),
            report: None,
            skipped: None,
        }
    }
}

/// The pids, when there are any to measure.
fn known(pids: &[u32]) -> Option<&[u32]> {
    (!pids.is_empty()).then_some(pids)
}

/// A plan with nothing in it, for a phase to switch on what it runs.
fn base_plan(s: &Sizes, seed: u64, duration_s: u64) -> Plan {
    Plan {
        duration_s: duration_s.max(1),
        namespaces: s.namespaces.max(1),
        nodes: s.nodes.max(1),
        populate: false,
        pods: 0,
        populate_rate: s.populate_rate,
        clients: s.populate_clients.max(1),
        kubelets: false,
        watch_only: false,
        skip_list: false,
        kubelets_per_connection: s.kubelets_per_connection.max(1),
        controllers: 0,
        informer_mode: "list-watch".into(),
        churn_rate: 0.0,
        churn_max: 0,
        list_clients: 0,
        list_interval_ms: 1000,
        update_rate: 0.0,
        update_clients: s.update_clients.max(1),
        run_id: Some(seed),
        known_pods: 0,
        heartbeat_only: false,
        informer_resource: None,
        pod_padding: 0,
    }
}

/// Runs one scenario plan to its end and returns its report.
async fn scenario(
    c: &Cluster,
    plan: Plan,
    threads: usize,
) -> Result<(Report, Arc<Recorder>), String> {
    let rec = Arc::new(Recorder::new(Duration::from_secs(plan.duration_s)));
    let bound = Duration::from_secs(plan.duration_s) + PHASE_GRACE;
    let outcome = tokio::time::timeout(
        bound,
        scenario::run(
            c.target.clone(),
            plan.clone(),
            rec.clone(),
            c.pids.first().copied(),
        ),
    )
    .await
    .map_err(|_| format!("{}: a phase ran past its bound of {bound:?}", c.name))??;
    let report = Report::build(
        &rec,
        &c.target.server,
        plan,
        outcome.elapsed.as_secs_f64(),
        outcome.server,
        outcome.client,
        threads,
    );
    Ok((report, rec))
}

/// Successful calls of one verb on one resource, over every scope and encoding.
fn ok_count(r: &Report, verb: &str, resource: &str) -> u64 {
    calls(r, verb, resource).map(|o| o.ok).sum()
}

fn all_count(r: &Report, verb: &str, resource: &str) -> u64 {
    calls(r, verb, resource)
        .map(|o| o.ok + o.errors.values().sum::<u64>())
        .sum()
}

fn calls<'a>(
    r: &'a Report,
    verb: &'a str,
    resource: &'a str,
) -> impl Iterator<Item = &'a OpReport> {
    r.ops
        .iter()
        .filter(move |o| o.verb == verb && o.resource == resource)
}

/// The busiest call of a verb on a resource (its latency figures).
fn main_call<'a>(r: &'a Report, verb: &'a str, resource: &'a str) -> Option<&'a OpReport> {
    calls(r, verb, resource).max_by_key(|o| o.ok)
}

fn latency_metrics(p: &mut Phase, what: &str, o: Option<&OpReport>) {
    if let Some(o) = o {
        p.metric(&format!("{what} p50"), "ms", o.latency.p50_ms);
        p.metric(&format!("{what} p99"), "ms", o.latency.p99_ms);
    }
}

async fn populate_phase(
    c: &Cluster,
    s: &Sizes,
    seed: u64,
    pids: &[u32],
    threads: usize,
) -> Result<Phase, String> {
    let pods = s.pods();
    let rss_before = known(pids).and_then(procstat::rss_bytes_of);
    let probe = Probe::start(pids, threads);
    let mut plan = base_plan(s, seed, s.populate_timeout_s);
    plan.populate = true;
    plan.pods = pods;
    plan.pod_padding = c.pod_padding;
    let (r, _) = scenario(c, plan, threads).await?;
    let mut p = probe.finish("populate");
    let creates = ok_count(&r, "POST", "pods") + ok_count(&r, "POST", "nodes");
    let rate = creates as f64 / p.elapsed_s;
    if s.populate_rate > 0.0 {
        p.asked_rate = Some(s.populate_rate);
    }
    p.achieved_rate = Some(rate);
    p.metric("objects created", "", creates as f64);
    p.metric("errors", "", r.totals.errors as f64);
    p.metric("creates/s", "/s", rate);
    latency_metrics(&mut p, "POST pod", main_call(&r, "POST", "pods"));
    if let Some(cpu) = p.server_cpu_s {
        p.metric(
            "server CPU-s per 1,000 creates",
            "s",
            cpu / creates.max(1) as f64 * 1e3,
        );
    }
    if let (Some(before), Some(after)) = (rss_before, p.server_rss_bytes) {
        p.metric(
            "server RSS growth per object",
            "B",
            after.saturating_sub(before) as f64 / creates.max(1) as f64,
        );
    }
    p.report = Some(r);
    Ok(p)
}

async fn list_phase(
    c: &Cluster,
    s: &Sizes,
    _seed: u64,
    pids: &[u32],
    threads: usize,
) -> Result<Phase, String> {
    let probe = Probe::start(pids, threads);
    let bench = listbench::Bench {
        path: "/api/v1/pods".into(),
        count: s.list_count.max(1),
        warmup: 0,
        formats: vec![listbench::Format::Protobuf, listbench::Format::Json],
        etcd_endpoint: None,
        etcd_prefix: String::new(),
        etcdctl: String::new(),
        etcdctl_flags: Vec::new(),
        timeout: Duration::from_secs(s.list_timeout_s.max(1)),
    };
    let lb = listbench::run(&c.target, &bench).await?;
    let mut p = probe.finish("list");
    for series in &lb.lists {
        let f = if series.what.contains("protobuf") {
            "protobuf"
        } else {
            "JSON"
        };
        let items = series.items.max(1) as f64;
        p.metric(&format!("LIST {f} items"), "", series.items as f64);
        p.metric(&format!("LIST {f} median"), "s", series.median_s);
        p.metric(
            &format!("LIST {f} per item"),
            "µs",
            series.median_s / items * 1e6,
        );
        p.metric(&format!("LIST {f} MB/s"), "MB/s", series.mb_per_s);
        p.metric(
            &format!("LIST {f} bytes per item"),
            "B",
            series.bytes as f64 / items,
        );
    }
    if let Some(cpu) = p.server_cpu_s {
        p.metric("server CPU-s, all LISTs", "s", cpu);
    }
    if let Some(rss) = p.server_rss_bytes {
        p.metric(
            "server RSS after the LISTs",
            "MiB",
            rss as f64 / (1 << 20) as f64,
        );
    }
    Ok(p)
}

async fn watch_phase(
    c: &Cluster,
    s: &Sizes,
    seed: u64,
    pids: &[u32],
    threads: usize,
) -> Result<Phase, String> {
    let pods = s.pods();
    let probe = Probe::start(pids, threads);
    let mut plan = base_plan(s, seed, s.watch_duration_s);
    plan.kubelets = true;
    plan.watch_only = true;
    plan.skip_list = true;
    plan.update_rate = c.update_rate.unwrap_or(s.update_rate);
    plan.known_pods = pods;
    let asked = plan.update_rate;
    let (r, rec) = scenario(c, plan, threads).await?;
    let mut p = probe.finish("watch");
    let started_s = rec.updates_started_ms.load(Ordering::Relaxed) as f64 / 1e3;
    // From the first update to the deadline (in-flight ones finish after it).
    let end_s = r.elapsed_s.min(s.watch_duration_s.max(1) as f64);
    let window = (end_s - started_s).max(1e-3);
    let sent = all_count(&r, "PATCH", "pods");
    let acked = ok_count(&r, "PATCH", "pods");
    p.asked_rate = Some(asked);
    p.achieved_rate = Some(sent as f64 / window);
    let d = &r.watch_delivery;
    p.metric("kubelet watches", "", s.nodes as f64);
    p.metric("updates/s", "/s", sent as f64 / window);
    p.metric("updates acknowledged", "", acked as f64);
    p.metric("events delivered", "", d.count as f64);
    p.metric("events missing", "", acked.saturating_sub(d.count) as f64);
    p.metric("delivery p50", "ms", d.p50_ms);
    p.metric("delivery p99", "ms", d.p99_ms);
    p.metric("delivery max", "ms", d.max_ms);
    latency_metrics(&mut p, "PATCH pod", main_call(&r, "PATCH", "pods"));
    if let Some(cpu) = p.server_cpu_s {
        p.metric("server CPU", "cores", cpu / p.elapsed_s);
        p.metric(
            "server CPU-ms per update",
            "ms",
            cpu / sent.max(1) as f64 * 1e3,
        );
    }
    p.report = Some(r);
    Ok(p)
}

async fn leases_phase(
    c: &Cluster,
    s: &Sizes,
    seed: u64,
    pids: &[u32],
    threads: usize,
) -> Result<Phase, String> {
    let probe = Probe::start(pids, threads);
    let mut plan = base_plan(s, seed, s.lease_duration_s);
    plan.nodes = s.lease_nodes.max(1);
    plan.kubelets = true;
    plan.heartbeat_only = true;
    let (r, rec) = scenario(c, plan, threads).await?;
    let mut p = probe.finish("leases");
    let due = rec.lease_renewals_due.load(Ordering::Relaxed)
        + rec.node_status_due.load(Ordering::Relaxed);
    let done = ok_count(&r, "PUT", "leases") + ok_count(&r, "PATCH", "nodes/status");
    let window = r.elapsed_s.max(1e-3);
    p.asked_rate = Some(due as f64 / window);
    p.achieved_rate = Some(done as f64 / window);
    p.metric("kubelets", "", s.lease_nodes as f64);
    p.metric("heartbeats due", "", due as f64);
    p.metric("heartbeats done", "", done as f64);
    p.metric("errors", "", r.totals.errors as f64);
    latency_metrics(&mut p, "PUT lease", main_call(&r, "PUT", "leases"));
    latency_metrics(
        &mut p,
        "PATCH node status",
        main_call(&r, "PATCH", "nodes/status"),
    );
    if let Some(cpu) = p.server_cpu_s {
        p.metric("server CPU", "cores", cpu / p.elapsed_s);
    }
    p.report = Some(r);
    Ok(p)
}

async fn informers_phase(
    c: &Cluster,
    s: &Sizes,
    seed: u64,
    pids: &[u32],
    threads: usize,
) -> Result<Phase, String> {
    let pods = s.pods();
    let probe = Probe::start(pids, threads);
    let mut p = Phase::default();
    for (mode, label) in [("list-watch", "list-watch"), ("watch-list", "watch-list")] {
        let mut plan = base_plan(s, seed, s.informer_duration_s);
        plan.controllers = s.informers.max(1);
        plan.informer_mode = mode.into();
        plan.informer_resource = Some("pods".into());
        let (r, _) = scenario(c, plan, threads).await?;
        let sync = &r.informer_sync;
        p.metric(
            &format!("{label} informers synced"),
            "",
            sync.informers as f64,
        );
        p.metric(&format!("{label} sync p50"), "s", sync.p50_s);
        p.metric(&format!("{label} sync max"), "s", sync.max_s);
        p.metric(
            &format!("{label} sync per pod"),
            "µs",
            sync.max_s / pods.max(1) as f64 * 1e6,
        );
        if mode == "list-watch" {
            latency_metrics(&mut p, "LIST pods page", main_call(&r, "LIST", "pods"));
        }
    }
    let mut done = probe.finish("informers");
    done.metrics = p.metrics;
    if let Some(cpu) = done.server_cpu_s {
        done.metric("server CPU-s", "s", cpu);
    }
    Ok(done)
}

async fn run_cluster(c: Cluster, s: &Sizes, seed: u64) -> Result<ServerRun, String> {
    let threads = s.threads.max(1);
    let sampler = known(&c.pids)
        .map(|pids| Sampler::start_many(pids.to_vec(), Instant::now() + SAMPLER_HORIZON));
    let mut phases = Vec::new();
    let mut pids = c.pids.clone();

    for (name, run) in [
        ("populate", 0),
        ("list", 1),
        ("watch", 2),
        ("leases", 3),
        ("informers", 4),
    ] {
        if !s.has(name) {
            continue;
        }
        let settled_s = settle(&c).await;
        let result = match run {
            0 => populate_phase(&c, s, seed, &pids, threads).await,
            1 => list_phase(&c, s, seed, &pids, threads).await,
            2 => watch_phase(&c, s, seed, &pids, threads).await,
            3 => leases_phase(&c, s, seed, &pids, threads).await,
            _ => informers_phase(&c, s, seed, &pids, threads).await,
        };
        phases.push(match result {
            Ok(mut p) => {
                p.metric("server settled before the phase", "s", settled_s);
                p
            }
            Err(e) => {
                eprintln!("bench: {}: {name} failed: {e}", c.name);
                Phase::skipped(name, &format!("failed: {e}"))
            }
        });
    }

    if s.has("cold-start") {
        match &c.restart_hook {
            None => phases.push(Phase::skipped(
                "cold-start",
                "no --restart-hook for this cluster",
            )),
            Some(hook) => match cold_start(&c, hook, s, threads).await {
                Ok((mut p, new_pid)) => {
                    // The restarted server replaces the first pid; unknown, nothing is measured.
                    match new_pid {
                        Some(new) if !pids.is_empty() => pids[0] = new,
                        _ => pids.clear(),
                    }
                    if let Some(rss) = known(&pids).and_then(procstat::rss_bytes_of) {
                        p.metric(
                            "server RSS when ready",
                            "MiB",
                            rss as f64 / (1 << 20) as f64,
                        );
                    }
                    phases.push(p);
                }
                Err(e) => {
                    eprintln!("bench: {}: cold-start failed: {e}", c.name);
                    pids.clear();
                    phases.push(Phase::skipped("cold-start", &format!("failed: {e}")));
                }
            },
        }
    }

    let samples = match sampler {
        Some(s) => s.finish().await,
        None => Vec::new(),
    };
    Ok(ServerRun {
        name: c.name.clone(),
        server: c.target.server.clone(),
        pids,
        phases,
        server_samples: samples,
    })
}

/// Waits until the server answers promptly again; returns the seconds waited.
async fn settle(c: &Cluster) -> f64 {
    let start = Instant::now();
    let Ok(api) = Api::new(&c.target, Arc::new(Recorder::new(SETTLE_TIMEOUT))) else {
        return 0.0;
    };
    while start.elapsed() < SETTLE_TIMEOUT {
        let sent = Instant::now();
        let ok = api
            .request(reqwest::Method::GET, "/api/v1/namespaces/default")
            .timeout(SETTLE_TIMEOUT)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok && sent.elapsed() < SETTLED_LATENCY {
            break;
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
    start.elapsed().as_secs_f64()
}

/// Runs the restart hook and times the server's way back to /readyz from the hook's start.
async fn cold_start(
    c: &Cluster,
    hook: &str,
    s: &Sizes,
    threads: usize,
) -> Result<(Phase, Option<u32>), String> {
    let timeout = Duration::from_secs(s.cold_start_timeout_s.max(1));
    let start = Instant::now();
    let probe = Probe::start(&[], threads);
    eprintln!("bench: {}: restarting with `{hook}`", c.name);
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(hook)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, child)
        .await
        .map_err(|_| format!("{}: the restart hook ran past {timeout:?}", c.name))?
        .map_err(|e| format!("{}: restart hook: {e}", c.name))?;
    if !out.status.success() {
        return Err(format!(
            "{}: the restart hook failed: {}",
            c.name, out.status
        ));
    }
    let hook_s = start.elapsed().as_secs_f64();
    let new_pid: Option<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok());
    let api = Api::new(&c.target, Arc::new(Recorder::new(timeout)))?;
    let ready_s = loop {
        let ok = api
            .request(reqwest::Method::GET, "/readyz")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break start.elapsed().as_secs_f64();
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{}: not ready {timeout:?} after the restart hook",
                c.name
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    };
    // The first page of pods, as a client's first LIST after the restart: /readyz may come
    // before the server can answer from its cache.
    let page = format!("/api/v1/pods?limit={}", crate::watch::LIST_PAGE);
    let listed_s = loop {
        let ok = api
            .request(reqwest::Method::GET, &page)
            .header("Accept", "application/vnd.kubernetes.protobuf")
            .timeout(timeout)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break start.elapsed().as_secs_f64();
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{}: no pod LIST {timeout:?} after the restart hook",
                c.name
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    };
    let mut p = probe.finish("cold-start");
    p.metric("restart hook", "s", hook_s);
    p.metric("hook start → /readyz", "s", ready_s);
    p.metric("hook start → first page of pods", "s", listed_s);
    if let Some(rss) = p.server_rss_bytes {
        p.metric(
            "server RSS when ready",
            "MiB",
            rss as f64 / (1 << 20) as f64,
        );
    }
    Ok((p, new_pid))
}
