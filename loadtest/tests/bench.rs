//! `kapi-load bench` against two real kapi servers — one on its embedded store, one on a real
//! etcd — at a small size: every phase runs for both, ratios are computed, the report's files are
//! written, `compare` reads two bench reports, and the fairness warnings fire when one server
//! stores bigger pods or is asked a rate it cannot reach (and not when nothing differs).

mod support;

use std::path::Path;
use std::process::Command;

use support::{Etcd, Kapi, Restarted};

/// Runs `kapi-load bench` (the smoke suite, shortened) and returns its JSON report.
fn bench(args: &[String], out: &Path, logs: &[&Kapi]) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_kapi-load"))
        .args(["bench", "--suite", "smoke", "--threads", "2"])
        .args(["--watch-duration", "3s", "--lease-duration", "11s"])
        .args(["--informer-duration", "2s", "--update-rate", "10"])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("kapi-load runs");
    assert!(
        o.status.success(),
        "kapi-load bench failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        logs.iter().map(|k| k.log()).collect::<Vec<_>>().join("\n")
    );
    let text = std::fs::read_to_string(out).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

fn warnings(report: &serde_json::Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

/// The table row of one phase's figure.
fn row<'a>(report: &'a serde_json::Value, phase: &str, figure: &str) -> &'a serde_json::Value {
    report["table"]
        .as_array()
        .expect("table")
        .iter()
        .find(|r| r["phase"] == phase && r["figure"] == figure)
        .unwrap_or_else(|| panic!("no row {phase} / {figure}"))
}

