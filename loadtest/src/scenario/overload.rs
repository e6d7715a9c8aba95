//! The overload scenario: `--clients` clients, each on its own connection, send a mix of
//! GETs, LISTs and PATCHes of ConfigMaps open-loop at `--rate` × each of `--multipliers`
//! (one phase each, `--phase` long), far beyond what the server serves at the high end, while
//! `--probers` connections GET `/livez`. Each client has at most `--in-flight` requests
//! outstanding: a request due while it is full is counted as skipped, so memory and sockets
//! stay bounded however slow the server gets. A 429 with `Retry-After` pauses that client for
//! the time asked (counted as deferred). Per phase: status counts (0 = timeout or no
//! answer), 429s with and without Retry-After, latency of answered calls, /livez p50/p99 and
//! the server's RSS (with `--server-pid`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::json;

use crate::client::Target;
use crate::probe::{self, Latencies, Summary};
use crate::procstat::Sampler;

/// Where the ConfigMaps live.
const NAMESPACE: &str = "kapi-load-overload";

/// The longest Retry-After a client honours (a larger one is clamped: the phase is bounded).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub clients: usize,
    /// Requests per second at multiplier 1, over all clients.
    pub rate: f64,
    pub multipliers: Vec<f64>,
    pub phase_s: f64,
    pub in_flight: usize,
    /// ConfigMaps the GETs and PATCHes spread over.
    pub objects: usize,
    pub probers: usize,
    pub probe_interval_ms: u64,
    pub request_timeout_s: f64,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct PhaseReport {
    pub multiplier: f64,
    pub offered_per_s: f64,
    /// Requests sent, by status (0 = timed out or no answer).
    pub statuses: BTreeMap<u16, usize>,
    pub answered_per_s: f64,
    pub too_many_with_retry_after: usize,
    pub too_many_without_retry_after: usize,
    /// Requests due while their client waited out a Retry-After.
    pub deferred_by_retry_after: usize,
    /// Requests due while their client had `in_flight` outstanding.
    pub skipped_client_full: usize,
    /// Latency of 2xx answers.
    pub ok: Summary,
    pub health: Summary,
    pub rss_start_mib: f64,
    pub rss_max_mib: f64,
    pub rss_end_mib: f64,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub server: String,
    pub plan: Plan,
    pub phases: Vec<PhaseReport>,
    /// (seconds since the start, RSS MiB), once a second, with --server-pid.
    pub rss_mib: Vec<(f64, f64)>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let p = &self.plan;
        let mut s = format!(
            "Server `{}`: {} clients (≤ {} in flight each), GET/LIST/PATCH of {} ConfigMaps at {} /s × {:?}, {:.0} s per phase; {} probers of /livez every {} ms.\n\n",
            self.server,
            p.clients,
            p.in_flight,
            p.objects,
            p.rate,
            p.multipliers,
            p.phase_s,
            p.probers,
            p.probe_interval_ms
        );
        s += "| × | offered/s | answered/s | 2xx | 429 (Retry-After / none) | 5xx | timeouts | other | deferred | skipped | ok p50 ms | ok p99 ms | /livez p50 ms | /livez p99 ms | /livez max ms | RSS start→max→end MiB |\n";
        s += "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
        for ph in &self.phases {
            let count = |f: &dyn Fn(u16) -> bool| -> usize {
                ph.statuses
                    .iter()
                    .filter(|(k, _)| f(**k))
                    .map(|(_, v)| v)
                    .sum()
            };
            s += &format!(
                "| {} | {:.0} | {:.0} | {} | {} / {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0}→{:.0}→{:.0} |\n",
                ph.multiplier,
                ph.offered_per_s,
                ph.answered_per_s,
                count(&|c| (200..300).contains(&c)),
                ph.too_many_with_retry_after,
                ph.too_many_without_retry_after,
                count(&|c| c >= 500),
                count(&|c| c == 0),
                count(&|c| c != 0 && c != 429 && !(200..300).contains(&c) && c < 500),
                ph.deferred_by_retry_after,
                ph.skipped_client_full,
                ph.ok.p50_ms,
                ph.ok.p99_ms,
                ph.health.p50_ms,
                ph.health.p99_ms,
                ph.health.max_ms,
                ph.rss_start_mib,
                ph.rss_max_mib,
                ph.rss_end_mib
            );
        }
        s
    }
}

/// What one client saw in a phase.
#[derive(Default)]
struct ClientStats {
    statuses: BTreeMap<u16, usize>,
    too_many_with_retry_after: usize,
    too_many_without_retry_after: usize,
    deferred: usize,
    skipped: usize,
    ok: Latencies,
}

struct Answer {
    status: u16,
    took: Duration,
    retry_after: Option<Duration>,
}

async fn one(target: &Target, http: &reqwest::Client, n: usize, objects: usize) -> Answer {
    let name = format!("kapi-load-cm-{}", n % objects.max(1));
    let base = format!("{}/api/v1/namespaces/{NAMESPACE}/configmaps", target.server);
    let r = match n % 10 {
        0..=3 => http.get(format!("{base}/{name}")),
        4..=6 => http.get(&base),
        _ => http
            .patch(format!("{base}/{name}"))
            .header("Content-Type", "application/merge-patch+json")
            .body(json!({"metadata": {"annotations": {"kapi-load/n": n.to_string()}}}).to_string()),
    };
    let start = Instant::now();
    let (status, retry_after) = match target
        .authorize(r.header("Accept", "application/json"))
        .send()
        .await
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            match resp.bytes().await {
                Ok(_) => (status, retry_after),
                Err(_) => (0, None),
            }
        }
        Err(_) => (0, None),
    };
    Answer {
        status,
        took: start.elapsed(),
        retry_after,
    }
}

