//! kube-apiserver's command line: kapi starts with the systemd unit of "Kubernetes the hard way"
//! (certificates made with openssl as that guide makes them, a real etcd), warns by name about
//! every flag it cannot honour yet, and each honoured flag has its effect.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::etcd::Etcd;
use support::kapi::{free_port, refused};
use support::openssl::{make_ca, openssl, sign};

/// How long a start may take (debug build, busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The guide's PKI: a CA, the API server's certificate, an admin certificate
/// (`O=system:masters`), the service-account key pair, an encryption configuration.
fn hard_way_pki(dir: &Path) {
    make_ca(dir, "ca");
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:kubernetes,DNS:server.kubernetes.local\n",
    )
    .unwrap();
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    sign(
        dir,
        "kube-api-server",
        "/CN=kubernetes",
        &ca_crt,
        &ca_key,
        Some("server.ext"),
    );
    sign(
        dir,
        "admin",
        "/CN=admin/O=system:masters",
        &ca_crt,
        &ca_key,
        None,
    );
    openssl(dir, &["genrsa", "-out", "service-accounts.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "service-accounts.key",
            "-days",
            "1",
            "-subj",
            "/CN=service-accounts",
            "-out",
            "service-accounts.crt",
        ],
    );
    std::fs::write(
        dir.join("encryption-config.yaml"),
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n              secret: c2VjcmV0IGlzIHNlY3VyZSwgaXMgaXQ/IHRoaXJ0eTI=\n      - identity: {}\n",
    )
    .unwrap();
}

/// The unit's flags, with the guide's paths in `pki`, its ports made free loopback ones, and
/// `--bind-address` loopback (tests use loopback only).
fn unit_flags(pki: &Path, etcd: &str, port: u16, audit_log: &Path) -> Vec<String> {
    let p = |f: &str| pki.join(f).display().to_string();
    [
        "--allow-privileged=true".to_string(),
        "--apiserver-count=1".into(),
        "--audit-log-maxage=30".into(),
        "--audit-log-maxbackup=3".into(),
        "--audit-log-maxsize=100".into(),
        format!("--audit-log-path={}", audit_log.display()),
        "--authorization-mode=Node,RBAC".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--client-ca-file={}", p("ca.crt")),
        "--enable-admission-plugins=NamespaceLifecycle,NodeRestriction,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota".into(),
        format!("--etcd-servers={etcd}"),
        "--event-ttl=1h".into(),
        format!("--encryption-provider-config={}", p("encryption-config.yaml")),
        format!("--kubelet-certificate-authority={}", p("ca.crt")),
        format!("--kubelet-client-certificate={}", p("kube-api-server.crt")),
        format!("--kubelet-client-key={}", p("kube-api-server.key")),
        "--runtime-config=api/all=true".into(),
        format!("--service-account-key-file={}", p("service-accounts.crt")),
        format!("--service-account-signing-key-file={}", p("service-accounts.key")),
        "--service-account-issuer=https://server.kubernetes.local:6443".into(),
        "--service-cluster-ip-range=10.32.0.0/24".into(),
        "--service-node-port-range=30000-32767".into(),
        format!("--tls-cert-file={}", p("kube-api-server.crt")),
        format!("--tls-private-key-file={}", p("kube-api-server.key")),
        "--v=2".into(),
        format!("--secure-port={port}"),
    ]
    .into()
}

/// A kapi started by hand (not `Kapi::start`: the unit's client CA is not kapi's own).
struct Started {
    child: Child,
    port: u16,
    log: PathBuf,
    data: tempfile::TempDir,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Started {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs a JSON object as the guide's admin; (code, body).
    fn post(&self, pki: &Path, path: &str, body: &str) -> (u16, String) {
        let args = [
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ];
        self.curl(pki, &args, path)
    }

    /// curl with the guide's admin certificate; (code, body).
    fn curl(&self, pki: &Path, extra: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "-w",
                "\n%{http_code}",
                "--cacert",
            ])
            .arg(pki.join("ca.crt"))
            .arg("--cert")
            .arg(pki.join("admin.crt"))
            .arg("--key")
            .arg(pki.join("admin.key"))
            .args(extra)
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }
}

