//! The run's report: built once from the recorder, written as JSON (the input of `compare`),
//! a Markdown summary and SVG charts, and compared side by side with another report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::metrics::{Recorder, Series};
use crate::null_server::{CEILING_EVENTS_PER_CORE, CEILING_REQUESTS_PER_CORE};
use crate::procstat::ProcSample;
use crate::scenario::Plan;
use crate::svg;

/// A run warns when it reaches this share of kapi-load's own measured ceiling: beyond it, the
/// numbers may describe the load generator rather than the server.
const CEILING_WARN_SHARE: f64 = 0.7;

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Point {
    pub t_s: f64,
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub series: Vec<Point>,
    /// Non-empty histogram buckets: (upper bound in ms, count).
    pub histogram: Vec<(f64, u64)>,
}

impl Latency {
    fn of(s: &Series, window_s: u64) -> Latency {
        let h = &s.total;
        Latency {
            count: h.count,
            p50_ms: h.quantile_ms(0.5),
            p90_ms: h.quantile_ms(0.9),
            p99_ms: h.quantile_ms(0.99),
            max_ms: h.max_us as f64 / 1000.0,
            mean_ms: h.mean_ms(),
            series: s
                .windows
                .iter()
                .map(|(w, h)| Point {
                    t_s: ((*w + 1) * window_s) as f64,
                    count: h.count,
                    p50_ms: h.quantile_ms(0.5),
                    p90_ms: h.quantile_ms(0.9),
                    p99_ms: h.quantile_ms(0.99),
                })
                .collect(),
            histogram: h.buckets_ms(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone)]
pub struct OpReport {
    pub verb: String,
    pub resource: String,
    pub scope: String,
    pub format: String,
    pub ok: u64,
    /// Failures by HTTP status code ("0" = no response).
    pub errors: BTreeMap<String, u64>,
    pub rate_per_s: f64,
    pub latency: Latency,
    /// clusterloader2's API-responsiveness SLO threshold for this call, and whether p99 met it.
    pub slo_ms: Option<f64>,
    pub slo_met: Option<bool>,
}

impl OpReport {
    pub fn label(&self) -> String {
        let fmt = if self.format == "json" {
            ""
        } else {
            " (protobuf)"
        };
        format!("{} {} {}{fmt}", self.verb, self.resource, self.scope)
    }
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    pub watch_events: u64,
    pub watch_events_per_s: f64,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct WatcherDelivery {
    pub watcher: String,
    pub resource: String,
    pub latency: Latency,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Sync {
    pub informers: usize,
    pub p50_s: f64,
    pub max_s: f64,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Report {
    pub tool: String,
    pub server: String,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    pub plan: Plan,
    pub totals: Totals,
    pub ops: Vec<OpReport>,
    pub watch_delivery: Latency,
    #[serde(default)]
    pub watch_delivery_by_watcher: Vec<WatcherDelivery>,
    /// Delivery samples whose event arrived before the write's response (counted as 0 ms).
    #[serde(default)]
    pub early_deliveries: u64,
    pub informer_sync: Sync,
    pub server_samples: Vec<ProcSample>,
    #[serde(default)]
    pub client_samples: Vec<ProcSample>,
    pub warnings: Vec<String>,
}

/// clusterloader2: p99 ≤ 1 s for single-object calls, 5 s for namespace lists, 30 s for cluster
/// lists. Watches are not part of the SLO.
fn slo_ms(verb: &str, scope: &str) -> Option<f64> {
    match (verb, scope) {
        ("WATCH", _) => None,
        ("LIST", "cluster") => Some(30_000.0),
        ("LIST", _) => Some(5_000.0),
        _ => Some(1_000.0),
    }
}

impl Report {
    pub fn build(
        rec: &Recorder,
        server: &str,
        plan: Plan,
        elapsed_s: f64,
        samples: Vec<ProcSample>,
        client_samples: Vec<ProcSample>,
        worker_threads: usize,
    ) -> Report {
        let secs = elapsed_s.max(1e-3);
        let ops: Vec<OpReport> = rec
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, s)| {
                let latency = Latency::of(&s.latency, rec.window_s);
                let slo = slo_ms(k.verb, k.scope.as_str());
                OpReport {
                    verb: k.verb.to_string(),
                    resource: k.resource.to_string(),
                    scope: k.scope.as_str().to_string(),
                    format: k.format.to_string(),
                    ok: s.ok,
                    errors: s.errors.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
                    rate_per_s: (s.ok + s.errors.values().sum::<u64>()) as f64 / secs,
                    slo_met: slo.map(|t| latency.p99_ms <= t),
                    slo_ms: slo,
                    latency,
                }
            })
            .collect();
        let mut sync = rec
            .sync_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        sync.sort_by(f64::total_cmp);
        let requests = rec.requests.load(Ordering::Relaxed);
        let events = rec.events.load(Ordering::Relaxed);
        let totals = Totals {
            requests,
            errors: rec.failures.load(Ordering::Relaxed),
            requests_per_s: requests as f64 / secs,
            watch_events: events,
            watch_events_per_s: events as f64 / secs,
        };
        let mut warnings = Vec::new();
        let cores = worker_threads.max(1) as f64;
        if totals.requests_per_s > CEILING_WARN_SHARE * CEILING_REQUESTS_PER_CORE * cores {
            warnings.push(format!(
                "request rate {:.0}/s is over {:.0}% of kapi-load's own ceiling ({:.0}/s per core × {cores}): the load generator may be the bottleneck",
                totals.requests_per_s, CEILING_WARN_SHARE * 100.0, CEILING_REQUESTS_PER_CORE
            ));
        }
        if totals.watch_events_per_s > CEILING_WARN_SHARE * CEILING_EVENTS_PER_CORE * cores {
            warnings.push(format!(
                "watch event rate {:.0}/s is over {:.0}% of kapi-load's own ceiling ({:.0}/s per core × {cores}): the load generator may be the bottleneck",
                totals.watch_events_per_s, CEILING_WARN_SHARE * 100.0, CEILING_EVENTS_PER_CORE
            ));
        }
        if let Some((mean, _, _)) = summary(&client_samples)
            && mean > CEILING_WARN_SHARE * cores
        {
            warnings.push(format!(
                "kapi-load itself used {mean:.2} of its {cores} cores on average: it may be the bottleneck (use --threads, or a release build)"
            ));
        }
        Report {
            tool: format!("kapi-load {}", env!("CARGO_PKG_VERSION")),
            server: server.to_string(),
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .saturating_sub(elapsed_s as u64),
            elapsed_s,
            plan,
            totals,
            ops,
            watch_delivery: Latency::of(
                &rec.delivery.lock().unwrap_or_else(|e| e.into_inner()),
                rec.window_s,
            ),
            watch_delivery_by_watcher: rec
                .delivery_by_watcher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|((w, r), s)| WatcherDelivery {
                    watcher: w.to_string(),
                    resource: r.to_string(),
                    latency: Latency::of(s, rec.window_s),
                })
                .collect(),
            early_deliveries: rec.early_deliveries.load(Ordering::Relaxed),
            informer_sync: Sync {
                informers: sync.len(),
                p50_s: sync.get(sync.len() / 2).copied().unwrap_or(0.0),
                max_s: sync.last().copied().unwrap_or(0.0),
            },
            server_samples: samples,
            client_samples,
            warnings,
        }
    }

    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "# kapi-load report\n");
        let _ = writeln!(
            m,
            "Server `{}`, {:.1} s, {} namespaces, {} nodes (kubelets: {}{}), {} pods, {} informers ({}), churn {}/s, {} list clients{}.\n",
            self.server,
            self.elapsed_s,
            self.plan.namespaces,
            self.plan.nodes,
            self.plan.kubelets,
            match (self.plan.watch_only, self.plan.kubelets_per_connection) {
                _ if !self.plan.kubelets => String::new(),
                (w, k) => format!(
                    "{}{}{}",
                    if w { ", watch only" } else { "" },
                    if self.plan.skip_list {
                        ", no initial LIST"
                    } else {
                        ""
                    },
                    if k > 1 {
                        format!(", {k} per connection")
                    } else {
                        String::new()
                    }
                ),
            },
            self.plan.pods,
            self.plan.controllers,
            self.plan.informer_mode,
            self.plan.churn_rate,
            self.plan.list_clients,
            if self.plan.update_rate > 0.0 {
                format!(", pod updates {}/s", self.plan.update_rate)
            } else {
                String::new()
            }
        );
        let t = &self.totals;
        let _ = writeln!(
            m,
            "**{} requests** ({:.1}/s), **{} errors**; **{} watch events** ({:.1}/s).\n",
            t.requests, t.requests_per_s, t.errors, t.watch_events, t.watch_events_per_s
        );
        let _ = writeln!(
            m,
            "| call | ok | errors | rate/s | p50 ms | p90 ms | p99 ms | max ms | SLO |"
        );
        let _ = writeln!(m, "|---|--:|---|--:|--:|--:|--:|--:|---|");
        for o in &self.ops {
            let errors = if o.errors.is_empty() {
                "0".to_string()
            } else {
                o.errors
                    .iter()
                    .map(|(c, n)| format!("{c}×{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let slo = match (o.slo_ms, o.slo_met) {
                (Some(ms), Some(true)) => format!("ok (≤ {} s)", ms / 1000.0),
                (Some(ms), Some(false)) => format!("**missed** (≤ {} s)", ms / 1000.0),
                _ => "–".to_string(),
            };
            let l = &o.latency;
            let _ = writeln!(
                m,
                "| {} | {} | {errors} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {slo} |",
                o.label(),
                o.ok,
                o.rate_per_s,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.max_ms
            );
        }
        let d = &self.watch_delivery;
        let _ = writeln!(
            m,
            "\nWatch delivery (write acknowledged → event received), {} samples: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms{}.\n",
            d.count,
            d.p50_ms,
            d.p90_ms,
            d.p99_ms,
            d.max_ms,
            if self.early_deliveries > 0 {
                format!(
                    " ({} events arrived before their write's response: 0 ms)",
                    self.early_deliveries
                )
            } else {
                String::new()
            }
        );
        if let Some(line) = self.update_deliveries() {
            let _ = writeln!(m, "{line}\n");
        }
        for w in &self.watch_delivery_by_watcher {
            let l = &w.latency;
            let _ = writeln!(
                m,
                "- {} watching {}: {} samples, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                w.watcher, w.resource, l.count, l.p50_ms, l.p99_ms, l.max_ms
            );
        }
        let s = &self.informer_sync;
        let _ = writeln!(
            m,
            "Informer sync: {} informers, p50 {:.3} s, max {:.3} s.\n",
            s.informers, s.p50_s, s.max_s
        );
        if let Some((cpu_mean, cpu_max, rss_max)) = self.server_summary() {
            let _ = writeln!(
                m,
                "Server: CPU mean {cpu_mean:.2} cores, max {cpu_max:.2} cores; RSS max {:.1} MiB.\n",
                rss_max as f64 / (1 << 20) as f64
            );
        }
        if let Some((cpu_mean, cpu_max, rss_max)) = summary(&self.client_samples) {
            let _ = writeln!(
                m,
                "kapi-load itself: CPU mean {cpu_mean:.2} cores, max {cpu_max:.2} cores; RSS max {:.1} MiB.\n",
                rss_max as f64 / (1 << 20) as f64
            );
        }
        for w in &self.warnings {
            let _ = writeln!(m, "> warning: {w}\n");
        }
        m
    }

    /// With pod updates and kubelets as the only writes, every acknowledged update is one event
    /// for one kubelet: how many of them arrived by the end of the run.
    fn update_deliveries(&self) -> Option<String> {
        let p = &self.plan;
        if p.update_rate <= 0.0 || !p.kubelets || !p.watch_only || p.populate || p.churn_rate > 0.0
        {
            return None;
        }
        let acked: u64 = self
            .ops
            .iter()
            .filter(|o| o.verb == "PATCH" && o.resource == "pods")
            .map(|o| o.ok)
            .sum();
        let delivered: u64 = self
            .watch_delivery_by_watcher
            .iter()
            .filter(|w| w.watcher == "kubelet" && w.resource == "pods")
            .map(|w| w.latency.count)
            .sum();
        Some(format!(
            "Pod updates acknowledged: {acked}; received by kubelet watches: {delivered} ({} missing at the end of the run).",
            acked.saturating_sub(delivered)
        ))
    }

    /// (mean CPU cores, max CPU cores, max RSS bytes) of the server, when it was sampled.
    pub fn server_summary(&self) -> Option<(f64, f64, u64)> {
        summary(&self.server_samples)
    }

    /// Writes `<out>`, `<out stem>.md` and the SVG charts beside it.
    pub fn write(&self, out: &Path) -> Result<Vec<std::path::PathBuf>, String> {
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let stem = out.with_extension("");
        let mut files = vec![out.to_path_buf()];
        std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
        let md = stem.with_extension("md");
        std::fs::write(&md, self.markdown()).map_err(|e| format!("{}: {e}", md.display()))?;
        files.push(md);
        for (suffix, chart) in self.charts() {
            let p = std::path::PathBuf::from(format!("{}-{suffix}.svg", stem.display()));
            std::fs::write(&p, chart).map_err(|e| format!("{}: {e}", p.display()))?;
            files.push(p);
        }
        Ok(files)
    }

    fn charts(&self) -> Vec<(&'static str, String)> {
        let mut charts = Vec::new();
        let mut lines: Vec<(String, Vec<(f64, f64)>)> = self
            .ops
            .iter()
            .filter(|o| o.verb != "WATCH" && o.latency.count > 0)
            .map(|o| {
                (
                    format!("{} p99", o.label()),
                    o.latency.series.iter().map(|p| (p.t_s, p.p99_ms)).collect(),
                )
            })
            .collect();
        lines.push((
            "watch delivery p99".into(),
            self.watch_delivery
                .series
                .iter()
                .map(|p| (p.t_s, p.p99_ms))
                .collect(),
        ));
        charts.push((
            "latency",
            svg::lines("p99 latency over time", "s", "ms", &lines),
        ));
        let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
        for o in self.ops.iter().filter(|o| o.verb != "WATCH") {
            for (ub, c) in &o.latency.histogram {
                *merged.entry((ub * 1000.0) as u64).or_insert(0) += c;
            }
        }
        let bars: Vec<(f64, u64)> = merged
            .into_iter()
            .map(|(us, c)| (us as f64 / 1000.0, c))
            .collect();
        charts.push((
            "histogram",
            svg::histogram("request latency (all calls)", &bars),
        ));
        if !self.server_samples.is_empty() {
            let rss = vec![(
                "RSS MiB".to_string(),
                self.server_samples
                    .iter()
                    .map(|s| (s.t_s, s.rss_bytes as f64 / (1 << 20) as f64))
                    .collect(),
            )];
            let cpu = vec![(
                "CPU cores".to_string(),
                self.server_samples
                    .iter()
                    .map(|s| (s.t_s, s.cpu_cores))
                    .collect(),
            )];
            charts.push(("rss", svg::lines("server RSS", "s", "MiB", &rss)));
            charts.push(("cpu", svg::lines("server CPU", "s", "cores", &cpu)));
        }
        charts
    }
}

/// (mean CPU cores, max CPU cores, max RSS bytes) of a process's samples.
fn summary(samples: &[ProcSample]) -> Option<(f64, f64, u64)> {
    if samples.is_empty() {
        return None;
    }
    let mean = samples.iter().map(|s| s.cpu_cores).sum::<f64>() / samples.len() as f64;
    let max = samples.iter().map(|s| s.cpu_cores).fold(0.0, f64::max);
    let rss = samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0);
    Some((mean, max, rss))
}

fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 {
        let r = b / a;
        if r < 0.1 {
            format!("{r:.3}×")
        } else {
            format!("{r:.2}×")
        }
    } else {
        "–".into()
    }
}

