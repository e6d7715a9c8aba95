//! kapi-load: drives any Kubernetes API server (kapi or upstream) from a kubeconfig with the
//! traffic of a large cluster — kubelets, controllers, churn, lists — and reports latency per
//! call, watch delivery, informer sync and the server's CPU and memory.

mod client;
mod listbench;
mod metrics;
mod null_server;
mod objects;
mod probe;
mod procstat;
mod report;
mod scenario;
mod svg;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::client::Target;
use crate::metrics::Recorder;
use crate::scenario::Plan;

#[derive(Parser)]
#[command(
    name = "kapi-load",
    version,
    about = "A large-cluster load generator for any Kubernetes API server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the scenarios named by --scenario (repeatable), composed in one run.
    Run(RunArgs),
    /// Creates namespaces, nodes and pods at a target rate.
    Populate(RunArgs),
    /// Simulated kubelets: register, renew leases, watch own pods, mark them Running.
    Kubelets(RunArgs),
    /// Informers (list+watch and watch-list) over pods, nodes, leases and namespaces.
    Controllers(RunArgs),
    /// Create/update/delete pods at a rate.
    Churn(RunArgs),
    /// PATCH existing pods (bound to --nodes nodes) at --update-rate per second.
    Updates(RunArgs),
    /// Concurrent LISTs: JSON and protobuf, full and paginated.
    List(RunArgs),
    /// A 5,000-node cluster scaled to this machine: populate + kubelets + controllers + churn + list.
    Density(RunArgs),
    /// Measures kapi-load's own ceiling against a built-in null server (or just serves one).
    NullServer(NullArgs),
    /// Times N sequential full LISTs (protobuf and JSON), optionally against `etcdctl get --prefix`.
    Listbench(ListBenchArgs),
    /// Prints two reports side by side with ratios (B/A).
    Compare { a: PathBuf, b: PathBuf },
    /// Heavy strategic merge patches beside /livez probes: does one slow request stall others?
    Stall(StallArgs),
    /// GETs, LISTs and PATCHes at a rate and 10× it, beside /livez probes: 429s, timeouts, RSS.
    Overload(OverloadArgs),
}

#[derive(Args)]
struct StallArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Clients patching their own wide pod back to back.
    #[arg(long, default_value_t = 3)]
    patchers: usize,
    /// Containers of each wide pod (and items of each patch).
    #[arg(long, default_value_t = 10_000)]
    containers: usize,
    /// Length of each phase (baseline, then with the patchers).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    phase: Duration,
    /// Connections probing /livez (the server spreads connections over its cores).
    #[arg(long, default_value_t = 4)]
    probers: usize,
    #[arg(long, default_value_t = 20)]
    probe_interval_ms: u64,
    /// Where to write the JSON report (the Markdown is printed).
    #[arg(long, default_value = "stall.json")]
    out: PathBuf,
}

#[derive(Args)]
struct OverloadArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Clients, each on its own connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Requests per second at multiplier 1, over all clients ("500" or "500/s").
    #[arg(long, default_value = "500", value_parser = parse_rate)]
    rate: f64,
    /// One phase per multiplier of --rate, in order.
    #[arg(long, default_value = "1,10", value_delimiter = ',')]
    multipliers: Vec<f64>,
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    phase: Duration,
    /// Requests one client may have outstanding; more due are counted as skipped.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// ConfigMaps the GETs and PATCHes spread over.
    #[arg(long, default_value_t = 20)]
    objects: usize,
    #[arg(long, default_value_t = 2)]
    probers: usize,
    #[arg(long, default_value_t = 50)]
    probe_interval_ms: u64,
    /// A request unanswered after this long counts as a timeout (status 0).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// The server's process id on this machine: sample its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value = "overload.json")]
    out: PathBuf,
    /// Tokio worker threads for the client (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Which server, with which credentials.
#[derive(Args, Clone)]
struct ClusterArgs {
    /// Kubeconfig to read the server and credentials from (default: $KUBECONFIG, ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<String>,
    /// Context in the kubeconfig (default: current-context).
    #[arg(long)]
    context: Option<String>,
    /// A bare server URL instead of a kubeconfig (no credentials; http:// uses h2c).
    #[arg(long)]
    server: Option<String>,
}

