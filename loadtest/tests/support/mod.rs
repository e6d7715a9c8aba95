//! The servers kapi-load's tests drive: the workspace's kapi binary (on its embedded store or on
//! a real etcd), started on free loopback ports in temporary directories, killed when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long kapi or etcd may take to start (debug build, busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The kapi binary of this workspace: beside this test's own target directory, built if absent.
pub fn kapi_binary() -> PathBuf {
    // The test runs from <target>/debug/deps/<test>-<hash>; kapi is <target>/debug/kapi.
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Kapi {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The flags it was started with (a restart hook starts it again with them).
    pub args: Vec<String>,
}

impl Kapi {
    /// kapi on its embedded store.
    pub fn start() -> Kapi {
        Kapi::start_with(&[])
    }

    /// kapi with extra flags (e.g. `--etcd-servers`).
    pub fn start_with(extra: &[&str]) -> Kapi {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut args = vec![
            "--data-dir".to_string(),
            dir.path().display().to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--secure-port".into(),
            port.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = std::fs::File::create(dir.path().join("kapi.log")).expect("log");
        let child = Command::new(kapi_binary())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kapi starts");
        let k = Kapi {
            child,
            dir,
            port,
            args,
        };
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

    /// A shell command that stops this kapi (the pid in `pid_file`, else its first process),
    /// starts it again with the same flags, records the new pid in `pid_file` and prints it.
    /// The first process is this test's child: once killed it stays a zombie until reaped, so
    /// the hook waits for it to be gone or a zombie without other threads (the leader turns
    /// zombie before its threads release the store's lock).
    pub fn restart_hook(&self, pid_file: &Path) -> String {
        let kapi = kapi_binary();
        let args: Vec<String> = self.args.iter().map(|a| format!("'{a}'")).collect();
        format!(
            "old=$(cat '{pf}' 2>/dev/null || echo {first}); kill $old; \
             while [ -d /proc/$old ] && {{ [ \"$(cut -d' ' -f3 /proc/$old/stat 2>/dev/null || echo Z)\" != Z ] || \
             [ \"$(ls /proc/$old/task 2>/dev/null | wc -l)\" -gt 1 ]; }}; do sleep 0.05; done; \
             '{kapi}' {args} >>'{log}' 2>&1 </dev/null & echo $! >'{pf}'; echo $!",
            pf = pid_file.display(),
            first = self.child.id(),
            kapi = kapi.display(),
            args = args.join(" "),
            log = self.dir.path().join("kapi.log").display(),
        )
    }
}

impl Drop for Kapi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process a restart hook started, by the pid it recorded: killed on drop.
pub struct Restarted(pub PathBuf);

impl Restarted {
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.0).ok()?.trim().parse().ok()
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// Debian's etcd on free loopback ports with a temporary data directory, as the main crate's
/// tests start it; killed on drop.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log");
        let child = Command::new("etcd")
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .args(["--heartbeat-interval=20", "--election-timeout=200"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts (apt-get install -y etcd-server)");
        let e = Etcd {
            child,
            endpoint: client_url,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !e.healthy() {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        e
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = write!(s, "GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        r.contains(r#""health":"true""#)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