/// Two reports side by side: each call's p50/p99 and rate, with B/A ratios.
pub fn compare(a: &Report, b: &Report) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "A: {} ({:.0} s)\nB: {} ({:.0} s)\n",
        a.server, a.elapsed_s, b.server, b.elapsed_s
    );
    let _ = writeln!(
        m,
        "| call | A p50 ms | B p50 ms | B/A | A p99 ms | B p99 ms | B/A | A rate/s | B rate/s | A errors | B errors |"
    );
    let _ = writeln!(m, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut labels: Vec<String> = a.ops.iter().chain(&b.ops).map(OpReport::label).collect();
    labels.sort();
    labels.dedup();
    let find = |r: &Report, l: &str| r.ops.iter().find(|o| o.label() == l).cloned();
    for l in labels {
        let (x, y) = (find(a, &l), find(b, &l));
        let f = |o: &Option<OpReport>, g: fn(&OpReport) -> f64| o.as_ref().map(g).unwrap_or(0.0);
        let errs = |o: &Option<OpReport>| {
            o.as_ref()
                .map(|o| o.errors.values().sum::<u64>())
                .unwrap_or(0)
        };
        let (a50, b50) = (f(&x, |o| o.latency.p50_ms), f(&y, |o| o.latency.p50_ms));
        let (a99, b99) = (f(&x, |o| o.latency.p99_ms), f(&y, |o| o.latency.p99_ms));
        let _ = writeln!(
            m,
            "| {l} | {a50:.2} | {b50:.2} | {} | {a99:.2} | {b99:.2} | {} | {:.1} | {:.1} | {} | {} |",
            ratio(a50, b50),
            ratio(a99, b99),
            f(&x, |o| o.rate_per_s),
            f(&y, |o| o.rate_per_s),
            errs(&x),
            errs(&y)
        );
    }
    let (da, db) = (&a.watch_delivery, &b.watch_delivery);
    let _ = writeln!(
        m,
        "| watch delivery | {:.2} | {:.2} | {} | {:.2} | {:.2} | {} | {:.1} ev/s | {:.1} ev/s | | |",
        da.p50_ms,
        db.p50_ms,
        ratio(da.p50_ms, db.p50_ms),
        da.p99_ms,
        db.p99_ms,
        ratio(da.p99_ms, db.p99_ms),
        a.totals.watch_events_per_s,
        b.totals.watch_events_per_s
    );
    let _ = writeln!(
        m,
        "| informer sync max s | {:.3} | {:.3} | {} | | | | | | | |",
        a.informer_sync.max_s,
        b.informer_sync.max_s,
        ratio(a.informer_sync.max_s, b.informer_sync.max_s)
    );
    if let (Some(sa), Some(sb)) = (a.server_summary(), b.server_summary()) {
        let _ = writeln!(
            m,
            "| server CPU mean cores | {:.2} | {:.2} | {} | | | | | | | |",
            sa.0,
            sb.0,
            ratio(sa.0, sb.0)
        );
        let (ra, rb) = (
            sa.2 as f64 / (1 << 20) as f64,
            sb.2 as f64 / (1 << 20) as f64,
        );
        let _ = writeln!(
            m,
            "| server RSS max MiB | {ra:.1} | {rb:.1} | {} | | | | | | | |",
            ratio(ra, rb)
        );
    }
    m
}
