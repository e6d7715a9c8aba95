//! Service-account keys: the PEM files of `--service-account-key-file` (public keys,
//! certificates, or private keys whose public half is taken, as upstream's keyutil reads them)
//! and `--service-account-signing-key-file`, as RSA or ECDSA P-256 keys with upstream's key id
//! (the base64url SHA-256 of the PKIX public key) and their JWK form for `/openid/v1/jwks`.
//! Signing and verifying are ring's; only P-256 (ES256) and RSA (RS256) are taken.

use std::path::Path;

use base64::Engine;
use ring::signature::{self, KeyPair};
use serde_json::{Value, json};

/// The JWS algorithm a key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    ES256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
        }
    }

    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// A public key tokens are verified against.
#[derive(Clone)]
pub struct PublicKey {
    pub alg: Alg,
    /// Upstream's key id: base64url(SHA-256(PKIX DER)).
    pub kid: String,
    /// PKIX (SubjectPublicKeyInfo) DER.
    pub spki: Vec<u8>,
    /// RSA: (n, e), big-endian without leading zeros; EC: the uncompressed point in `n`.
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} key {}", self.alg.name(), self.kid)
    }
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl PublicKey {
    fn rsa(pkcs1: &[u8]) -> Result<PublicKey, String> {
        let spki = der::seq(&[
            der::seq(&[der::tlv(0x06, OID_RSA), der::tlv(0x05, &[])]),
            der::bit_string(pkcs1),
        ]);
        PublicKey::from_spki(&spki)
    }

    fn ec_p256(point: &[u8]) -> Result<PublicKey, String> {
        let spki = der::seq(&[
            der::seq(&[der::tlv(0x06, OID_EC), der::tlv(0x06, OID_P256)]),
            der::bit_string(point),
        ]);
        PublicKey::from_spki(&spki)
    }

    /// A PKIX public key (RSA, or ECDSA on P-256).
    fn from_spki(spki: &[u8]) -> Result<PublicKey, String> {
        use x509_parser::prelude::FromDer;
        use x509_parser::public_key::PublicKey as Parsed;
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
            .map_err(|e| format!("not a public key: {e}"))?;
        let (alg, n, e) = match info.parsed().map_err(|e| e.to_string())? {
            Parsed::RSA(rsa) => (
                Alg::RS256,
                strip_zeros(rsa.modulus).to_vec(),
                strip_zeros(rsa.exponent).to_vec(),
            ),
            Parsed::EC(point) => {
                let curve = info
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| oid.as_bytes().to_vec());
                if curve.as_deref() != Some(OID_P256) {
                    return Err("only ECDSA keys on P-256 are supported".into());
                }
                (Alg::ES256, point.data().to_vec(), Vec::new())
            }
            _ => return Err("only RSA and ECDSA public keys are supported".into()),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, spki);
        Ok(PublicKey {
            alg,
            kid: b64url(digest.as_ref()),
            spki: spki.to_vec(),
            n,
            e,
        })
    }

    /// The key as jsonwebtoken verifies with it.
    pub fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        match self.alg {
            Alg::RS256 => jsonwebtoken::DecodingKey::from_rsa_raw_components(&self.n, &self.e),
            Alg::ES256 => jsonwebtoken::DecodingKey::from_ec_der(&self.n),
        }
    }

    /// The key as a JSON Web Key, as upstream's JWKS lists it.
    pub fn jwk(&self) -> Value {
        match self.alg {
            Alg::RS256 => json!({
                "use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                "n": b64url(&self.n), "e": b64url(&self.e),
            }),
            Alg::ES256 => {
                // Uncompressed point: 0x04 || x || y.
                let coords = self.n.get(1..).unwrap_or_default();
                let (x, y) = coords.split_at(coords.len() / 2);
                json!({
                    "use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
                    "x": b64url(x), "y": b64url(y),
                })
            }
        }
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// The private key tokens are signed with.
pub struct SigningKey {
    inner: Signer,
    pub public: PublicKey,
}

enum Signer {
    Rsa(signature::RsaKeyPair),
    Ec(signature::EcdsaKeyPair),
}

impl SigningKey {
    /// The first private key in PEM `text` (PKCS#1, SEC1 or PKCS#8).
    pub fn from_pem(text: &[u8]) -> Result<SigningKey, String> {
        for pem in x509_parser::pem::Pem::iter_from_buffer(text) {
            let pem = pem.map_err(|e| format!("reading PEM: {e}"))?;
            if let Some(key) = private_key(&pem.label, &pem.contents)? {
                return Ok(key);
            }
        }
        Err("no private key found".into())
    }

    pub fn from_file(path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        SigningKey::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn alg(&self) -> Alg {
        self.public.alg
    }

    /// The JWS signature of `message` (ES256 in its fixed r||s form).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = ring::rand::SystemRandom::new();
        match &self.inner {
            Signer::Rsa(kp) => {
                let mut sig = vec![0; kp.public().modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| "RSA signing failed".to_string())?;
                Ok(sig)
            }
            Signer::Ec(kp) => kp
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_string()),
        }
    }
}

