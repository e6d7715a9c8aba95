//! Zero-config PKI: on first start a CA, a serving certificate, an admin client certificate and
//! its kubeconfig are created in the data directory; later starts reuse them. Also builds the
//! rustls server configuration the transport serves with, from certificate files.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

/// The CA outlives many restarts of a development cluster; its clients trust it by file.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Leaf certificates, as upstream's self-signed serving certificate (one year).
const LEAF_VALIDITY: Duration = Duration::days(365);
/// A leaf closer than this to expiry is reissued at start, so a long-lived data directory never
/// serves an expired certificate.
const RENEW_BEFORE: Duration = Duration::days(30);
/// Clocks of clients a little behind ours still accept a fresh certificate.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// The names every serving certificate covers: loopback, and the in-cluster names of the
/// `kubernetes` service.
const SERVING_NAMES: [&str; 7] = [
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];
const ADMIN_USER: &str = "kapi-admin";
const ADMIN_GROUP: &str = "system:masters";

/// The files of a data directory's PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub admin_kubeconfig: PathBuf,
}

/// Creates what is missing of the PKI in `data_dir`, reusing what is there: a leaf is reissued
/// only when missing, unreadable, near expiry, not issued by the CA, or (the serving
/// certificate) not covering every name in `hosts`. A new CA reissues both leaves.
pub fn ensure(data_dir: &Path, hosts: &[String]) -> io::Result<Pki> {
    fs::create_dir_all(data_dir)?;
    let pki = Pki::at(data_dir);
    let (ca_pem, ca_key, new_ca) = match read_pair(&pki.ca_cert, &pki.ca_key) {
        Some((cert, key)) => (cert, key, false),
        None => {
            let key = KeyPair::generate().map_err(invalid)?;
            let cert = ca_params().self_signed(&key).map_err(invalid)?;
            write_file(&pki.ca_cert, cert.pem().as_bytes(), 0o644)?;
            write_file(&pki.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
            (cert.pem(), key, true)
        }
    };
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(invalid)?;
    let ca_subject = x509_parser::parse_x509_certificate(&ca_der)
        .map_err(invalid)?
        .1
        .subject()
        .as_raw()
        .to_vec();
    let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key).map_err(invalid)?;

    let mut names: Vec<String> = SERVING_NAMES.iter().map(|n| n.to_string()).collect();
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    if new_ca || !leaf_is_current(&pki.serving_cert, &pki.serving_key, &ca_subject, &names) {
        let mut params = CertificateParams::new(names).map_err(invalid)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kapi-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        issue_leaf(params, &issuer, &pki.serving_cert, &pki.serving_key)?;
    }
    if new_ca || !leaf_is_current(&pki.admin_cert, &pki.admin_key, &ca_subject, &[]) {
        let mut params = CertificateParams::new(Vec::new()).map_err(invalid)?;
        params
            .distinguished_name
            .push(DnType::CommonName, ADMIN_USER);
        params
            .distinguished_name
            .push(DnType::OrganizationName, ADMIN_GROUP);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        issue_leaf(params, &issuer, &pki.admin_cert, &pki.admin_key)?;
    }
    Ok(pki)
}

impl Pki {
    fn at(dir: &Path) -> Pki {
        Pki {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            admin_kubeconfig: dir.join("admin.kubeconfig"),
        }
    }

    /// Writes `admin.kubeconfig` for the server on `port` (rewritten at every start: the port may
    /// change), with the CA and the admin credentials embedded, context `kapi`.
    pub fn write_kubeconfig(&self, port: u16) -> io::Result<()> {
        let b64 = |path: &Path| -> io::Result<String> {
            Ok(base64::engine::general_purpose::STANDARD.encode(fs::read(path)?))
        };
        let kubeconfig = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: kapi
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority-data: {ca}
users:
- name: {ADMIN_USER}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: kapi
  context:
    cluster: kapi
    user: {ADMIN_USER}
current-context: kapi
",
            ca = b64(&self.ca_cert)?,
            cert = b64(&self.admin_cert)?,
            key = b64(&self.admin_key)?,
        );
        write_file(&self.admin_kubeconfig, kubeconfig.as_bytes(), 0o600)
    }
}

/// The rustls configuration the transport serves with: the serving certificate chain and key,
/// ALPN `h2` then `http/1.1`, and, with client CA bundles, a request for a client certificate
/// naming them, not required (a client without one is anonymous). The handshake proves the
/// client holds the certificate's key; the authenticators verify the chain
/// (`crate::authn::x509`), as upstream does.
pub fn server_tls(
    cert: &Path,
    key: &Path,
    client_cas: &[&crate::authn::x509::CaBundle],
) -> io::Result<Arc<rustls::ServerConfig>> {
    server_tls_with(cert, key, client_cas, &TlsSettings::default())
}

/// `--tls-min-version` and `--tls-cipher-suites`.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub tls13_only: bool,
    /// The suites to offer (TLS 1.3 ones are always kept, as Go keeps them); all when empty.
    pub cipher_suites: Vec<rustls::SupportedCipherSuite>,
}

