//! Client certificates: the TLS handshake only proves that the client holds the key of the
//! certificate it sent; the authenticators here verify the chain against their CA bundle, as
//! upstream's (Go's `tls.RequestClientCert`, then `x509.Verify` in the authenticator).
//!
//! - `X509`: a chain to `--client-ca-file` names the user (CN) and its groups (each O), as
//!   upstream's `CommonNameUserConversion`.
//! - `RequestHeader` (`--requestheader-*`): a chain to `--requestheader-client-ca-file` whose CN
//!   is allowed makes the `X-Remote-User`/`-Group`/`-Extra-`/`-Uid` headers the identity (a
//!   front proxy such as an aggregated API server's caller).
//!
//! Certificates without v3 extensions (`openssl x509 -req` without an extension file) are
//! accepted, as Go accepts them and rustls' webpki verifier does not; chains are checked with
//! x509-parser (signatures via ring). Each verdict is worked out once per connection (the
//! certificate cannot change on it) and kept in the connection's memo.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::{Authenticator, Outcome, UserInfo};
use crate::transport::Request;

/// Longest chain (leaf, intermediates, root) followed: deeper chains are refused.
const MAX_CHAIN_DEPTH: usize = 5;

/// A CA bundle (PEM, one or more certificates) that client certificates are verified against.
#[derive(Debug, Clone, Default)]
pub struct CaBundle {
    roots: Vec<Vec<u8>>,
}

impl CaBundle {
    pub fn from_pem_file(path: &Path) -> std::io::Result<CaBundle> {
        let pem = std::fs::read(path)?;
        CaBundle::from_pem(&pem).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    pub fn from_pem(pem: &[u8]) -> Result<CaBundle, String> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = Vec::new();
        for der in CertificateDer::pem_slice_iter(pem) {
            let der = der.map_err(|e| e.to_string())?;
            X509Certificate::from_der(&der).map_err(|e| format!("not a certificate: {e}"))?;
            roots.push(der.to_vec());
        }
        if roots.is_empty() {
            return Err("no certificate in the CA bundle".into());
        }
        Ok(CaBundle { roots })
    }

    /// The subjects the server names in its certificate request.
    pub fn subjects(&self) -> Vec<DistinguishedName> {
        self.roots
            .iter()
            .filter_map(|der| X509Certificate::from_der(der).ok())
            .map(|(_, c)| DistinguishedName::from(c.subject().as_raw().to_vec()))
            .collect()
    }

    /// Verifies a presented chain (leaf first) for client authentication at `now` (seconds
    /// since the epoch): upstream's message on failure.
    pub fn verify(&self, chain: &[CertificateDer<'_>], now: i64) -> Result<(), String> {
        let Some(leaf_der) = chain.first() else {
            return Err("no client certificate".into());
        };
        let (_, leaf) = X509Certificate::from_der(leaf_der)
            .map_err(|e| format!("x509: malformed certificate: {e}"))?;
        check_time(&leaf, now)?;
        if let Ok(Some(eku)) = leaf.extended_key_usage() {
            let eku = &eku.value;
            if !eku.any && !eku.client_auth {
                return Err("x509: certificate specifies an incompatible key usage".into());
            }
        }
        let roots: Vec<X509Certificate<'_>> = self
            .roots
            .iter()
            .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
            .collect();
        let intermediates: Vec<X509Certificate<'_>> = chain[1..]
            .iter()
            .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
            .collect();
        let mut current = leaf;
        for _ in 0..MAX_CHAIN_DEPTH {
            if roots.iter().any(|root| signed_by(&current, root)) {
                return Ok(());
            }
            let next = intermediates
                .iter()
                .find(|ca| ca.is_ca() && signed_by(&current, ca) && check_time(ca, now).is_ok());
            match next {
                Some(ca) => current = ca.clone(),
                None => break,
            }
        }
        Err("x509: certificate signed by unknown authority".into())
    }
}

fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

fn check_time(cert: &X509Certificate<'_>, now: i64) -> Result<(), String> {
    let validity = cert.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err(format!(
            "x509: certificate has expired or is not yet valid: current time {} is outside {} – {}",
            now, validity.not_before, validity.not_after
        ));
    }
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The handshake's client-certificate verifier: asks for a certificate (naming the configured
/// CAs), accepts any well-formed one, and checks the handshake signature with its public key,
/// so that the certificate is proven held. Which CA it chains to is the authenticators' call.
#[derive(Debug)]
pub struct HandshakeVerifier {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl HandshakeVerifier {
    pub fn new(bundles: &[&CaBundle], algorithms: WebPkiSupportedAlgorithms) -> HandshakeVerifier {
        HandshakeVerifier {
            hints: bundles.iter().flat_map(|b| b.subjects()).collect(),
            algorithms,
        }
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = X509Certificate::from_der(cert).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let key = &parsed.public_key().subject_public_key.data;
        let algorithms = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        if algorithms
            .iter()
            .any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
        {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadSignature,
            ))
        }
    }
}

