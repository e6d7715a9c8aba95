//! Starting the real kapi binary for kapi-load's tests: a temporary data directory, a free
//! loopback port, readiness by polling, a kill when the test ends.

#![allow(dead_code)]

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

pub struct Kapi {
    pub child: Child,
    dir: tempfile::TempDir,
}

impl Kapi {
    pub fn start() -> Kapi {
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
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kapi.log")).unwrap_or_default()
    }
}

impl Drop for Kapi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