#[test]
fn bench_compares_kapi_on_etcd_with_kapi_embedded_and_warns_when_unfair() {
    let etcd = Etcd::start();
    let embedded = Kapi::start();
    let on_etcd = Kapi::start_with(&["--etcd-servers", &etcd.endpoint]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let pid_files = [tmp.path().join("embedded.pid"), tmp.path().join("etcd.pid")];
    let restarted = pid_files.clone().map(Restarted);
    let cluster = |name: &str, k: &Kapi| format!("{name}={}", k.kubeconfig().display());

    // 1. Same sizes and rates for both, every phase, both restarted for the cold start.
    let out = tmp.path().join("fair.json");
    let args = vec![
        "--cluster".into(),
        cluster("embedded", &embedded),
        "--cluster".into(),
        cluster("etcd", &on_etcd),
        "--server-pid".into(),
        format!("embedded={}", embedded.child.id()),
        "--server-pid".into(),
        format!("etcd={},{}", on_etcd.child.id(), etcd.pid()),
        "--restart-hook".into(),
        format!("embedded={}", embedded.restart_hook(&pid_files[0])),
        "--restart-hook".into(),
        format!("etcd={}", on_etcd.restart_hook(&pid_files[1])),
    ];
    let fair = bench(&args, &out, &[&embedded, &on_etcd]);
    let servers = fair["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 2);
    for s in servers {
        let phases: Vec<&str> = s["phases"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|p| {
                assert!(p["skipped"].is_null(), "{} skipped: {p}", s["name"]);
                assert!(
                    !p["metrics"].as_array().expect("metrics").is_empty(),
                    "{} has no figures",
                    p["name"]
                );
                p["name"].as_str().expect("phase name")
            })
            .collect();
        assert_eq!(
            phases,
            [
                "populate",
                "list",
                "watch",
                "leases",
                "informers",
                "cold-start"
            ],
            "{}",
            s["name"]
        );
    }
    for pf in &pid_files {
        assert!(
            pf.exists(),
            "the restart hook did not run: {}",
            pf.display()
        );
    }
    // Both servers hold the same pods (the same seed), measured the same way, with ratios.
    let items = row(&fair, "list", "LIST protobuf items");
    assert_eq!(items["values"][0], items["values"][1], "{items}");
    assert_eq!(items["values"][0].as_f64(), Some(60.0), "{items}");
    for (phase, figure) in [
        ("populate", "creates/s"),
        ("populate", "server CPU-s per 1,000 creates"),
        ("populate", "server RSS growth per object"),
        ("list", "LIST protobuf median"),
        ("list", "LIST JSON MB/s"),
        ("watch", "delivery p99"),
        ("watch", "rate achieved"),
        ("leases", "heartbeats done"),
        ("informers", "watch-list sync max"),
        ("cold-start", "hook start → /readyz"),
        ("cold-start", "server RSS when ready"),
    ] {
        let r = row(&fair, phase, figure);
        let ratio = r["ratios"][0].as_f64();
        assert!(
            ratio.is_some_and(|x| x.is_finite() && x > 0.0),
            "{phase} / {figure}: no ratio: {r}"
        );
    }
    assert!(
        row(&fair, "watch", "events delivered")["values"][0]
            .as_f64()
            .is_some_and(|n| n > 0.0),
        "no watch delivery"
    );
    assert!(
        !warnings(&fair)
            .iter()
            .any(|w| w.contains("different sizes")),
        "a size warning with equal pods: {:?}",
        warnings(&fair)
    );
    let md = std::fs::read_to_string(tmp.path().join("fair.md")).expect("fair.md");
    assert!(md.contains("| etcd/embedded |"), "{md}");
    for chart in ["latency", "histogram", "cpu", "rss"] {
        let f = tmp.path().join(format!("fair-{chart}.svg"));
        let svg = std::fs::read_to_string(&f).expect("chart written");
        assert!(svg.contains("embedded") && svg.contains("etcd"), "{chart}");
    }

    // 2. The etcd server's pods are 8 KB bigger and it is asked an update rate no server
    // reaches: the size and rate warnings fire and name it.
    let pids: Vec<u32> = restarted
        .iter()
        .map(|r| r.pid().expect("restarted pid"))
        .collect();
    let unfair_out = tmp.path().join("unfair.json");
    let args = vec![
        "--cluster".into(),
        cluster("embedded", &embedded),
        "--cluster".into(),
        cluster("etcd", &on_etcd),
        "--server-pid".into(),
        format!("embedded={}", pids[0]),
        "--server-pid".into(),
        format!("etcd={},{}", pids[1], etcd.pid()),
        "--phases".into(),
        "populate,list,watch".into(),
        "--pod-padding".into(),
        "etcd=8000".into(),
        "--cluster-update-rate".into(),
        "etcd=1000000".into(),
    ];
    let unfair = bench(&args, &unfair_out, &[&embedded, &on_etcd]);
    let w = warnings(&unfair);
    assert!(
        w.iter()
            .any(|w| w.contains("different sizes") && w.contains("etcd")),
        "no size warning: {w:?}"
    );
    assert!(
        w.iter().any(|w| w.starts_with("etcd: watch achieved")),
        "no rate warning for etcd: {w:?}"
    );
    assert!(
        !w.iter().any(|w| w.starts_with("embedded: watch achieved")),
        "a rate warning for the server asked a reachable rate: {w:?}"
    );
    // The etcd server's pods carry the padding (their stored size grows by about half of it:
    // the padding is stored compressed-free but counted in characters of the pod's JSON), and
    // whatever the pods' own size is (it grows with what the server records, managedFields).
    let bytes = row(&unfair, "list", "LIST protobuf bytes per item");
    let sizes: Vec<f64> = bytes["values"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    assert!(
        sizes.len() == 2 && sizes[1] - sizes[0] > 3000.0,
        "the etcd server's pods are not bigger: {bytes}"
    );

    // 3. compare reads two bench reports.
    let o = Command::new(env!("CARGO_BIN_EXE_kapi-load"))
        .arg("compare")
        .arg(&out)
        .arg(&unfair_out)
        .output()
        .expect("compare runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("| A embedded | B embedded | B/A |") && table.contains("delivery p99"),
        "{table}"
    );
    drop(restarted);
}