impl ClientCertVerifier for HandshakeVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        X509Certificate::from_der(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !matches!(
            dss.scheme,
            SignatureScheme::ECDSA_NISTP256_SHA256
                | SignatureScheme::ECDSA_NISTP384_SHA384
                | SignatureScheme::ECDSA_NISTP521_SHA512
                | SignatureScheme::RSA_PSS_SHA256
                | SignatureScheme::RSA_PSS_SHA384
                | SignatureScheme::RSA_PSS_SHA512
                | SignatureScheme::ED25519
                | SignatureScheme::ED448
        ) {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What a connection's certificate chain means, worked out once and kept in its memo.
#[derive(Debug, Default)]
struct Verdicts {
    /// `X509`: the user, or the reason the chain does not verify against `--client-ca-file`.
    client: Option<Result<UserInfo, String>>,
    /// `RequestHeader`: whether the chain is a front proxy's (verified, CN allowed).
    proxy: Option<Result<(), String>>,
}

fn verdicts(req: &Request) -> Option<&std::cell::RefCell<Verdicts>> {
    let memo = req
        .peer
        .memo
        .get_or_init(|| Rc::new(std::cell::RefCell::new(Verdicts::default())));
    memo.downcast_ref::<std::cell::RefCell<Verdicts>>()
}

/// The client-certificate authenticator (`--client-ca-file`).
pub struct X509 {
    pub ca: CaBundle,
}

impl Authenticator for X509 {
    fn authenticate(&self, req: &Request) -> Outcome {
        if req.peer.certificates.is_empty() {
            return Outcome::NotMine;
        }
        let Some(cell) = verdicts(req) else {
            return Outcome::Invalid;
        };
        let mut v = cell.borrow_mut();
        let verdict = v.client.get_or_insert_with(|| {
            self.ca
                .verify(&req.peer.certificates, unix_now())
                .and_then(|()| {
                    user_of(req.peer.certificates[0].as_ref())
                        .ok_or_else(|| "the certificate names no user (empty CN)".to_string())
                })
        });
        match verdict {
            Ok(user) => Outcome::User(user.clone()),
            // A chain that does not verify, or a certificate without a CN: upstream's 401.
            Err(_) => Outcome::Invalid,
        }
    }
}

/// CN is the user and each O a group, the certificate's SHA-256 its credential id; a
/// certificate without a CN names no one.
fn user_of(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    // The certificate's fingerprint as the credential id, as upstream 1.36 records it.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(der);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut extra = std::collections::BTreeMap::new();
    extra.insert(
        super::serviceaccount::CREDENTIAL_ID_KEY.to_string(),
        vec![format!("X509SHA256={hex}")],
    );
    Some(UserInfo {
        name: name.to_owned(),
        groups,
        extra,
        ..UserInfo::default()
    })
}

/// The front-proxy authenticator (`--requestheader-*`), first in the chain as upstream's.
pub struct RequestHeader {
    pub ca: CaBundle,
    /// CNs allowed to act as a front proxy; any CN when empty.
    pub allowed_names: Vec<String>,
    /// Header names, lower-cased (HeaderMap lookups are case-insensitive).
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_prefixes: Vec<String>,
}

impl RequestHeader {
    fn proxy_verified(&self, req: &Request) -> Result<(), String> {
        let Some(cell) = verdicts(req) else {
            return Err("no memo".into());
        };
        let mut v = cell.borrow_mut();
        v.proxy
            .get_or_insert_with(|| {
                self.ca.verify(&req.peer.certificates, unix_now())?;
                if self.allowed_names.is_empty() {
                    return Ok(());
                }
                let cn = user_of(req.peer.certificates[0].as_ref())
                    .map(|u| u.name)
                    .unwrap_or_default();
                if self.allowed_names.contains(&cn) {
                    Ok(())
                } else {
                    Err(format!(
                        "x509: subject with cn={cn} is not in the allowed list"
                    ))
                }
            })
            .clone()
    }
}

fn header_values<'a>(req: &'a Request, names: &'a [String]) -> impl Iterator<Item = &'a str> {
    names.iter().flat_map(move |n| {
        req.headers
            .get_all(n.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
    })
}

impl Authenticator for RequestHeader {
    fn authenticate(&self, req: &Request) -> Outcome {
        if req.peer.certificates.is_empty() {
            return Outcome::NotMine;
        }
        let Some(name) = header_values(req, &self.username_headers)
            .find(|v| !v.is_empty())
            .map(str::to_owned)
        else {
            return Outcome::NotMine;
        };
        if self.proxy_verified(req).is_err() {
            // Upstream: the verifier's error; the chain goes on (the x509 authenticator may
            // still accept the certificate), and fails with 401 when no one does.
            return Outcome::Invalid;
        }
        let uid = header_values(req, &self.uid_headers)
            .find(|v| !v.is_empty())
            .unwrap_or("")
            .to_owned();
        let groups = header_values(req, &self.group_headers)
            .map(str::to_owned)
            .collect();
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &req.headers {
            let name = name.as_str();
            let Some(prefix) = self
                .extra_prefixes
                .iter()
                .find(|p| name.starts_with(p.as_str()))
            else {
                continue;
            };
            let Ok(value) = value.to_str() else { continue };
            // Upstream unescapes the key (percent-encoding) and lower-cases it.
            let key = percent_encoding::percent_decode_str(&name[prefix.len()..])
                .decode_utf8_lossy()
                .to_lowercase();
            extra.entry(key).or_default().push(value.to_owned());
        }
        Outcome::User(UserInfo {
            name,
            uid,
            groups,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_is_the_user_and_organizations_the_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "devs");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let user = user_of(cert.der()).unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["devs"]);
        assert_eq!(user_of(b"not a certificate"), None);
    }

    fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap(), key)
    }

    fn leaf(
        cn: &str,
        issuer: &rcgen::Certificate,
        issuer_key: &rcgen::KeyPair,
        eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
    ) -> rcgen::Certificate {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = eku;
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(issuer.der(), issuer_key).unwrap();
        params.signed_by(&key, &issuer).unwrap()
    }

    #[test]
    fn chains_verify_against_their_own_bundle_only() {
        let (ca1, k1) = ca("ca-one");
        let (ca2, _) = ca("ca-two");
        let bundle1 = CaBundle::from_pem(ca1.pem().as_bytes()).unwrap();
        let bundle2 = CaBundle::from_pem(ca2.pem().as_bytes()).unwrap();
        let alice = leaf("alice", &ca1, &k1, vec![]);
        let chain = [CertificateDer::from(alice.der().to_vec())];
        assert_eq!(bundle1.verify(&chain, unix_now()), Ok(()));
        assert_eq!(
            bundle2.verify(&chain, unix_now()),
            Err("x509: certificate signed by unknown authority".into())
        );
        // Long before it was valid (rcgen's default validity starts in 1975).
        assert!(
            bundle1
                .verify(&chain, unix_now() - 100 * 365 * 86400)
                .is_err()
        );
        // A server-only certificate is not a client certificate.
        let server = leaf(
            "srv",
            &ca1,
            &k1,
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
        );
        let chain = [CertificateDer::from(server.der().to_vec())];
        assert_eq!(
            bundle1.verify(&chain, unix_now()),
            Err("x509: certificate specifies an incompatible key usage".into())
        );
    }

    #[test]
    fn intermediates_sent_by_the_client_complete_the_chain() {
        let (root, root_key) = ca("root");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "intermediate");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let inter_key = rcgen::KeyPair::generate().unwrap();
        let root_issuer = rcgen::Issuer::from_ca_cert_der(root.der(), &root_key).unwrap();
        let inter = params.signed_by(&inter_key, &root_issuer).unwrap();
        let bob = leaf("bob", &inter, &inter_key, vec![]);
        let bundle = CaBundle::from_pem(root.pem().as_bytes()).unwrap();
        let alone = [CertificateDer::from(bob.der().to_vec())];
        assert!(bundle.verify(&alone, unix_now()).is_err());
        let chain = [
            CertificateDer::from(bob.der().to_vec()),
            CertificateDer::from(inter.der().to_vec()),
        ];
        assert_eq!(bundle.verify(&chain, unix_now()), Ok(()));
    }
}
