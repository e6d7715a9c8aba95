//! The stall and overload scenarios at a tiny, bounded size against the real kapi binary:
//! both phases of each run, the probes and the heavy or mixed requests are answered, and the
//! reports are written.

mod support;

use std::path::Path;
use std::process::Command;

use support::Kapi;

fn kapi_load(kapi: &Kapi, args: &[&str], out: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_kapi-load"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kapi.kubeconfig())
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
fn a_small_stall_run_probes_health_beside_heavy_patches() {
    let kapi = Kapi::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    let r = kapi_load(
        &kapi,
        &[
            "stall",
            "--patchers",
            "2",
            "--containers",
            "500",
            "--phase",
            "3s",
            "--probers",
            "2",
            "--probe-interval-ms",
            "50",
        ],
        &tmp.path().join("stall.json"),
    );
    for phase in ["baseline", "loaded"] {
        assert!(
            r[phase]["count"].as_u64().unwrap_or(0) > 10,
            "{phase}: {r:#}"
        );
        assert_eq!(r[phase]["failed"], 0, "{phase}: {r:#}");
        assert!(r[phase]["p99_ms"].as_f64().unwrap_or(0.0) > 0.0, "{r:#}");
    }
    assert!(r["patches"]["count"].as_u64().unwrap_or(0) >= 2, "{r:#}");
    assert_eq!(r["patches"]["failed"], 0, "{r:#}");
}

#[test]
fn a_small_overload_run_reports_statuses_health_and_memory_per_phase() {
    let kapi = Kapi::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    let pid = kapi.child.id().to_string();
    let r = kapi_load(
        &kapi,
        &[
            "overload",
            "--clients",
            "4",
            "--rate",
            "20",
            "--multipliers",
            "1,10",
            "--phase",
            "3s",
            "--objects",
            "5",
            "--threads",
            "2",
            "--server-pid",
            &pid,
        ],
        &tmp.path().join("overload.json"),
    );
    let phases = r["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 2, "{r:#}");
    for ph in phases {
        let statuses = ph["statuses"].as_object().expect("statuses");
        let ok: u64 = statuses
            .iter()
            .filter(|(k, _)| k.starts_with('2'))
            .map(|(_, v)| v.as_u64().unwrap_or(0))
            .sum();
        assert!(ok > 0, "no 2xx: {ph:#}");
        assert!(statuses.keys().all(|k| !k.starts_with('5')), "5xx: {ph:#}");
        assert!(ph["health"]["count"].as_u64().unwrap_or(0) > 0, "{ph:#}");
        assert!(ph["rss_max_mib"].as_f64().unwrap_or(0.0) > 0.0, "{ph:#}");
    }
    assert!(!r["rss_mib"].as_array().expect("rss").is_empty());
}
