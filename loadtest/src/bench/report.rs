//! The bench report: every server's phases as rows of named figures, one column per server and a
//! ratio column per server against the first; the fairness warnings (rate achieved vs asked,
//! stored object size, the tool's own saturation); Markdown, JSON, SVG charts; and `compare` of two
//! bench reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Sizes;
use crate::procstat::ProcSample;
use crate::report::Report;
use crate::svg;

/// Rates achieved and asked, and stored sizes between servers, may differ by this share before
/// the report warns that a comparison is not like for like.
pub const FAIRNESS_TOLERANCE: f64 = 0.10;

/// One figure of one phase.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    pub value: f64,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Phase {
    pub name: String,
    pub elapsed_s: f64,
    /// The paced work's rate asked and achieved, per second, when the phase has one.
    pub asked_rate: Option<f64>,
    pub achieved_rate: Option<f64>,
    /// The server's CPU-seconds over the phase, and its RSS at the end (with a pid).
    pub server_cpu_s: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    /// kapi-load's own CPU-seconds, its busiest thread in cores, and whether it saturated.
    pub tool_cpu_s: f64,
    pub tool_busiest_thread_cores: f64,
    pub tool_saturated: bool,
    pub metrics: Vec<Metric>,
    /// The scenario's full report (latency per call, series, histograms).
    pub report: Option<Report>,
    /// Why the phase did not run.
    pub skipped: Option<String>,
}

impl Phase {
    pub fn metric(&mut self, name: &str, unit: &str, value: f64) {
        self.metrics.push(Metric {
            name: name.to_string(),
            unit: unit.to_string(),
            value,
        });
    }

    pub fn skipped(name: &str, why: &str) -> Phase {
        Phase {
            name: name.to_string(),
            skipped: Some(why.to_string()),
            ..Phase::default()
        }
    }

    fn value(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }
}

#[derive(Serialize, Deserialize, Clone)]
pub struct ServerRun {
    pub name: String,
    pub server: String,
    /// The server's pids at the end (a restart hook may have printed a new one).
    pub pids: Vec<u32>,
    pub phases: Vec<Phase>,
    /// CPU and RSS once a second over the whole suite.
    pub server_samples: Vec<ProcSample>,
}

impl ServerRun {
    fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Bytes per pod as the server serves it in protobuf: the closest a client sees of what it
    /// stores (JSON when protobuf was not measured).
    pub fn pod_bytes(&self) -> Option<f64> {
        let list = self.phase("list")?;
        list.value("LIST protobuf bytes per item")
            .or_else(|| list.value("LIST JSON bytes per item"))
            .filter(|b| *b > 0.0)
    }
}

#[derive(Serialize, Deserialize, Clone)]
pub struct BenchReport {
    pub tool: String,
    pub seed: u64,
    pub sizes: Sizes,
    pub servers: Vec<ServerRun>,
    /// The side-by-side table, as in the Markdown.
    pub table: Vec<Row>,
    pub warnings: Vec<String>,
}

/// One figure of one phase for every server, and each server's ratio to the first.
#[derive(Serialize, Deserialize, Clone)]
pub struct Row {
    pub phase: String,
    pub figure: String,
    pub unit: String,
    pub values: Vec<Option<f64>>,
    /// values[i + 1] / values[0].
    pub ratios: Vec<Option<f64>>,
}

fn pct(a: f64, b: f64) -> f64 {
    (a / b - 1.0) * 100.0
}

