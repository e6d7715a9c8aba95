//! A tiny bounded density run against the real kapi binary: every verb succeeds, no 5xx, watch
//! delivery is measured, the report files are written and `compare` reads two reports.

mod support;

use std::path::Path;
use std::process::Command;

use support::Kapi;

fn density(kapi: &Kapi, out: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_kapi-load"))
        .arg("density")
        .arg("--kubeconfig")
        .arg(kapi.kubeconfig())
        .args([
            "--duration",
            "5s",
            "--nodes",
            "3",
            "--pods-per-node",
            "5",
            "--controllers",
            "4",
        ])
        .args([
            "--churn-rate",
            "5",
            "--list-interval-ms",
            "500",
            "--threads",
            "2",
        ])
        .args(["--server-pid", &kapi.child.id().to_string()])
        .arg("--out")
        .arg(out)
        .output()
        .expect("kapi-load runs");
    assert!(
        o.status.success(),
        "kapi-load failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        kapi.log()
    );
    let text = std::fs::read_to_string(out).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

#[test]
fn a_small_density_run_against_kapi_succeeds_on_every_verb_and_compares() {
    let kapi = Kapi::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    let a = tmp.path().join("a.json");
    let report = density(&kapi, &a);
    let ops = report["ops"].as_array().expect("ops");
    for verb in ["POST", "PUT", "PATCH", "DELETE", "LIST", "WATCH"] {
        let ok: u64 = ops
            .iter()
            .filter(|o| o["verb"] == verb)
            .map(|o| o["ok"].as_u64().unwrap_or(0))
            .sum();
        assert!(ok > 0, "no successful {verb}: {report:#}");
    }
    for o in ops {
        let errors = o["errors"].as_object().expect("errors");
        assert!(
            errors.keys().all(|code| !code.starts_with('5')),
            "5xx for {}: {errors:?}",
            o["verb"]
        );
    }
    assert!(
        report["watch_delivery"]["count"].as_u64().unwrap_or(0) > 0,
        "no watch delivery sample"
    );
    assert!(
        report["informer_sync"]["informers"].as_u64().unwrap_or(0) > 0,
        "no informer synced"
    );
    assert!(
        !report["server_samples"]
            .as_array()
            .expect("samples")
            .is_empty(),
        "no server samples"
    );
    for f in [
        "a.md",
        "a-latency.svg",
        "a-histogram.svg",
        "a-rss.svg",
        "a-cpu.svg",
    ] {
        assert!(tmp.path().join(f).exists(), "{f} missing");
    }

    let b = tmp.path().join("b.json");
    density(&kapi, &b);
    let o = Command::new(env!("CARGO_BIN_EXE_kapi-load"))
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("compare runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("B/A") && table.contains("POST pods namespace"),
        "{table}"
    );
    assert!(table.contains("watch delivery"), "{table}");
}