/// `server_tls` with the TLS flags' settings.
pub fn server_tls_with(
    cert: &Path,
    key: &Path,
    client_cas: &[&crate::authn::x509::CaBundle],
    settings: &TlsSettings,
) -> io::Result<Arc<rustls::ServerConfig>> {
    // The provider is named, not taken from the process default, so that no other crate's
    // choice of provider can change (or break) it.
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || settings
                    .cipher_suites
                    .iter()
                    .any(|c| c.suite() == s.suite())
        });
    }
    let provider = Arc::new(provider);
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(invalid)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(invalid)?;
    let algorithms = provider.signature_verification_algorithms;
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(invalid)?;
    let builder = if client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(Arc::new(crate::authn::x509::HandshakeVerifier::new(
            client_cas, algorithms,
        )))
    };
    let mut config = builder.with_single_cert(chain, key).map_err(invalid)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "kapi-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + CA_VALIDITY;
    params
}

fn issue_leaf(
    mut params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    cert_path: &Path,
    key_path: &Path,
) -> io::Result<()> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + LEAF_VALIDITY;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(invalid)?;
    let cert = params.signed_by(&key, issuer).map_err(invalid)?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)
}

/// A certificate PEM and its key, if both files are there and the key parses.
fn read_pair(cert: &Path, key: &Path) -> Option<(String, KeyPair)> {
    let cert = fs::read_to_string(cert).ok()?;
    let key = KeyPair::from_pem(&fs::read_to_string(key).ok()?).ok()?;
    Some((cert, key))
}

/// Whether the leaf at `cert_path` can be served as is: readable with its key, issued by the CA
/// with subject `ca_subject`, valid for a while yet, and covering `names`.
fn leaf_is_current(cert_path: &Path, key_path: &Path, ca_subject: &[u8], names: &[String]) -> bool {
    let Some((pem, _)) = read_pair(cert_path, key_path) else {
        return false;
    };
    let Ok(der) = CertificateDer::from_pem_slice(pem.as_bytes()) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    let renew_at = OffsetDateTime::now_utc() + RENEW_BEFORE;
    if cert.issuer().as_raw() != ca_subject || cert.validity().not_after.to_datetime() < renew_at {
        return false;
    }
    let covered: Vec<&GeneralName> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().collect(),
        Ok(None) => Vec::new(),
        Err(_) => return false,
    };
    names.iter().all(|name| {
        covered
            .iter()
            .any(|general| match (general, name.parse::<IpAddr>()) {
                (GeneralName::IPAddress(bytes), Ok(IpAddr::V4(ip))) => *bytes == ip.octets(),
                (GeneralName::IPAddress(bytes), Ok(IpAddr::V6(ip))) => *bytes == ip.octets(),
                (GeneralName::DNSName(dns), Err(_)) => dns.eq_ignore_ascii_case(name),
                _ => false,
            })
    })
}

/// Writes `path` whole or not at all (a temporary file renamed over it), with `mode`.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    // The mode given at creation is masked by the umask, and an existing file keeps its own.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_creates_the_pki_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        let first = fs::read(&pki.serving_cert).unwrap();
        let admin = fs::read(&pki.admin_cert).unwrap();
        for key in [&pki.ca_key, &pki.serving_key, &pki.admin_key] {
            assert_eq!(
                fs::metadata(key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let again = ensure(dir.path(), &[]).unwrap();
        assert_eq!(fs::read(&again.serving_cert).unwrap(), first);
        assert_eq!(fs::read(&again.admin_cert).unwrap(), admin);

        // A new host reissues the serving certificate only.
        let more = ensure(dir.path(), &["kapi.example".to_string()]).unwrap();
        assert_ne!(fs::read(&more.serving_cert).unwrap(), first);
        assert_eq!(fs::read(&more.admin_cert).unwrap(), admin);
        let der = CertificateDer::from_pem_file(&more.serving_cert).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names = &san.value.general_names;
        assert!(names.contains(&GeneralName::DNSName("kapi.example")));
        assert!(names.contains(&GeneralName::DNSName(
            "kubernetes.default.svc.cluster.local"
        )));
        assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    }

    #[test]
    fn admin_certificate_names_the_admin_in_system_masters() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        let der = CertificateDer::from_pem_file(&pki.admin_cert).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        let o = cert
            .subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!((cn, o), (ADMIN_USER, ADMIN_GROUP));
    }

    #[test]
    fn kubeconfig_embeds_the_ca_and_admin_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        pki.write_kubeconfig(6443).unwrap();
        let text = fs::read_to_string(&pki.admin_kubeconfig).unwrap();
        assert!(text.contains("server: https://127.0.0.1:6443"));
        assert!(text.contains("current-context: kapi"));
        let engine = base64::engine::general_purpose::STANDARD;
        let ca = engine.encode(fs::read(&pki.ca_cert).unwrap());
        assert!(text.contains(&format!("certificate-authority-data: {ca}")));
        let mode = fs::metadata(&pki.admin_kubeconfig)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn server_tls_offers_h2_then_http1() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        let ca = crate::authn::x509::CaBundle::from_pem_file(&pki.ca_cert).unwrap();
        let config = server_tls(&pki.serving_cert, &pki.serving_key, &[&ca]).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
