//! The bytes a KMS v2 provider stores, as upstream's `kmsv2` envelope transformer writes them:
//! `k8s:enc:kms:v2:<name>:` + an `EncryptedObject` protobuf. The object carries the DEK source
//! encrypted by the plugin (`encryptedDEKSource`, with the plugin's `keyID` and `annotations`)
//! and the value sealed with it (`encryptedData`).
//!
//! With `HKDF_SHA256_XNONCE_AES_GCM_SEED` (what upstream writes since KMSv2KDF went GA) the DEK
//! source is a 32-byte seed, and every value gets a key of its own: `info` (32 random bytes)
//! → HKDF-Expand(SHA-256, seed, info) → AES-256-GCM key; `encryptedData` = info + nonce (12) +
//! ciphertext and tag, the etcd key being the authenticated data. With `AES_GCM_KEY` (older
//! writers) the DEK source is the AES key itself and `encryptedData` = nonce + ciphertext.

use std::collections::BTreeMap;

use prost::Message;

use super::super::providers::{Error, gcm_open, gcm_seal, random};

/// `k8s:enc:kms:v2:` + the provider's name + `:`.
pub const KMS_V2_PREFIX: &str = "k8s:enc:kms:v2:";

/// Seed and per-value `info` sizes (upstream's `MinSeedSizeExtendedNonceGCM`, 32 bytes), and
/// the derived AES-256 key's.
pub const SEED_SIZE: usize = 32;
const INFO_SIZE: usize = 32;
const DERIVED_KEY_SIZE: usize = 32;

/// Upstream's limits on what a plugin returns: a key ID and an encrypted DEK source of at most
/// 1 kB, annotations (keys and values together) of at most 32 kB.
pub const KEY_ID_MAX: usize = 1024;
const DEK_SOURCE_MAX: usize = 1024;
const ANNOTATIONS_MAX: usize = 32 * 1024;

/// `EncryptedDEKSourceType`: how `encryptedDEKSource` turns into the key of a value.
pub const AES_GCM_KEY: i32 = 0;
pub const HKDF_SHA256_XNONCE_AES_GCM_SEED: i32 = 1;

/// Upstream's `kmsv2/v2.EncryptedObject` (package `v2`).
#[derive(Clone, PartialEq, Message)]
pub struct EncryptedObject {
    #[prost(bytes = "vec", tag = "1")]
    pub encrypted_data: Vec<u8>,
    #[prost(string, tag = "2")]
    pub key_id: String,
    #[prost(bytes = "vec", tag = "3")]
    pub encrypted_dek_source: Vec<u8>,
    #[prost(btree_map = "string, bytes", tag = "4")]
    pub annotations: BTreeMap<String, Vec<u8>>,
    #[prost(int32, tag = "5")]
    pub encrypted_dek_source_type: i32,
}

/// Upstream's `ValidateKeyID`.
pub fn validate_key_id(key_id: &str) -> Result<(), Error> {
    if key_id.is_empty() {
        return Err("keyID is empty".into());
    }
    if key_id.len() > KEY_ID_MAX {
        return Err(format!(
            "keyID is {} bytes, which exceeds the max size of {KEY_ID_MAX}",
            key_id.len()
        ));
    }
    Ok(())
}

impl EncryptedObject {
    /// Upstream's `ValidateEncryptedObject`, on every object written or read.
    pub fn validate(&self) -> Result<(), Error> {
        if !matches!(
            self.encrypted_dek_source_type,
            AES_GCM_KEY | HKDF_SHA256_XNONCE_AES_GCM_SEED
        ) {
            return Err(format!(
                "unknown encryptedDEKSourceType: {}",
                self.encrypted_dek_source_type
            ));
        }
        if self.encrypted_data.is_empty() {
            return Err("encrypted data is empty".into());
        }
        let source = self.encrypted_dek_source.len();
        if source == 0 {
            return Err(
                "failed to validate encrypted DEK source: encrypted DEK source is empty".into(),
            );
        }
        if source > DEK_SOURCE_MAX {
            return Err(format!(
                "failed to validate encrypted DEK source: encrypted DEK source is {source} bytes, \
                 which exceeds the max size of {DEK_SOURCE_MAX}"
            ));
        }
        validate_key_id(&self.key_id).map_err(|e| format!("failed to validate key id: {e}"))?;
        validate_annotations(&self.annotations)
            .map_err(|e| format!("failed to validate annotations: {e}"))
    }

