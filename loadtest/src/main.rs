//! kapi-load: drives any Kubernetes API server (kapi or upstream) from a kubeconfig with the
//! traffic of a large cluster — kubelets, controllers, churn, lists — and reports latency per
//! call, watch delivery, informer sync and the server's CPU and memory.

mod bench;
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
    /// Runs a suite against several clusters in turn, with one side-by-side report.
    Bench(Box<BenchArgs>),
    /// Prints two reports (of `run` or of `bench`) side by side with ratios (B/A).
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

#[derive(Args)]
struct BenchArgs {
    /// A cluster as NAME=KUBECONFIG (or NAME=URL of a bare server); repeatable, run in order,
    /// and the first is the base of the ratio columns.
    #[arg(long = "cluster", required = true)]
    clusters: Vec<String>,
    /// NAME=CONTEXT in that cluster's kubeconfig (default: its current-context).
    #[arg(long = "context")]
    contexts: Vec<String>,
    /// NAME=PID[,PID…]: that server's process on this machine, then any it stores in (its
    /// etcd): CPU and RSS are measured as their sum.
    #[arg(long = "server-pid")]
    server_pids: Vec<String>,
    /// NAME=COMMAND that restarts that server (run by `sh -c`; its last output line, if a
    /// number, is the new pid): the cold-start phase times it to /readyz. Skipped without one.
    #[arg(long = "restart-hook")]
    restart_hooks: Vec<String>,
    /// The suite of sizes: default (a 2-core machine, under 20 minutes for two servers) or
    /// smoke (seconds); every size below overrides it.
    #[arg(long, default_value = "default")]
    suite: String,
    /// Part of every pod name, the same for every cluster (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Phases to run, comma-separated: populate, list, watch, leases, informers, cold-start.
    #[arg(long, value_delimiter = ',')]
    phases: Option<Vec<String>>,
    #[arg(long)]
    namespaces: Option<usize>,
    /// Nodes: populate binds pods to them and the watch phase has one kubelet watch per node.
    #[arg(long)]
    nodes: Option<usize>,
    #[arg(long)]
    pods_per_node: Option<usize>,
    /// Populate's creations per second (0: as fast as its clients go).
    #[arg(long, value_parser = parse_rate)]
    populate_rate: Option<f64>,
    #[arg(long)]
    populate_clients: Option<usize>,
    #[arg(long, value_parser = parse_duration)]
    populate_timeout: Option<Duration>,
    /// Timed full LISTs per encoding (the median is reported).
    #[arg(long)]
    list_count: Option<usize>,
    #[arg(long, value_parser = parse_duration)]
    list_timeout: Option<Duration>,
    /// Pod updates per second in the watch phase.
    #[arg(long, value_parser = parse_rate)]
    update_rate: Option<f64>,
    #[arg(long)]
    update_clients: Option<usize>,
    #[arg(long, value_parser = parse_duration)]
    watch_duration: Option<Duration>,
    #[arg(long)]
    kubelets_per_connection: Option<usize>,
    /// Kubelets renewing their Lease every 10 s and patching Node status every minute.
    #[arg(long)]
    lease_nodes: Option<usize>,
    #[arg(long, value_parser = parse_duration)]
    lease_duration: Option<Duration>,
    /// Pod informers per mode (list-watch, then watch-list).
    #[arg(long)]
    informers: Option<usize>,
    #[arg(long, value_parser = parse_duration)]
    informer_duration: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    cold_start_timeout: Option<Duration>,
    /// kapi-load's worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the JSON report goes; the Markdown and SVG charts go beside it.
    #[arg(long, default_value = "bench.json")]
    out: PathBuf,
    /// Test knob: NAME=BYTES of padding annotation on that cluster's pods (a server that stores
    /// bigger objects), to check the size warning.
    #[arg(long = "pod-padding", hide = true)]
    pod_padding: Vec<String>,
    /// Test knob: NAME=RATE, that cluster's own update rate (a rate it cannot reach).
    #[arg(long = "cluster-update-rate", hide = true)]
    cluster_update_rate: Vec<String>,
}

