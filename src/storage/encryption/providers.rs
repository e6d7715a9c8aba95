//! The value transformers of upstream's `EncryptionConfiguration` providers, byte for byte as
//! kube-apiserver writes them, so that kapi and kube-apiserver read each other's values:
//!
//! - `identity`: the value as is (no prefix).
//! - `aescbc`: `k8s:enc:aescbc:v1:<key>:` + IV (16 random bytes) + AES-CBC(PKCS#7 padded value).
//! - `aesgcm`: `k8s:enc:aesgcm:v1:<key>:` + nonce (12 random bytes) + AES-GCM(value) with its
//!   16-byte tag, the etcd key being the additional authenticated data.
//! - `secretbox`: `k8s:enc:secretbox:v1:<key>:` + nonce (24 random bytes) + NaCl secretbox
//!   (Poly1305 tag first, then XSalsa20 ciphertext).
//!
//! Only GCM binds the etcd key (upstream passes it to every transformer; CBC and secretbox
//! cannot use it).

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{AesGcm, Nonce};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use crypto_secretbox::XSalsa20Poly1305;

pub const AESCBC_PREFIX: &str = "k8s:enc:aescbc:v1:";
pub const AESGCM_PREFIX: &str = "k8s:enc:aesgcm:v1:";
pub const SECRETBOX_PREFIX: &str = "k8s:enc:secretbox:v1:";
/// What every encrypted value starts with; identity refuses to read such values.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

const AES_BLOCK: usize = 16;
const GCM_NONCE: usize = 12;
const GCM_TAG: usize = 16;
const SECRETBOX_NONCE: usize = 24;
const SECRETBOX_TAG: usize = 16;

/// One named key of a provider: its value prefix (`k8s:enc:aescbc:v1:key1:`) and secret.
#[derive(Clone)]
pub struct NamedKey {
    pub prefix: Box<[u8]>,
    /// 16, 24 or 32 bytes for AES, 32 for secretbox (checked when the configuration is read).
    secret: Box<[u8]>,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        write!(f, "NamedKey({})", String::from_utf8_lossy(&self.prefix))
    }
}

