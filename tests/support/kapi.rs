//! Starting the real `kapi` binary for end-to-end tests: a free loopback port, a temporary
//! data directory, readiness by polling, and a kill when the test ends.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a kapi start may take before the test fails (debug builds on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Kapi {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
    /// What a start waits for.
    ready_path: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Kapi {
    /// Starts kapi on the embedded store (or with `args`, e.g. `--etcd-servers`).
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Kapi {
        Kapi::start_until(args, env, "/readyz")
    }

    /// Starts kapi and waits until `path` (`/readyz`, or `/livez` for a server expected not to
    /// be ready) answers.
    pub fn start_until(args: &[&str], env: &[(&str, &str)], path: &str) -> Kapi {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut k = Kapi {
            child: None,
            port: free_port(),
            data_dir: dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            _tmp: Some(tmp),
            ready_path: path.to_string(),
        };
        k.spawn();
        k
    }

    /// Starts kapi as the apiserver of the upstream control-plane capture
    /// (`tests/data/upstream/control-plane/README.md`) ran: the Node and RBAC authorizers, its
    /// six admission plugins, service-account keys (the test RSA pair) and issuer, and
    /// `--service-cluster-ip-range=10.32.0.0/24`.
    pub fn start_control_plane() -> Kapi {
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/serviceaccounts");
        let key = format!("--service-account-signing-key-file={keys}/rsa.pk8");
        let public = format!("--service-account-key-file={keys}/rsa.crt");
        Kapi::start(
            &[
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NamespaceLifecycle,NodeRestriction,LimitRanger,\
                 ServiceAccount,DefaultStorageClass,ResourceQuota",
                &public,
                &key,
                "--service-account-issuer=https://server.kubernetes.local:6443",
                "--service-cluster-ip-range=10.32.0.0/24",
            ],
            &[],
        )
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.data_dir.join("kapi.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kapi"));
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--secure-port")
            .arg(self.port.to_string())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("kapi starts"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self.kubectl(&["get", "--raw", &self.ready_path]);
            if out.status.success() {
                // Best effort: a test may start kapi with an authorizer that refuses it.
                let _ = self.kubectl(&["create", "serviceaccount", "default", "-n", "default"]);
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kapi exited early ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "kapi did not become ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Creates the `default` ServiceAccount of `namespace` (unless it exists), as
    /// kube-controller-manager's serviceaccount controller does in a cluster: without it the
    /// ServiceAccount admission plugin refuses every pod there, as upstream's does. Every start
    /// does it for `default`.
    pub fn default_service_account(&self, namespace: &str) {
        let out = self.kubectl(&["create", "serviceaccount", "default", "-n", namespace]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("AlreadyExists"),
            "creating the default ServiceAccount of {namespace}: {stderr}"
        );
    }

    /// A kubeconfig that trusts kapi's CA and presents only `token`.
    pub fn token_kubeconfig(&self, token: &str) -> PathBuf {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = self.data_dir.join(format!("token-{n}.kubeconfig"));
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: kapi
  cluster:
    server: https://127.0.0.1:{}
    certificate-authority: {}
users:
- name: bearer
  user:
    token: {token}
contexts:
- name: kapi
  context: {{cluster: kapi, user: bearer}}
current-context: kapi
",
            self.port,
            self.data_dir.join("ca.crt").display()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `kubectl auth whoami -o json` as the bearer of `token`: the SelfSubjectReview, or stderr.
    pub fn whoami(&self, token: &str) -> Result<serde_json::Value, String> {
        let out = kubectl_at(
            &self.token_kubeconfig(token),
            &["auth", "whoami", "-o", "json"],
            None,
        );
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The HTTP status of GET `path` with `token` as the only credential.
    pub fn status_with_token(&self, token: &str, path: &str) -> u16 {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "30",
            ])
            .arg("--cacert")
            .arg(self.data_dir.join("ca.crt"))
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("kapi.log")).unwrap_or_default()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }

    /// Kills kapi without warning (SIGKILL) and starts it again on the same data.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Sends `signal` (`TERM`, `INT`) to kapi.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("kapi runs").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Waits up to `bound` for kapi to exit; its exit status, or `None` if it still runs.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `curl` with the admin client certificate against `path` (the server's certificate is
    /// not checked: loopback only), with `extra` arguments first.
    pub fn curl(&self, extra: &[&str], path: &str) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-k", "--max-time", "60"])
            .arg("--cert")
            .arg(self.data_dir.join("admin.crt"))
            .arg("--key")
            .arg(self.data_dir.join("admin.key"))
            .args(extra)
            .arg(format!("https://127.0.0.1:{}{path}", self.port));
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_at(&self.kubeconfig(), args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        kubectl_at(&self.kubeconfig(), args, Some(stdin))
    }

    /// Runs kubectl and returns stdout, failing the test with stderr when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub fn kubectl_at(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=30s")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .map(|mut s| s.write_all(input.as_bytes()));
    }
    child.wait_with_output().expect("kubectl output")
}

/// Runs kapi expecting it to refuse its flags at once.
pub fn refused(flags: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kapi"))
        .arg("--data-dir")
        .arg(data.path())
        .arg("--secure-port")
        .arg(free_port().to_string())
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + START_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kapi did not refuse {flags:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "kapi accepted {flags:?}");
    out
}

impl Drop for Kapi {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TLS client configuration that trusts kapi's CA and presents its admin certificate, with
/// `alpn` offered (`h2`, `http/1.1`).
pub fn admin_tls(data_dir: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(data_dir.join("ca.crt")).expect("ca.crt"))
        .expect("a CA certificate");
    let chain = vec![CertificateDer::from_pem_file(data_dir.join("admin.crt")).expect("admin.crt")];
    let key = PrivateKeyDer::from_pem_file(data_dir.join("admin.key")).expect("admin.key");
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("the admin certificate");
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tls
}

/// `kapi decode --encryption-provider-config <config> [--etcd-key <key>]` of `input`.
pub fn decode_encrypted(config: &Path, etcd_key: Option<&str>, input: &[u8]) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kapi"));
    cmd.args(["decode", "--encryption-provider-config"])
        .arg(config);
    if let Some(key) = etcd_key {
        cmd.args(["--etcd-key", key]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kapi decode starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writing to kapi decode");
    child.wait_with_output().expect("kapi decode ends")
}