/// The value given for `name` in a list of NAME=VALUE flags.
fn named<'a>(flags: &'a [String], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .filter_map(|f| f.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn check_names(flags: &[String], names: &[&str], what: &str) -> Result<(), String> {
    for f in flags {
        match f.split_once('=') {
            Some((n, _)) if names.contains(&n) => {}
            _ => {
                return Err(format!(
                    "{what} {f}: expected NAME=VALUE for a --cluster NAME"
                ));
            }
        }
    }
    Ok(())
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
        run_id: None,
        known_pods: 0,
        heartbeat_only: false,
        informer_resource: None,
        pod_padding: 0,
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
        Command::Bench(b) => bench(*b),
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

fn bench(b: BenchArgs) -> Result<(), String> {
    let mut sizes = bench::Sizes::suite(&b.suite)?;
    let secs = |d: Option<Duration>, v: &mut u64| {
        if let Some(d) = d {
            *v = d.as_secs().max(1);
        }
    };
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = b.$field { sizes.$field = v; })* };
    }
    set!(
        namespaces,
        nodes,
        pods_per_node,
        populate_rate,
        populate_clients,
        list_count,
        update_rate,
        update_clients,
        kubelets_per_connection,
        lease_nodes,
        informers,
        threads
    );
    secs(b.populate_timeout, &mut sizes.populate_timeout_s);
    secs(b.list_timeout, &mut sizes.list_timeout_s);
    secs(b.watch_duration, &mut sizes.watch_duration_s);
    secs(b.lease_duration, &mut sizes.lease_duration_s);
    secs(b.informer_duration, &mut sizes.informer_duration_s);
    secs(b.cold_start_timeout, &mut sizes.cold_start_timeout_s);
    if let Some(p) = &b.phases {
        if let Some(bad) = p.iter().find(|p| !bench::PHASES.contains(&p.as_str())) {
            return Err(format!(
                "unknown phase {bad}; known: {}",
                bench::PHASES.join(", ")
            ));
        }
        sizes.phases = p.clone();
    }
    let names: Vec<&str> = b
        .clusters
        .iter()
        .map(|c| c.split_once('=').map(|(n, _)| n).unwrap_or(""))
        .collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err("--cluster takes NAME=KUBECONFIG (or NAME=URL)".into());
    }
    if (1..names.len()).any(|i| names[..i].contains(&names[i])) {
        return Err("two clusters have the same name".into());
    }
    check_names(&b.contexts, &names, "--context")?;
    check_names(&b.server_pids, &names, "--server-pid")?;
    check_names(&b.restart_hooks, &names, "--restart-hook")?;
    check_names(&b.pod_padding, &names, "--pod-padding")?;
    check_names(&b.cluster_update_rate, &names, "--cluster-update-rate")?;
    let mut clusters = Vec::new();
    for (c, name) in b.clusters.iter().zip(&names) {
        let place = &c[name.len() + 1..];
        let target = if place.starts_with("http://") || place.starts_with("https://") {
            client::Target::from_server(place)
        } else {
            client::Target::from_kubeconfig(place, named(&b.contexts, name))?
        };
        let pids = named(&b.server_pids, name)
            .map(|p| {
                p.split(',')
                    .map(|x| x.trim().parse::<u32>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| format!("--server-pid {name}={p}: not a list of pids"))
            })
            .transpose()?
            .unwrap_or_default();
        let pod_padding = named(&b.pod_padding, name)
            .map(|p| {
                p.parse::<usize>()
                    .map_err(|_| format!("--pod-padding {name}={p}"))
            })
            .transpose()?
            .unwrap_or(0)
            .min(bench::MAX_POD_PADDING);
        clusters.push(bench::Cluster {
            name: name.to_string(),
            target,
            pids,
            restart_hook: named(&b.restart_hooks, name).map(str::to_string),
            pod_padding,
            update_rate: named(&b.cluster_update_rate, name)
                .map(parse_rate)
                .transpose()?,
        });
    }
    let seed = b.seed.unwrap_or_else(scenario::fresh_run_id);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(sizes.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(bench::run(clusters, sizes, seed, &b.out))?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let files = report.write(&b.out)?;
    let stem = b.out.with_extension("");
    print!(
        "{}",
        report.markdown(
            &stem
                .file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        )
    );
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

fn compare(a: &std::path::Path, b: &std::path::Path) -> Result<(), String> {
    let read = |p: &std::path::Path| -> Result<serde_json::Value, String> {
        let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&t).map_err(|e| format!("{}: not JSON: {e}", p.display()))
    };
    let (va, vb) = (read(a)?, read(b)?);
    let is_bench = |v: &serde_json::Value| v.get("servers").is_some();
    let table = match (is_bench(&va), is_bench(&vb)) {
        (true, true) => {
            let parse = |v, p: &std::path::Path| -> Result<bench::BenchReport, String> {
                serde_json::from_value(v)
                    .map_err(|e| format!("{}: not a kapi-load bench report: {e}", p.display()))
            };
            bench::report::compare(&parse(va, a)?, &parse(vb, b)?)
        }
        (false, false) => {
            let parse = |v, p: &std::path::Path| -> Result<report::Report, String> {
                serde_json::from_value(v)
                    .map_err(|e| format!("{}: not a kapi-load report: {e}", p.display()))
            };
            report::compare(&parse(va, a)?, &parse(vb, b)?)
        }
        _ => return Err("compare takes two run reports or two bench reports".into()),
    };
    print!("{table}");
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