    /// Parses and validates the bytes after the provider's prefix.
    pub fn decode(bytes: &[u8]) -> Result<EncryptedObject, Error> {
        let object = EncryptedObject::decode_from(bytes)?;
        object.validate()?;
        Ok(object)
    }

    fn decode_from(bytes: &[u8]) -> Result<EncryptedObject, Error> {
        <EncryptedObject as Message>::decode(bytes)
            .map_err(|e| format!("proto: cannot parse invalid wire-format data: {e}"))
    }
}

/// Annotation keys must be fully qualified domain names, and all of them small.
pub fn validate_annotations(annotations: &BTreeMap<String, Vec<u8>>) -> Result<(), Error> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        if !is_fully_qualified_domain_name(k) {
            errors.push(format!(
                "annotations: Invalid value: {k:?}: should be a domain with at least two segments separated by dots"
            ));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > ANNOTATIONS_MAX {
        errors.push(format!(
            "total size of annotations is {total}, which exceeds the max size of {ANNOTATIONS_MAX}"
        ));
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// At least two dot-separated DNS labels (RFC 1123), at most 253 characters.
fn is_fully_qualified_domain_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// The AES-256-GCM key of one value: HKDF-Expand only (the seed is already uniformly random, so
/// upstream skips Extract), with the value's `info`.
fn derive_key(seed: &[u8], info: &[u8]) -> Result<[u8; DERIVED_KEY_SIZE], Error> {
    struct Len;
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            DERIVED_KEY_SIZE
        }
    }
    let prk = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA256, seed);
    let mut key = [0u8; DERIVED_KEY_SIZE];
    prk.expand(&[info], Len)
        .and_then(|okm| okm.fill(&mut key))
        .map_err(|_| "failed to KDF expand seed with info".to_string())?;
    Ok(key)
}