impl NamedKey {
    pub fn new(provider_prefix: &str, name: &str, secret: Vec<u8>) -> NamedKey {
        NamedKey {
            prefix: format!("{provider_prefix}{name}:").into_bytes().into(),
            secret: secret.into(),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Provider {
    Identity,
    AesCbc(Vec<NamedKey>),
    AesGcm(Vec<NamedKey>),
    Secretbox(Vec<NamedKey>),
    /// A KMS v2 plugin's envelope encryption; its reads may call the plugin (`open_with`).
    Kms(std::sync::Arc<super::kms::Kms>),
}

/// Why a value could not be read or written.
pub type Error = String;

/// Seals `value` (with the secret and the etcd key) onto the end of `out`.
type SealFn = fn(&[u8], &[u8], &[u8], &mut Vec<u8>) -> Result<(), Error>;
/// Opens a sealed value (secret, sealed bytes, etcd key).
type OpenFn = fn(&[u8], &[u8], &[u8]) -> Result<Vec<u8>, Error>;

impl Provider {
    /// The provider's value prefix, shared by its keys (empty for identity).
    pub fn prefix(&self) -> &'static str {
        match self {
            Provider::Identity => "",
            Provider::AesCbc(_) => AESCBC_PREFIX,
            Provider::AesGcm(_) => AESGCM_PREFIX,
            Provider::Secretbox(_) => SECRETBOX_PREFIX,
            Provider::Kms(_) => super::kms::envelope::KMS_V2_PREFIX,
        }
    }

    /// Writes `value` with the provider's first key; `None` for identity (the value unchanged).
    pub fn seal(&self, value: &[u8], etcd_key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let (key, seal): (_, SealFn) = match self {
            Provider::Identity => return Ok(None),
            Provider::AesCbc(keys) => (keys.first(), cbc_seal),
            Provider::AesGcm(keys) => (keys.first(), gcm_seal),
            Provider::Secretbox(keys) => (keys.first(), secretbox_seal),
            Provider::Kms(kms) => return kms.seal(value, etcd_key).map(Some),
        };
        let key = key.ok_or("the provider has no keys")?;
        let mut out = Vec::with_capacity(key.prefix.len() + value.len() + 48);
        out.extend_from_slice(&key.prefix);
        seal(&key.secret, value, etcd_key, &mut out)?;
        Ok(Some(out))
    }

    /// Whether `stored` has the form this provider writes: its first key's prefix (identity:
    /// not encrypted).
    pub fn wrote(&self, stored: &[u8]) -> bool {
        match self {
            Provider::Identity => !stored.starts_with(ENCRYPTED_PREFIX),
            Provider::AesCbc(keys) | Provider::AesGcm(keys) | Provider::Secretbox(keys) => {
                keys.first().is_some_and(|k| stored.starts_with(&k.prefix))
            }
            Provider::Kms(kms) => kms.wrote(stored),
        }
    }

    /// Reads `value` if it carries one of this provider's prefixes: `None` if it does not
    /// (another provider may), else the plaintext or why it cannot be read. `stale` is set when
    /// the value was not written with the first key. A KMS provider's values are read by
    /// `open_with`, which may await its plugin: here they are `None`.
    pub fn open(&self, value: &[u8], etcd_key: &[u8]) -> Option<Result<Vec<u8>, Error>> {
        let (keys, open, what): (_, OpenFn, _) = match self {
            Provider::Identity => {
                return Some(if value.starts_with(ENCRYPTED_PREFIX) {
                    Err("identity transformer tried to read encrypted data".into())
                } else {
                    Ok(value.to_vec())
                });
            }
            Provider::AesCbc(keys) => (keys, cbc_open as _, "AES"),
            Provider::AesGcm(keys) => (keys, gcm_open as _, "AES"),
            Provider::Secretbox(keys) => (keys, secretbox_open as _, "Secretbox"),
            Provider::Kms(_) => return None,
        };
        let rest = value.strip_prefix(self.prefix().as_bytes())?;
        for key in keys {
            let provider_len = self.prefix().len();
            if let Some(sealed) = rest.strip_prefix(&key.prefix[provider_len..]) {
                return Some(open(&key.secret, sealed, etcd_key));
            }
        }
        Some(Err(format!(
            "no matching key was found for the provided {what} transformer"
        )))
    }
}

pub(super) fn random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::getrandom(buf).map_err(|e| format!("unable to read sufficient random bytes: {e}"))
}

/// Runs `$body` with `$cipher` bound to the AES type of `$secret`'s length.
macro_rules! with_aes {
    ($secret:expr, $t:ident => $body:expr) => {
        match $secret.len() {
            16 => {
                type $t = Aes128;
                $body
            }
            24 => {
                type $t = Aes192;
                $body
            }
            32 => {
                type $t = Aes256;
                $body
            }
            n => Err(format!("invalid AES key size {n}")),
        }
    };
}

fn cbc_seal(secret: &[u8], value: &[u8], _etcd_key: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut iv = [0u8; AES_BLOCK];
    random(&mut iv)?;
    let sealed = with_aes!(secret, A => cbc::Encryptor::<A>::new_from_slices(secret, &iv)
        .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(value))
        .map_err(|e| e.to_string()))?;
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    Ok(())
}

fn cbc_open(secret: &[u8], sealed: &[u8], _etcd_key: &[u8]) -> Result<Vec<u8>, Error> {
    if sealed.len() < AES_BLOCK {
        return Err("the stored data was shorter than the required size".into());
    }
    let (iv, data) = sealed.split_at(AES_BLOCK);
    if data.is_empty() {
        return Err("invalid PKCS7 data (empty or not padded)".into());
    }
    if !data.len().is_multiple_of(AES_BLOCK) {
        return Err("the stored data is not a multiple of the block size".into());
    }
    with_aes!(secret, A => cbc::Decryptor::<A>::new_from_slices(secret, iv)
        .map_err(|e| e.to_string())?
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .map_err(|_| "invalid padding on input".to_string()))
}