/// One open-loop client: a request every `interval`, at most `in_flight` outstanding.
async fn client(
    target: Target,
    plan: Plan,
    id: usize,
    interval: Duration,
    deadline: Instant,
) -> ClientStats {
    let mut st = ClientStats::default();
    let Ok(http) = target.bulk_client(Duration::from_secs_f64(plan.request_timeout_s)) else {
        return st;
    };
    let mut inflight = FuturesUnordered::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut paused_until: Option<Instant> = None;
    let mut n = id * 7919;
    loop {
        let sending = Instant::now() < deadline;
        tokio::select! {
            _ = tick.tick(), if sending => {
                if paused_until.is_some_and(|t| Instant::now() < t) {
                    st.deferred += 1;
                } else if inflight.len() >= plan.in_flight {
                    st.skipped += 1;
                } else {
                    let (t, h) = (&target, &http);
                    inflight.push(one(t, h, n, plan.objects));
                    n += 1;
                }
            }
            Some(a) = inflight.next(), if !inflight.is_empty() => {
                *st.statuses.entry(a.status).or_insert(0) += 1;
                if (200..300).contains(&a.status) {
                    st.ok.record(a.took);
                } else if a.status == 429 {
                    match a.retry_after {
                        Some(ra) => {
                            st.too_many_with_retry_after += 1;
                            paused_until = Some(Instant::now() + ra);
                        }
                        None => st.too_many_without_retry_after += 1,
                    }
                }
            }
            else => break,
        }
    }
    st
}

async fn setup(target: &Target, plan: &Plan) -> Result<(), String> {
    let http = target.client()?;
    let send = |path: String, body: serde_json::Value| {
        let r = target
            .authorize(http.post(format!("{}{path}", target.server)))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        async move { r.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    let st = send(
        "/api/v1/namespaces".into(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )
    .await;
    if !(st == 201 || st == 409) {
        return Err(format!("creating namespace {NAMESPACE}: status {st}"));
    }
    for i in 0..plan.objects {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("kapi-load-cm-{i}")}, "data": {"k": "v".repeat(512)}});
        let st = send(format!("/api/v1/namespaces/{NAMESPACE}/configmaps"), cm).await;
        if !(st == 201 || st == 409) {
            return Err(format!("creating ConfigMap {i}: status {st}"));
        }
    }
    Ok(())
}

pub async fn run(target: Target, plan: Plan, server_pid: Option<u32>) -> Result<Report, String> {
    setup(&target, &plan).await?;
    let phase = Duration::from_secs_f64(plan.phase_s);
    let start = Instant::now();
    // Each phase ends by its deadline plus at most one request timeout.
    let whole =
        (phase + Duration::from_secs_f64(plan.request_timeout_s)) * plan.multipliers.len() as u32;
    let sampler = server_pid.map(|pid| Sampler::start(pid, start + whole));
    let mut phases = Vec::new();
    let mut bounds = Vec::new();
    for &m in &plan.multipliers {
        let offered = plan.rate * m;
        eprintln!(
            "kapi-load overload: {offered:.0} requests/s for {:.0} s",
            plan.phase_s
        );
        let per_client = (offered / plan.clients.max(1) as f64).max(1e-3);
        let interval = Duration::from_secs_f64((1.0 / per_client).min(3600.0));
        let t0 = start.elapsed().as_secs_f64();
        let deadline = Instant::now() + phase;
        let clients: Vec<_> = (0..plan.clients)
            .map(|i| tokio::spawn(client(target.clone(), plan.clone(), i, interval, deadline)))
            .collect();
        let health = probe::livez_all(
            &target,
            plan.probers,
            Duration::from_millis(plan.probe_interval_ms.max(1)),
            deadline,
        )
        .await;
        let mut ph = PhaseReport {
            multiplier: m,
            offered_per_s: offered,
            health: health.summary(),
            ..Default::default()
        };
        let mut ok = Latencies::default();
        for c in clients {
            let Ok(c) = c.await else { continue };
            for (k, v) in c.statuses {
                *ph.statuses.entry(k).or_insert(0) += v;
            }
            ph.too_many_with_retry_after += c.too_many_with_retry_after;
            ph.too_many_without_retry_after += c.too_many_without_retry_after;
            ph.deferred_by_retry_after += c.deferred;
            ph.skipped_client_full += c.skipped;
            ok.merge(c.ok);
        }
        let answered: usize = ph
            .statuses
            .iter()
            .filter(|(k, _)| **k != 0)
            .map(|(_, v)| v)
            .sum();
        ph.answered_per_s = answered as f64 / plan.phase_s.max(1e-3);
        ph.ok = ok.summary();
        phases.push(ph);
        bounds.push((t0, start.elapsed().as_secs_f64()));
    }
    let samples = match sampler {
        Some(s) => s.finish().await,
        None => Vec::new(),
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    for (ph, (t0, t1)) in phases.iter_mut().zip(&bounds) {
        let inside: Vec<f64> = samples
            .iter()
            .filter(|s| s.t_s >= *t0 && s.t_s <= *t1 + 1.0)
            .map(|s| mib(s.rss_bytes))
            .collect();
        ph.rss_start_mib = inside.first().copied().unwrap_or(0.0);
        ph.rss_end_mib = inside.last().copied().unwrap_or(0.0);
        ph.rss_max_mib = inside.iter().copied().fold(0.0, f64::max);
    }
    Ok(Report {
        server: target.server.clone(),
        plan,
        phases,
        rss_mib: samples.iter().map(|s| (s.t_s, mib(s.rss_bytes))).collect(),
    })
}