/// `encryptedData` of `value` under `seed`: info + nonce + AES-GCM(value) bound to `etcd_key`.
pub fn seal_with_seed(seed: &[u8], value: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, Error> {
    let mut info = [0u8; INFO_SIZE];
    random(&mut info).map_err(|e| format!("failed to generate info for KDF: {e}"))?;
    seal_with_info(seed, &info, value, etcd_key)
}

fn seal_with_info(
    seed: &[u8],
    info: &[u8; INFO_SIZE],
    value: &[u8],
    etcd_key: &[u8],
) -> Result<Vec<u8>, Error> {
    let key = derive_key(seed, info)?;
    let mut out = Vec::with_capacity(INFO_SIZE + 12 + value.len() + 16);
    out.extend_from_slice(info);
    gcm_seal(&key, value, etcd_key, &mut out)?;
    Ok(out)
}

/// The plaintext of `encryptedData` sealed by `dek_source` (a seed or a key, by `source_type`).
pub fn open_data(
    source_type: i32,
    dek_source: &[u8],
    data: &[u8],
    etcd_key: &[u8],
) -> Result<Vec<u8>, Error> {
    if source_type == AES_GCM_KEY {
        return gcm_open(dek_source, data, etcd_key);
    }
    if dek_source.len() < SEED_SIZE {
        return Err(format!(
            "invalid seed length {} used for key generation",
            dek_source.len()
        ));
    }
    if data.len() < INFO_SIZE {
        return Err("the stored data was shorter than the required size".into());
    }
    let (info, sealed) = data.split_at(INFO_SIZE);
    let key = derive_key(dek_source, info)
        .map_err(|e| format!("failed to derive read key from KDF: {e}"))?;
    gcm_open(&key, sealed, etcd_key)
}

/// The stored value: prefix + the object encoded.
pub fn encode(prefix: &[u8], object: &EncryptedObject) -> Result<Vec<u8>, Error> {
    object.validate()?;
    let mut out = Vec::with_capacity(prefix.len() + object.encoded_len());
    out.extend_from_slice(prefix);
    object
        .encode(&mut out)
        .map_err(|e| format!("encoding the EncryptedObject: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value as upstream writes it, built by hand from the documented algorithm with a fixed
    /// seed and info: HKDF-SHA256 expand of the seed with the info as the AES-256-GCM key, the
    /// etcd key as additional data, and the protobuf fields by their tags.
    #[test]
    fn a_value_built_by_the_documented_algorithm_is_read() {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let seed = [7u8; SEED_SIZE];
        let info = [9u8; INFO_SIZE];
        let nonce = [3u8; 12];
        let etcd_key = b"/registry/secrets/default/s1";
        // HKDF-Expand with one output block: T(1) = HMAC(seed, info || 0x01).
        let mut block = info.to_vec();
        block.push(1);
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &seed),
            &block,
        );
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(tag.as_ref()).unwrap();
        let sealed = cipher
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: b"k8s\0secret bytes",
                    aad: etcd_key,
                },
            )
            .unwrap();
        let mut data = info.to_vec();
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        // The protobuf by hand: 1 encryptedData, 2 keyID, 3 encryptedDEKSource, 5 type.
        let mut wire = vec![0x0a, data.len() as u8];
        wire.extend_from_slice(&data);
        wire.extend_from_slice(&[0x12, 2, b'k', b'1', 0x1a, 4, 1, 2, 3, 4, 0x28, 1]);
        let object = EncryptedObject::decode(&wire).unwrap();
        assert_eq!(object.key_id, "k1");
        assert_eq!(object.encrypted_dek_source, [1, 2, 3, 4]);
        assert_eq!(
            object.encrypted_dek_source_type,
            HKDF_SHA256_XNONCE_AES_GCM_SEED
        );
        let plain = open_data(
            object.encrypted_dek_source_type,
            &seed,
            &object.encrypted_data,
            etcd_key,
        )
        .unwrap();
        assert_eq!(plain, b"k8s\0secret bytes");
        // Bound to its etcd key.
        assert!(
            open_data(
                1,
                &seed,
                &object.encrypted_data,
                b"/registry/secrets/default/s2"
            )
            .is_err()
        );
        // And what kapi writes with the same seed and info is those very bytes.
        assert_eq!(
            seal_with_info(&seed, &info, b"k8s\0secret bytes", etcd_key).unwrap()[..INFO_SIZE],
            data[..INFO_SIZE]
        );
        let again = seal_with_seed(&seed, b"v", etcd_key).unwrap();
        assert_eq!(open_data(1, &seed, &again, etcd_key).unwrap(), b"v");
        assert_eq!(wire, encode(b"", &object).unwrap());
    }

    #[test]
    fn a_value_of_the_older_single_key_type_is_read() {
        let key = [5u8; 32];
        let mut data = Vec::new();
        gcm_seal(&key, b"old", b"/k", &mut data).unwrap();
        assert_eq!(open_data(AES_GCM_KEY, &key, &data, b"/k").unwrap(), b"old");
    }

    #[test]
    fn invalid_objects_are_refused_with_upstreams_messages() {
        let good = EncryptedObject {
            encrypted_data: vec![1],
            key_id: "k".into(),
            encrypted_dek_source: vec![1],
            annotations: BTreeMap::new(),
            encrypted_dek_source_type: 1,
        };
        assert!(good.validate().is_ok());
        let with = |f: &dyn Fn(&mut EncryptedObject)| {
            let mut o = good.clone();
            f(&mut o);
            o.validate().unwrap_err()
        };
        assert_eq!(
            with(&|o| o.encrypted_dek_source_type = 7),
            "unknown encryptedDEKSourceType: 7"
        );
        assert_eq!(
            with(&|o| o.encrypted_data.clear()),
            "encrypted data is empty"
        );
        assert_eq!(
            with(&|o| o.key_id.clear()),
            "failed to validate key id: keyID is empty"
        );
        assert!(
            with(&|o| o.encrypted_dek_source = vec![0; 1025])
                .contains("exceeds the max size of 1024")
        );
        assert!(
            with(&|o| {
                o.annotations.insert("nodots".into(), vec![]);
            })
            .contains("failed to validate annotations")
        );
        let mut o = good.clone();
        o.annotations.insert("kms.example.com".into(), vec![1]);
        assert!(o.validate().is_ok());
        assert!(EncryptedObject::decode(b"\xff\xff").is_err());
    }
}