const DEFAULT_SA: &str =
    r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}"#;

/// Starts kapi with `flags` and waits for `/readyz` (as the admin of `pki`).
fn start(flags: &[String], pki: &Path) -> Started {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("kapi.log");
    let port = flags
        .iter()
        .find_map(|f| f.strip_prefix("--secure-port="))
        .and_then(|p| p.parse().ok())
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kapi"))
        .arg("--data-dir")
        .arg(data.path())
        .args(flags)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("kapi starts");
    let mut started = Started {
        child,
        port,
        log,
        data,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if started.curl(pki, &[], "/readyz").0 == 200 {
            // The controller-manager's part: the namespace's default ServiceAccount, without
            // which the ServiceAccount admission plugin refuses pods.
            started.post(
                pki,
                "/api/v1/namespaces/default/serviceaccounts",
                DEFAULT_SA,
            );
            return started;
        }
        if let Ok(Some(status)) = started.child.try_wait() {
            panic!("kapi exited ({status}): {}", started.log());
        }
        assert!(Instant::now() < deadline, "not ready: {}", started.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A pod with a privileged container.
const PRIVILEGED_POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"priv"},
    "spec":{"containers":[{"name":"c","image":"busybox","securityContext":{"privileged":true}}]}}"#;

#[test]
fn help_lists_flags_under_upstreams_headings() {
    let out = Command::new(env!("CARGO_BIN_EXE_kapi"))
        .arg("-h")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = String::from_utf8_lossy(&out.stdout);
    for heading in [
        "Generic flags:",
        "Etcd flags:",
        "Secure serving flags:",
        "Auditing flags:",
        "Authentication flags:",
        "Authorization flags:",
        "API enablement flags:",
        "Admission flags:",
        "Misc flags:",
        "Logs flags:",
    ] {
        assert!(help.contains(heading), "no {heading} in:\n{help}");
    }
    for flag in [
        "--allow-privileged",
        "--authorization-mode",
        "--encryption-provider-config",
        "--requestheader-client-ca-file",
        "--service-account-issuer",
        "--kubelet-client-certificate",
        "--runtime-config",
        "--feature-gates",
        "--insecure-port",
    ] {
        assert!(help.contains(flag), "no {flag} in:\n{help}");
    }
}

#[test]
fn kapi_starts_with_the_hard_way_unit_and_honours_its_flags() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = pki_dir.path();
    hard_way_pki(pki);
    let etcd = Etcd::start();
    let audit_log = pki.join("audit.log");
    let flags = unit_flags(pki, &etcd.endpoint, free_port(), &audit_log);
    let k = start(&flags, pki);
    let log = k.log();
    // Whatever kapi cannot honour yet is named, never silent.
    // (The kubelet flags are honoured: `tests/kubelet.rs` proxies logs and exec with them.)
    for flag in [
        "--apiserver-count",
        "--kubelet-certificate-authority",
        "--kubelet-client-certificate",
    ] {
        assert!(!log.contains(&format!("flag {flag} ")), "{log}");
    }
    // api/all=true serves the beta and alpha versions; those of their resources whose feature
    // gate is off are named.
    assert!(
        log.contains(
            "certificates.k8s.io/v1beta1 clustertrustbundles is not served: the ClusterTrustBundle feature gate is off"
        ),
        "no warning for the gated-off beta resources of api/all:\n{log}"
    );
    // The unit's six plugins and every plugin upstream enables by default are kapi's.
    assert!(
        !log.contains("--enable-admission-plugins: kapi does not have these plugins yet"),
        "{log}"
    );
    assert!(
        !log.contains("admission plugins enabled by default upstream that kapi does not have yet"),
        "{log}"
    );
    // The admin of the guide's CA (a certificate from `openssl x509 -req`) is served; the
    // serving certificate is the guide's (curl verifies it against the guide's CA).
    let (code, body) = k.curl(pki, &[], "/api/v1/namespaces/default");
    assert_eq!(code, 200, "{body}");
    // --allow-privileged=true: a privileged pod is accepted.
    let (code, body) = k.post(pki, "/api/v1/namespaces/default/pods", PRIVILEGED_POD);
    assert_eq!(code, 201, "{body}");
    // --event-ttl=1h: an event is written with an etcd lease of 1h plus upstream's 60 s.
    let event = r#"{"apiVersion":"v1","kind":"Event","metadata":{"name":"e1"},
        "involvedObject":{"kind":"Pod","name":"priv","namespace":"default"},"reason":"Test"}"#;
    let (code, body) = k.post(pki, "/api/v1/namespaces/default/events", event);
    assert_eq!(code, 201, "{body}");
    let out = etcd.etcdctl(&["get", "/registry/events/default/e1", "-w", "json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let lease = v["kvs"][0]["lease"].as_i64().unwrap_or(0);
    assert_ne!(lease, 0, "event stored without a lease: {text}");
    let out = etcd.etcdctl(&["lease", "timetolive", &format!("{lease:x}")]);
    let ttl = String::from_utf8_lossy(&out.stdout);
    assert!(ttl.contains("granted with TTL(3660s)"), "{ttl}");
}

#[test]
fn each_honoured_flag_has_its_effect() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = pki_dir.path();
    hard_way_pki(pki);
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            format!("--client-ca-file={}", pki.join("ca.crt").display()),
            format!(
                "--tls-cert-file={}",
                pki.join("kube-api-server.crt").display()
            ),
            format!(
                "--tls-private-key-file={}",
                pki.join("kube-api-server.key").display()
            ),
            format!("--secure-port={}", free_port()),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // Upstream's default --allow-privileged=false, --runtime-config turning apps/v1 off,
    // --tls-min-version, --event-ttl.
    let k = start(
        &base(&[
            "--runtime-config=apps/v1=false",
            "--tls-min-version=VersionTLS13",
            "--min-request-timeout=60",
        ]),
        pki,
    );
    let (code, body) = k.post(pki, "/api/v1/namespaces/default/pods", PRIVILEGED_POD);
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains(
            "spec.containers[0].securityContext.privileged: Forbidden: disallowed by cluster policy"
        ),
        "{body}"
    );
    let (code, _) = k.curl(pki, &[], "/apis/apps/v1/deployments");
    assert_eq!(code, 404);
    let (code, _) = k.curl(pki, &[], "/apis/apps/v1");
    assert_eq!(code, 404);
    let (code, body) = k.curl(pki, &[], "/apis");
    assert_eq!(code, 200);
    assert!(!body.contains("\"apps\""), "{body}");
    assert!(body.contains("\"batch\""), "{body}");
    let (code, _) = k.curl(pki, &[], "/apis/batch/v1/jobs");
    assert_eq!(code, 200);
    // TLS 1.2 is refused; TLS 1.3 is served.
    let (code, _) = k.curl(pki, &["--tls-max", "1.2"], "/version");
    assert_eq!(code, 0, "a TLS 1.2 handshake succeeded");
    // A client certificate from kapi's own generated CA is not trusted when
    // --client-ca-file names another.
    let (code, _) = {
        let data_admin = k.data.path().join("admin.crt");
        let out = Command::new("curl")
            .args([
                "-sS",
                "-k",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cert",
            ])
            .arg(&data_admin)
            .arg("--key")
            .arg(k.data.path().join("admin.key"))
            .arg(format!("https://127.0.0.1:{}/api/v1/namespaces", k.port))
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u16>()
                .unwrap_or(0),
            (),
        )
    };
    assert_eq!(code, 401);
    drop(k);

    // Refused at start, with upstream's messages.
    let out = refused(&["--enable-admission-plugins=NamespaceLifecycle,Bogus"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("enable-admission-plugins plugin \"Bogus\" is unknown"),
        "{err}"
    );
    let out = refused(&["--storage-backend=etcd2"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("etcd2"));
    let out = refused(&["--service-cluster-ip-range=10.32.0.0/99"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid CIDR address"));
    let out = refused(&["--service-cluster-ip-range=10.32.0.0/24,10.33.0.0/24"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = refused(&["--runtime-config=apps/v1=maybe"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runtime-config"));
    let out = refused(&["--tls-cipher-suites=TLS_MADE_UP"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS_MADE_UP"));
}