impl ClusterArgs {
    fn target(&self) -> Result<Target, String> {
        target_of(&self.server, &self.kubeconfig, &self.context)
    }
}

#[derive(Args)]
struct ListBenchArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The collection to LIST, whole (no limit).
    #[arg(long, default_value = "/api/v1/pods")]
    path: String,
    /// Timed LISTs per format (and etcdctl runs), one after the other.
    #[arg(long, default_value_t = 5)]
    count: usize,
    /// Untimed LISTs per format (and etcdctl runs) before the timed ones.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Formats, comma-separated: protobuf, json.
    #[arg(long, default_value = "protobuf,json", value_delimiter = ',')]
    formats: Vec<String>,
    /// etcd endpoint (e.g. http://127.0.0.1:2379): also time `etcdctl get --prefix` as the baseline.
    #[arg(long)]
    etcdctl_baseline: Option<String>,
    /// The collection's etcd key prefix for the baseline.
    #[arg(long, default_value = "/registry/pods/")]
    etcd_prefix: String,
    /// The etcdctl binary.
    #[arg(long, default_value = "etcdctl")]
    etcdctl: String,
    /// Extra etcdctl flag, repeatable (e.g. --etcdctl-flag=--cacert=ca.crt).
    #[arg(long = "etcdctl-flag", allow_hyphen_values = true)]
    etcdctl_flags: Vec<String>,
    /// One LIST or etcdctl run may take this long.
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    timeout: Duration,
    /// Also write the results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Scenarios for `run`: populate, kubelets, controllers, churn, list, updates.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// How long the run lasts; every scenario stops at this deadline.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long)]
    namespaces: Option<usize>,
    #[arg(long)]
    nodes: Option<usize>,
    /// Pods per node that populate creates (pods = nodes × pods-per-node).
    #[arg(long)]
    pods_per_node: Option<usize>,
    /// Populate's creation rate, per second, over all its clients.
    #[arg(long)]
    rate: Option<f64>,
    /// Populate's clients, each with its own connection.
    #[arg(long)]
    clients: Option<usize>,
    /// Informers for `controllers`.
    #[arg(long)]
    controllers: Option<usize>,
    /// Informer mode: list-watch, watch-list or both (alternating).
    #[arg(long)]
    informer_mode: Option<String>,
    /// Churn operations per second, and the most churn operations in the run.
    #[arg(long)]
    churn_rate: Option<f64>,
    #[arg(long)]
    churn_max: Option<usize>,
    /// Kubelets only LIST+WATCH their pods (no Node, Lease, or status writes).
    #[arg(long)]
    watch_only: bool,
    /// Kubelets skip their first LIST and watch from the resourceVersion of one shared LIST
    /// (limit=1): kubelets that listed long ago, without the start's LIST storm.
    #[arg(long)]
    skip_list: bool,
    /// Kubelets multiplexed on one HTTP/2 connection (real kubelets have one each).
    #[arg(long, default_value_t = 1)]
    kubelets_per_connection: usize,
    /// Pod updates per second ("1000" or "1000/s"); adds the updates scenario to any command.
    #[arg(long, value_parser = parse_rate)]
    update_rate: Option<f64>,
    /// Connections the updates are sent over (8 in flight on each).
    #[arg(long, default_value_t = 4)]
    update_clients: usize,
    /// LIST clients, and each one's interval between lists in milliseconds.
    #[arg(long)]
    list_clients: Option<usize>,
    #[arg(long)]
    list_interval_ms: Option<u64>,
    /// The server's process id on this machine: sample its CPU and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Where to write the JSON report; the Markdown and SVGs go beside it.
    #[arg(long, default_value = "report.json")]
    out: PathBuf,
    /// Tokio worker threads for the client (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct NullArgs {
    /// Serve on this address (e.g. 127.0.0.1:8080) for --duration instead of benchmarking.
    #[arg(long)]
    listen: Option<String>,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s");
    n.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| format!("bad rate {s}: a number per second, e.g. 1000 or 1000/s"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.trim().len()),
    );
    let n: f64 = n.parse().map_err(|_| format!("bad duration {s}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Builds the plan: the preset's defaults for the chosen scenarios, then the flags over them.
fn plan(a: &RunArgs, scenarios: &[&str], density: bool) -> Plan {
    let has = |s: &str| scenarios.contains(&s);
    // density: 5,000 nodes × 30 pods scaled 1:100 to 50 nodes × 30 pods, with the same shape
    // of kubelets, informers, churn and lists as a large cluster's control plane sees.
    let nodes = a.nodes.unwrap_or(if density { 50 } else { 10 });
    let ppn = a.pods_per_node.unwrap_or(if density { 30 } else { 10 });
    Plan {
        duration_s: a.duration.as_secs().max(1),
        namespaces: a.namespaces.unwrap_or(if density { 10 } else { 3 }).max(1),
        nodes,
        populate: has("populate"),
        pods: if has("populate") { nodes * ppn } else { 0 },
        populate_rate: a.rate.unwrap_or(if density { 100.0 } else { 50.0 }),
        clients: a.clients.unwrap_or(if density { 10 } else { 4 }),
        kubelets: has("kubelets"),
        watch_only: a.watch_only,
        skip_list: a.skip_list,
        kubelets_per_connection: a.kubelets_per_connection.max(1),
        controllers: if has("controllers") {
            a.controllers.unwrap_or(10)
        } else {
            0
        },
        informer_mode: a.informer_mode.clone().unwrap_or_else(|| "both".into()),
        churn_rate: if has("churn") {
            a.churn_rate.unwrap_or(10.0)
        } else {
            0.0
        },
        churn_max: a.churn_max.unwrap_or(usize::MAX / 2),
        list_clients: if has("list") {
            a.list_clients.unwrap_or(2)
        } else {
            0
        },
        list_interval_ms: a.list_interval_ms.unwrap_or(1000),
        update_rate: if has("updates") || a.update_rate.is_some() {
            a.update_rate.unwrap_or(100.0)
        } else {
            0.0
        },
        update_clients: a.update_clients.max(1),
    }
}

fn target_of(
    server: &Option<String>,
    kubeconfig: &Option<String>,
    context: &Option<String>,
) -> Result<Target, String> {
    if let Some(s) = server {
        return Ok(Target::from_server(s));
    }
    let path = kubeconfig
        .clone()
        .or_else(|| {
            std::env::var("KUBECONFIG")
                .ok()
                .and_then(|k| k.split(':').next().map(str::to_string))
        })
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| format!("{h}/.kube/config"))
        })
        .ok_or("no kubeconfig: pass --kubeconfig or --server")?;
    Target::from_kubeconfig(&path, context.as_deref())
}