/// A private key of PEM block `label`, or `None` for a block that is not one.
fn private_key(label: &str, der: &[u8]) -> Result<Option<SigningKey>, String> {
    let rng = ring::rand::SystemRandom::new();
    let ec = |pkcs8: &[u8]| -> Result<SigningKey, String> {
        let kp = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &rng,
        )
        .map_err(|e| format!("ECDSA key: {e}"))?;
        let public = PublicKey::ec_p256(kp.public_key().as_ref())?;
        Ok(SigningKey {
            inner: Signer::Ec(kp),
            public,
        })
    };
    let rsa = |kp: signature::RsaKeyPair| -> Result<SigningKey, String> {
        let public = PublicKey::rsa(kp.public().as_ref())?;
        Ok(SigningKey {
            inner: Signer::Rsa(kp),
            public,
        })
    };
    match label {
        "RSA PRIVATE KEY" => {
            rsa(signature::RsaKeyPair::from_der(der).map_err(|e| format!("RSA key: {e}"))?)
                .map(Some)
        }
        "EC PRIVATE KEY" => ec(&sec1_to_pkcs8(der)).map(Some),
        "PRIVATE KEY" => match signature::RsaKeyPair::from_pkcs8(der) {
            Ok(kp) => rsa(kp).map(Some),
            Err(_) => ec(der).map(Some),
        },
        _ => Ok(None),
    }
}

/// A SEC1 `ECPrivateKey` on P-256 wrapped as PKCS#8, the form ring reads.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    der::seq(&[
        der::tlv(0x02, &[0]),
        der::seq(&[der::tlv(0x06, OID_EC), der::tlv(0x06, OID_P256)]),
        der::tlv(0x04, sec1),
    ])
}

/// Every public key in PEM `text`: public keys, RSA public keys, certificates; when there is
/// none, the public halves of the private keys (upstream's `PublicKeysFromFile`).
pub fn public_keys_from_pem(text: &[u8]) -> Result<Vec<PublicKey>, String> {
    let mut public = Vec::new();
    let mut private = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|e| format!("reading PEM: {e}"))?;
        match pem.label.as_str() {
            "PUBLIC KEY" => public.push(PublicKey::from_spki(&pem.contents)?),
            "RSA PUBLIC KEY" => public.push(PublicKey::rsa(&pem.contents)?),
            "CERTIFICATE" => {
                let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents)
                    .map_err(|e| format!("certificate: {e}"))?;
                public.push(PublicKey::from_spki(cert.public_key().raw)?);
            }
            label => {
                if let Some(key) = private_key(label, &pem.contents)? {
                    private.push(key.public);
                }
            }
        }
    }
    if public.is_empty() {
        public = private;
    }
    if public.is_empty() {
        return Err("data does not contain any valid RSA or ECDSA public keys".into());
    }
    Ok(public)
}

pub fn public_keys_from_file(path: &Path) -> Result<Vec<PublicKey>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    public_keys_from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Just enough DER writing for the key wrappers above.
mod der {
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    pub fn seq(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &items.concat())
    }

    pub fn bit_string(bits: &[u8]) -> Vec<u8> {
        let mut content = vec![0];
        content.extend_from_slice(bits);
        tlv(0x03, &content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ecdsa_private_key_signs_and_its_certificate_and_pkcs8_agree_on_the_kid() {
        let key = rcgen::KeyPair::generate().unwrap();
        let signing = SigningKey::from_pem(key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(signing.alg(), Alg::ES256);
        let cert = rcgen::CertificateParams::new(vec!["sa".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let from_cert = public_keys_from_pem(cert.pem().as_bytes()).unwrap();
        let from_public = public_keys_from_pem(key.public_key_pem().as_bytes()).unwrap();
        assert_eq!(from_cert[0].kid, signing.public.kid);
        assert_eq!(from_public[0].kid, signing.public.kid);
        let sig = signing.sign(b"message").unwrap();
        let point = &signing.public.n;
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(b"message", &sig)
            .unwrap();
        let jwk = signing.public.jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["x"].as_str().unwrap().len(), 43);
    }

    #[test]
    fn openssl_keys_pkcs1_rsa_and_sec1_ec_match_their_public_files() {
        let rsa = SigningKey::from_pem(include_bytes!("../../tests/data/serviceaccounts/rsa.key"))
            .unwrap();
        assert_eq!(rsa.alg(), Alg::RS256);
        let rsa_pub =
            public_keys_from_pem(include_bytes!("../../tests/data/serviceaccounts/rsa.pub"))
                .unwrap();
        assert_eq!(rsa_pub[0].kid, rsa.public.kid);
        // A key file with only a private key verifies with its public half.
        let from_private =
            public_keys_from_pem(include_bytes!("../../tests/data/serviceaccounts/rsa.key"))
                .unwrap();
        assert_eq!(from_private[0].spki, rsa_pub[0].spki);
        assert_eq!(rsa.public.jwk()["e"], "AQAB");
        let ec = SigningKey::from_pem(include_bytes!("../../tests/data/serviceaccounts/ec.key"))
            .unwrap();
        let ec_pub =
            public_keys_from_pem(include_bytes!("../../tests/data/serviceaccounts/ec.pub"))
                .unwrap();
        assert_eq!(ec.alg(), Alg::ES256);
        assert_eq!(ec_pub[0].kid, ec.public.kid);
        // The same RSA key as PKCS#8, and in a certificate (the hard way's key files).
        let pk8 = SigningKey::from_pem(include_bytes!("../../tests/data/serviceaccounts/rsa.pk8"))
            .unwrap();
        assert_eq!(pk8.public.kid, rsa.public.kid);
        let cert = public_keys_from_pem(include_bytes!("../../tests/data/serviceaccounts/rsa.crt"))
            .unwrap();
        assert_eq!(cert[0].kid, rsa.public.kid);
    }

    #[test]
    fn a_file_without_keys_is_refused() {
        assert!(public_keys_from_pem(b"nothing here").is_err());
        assert!(SigningKey::from_pem(b"").is_err());
    }
}
