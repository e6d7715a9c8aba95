//! A real etcd for tests: Debian's `etcd-server` on free loopback ports with a temporary data
//! directory, ready once it reports itself healthy, killed when the test ends. End-to-end tests
//! `mod support;` it; kapi's unit tests include the same file (`storage::etcd::test_support`).
//!
//! A missing `etcd` binary fails the test (nothing is skipped): `.ci/test.sh` installs it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to become healthy (test binaries build and run on 2 shared cores).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts tried before giving up: another test may take a free port before etcd binds it.
const START_ATTEMPTS: usize = 3;

/// etcd's progress notification interval: short, so that idle watches hear of progress in tests
/// (upstream's default is 10 minutes; Kubernetes suggests 5 s for the watch cache).
const PROGRESS_NOTIFY_INTERVAL: &str = "1s";

const INSTALL: &str = "install Debian's etcd-server and etcd-client \
                       (apt-get install -y etcd-server etcd-client), as .ci/test.sh does";

/// TLS on etcd's client port: its serving certificate and key, and the CA that client
/// certificates must chain to (every client then needs one).
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: PathBuf,
}

/// A running etcd, killed on drop.
pub struct Etcd {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` with TLS), what `--etcd-servers` takes.
    pub endpoint: String,
    binary: PathBuf,
    ports: Ports,
    tls: Option<ServerTls>,
    data_dir: tempfile::TempDir,
}

/// The loopback ports of one etcd: clients, peers, and plain-HTTP /health and /metrics.
#[derive(Clone, Copy)]
struct Ports {
    client: u16,
    peer: u16,
    metrics: u16,
}

impl Etcd {
    /// Starts a one-member etcd cluster; panics (failing the test) if etcd is not installed or
    /// does not become healthy.
    pub fn start() -> Etcd {
        Etcd::start_with(None)
    }

    /// As `start`, serving clients over TLS and asking them for certificates.
    pub fn start_with_tls(tls: ServerTls) -> Etcd {
        Etcd::start_with(Some(tls))
    }

    fn start_with(tls: Option<ServerTls>) -> Etcd {
        let binary =
            on_path("etcd").unwrap_or_else(|| panic!("no `etcd` binary on PATH: {INSTALL}"));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let [client, peer, metrics] = free_ports();
            let ports = Ports {
                client,
                peer,
                metrics,
            };
            let data_dir = tempfile::tempdir().expect("a temporary directory");
            match run(&binary, ports, tls.as_ref(), data_dir.path()) {
                Ok(child) => {
                    return Etcd {
                        child,
                        endpoint: format!("{scheme}://127.0.0.1:{client}"),
                        binary,
                        ports,
                        tls,
                        data_dir,
                    };
                }
                Err(log) => last_log = log,
            }
        }
        panic!("etcd did not start after {START_ATTEMPTS} attempts; its last log:\n{last_log}");
    }

    /// Kills etcd at once, as a crash would; its data stays for `start_again`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts etcd again on the same ports and data (after `kill`).
    pub fn start_again(&mut self) {
        self.kill();
        self.child = run(
            &self.binary,
            self.ports,
            self.tls.as_ref(),
            self.data_dir.path(),
        )
        .unwrap_or_else(|log| panic!("etcd did not start again; its log:\n{log}"));
    }

    /// Runs `etcdctl` (API v3) against this etcd (without TLS).
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        let binary =
            on_path("etcdctl").unwrap_or_else(|| panic!("no `etcdctl` binary on PATH: {INSTALL}"));
        let output = Command::new(binary)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .args(args)
            .output()
            .expect("running etcdctl");
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The exact bytes etcd holds at `key` (etcdctl's JSON output, so no newline is added).
    pub fn value(&self, key: &str) -> Vec<u8> {
        use base64::Engine;
        let out = self.etcdctl(&["get", key, "-w", "json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("etcdctl's JSON");
        let value = doc["kvs"][0]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("etcd has no key {key}: {doc}"));
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .expect("base64 from etcdctl")
    }

    /// The value of one of etcd's Prometheus metrics (a gauge or counter without labels).
    pub fn metric(&self, name: &str) -> f64 {
        let body = http_get(self.ports.metrics, "/metrics").expect("etcd's /metrics");
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("etcd has no metric {name}"))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs etcd on `ports` with its data in `dir` until it is healthy; its log if it is not.
fn run(binary: &Path, ports: Ports, tls: Option<&ServerTls>, dir: &Path) -> Result<Child, String> {
    let log_path = dir.join("etcd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("etcd's log file");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let client = format!("{scheme}://127.0.0.1:{}", ports.client);
    let peer = format!("http://127.0.0.1:{}", ports.peer);
    let mut command = Command::new(binary);
    command
        .arg("--name=default")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={client}"))
        .arg(format!("--advertise-client-urls={client}"))
        .arg(format!("--listen-peer-urls={peer}"))
        .arg(format!("--initial-advertise-peer-urls={peer}"))
        .arg(format!("--initial-cluster=default={peer}"))
        .arg(format!(
            "--listen-metrics-urls=http://127.0.0.1:{}",
            ports.metrics
        ))
        // One member elects itself; short timeouts only make that quicker.
        .arg("--heartbeat-interval=20")
        .arg("--election-timeout=200")
        .arg(format!(
            "--experimental-watch-progress-notify-interval={PROGRESS_NOTIFY_INTERVAL}"
        ));
    if let Some(tls) = tls {
        command
            .arg(format!("--cert-file={}", tls.cert_file.display()))
            .arg(format!("--key-file={}", tls.key_file.display()))
            .arg(format!(
                "--trusted-ca-file={}",
                tls.client_ca_file.display()
            ))
            .arg("--client-cert-auth");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("etcd's log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let healthy =
            http_get(ports.metrics, "/health").is_ok_and(|b| b.contains(r#""health":"true""#));
        if healthy {
            return Ok(child);
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Distinct free loopback ports (all are held until every one is found).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] =
        std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"));
    listeners.map(|l| l.local_addr().expect("a bound address").port())
}

/// The body of an HTTP/1.0 GET on loopback: enough for etcd's /health and /metrics.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}