fn run(a: RunArgs, scenarios: Vec<String>, density: bool) -> Result<(), String> {
    const KNOWN: [&str; 6] = [
        "populate",
        "kubelets",
        "controllers",
        "churn",
        "list",
        "updates",
    ];
    let names: Vec<&str> = scenarios.iter().map(String::as_str).collect();
    if let Some(bad) = names.iter().find(|s| !KNOWN.contains(s)) {
        return Err(format!(
            "unknown scenario {bad}; known: {}",
            KNOWN.join(", ")
        ));
    }
    if names.is_empty() {
        return Err(
            "no scenario: pass --scenario (populate, kubelets, controllers, churn, list, updates)"
                .into(),
        );
    }
    let plan = plan(&a, &names, density);
    let target = a.cluster.target()?;
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rec = Arc::new(Recorder::new(Duration::from_secs(plan.duration_s)));
    let server = target.server.clone();
    eprintln!(
        "kapi-load: {} against {server} for {} s",
        names.join("+"),
        plan.duration_s
    );
    let outcome = rt.block_on(scenario::run(
        target,
        plan.clone(),
        rec.clone(),
        a.server_pid,
    ))?;
    let report = report::Report::build(
        &rec,
        &server,
        plan,
        outcome.elapsed.as_secs_f64(),
        outcome.server,
        outcome.client,
        threads,
    );
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let files = report.write(&a.out)?;
    print!("{}", report.markdown());
    eprintln!(
        "wrote {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn main() {
    // Both reqwest and kapi-load's TLS use rustls with ring; install it once, first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => {
            let s = a.scenarios.clone();
            run(a, s, false)
        }
        Command::Populate(a) => run(a, vec!["populate".into()], false),
        Command::Kubelets(a) => run(a, vec!["kubelets".into()], false),
        Command::Controllers(a) => run(a, vec!["controllers".into()], false),
        Command::Churn(a) => run(a, vec!["churn".into()], false),
        Command::Updates(a) => run(a, vec!["updates".into()], false),
        Command::List(a) => run(a, vec!["list".into()], false),
        Command::Density(a) => {
            let all = ["populate", "kubelets", "controllers", "churn", "list"]
                .map(String::from)
                .to_vec();
            run(a, all, true)
        }
        Command::NullServer(n) => null(n),
        Command::Listbench(l) => listbench(l),
        Command::Compare { a, b } => compare(&a, &b),
        Command::Stall(s) => stall(s),
        Command::Overload(o) => overload(o),
    };
    if let Err(e) = result {
        eprintln!("kapi-load: {e}");
        std::process::exit(1);
    }
}