impl BenchReport {
    /// Adds the per-byte figures (which need the list phase's sizes) and the warnings.
    pub fn build(sizes: Sizes, seed: u64, mut servers: Vec<ServerRun>) -> BenchReport {
        let mut warnings = Vec::new();
        for s in &mut servers {
            per_byte(s, sizes.pods() as f64);
            for p in &s.phases {
                if let Some(why) = p.skipped.as_deref().filter(|w| w.starts_with("failed")) {
                    warnings.push(format!("{}: {} {why}", s.name, p.name));
                }
                if let (Some(asked), Some(got)) = (p.asked_rate, p.achieved_rate)
                    && asked > 0.0
                    && (got / asked - 1.0).abs() > FAIRNESS_TOLERANCE
                {
                    warnings.push(format!(
                        "{}: {} achieved {got:.1}/s of the {asked:.1}/s asked ({:+.0} %): its figures describe a different load",
                        s.name,
                        p.name,
                        pct(got, asked)
                    ));
                }
                for mode in ["list-watch", "watch-list"] {
                    if let Some(n) = p.value(&format!("{mode} informers synced"))
                        && n < sizes.informers as f64
                    {
                        warnings.push(format!(
                            "{}: only {n:.0} of {} {mode} informers synced within {} s: their sync time is longer than the phase",
                            s.name, sizes.informers, sizes.informer_duration_s
                        ));
                    }
                }
                if p.tool_saturated {
                    warnings.push(format!(
                        "{}: {}: kapi-load itself saturated (busiest thread {:.2} cores, {:.2} cores in all): the figures may describe the tool",
                        s.name,
                        p.name,
                        p.tool_busiest_thread_cores,
                        p.tool_cpu_s / p.elapsed_s.max(1e-3)
                    ));
                }
            }
        }
        let sized: Vec<(&str, f64)> = servers
            .iter()
            .filter_map(|s| Some((s.name.as_str(), s.pod_bytes()?)))
            .collect();
        if let (Some(min), Some(max)) = (
            sized.iter().map(|x| x.1).reduce(f64::min),
            sized.iter().map(|x| x.1).reduce(f64::max),
        ) && max > min * (1.0 + FAIRNESS_TOLERANCE)
        {
            warnings.push(format!(
                "the servers store pods of different sizes ({}; {:+.0} %): per-object figures mix speed with size, read the per-byte ones",
                sized
                    .iter()
                    .map(|(n, b)| format!("{n} {b:.0} B"))
                    .collect::<Vec<_>>()
                    .join(", "),
                pct(max, min)
            ));
        }
        let counted: Vec<(&str, f64)> = servers
            .iter()
            .filter_map(|s| {
                Some((
                    s.name.as_str(),
                    s.phase("list")?.value("LIST protobuf items")?,
                ))
            })
            .collect();
        if let (Some(min), Some(max)) = (
            counted.iter().map(|x| x.1).reduce(f64::min),
            counted.iter().map(|x| x.1).reduce(f64::max),
        ) && max > min * (1.0 + FAIRNESS_TOLERANCE)
        {
            warnings.push(format!(
                "the servers LISTed different numbers of pods ({}): one holds pods of other runs",
                counted
                    .iter()
                    .map(|(n, c)| format!("{n} {c:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut report = BenchReport {
            tool: format!("kapi-load {}", env!("CARGO_PKG_VERSION")),
            seed,
            sizes,
            servers,
            table: Vec::new(),
            warnings,
        };
        report.table = report.rows();
        report
    }

    /// The table: (phase, figure) rows in the order first seen, a value per server and each
    /// server's ratio to the first.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        let n = self.servers.len();
        for (i, s) in self.servers.iter().enumerate() {
            for p in &s.phases {
                let mut figures: Vec<(String, String, f64)> = Vec::new();
                if let Some(r) = p.asked_rate {
                    figures.push(("rate asked".into(), "/s".into(), r));
                }
                if let Some(r) = p.achieved_rate {
                    figures.push(("rate achieved".into(), "/s".into(), r));
                }
                figures.extend(
                    p.metrics
                        .iter()
                        .map(|m| (m.name.clone(), m.unit.clone(), m.value)),
                );
                if p.skipped.is_none() {
                    figures.push((
                        "kapi-load CPU".into(),
                        "cores".into(),
                        p.tool_cpu_s / p.elapsed_s.max(1e-3),
                    ));
                    figures.push((
                        "kapi-load busiest thread".into(),
                        "cores".into(),
                        p.tool_busiest_thread_cores,
                    ));
                    figures.push(("phase time".into(), "s".into(), p.elapsed_s));
                }
                for (figure, unit, v) in figures {
                    let at = match rows
                        .iter()
                        .position(|r| r.phase == p.name && r.figure == figure)
                    {
                        Some(at) => at,
                        None => {
                            rows.push(Row {
                                phase: p.name.clone(),
                                figure,
                                unit,
                                values: vec![None; n],
                                ratios: Vec::new(),
                            });
                            rows.len() - 1
                        }
                    };
                    rows[at].values[i] = Some(v);
                }
            }
        }
        for r in &mut rows {
            r.ratios = r
                .values
                .iter()
                .skip(1)
                .map(|v| ratio_of(r.values[0], *v))
                .collect();
        }
        rows
    }

    pub fn markdown(&self, stem: &str) -> String {
        let mut m = String::new();
        let z = &self.sizes;
        let _ = writeln!(m, "# kapi-load bench\n");
        let _ = writeln!(
            m,
            "Seed {}; {} pods on {} nodes in {} namespaces; LIST ×{}; {} kubelet watches ({} per connection) + {}/s pod updates for {} s; {} heartbeating kubelets for {} s; {} pod informers per mode for {} s.\n",
            self.seed,
            z.pods(),
            z.nodes,
            z.namespaces,
            z.list_count,
            z.nodes,
            z.kubelets_per_connection,
            z.update_rate,
            z.watch_duration_s,
            z.lease_nodes,
            z.lease_duration_s,
            z.informers,
            z.informer_duration_s
        );
        for s in &self.servers {
            let _ = writeln!(
                m,
                "- **{}**: `{}`{}",
                s.name,
                s.server,
                s.pod_bytes()
                    .map(|b| format!(", {b:.0} bytes per pod as served (protobuf)"))
                    .unwrap_or_default()
            );
        }
        let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        let first = names.first().copied().unwrap_or("");
        let _ = write!(m, "\n| phase | figure | unit |");
        for n in &names {
            let _ = write!(m, " {n} |");
        }
        for n in names.iter().skip(1) {
            let _ = write!(m, " {n}/{first} |");
        }
        let _ = write!(m, "\n|---|---|---|");
        for _ in 0..(2 * names.len()).saturating_sub(1) {
            let _ = write!(m, "--:|");
        }
        let _ = writeln!(m);
        for r in &self.table {
            let _ = write!(m, "| {} | {} | {} |", r.phase, r.figure, r.unit);
            for v in &r.values {
                let _ = write!(m, " {} |", v.map(fmt_value).unwrap_or_else(|| "–".into()));
            }
            for x in &r.ratios {
                let _ = write!(m, " {} |", fmt_ratio(*x));
            }
            let _ = writeln!(m);
        }
        for s in &self.servers {
            for p in s.phases.iter().filter(|p| p.skipped.is_some()) {
                let _ = writeln!(
                    m,
                    "\n{}: {} skipped ({}).",
                    s.name,
                    p.name,
                    p.skipped.as_deref().unwrap_or("")
                );
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(m);
        }
        for w in &self.warnings {
            let _ = writeln!(m, "> warning: {w}\n");
        }
        let _ = writeln!(
            m,
            "\n![watch delivery p99 over time]({stem}-latency.svg) ![watch delivery histogram]({stem}-histogram.svg)\n![server CPU]({stem}-cpu.svg) ![server RSS]({stem}-rss.svg)"
        );
        m
    }

    /// Writes `<out>` (JSON), `<stem>.md` and the charts beside it.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>, String> {
        let stem = out.with_extension("");
        let stem_name = stem
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "bench".into());
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
        let md = stem.with_extension("md");
        std::fs::write(&md, self.markdown(&stem_name))
            .map_err(|e| format!("{}: {e}", md.display()))?;
        let mut files = vec![out.to_path_buf(), md];
        for (suffix, chart) in self.charts() {
            let p = PathBuf::from(format!("{}-{suffix}.svg", stem.display()));
            std::fs::write(&p, chart).map_err(|e| format!("{}: {e}", p.display()))?;
            files.push(p);
        }
        Ok(files)
    }

    /// One chart per figure, a line per server: watch delivery p99 over the watch phase, its
    /// histogram, and the server's CPU and RSS over the whole suite.
    fn charts(&self) -> Vec<(&'static str, String)> {
        fn watch(s: &ServerRun) -> Option<&Report> {
            s.phase("watch").and_then(|p| p.report.as_ref())
        }
        let latency: Vec<(String, Vec<(f64, f64)>)> = self
            .servers
            .iter()
            .filter_map(|s| {
                let r = watch(s)?;
                Some((
                    format!("{} delivery p99", s.name),
                    r.watch_delivery
                        .series
                        .iter()
                        .map(|p| (p.t_s, p.p99_ms))
                        .collect(),
                ))
            })
            .collect();
        let histograms: Vec<(String, Vec<(f64, u64)>)> = self
            .servers
            .iter()
            .filter_map(|s| Some((s.name.clone(), watch(s)?.watch_delivery.histogram.clone())))
            .collect();
        let per_server = |f: fn(&ProcSample) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
            self.servers
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.server_samples.iter().map(|x| (x.t_s, f(x))).collect(),
                    )
                })
                .collect()
        };
        vec![
            (
                "latency",
                svg::lines(
                    "watch delivery p99 over the watch phase",
                    "s",
                    "ms",
                    &latency,
                ),
            ),
            (
                "histogram",
                svg::histograms("watch delivery latency (watch phase)", &histograms),
            ),
            (
                "cpu",
                svg::lines(
                    "server CPU over the suite",
                    "s",
                    "cores",
                    &per_server(|x| x.cpu_cores),
                ),
            ),
            (
                "rss",
                svg::lines(
                    "server RSS over the suite",
                    "s",
                    "MiB",
                    &per_server(|x| x.rss_bytes as f64 / (1 << 20) as f64),
                ),
            ),
        ]
    }
}

