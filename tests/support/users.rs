//! Test users: client certificates with a name and groups signed by kapi's CA (openssl, with
//! clientAuth), their kubeconfigs, and HTTPS clients that present them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::kapi::Kapi;

/// Serial numbers of the certificates signed here: distinct within a test.
static SERIAL: AtomicU64 = AtomicU64::new(1000);

/// A test user: its certificate, key and kubeconfig.
pub struct User {
    pub kubeconfig: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub port: u16,
    pub ca: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client certificate `CN=<name>, O=<group>...` signed by kapi's CA, and a kubeconfig.
pub fn user(k: &Kapi, name: &str, groups: &[&str]) -> User {
    let dir = k.data_dir.join("users");
    std::fs::create_dir_all(&dir).unwrap();
    let file = name.replace(':', "_");
    let key = dir.join(format!("{file}.key"));
    let csr = dir.join(format!("{file}.csr"));
    let cert = dir.join(format!("{file}.crt"));
    let ext = dir.join("ext");
    std::fs::write(
        &ext,
        "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    )
    .unwrap();
    let mut subject = format!("/CN={name}");
    for g in groups {
        subject.push_str(&format!("/O={g}"));
    }
    run(Command::new("openssl")
        .args([
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", &subject,
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed).to_string();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-set_serial", &serial])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(k.data_dir.join("ca.crt"))
        .arg("-CAkey")
        .arg(k.data_dir.join("ca.key"))
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert));
    let kubeconfig = dir.join(format!("{file}.kubeconfig"));
    let ca = k.data_dir.join("ca.crt");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kapi\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: c\n  context:\n    cluster: kapi\n    user: u\ncurrent-context: c\n",
            k.port,
            ca.display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    User {
        kubeconfig,
        cert,
        key,
        port: k.port,
        ca,
    }
}

pub fn tls_client(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::blocking::Client {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).expect("ca.crt"))
        .expect("a CA");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let tls = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).expect("cert")],
                PrivateKeyDer::from_pem_file(key).expect("key"),
            )
            .expect("a client certificate"),
        None => builder.with_no_client_auth(),
    };
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_backend_preconfigured(tls)
        .build()
        .expect("an HTTP client")
}

/// How long a change of RBAC objects may take to be in force: the authorizer follows the
/// watch cache, as upstream's follows its informers, so a just-written binding lags a little.
pub const PROPAGATION: Duration = Duration::from_secs(20);

/// Waits (bounded by [`PROPAGATION`]) until `f` holds.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let since = Instant::now();
    while !f() {
        assert!(since.elapsed() < PROPAGATION, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `kubectl auth can-i <args>` answers yes: an RBAC change is in force.
pub fn until_allowed(k: &Kapi, args: &[&str]) {
    let mut a = vec!["auth", "can-i"];
    a.extend_from_slice(args);
    eventually(&format!("{a:?}"), || k.kubectl(&a).status.success());
}