fn null(n: NullArgs) -> Result<(), String> {
    if let Some(addr) = n.listen {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        return rt.block_on(async move {
            let l = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            eprintln!(
                "null server on http://{} (h2c) for {:?}",
                l.local_addr().map_err(|e| e.to_string())?,
                n.duration
            );
            null_server::serve(l, Instant::now() + n.duration).await;
            Ok(())
        });
    }
    let (rps, eps) = null_server::bench(null_server::BENCH_PHASE)?;
    println!("kapi-load ceiling on one core: {rps:.0} requests/s, {eps:.0} watch events/s");
    println!(
        "(built-in constants: {:.0} requests/s, {:.0} events/s per core)",
        null_server::CEILING_REQUESTS_PER_CORE,
        null_server::CEILING_EVENTS_PER_CORE
    );
    Ok(())
}

fn listbench(l: ListBenchArgs) -> Result<(), String> {
    let target = l.cluster.target()?;
    let formats = l
        .formats
        .iter()
        .map(|f| listbench::Format::parse(f.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let bench = listbench::Bench {
        path: l.path,
        count: l.count.max(1),
        warmup: l.warmup,
        formats,
        etcd_endpoint: l.etcdctl_baseline,
        etcd_prefix: l.etcd_prefix,
        etcdctl: l.etcdctl,
        etcdctl_flags: l.etcdctl_flags,
        timeout: l.timeout,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(listbench::run(&target, &bench))?;
    if let Some(out) = &l.out {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    print!("{}", report.markdown());
    Ok(())
}

fn compare(a: &std::path::Path, b: &std::path::Path) -> Result<(), String> {
    let read = |p: &std::path::Path| -> Result<report::Report, String> {
        let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&t)
            .map_err(|e| format!("{}: not a kapi-load report: {e}", p.display()))
    };
    print!("{}", report::compare(&read(a)?, &read(b)?));
    Ok(())
}

/// Runs a scenario with its own report on a multi-thread runtime; writes the JSON, prints the
/// Markdown.
fn standalone<R: serde::Serialize>(
    threads: Option<usize>,
    out: &std::path::Path,
    fut: impl std::future::Future<Output = Result<R, String>>,
    markdown: impl Fn(&R) -> String,
) -> Result<(), String> {
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(fut)?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
    print!("{}", markdown(&report));
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn stall(a: StallArgs) -> Result<(), String> {
    let target = a.cluster.target()?;
    let plan = scenario::stall::Plan {
        patchers: a.patchers,
        containers: a.containers.max(1),
        phase_s: a.phase.as_secs_f64(),
        probers: a.probers.max(1),
        probe_interval_ms: a.probe_interval_ms,
    };
    standalone(
        None,
        &a.out,
        scenario::stall::run(target, plan),
        scenario::stall::Report::markdown,
    )
}

fn overload(a: OverloadArgs) -> Result<(), String> {
    let target = a.cluster.target()?;
    let plan = scenario::overload::Plan {
        clients: a.clients.max(1),
        rate: a.rate,
        multipliers: a.multipliers.clone(),
        phase_s: a.phase.as_secs_f64(),
        in_flight: a.in_flight.max(1),
        objects: a.objects.max(1),
        probers: a.probers.max(1),
        probe_interval_ms: a.probe_interval_ms,
        request_timeout_s: a.request_timeout.as_secs_f64(),
    };
    standalone(
        a.threads,
        &a.out,
        scenario::overload::run(target, plan, a.server_pid),
        scenario::overload::Report::markdown,
    )
}