/// The figures per stored byte, beside the per-object ones, from the server's own pod size.
fn per_byte(s: &mut ServerRun, pods: f64) {
    let Some(bytes) = s.pod_bytes() else { return };
    let mb_per_pod = bytes / 1e6;
    for p in &mut s.phases {
        match p.name.as_str() {
            "populate" => {
                if let Some(rate) = p.value("creates/s") {
                    p.metric("MB stored/s", "MB/s", rate * mb_per_pod);
                }
                if let Some(cpu) = p.value("server CPU-s per 1,000 creates") {
                    p.metric("server CPU-s per MB stored", "s", cpu / 1e3 / mb_per_pod);
                }
                if let Some(rss) = p.value("server RSS growth per object") {
                    p.metric("server RSS growth per stored byte", "B/B", rss / bytes);
                }
            }
            "watch" => {
                if let Some(cpu) = p.value("server CPU-ms per update") {
                    p.metric("server CPU-ms per MB updated", "ms", cpu / mb_per_pod);
                }
            }
            "informers" => {
                for mode in ["list-watch", "watch-list"] {
                    if let Some(t) = p.value(&format!("{mode} sync max")) {
                        p.metric(
                            &format!("{mode} sync MB/s"),
                            "MB/s",
                            pods * mb_per_pod / t.max(1e-6),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if (v.fract() == 0.0 && a < 1e15) || a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// b / a, when both are known and a is not zero.
fn ratio_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => Some(b / a),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.abs() < 0.1 => format!("{r:.3}×"),
        Some(r) => format!("{r:.2}×"),
        None => "–".into(),
    }
}

/// Two bench reports side by side: each server of A beside the server of B of the same name (or
/// at the same position), with B/A.
pub fn compare(a: &BenchReport, b: &BenchReport) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "A: seed {}, {} pods\nB: seed {}, {} pods\n",
        a.seed,
        a.sizes.pods(),
        b.seed,
        b.sizes.pods()
    );
    let pairs: Vec<(usize, usize)> = a
        .servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let j = b
                .servers
                .iter()
                .position(|t| t.name == s.name)
                .or((i < b.servers.len()).then_some(i))?;
            Some((i, j))
        })
        .collect();
    let (ra, rb) = (&a.table, &b.table);
    let _ = write!(m, "| phase | figure | unit |");
    for (i, j) in &pairs {
        let _ = write!(
            m,
            " A {} | B {} | B/A |",
            a.servers[*i].name, b.servers[*j].name
        );
    }
    let _ = write!(m, "\n|---|---|---|");
    for _ in &pairs {
        let _ = write!(m, "--:|--:|--:|");
    }
    let _ = writeln!(m);
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for r in ra.iter().chain(rb) {
        let k = (r.phase.clone(), r.figure.clone(), r.unit.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let lookup: BTreeMap<(bool, String, String), Vec<Option<f64>>> = ra
        .iter()
        .map(|r| ((false, r.phase.clone(), r.figure.clone()), r.values.clone()))
        .chain(
            rb.iter()
                .map(|r| ((true, r.phase.clone(), r.figure.clone()), r.values.clone())),
        )
        .collect();
    for (phase, name, unit) in keys {
        let _ = write!(m, "| {phase} | {name} | {unit} |");
        for (i, j) in &pairs {
            let va = lookup
                .get(&(false, phase.clone(), name.clone()))
                .and_then(|v| v[*i]);
            let vb = lookup
                .get(&(true, phase.clone(), name.clone()))
                .and_then(|v| v[*j]);
            let f = |v: Option<f64>| v.map(fmt_value).unwrap_or_else(|| "–".into());
            let _ = write!(
                m,
                " {} | {} | {} |",
                f(va),
                f(vb),
                fmt_ratio(ratio_of(va, vb))
            );
        }
        let _ = writeln!(m);
    }
    for (tag, r) in [("A", a), ("B", b)] {
        for w in &r.warnings {
            let _ = writeln!(m, "\n> {tag} warning: {w}");
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, metrics: &[(&str, f64)]) -> Phase {
        let mut p = Phase {
            name: name.into(),
            elapsed_s: 10.0,
            tool_cpu_s: 1.0,
            ..Phase::default()
        };
        for (n, v) in metrics {
            p.metric(n, "", *v);
        }
        p
    }

    fn server(name: &str, pod_bytes: f64, achieved: f64) -> ServerRun {
        let mut watch = phase("watch", &[("delivery p99", 2.0)]);
        watch.asked_rate = Some(100.0);
        watch.achieved_rate = Some(achieved);
        ServerRun {
            name: name.into(),
            server: "https://127.0.0.1:1".into(),
            pids: Vec::new(),
            phases: vec![
                phase(
                    "populate",
                    &[
                        ("creates/s", 1000.0),
                        ("server RSS growth per object", 7000.0),
                    ],
                ),
                phase(
                    "list",
                    &[
                        ("LIST protobuf items", 100.0),
                        ("LIST protobuf bytes per item", pod_bytes),
                    ],
                ),
                watch,
            ],
            server_samples: Vec::new(),
        }
    }

    fn sizes() -> Sizes {
        let mut s = Sizes::suite("smoke").expect("smoke suite");
        s.nodes = 10;
        s.pods_per_node = 10;
        s
    }

    #[test]
    fn ratios_are_each_server_over_the_first() {
        let r = BenchReport::build(
            sizes(),
            1,
            vec![server("a", 3500.0, 100.0), server("b", 3500.0, 95.0)],
        );
        let row = r
            .table
            .iter()
            .find(|r| r.phase == "watch" && r.figure == "rate achieved")
            .expect("row");
        assert_eq!(row.values, vec![Some(100.0), Some(95.0)]);
        assert_eq!(row.ratios, vec![Some(0.95)]);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!(
            r.markdown("x")
                .contains("| watch | rate achieved | /s | 100 | 95 | 0.95× |")
        );
    }

    #[test]
    fn a_rate_more_than_a_tenth_short_of_the_asked_warns_and_names_the_server() {
        let r = BenchReport::build(
            sizes(),
            1,
            vec![server("a", 3500.0, 100.0), server("b", 3500.0, 85.0)],
        );
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].starts_with("b: watch achieved 85.0/s of the 100.0/s asked"));
    }

    #[test]
    fn pods_of_different_sizes_warn_and_get_per_byte_figures() {
        let r = BenchReport::build(
            sizes(),
            1,
            vec![server("a", 3500.0, 100.0), server("b", 9900.0, 100.0)],
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("different sizes") && w.contains("b 9900 B")),
            "{:?}",
            r.warnings
        );
        let per_byte = r
            .table
            .iter()
            .find(|r| r.figure == "server RSS growth per stored byte")
            .expect("per-byte row");
        assert_eq!(per_byte.values, vec![Some(2.0), Some(7000.0 / 9900.0)]);
        let mb = r
            .table
            .iter()
            .find(|r| r.figure == "MB stored/s")
            .expect("MB/s row");
        assert_eq!(mb.values[0], Some(3.5));
    }

    #[test]
    fn a_saturated_tool_is_flagged_per_phase() {
        let mut a = server("a", 3500.0, 100.0);
        a.phases[0].tool_saturated = true;
        a.phases[0].tool_busiest_thread_cores = 0.97;
        let r = BenchReport::build(sizes(), 1, vec![a]);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].starts_with("a: populate: kapi-load itself saturated"));
    }
}