pub(super) fn gcm_seal(
    secret: &[u8],
    value: &[u8],
    etcd_key: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let mut nonce = [0u8; GCM_NONCE];
    random(&mut nonce)?;
    let payload = Payload {
        msg: value,
        aad: etcd_key,
    };
    let sealed = with_aes!(secret, A => AesGcm::<A, U12>::new_from_slice(secret)
        .map_err(|e| e.to_string())?
        .encrypt(Nonce::from_slice(&nonce), payload)
        .map_err(|e| e.to_string()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(())
}

pub(super) fn gcm_open(secret: &[u8], sealed: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, Error> {
    if sealed.len() < GCM_NONCE + GCM_TAG {
        return Err("the stored data was shorter than the required size".into());
    }
    let (nonce, data) = sealed.split_at(GCM_NONCE);
    let payload = Payload {
        msg: data,
        aad: etcd_key,
    };
    with_aes!(secret, A => AesGcm::<A, U12>::new_from_slice(secret)
        .map_err(|e| e.to_string())?
        .decrypt(Nonce::from_slice(nonce), payload)
        .map_err(|_| "cipher: message authentication failed".to_string()))
}

fn secretbox_seal(
    secret: &[u8],
    value: &[u8],
    _etcd_key: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let mut nonce = [0u8; SECRETBOX_NONCE];
    random(&mut nonce)?;
    let sealed = XSalsa20Poly1305::new_from_slice(secret)
        .map_err(|e| e.to_string())?
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), value)
        .map_err(|e| e.to_string())?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(())
}

fn secretbox_open(secret: &[u8], sealed: &[u8], _etcd_key: &[u8]) -> Result<Vec<u8>, Error> {
    if sealed.len() < SECRETBOX_NONCE + SECRETBOX_TAG {
        return Err("the stored data was shorter than the required size".into());
    }
    let (nonce, data) = sealed.split_at(SECRETBOX_NONCE);
    XSalsa20Poly1305::new_from_slice(secret)
        .map_err(|e| e.to_string())?
        .decrypt(crypto_secretbox::Nonce::from_slice(nonce), data)
        .map_err(|_| "output array was not large enough for encryption".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(prefix: &str, name: &str, len: usize, fill: u8) -> NamedKey {
        NamedKey::new(prefix, name, vec![fill; len])
    }

    #[test]
    fn every_provider_and_key_size_round_trips_with_its_prefix() {
        let cases = [
            Provider::AesCbc(vec![key(AESCBC_PREFIX, "k", 16, 1)]),
            Provider::AesCbc(vec![key(AESCBC_PREFIX, "k", 24, 1)]),
            Provider::AesCbc(vec![key(AESCBC_PREFIX, "k", 32, 1)]),
            Provider::AesGcm(vec![key(AESGCM_PREFIX, "k", 16, 2)]),
            Provider::AesGcm(vec![key(AESGCM_PREFIX, "k", 24, 2)]),
            Provider::AesGcm(vec![key(AESGCM_PREFIX, "k", 32, 2)]),
            Provider::Secretbox(vec![key(SECRETBOX_PREFIX, "k", 32, 3)]),
        ];
        for p in cases {
            for value in [&b""[..], b"x", b"sixteen bytes!!!", &[7u8; 1000][..]] {
                let sealed = p.seal(value, b"/registry/secrets/a/b").unwrap().unwrap();
                assert!(sealed.starts_with(format!("{}k:", p.prefix()).as_bytes()));
                assert_ne!(&sealed[p.prefix().len() + 2..], value);
                let opened = p.open(&sealed, b"/registry/secrets/a/b").unwrap().unwrap();
                assert_eq!(opened, value, "{p:?}");
            }
        }
    }

    #[test]
    fn gcm_binds_the_etcd_key_and_cbc_does_not() {
        let gcm = Provider::AesGcm(vec![key(AESGCM_PREFIX, "k", 32, 2)]);
        let sealed = gcm.seal(b"v", b"/registry/secrets/a/b").unwrap().unwrap();
        assert!(
            gcm.open(&sealed, b"/registry/secrets/a/c")
                .unwrap()
                .is_err()
        );
        let cbc = Provider::AesCbc(vec![key(AESCBC_PREFIX, "k", 32, 2)]);
        let sealed = cbc.seal(b"v", b"/registry/secrets/a/b").unwrap().unwrap();
        assert_eq!(
            cbc.open(&sealed, b"/registry/secrets/a/c")
                .unwrap()
                .unwrap(),
            b"v"
        );
    }

    #[test]
    fn a_value_of_another_provider_or_unknown_key_is_not_read() {
        let cbc = Provider::AesCbc(vec![key(AESCBC_PREFIX, "k1", 32, 2)]);
        let other = Provider::AesCbc(vec![key(AESCBC_PREFIX, "k2", 32, 2)]);
        let sealed = other.seal(b"v", b"k").unwrap().unwrap();
        assert!(cbc.open(&sealed, b"k").unwrap().is_err());
        assert!(cbc.open(b"plain", b"k").is_none());
        // A wrong secret: GCM's tag says so (CBC's padding check only would, most of the time).
        let gcm = Provider::AesGcm(vec![key(AESGCM_PREFIX, "k2", 32, 2)]);
        let sealed_gcm = gcm.seal(b"v", b"k").unwrap().unwrap();
        let wrong_secret = Provider::AesGcm(vec![key(AESGCM_PREFIX, "k2", 32, 9)]);
        assert!(wrong_secret.open(&sealed_gcm, b"k").unwrap().is_err());
        assert!(
            Provider::Identity
                .open(&sealed, b"k")
                .unwrap()
                .unwrap_err()
                .contains("encrypted data")
        );
    }
}
