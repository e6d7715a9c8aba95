//! A tiny bounded density run against the real kapi binary: every verb succeeds, no 5xx, watch
//! delivery is measured, the report files are written and `compare` reads two reports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long kapi may take to start (debug build, busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The kapi binary of this workspace: beside this test's own target directory, built if absent.
fn kapi_binary() -> PathBuf {
    // The test runs from <target>/debug/deps/density-<hash>; kapi is <target>/debug/kapi.
    let exe = std::env::current_exe().expect("test executable path");
    let debug = exe.parent().and_then(Path::parent).expect("target/debug");
    let kapi = debug.join("kapi");
    if !kapi.exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = debug.parent().expect("target dir");
        let ok = Command::new(cargo)
            .args(["build", "--bin", "kapi"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(root)
            .status()
            .expect("cargo build runs");
        assert!(ok.success(), "building kapi failed");
    }
    kapi
}

struct Kapi {
    child: Child,
    dir: tempfile::TempDir,
}

impl Kapi {
    fn start() -> Kapi {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = std::fs::File::create(dir.path().join("kapi.log")).expect("log");
        let child = Command::new(kapi_binary())
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kapi starts");
        let k = Kapi { child, dir };
        let deadline = Instant::now() + START_TIMEOUT;
        while !(k.kubeconfig().exists()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        {
            assert!(Instant::now() < deadline, "kapi did not start: {}", k.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        k
    }
    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kapi.log")).unwrap_or_default()
    }
}

impl Drop for Kapi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
