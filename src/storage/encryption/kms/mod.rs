//! The `kms` provider (API version v2): envelope encryption with a key held by an external
//! plugin, as upstream's `kmsv2` transformer and its probe do it.
//!
//! - Writes never call the plugin: they seal with the current *write state*, a 32-byte seed
//!   the plugin encrypted once (`Encrypt`), each value under its own HKDF-derived key
//!   (`envelope`). The state is made at start and again when `Status` reports another key ID;
//!   while `Status` fails it is kept for `WRITE_STATE_TTL`, after which writes fail.
//! - Reads find the decrypted seed in a bounded cache by its encrypted form, and call
//!   `Decrypt` on a miss (the only plugin call on a request's path, awaited off the core).
//! - A probe calls `Status` every `POLL_INTERVAL` (`POLL_RETRY_INTERVAL` while it fails), and
//!   `/healthz/kms-providers` (and readyz) report its last result, re-probing when that is older
//!   than upstream's TTLs.

pub mod envelope;
pub mod plugin;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use sha2::Digest;

use super::providers::{Error, random};
use envelope::{EncryptedObject, HKDF_SHA256_XNONCE_AES_GCM_SEED, SEED_SIZE};
use plugin::{DecryptRequest, Plugin};

/// How often `Status` is polled while the plugin is healthy, and while it is not (upstream's
/// `kmsv2PluginHealthzPositiveInterval` and `...NegativeInterval`).
const POLL_INTERVAL: Duration = Duration::from_secs(60);
const POLL_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// How long a probe result is reused by health checks: upstream's positive and negative TTLs.
const PROBE_OK_TTL: Duration = Duration::from_secs(20);
const PROBE_FAILED_TTL: Duration = Duration::from_secs(3);
/// How long writes may go on with a seed after the last successful `Status` (upstream's
/// `kmsv2PluginWriteDEKSourceMaxTTL`): a rotated key ID is then in use within this bound.
const WRITE_STATE_TTL: Duration = Duration::from_secs(180);
/// Decrypted seeds kept. One seed is made per key ID and server start, so a few are in use;
/// the bound keeps a store written by many servers and rotations from growing it without end
/// (upstream's cache has a 24-hour TTL instead of a size).
const DEK_CACHE_ENTRIES: usize = 1024;

/// The seed writes use, and the fields every value written with it carries.
struct WriteState {
    seed: [u8; SEED_SIZE],
    /// `encryptedData` empty: filled per value.
    object: EncryptedObject,
    /// Writes fail after this instant (extended by every successful `Status`).
    expires: SystemTime,
}

/// The last probe's outcome, reused for its TTL.
#[derive(Default)]
struct Probe {
    last: Option<(Instant, Result<(), Error>)>,
    /// The API version of the plugin's first `Status`; it may not change.
    version: String,
}

/// A bounded map of decrypted seeds (or keys) by their encrypted form; the least recently used
/// is dropped when full.
#[derive(Default)]
struct DekCache {
    entries: HashMap<[u8; 32], (Arc<[u8]>, u64)>,
    clock: u64,
}

impl DekCache {
    fn get(&mut self, key: &[u8; 32]) -> Option<Arc<[u8]>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(dek, used)| {
            *used = clock;
            dek.clone()
        })
    }

    fn insert(&mut self, key: [u8; 32], dek: Arc<[u8]>) {
        self.clock += 1;
        if self.entries.len() >= DEK_CACHE_ENTRIES && !self.entries.contains_key(&key) {
            // A miss is a plugin call: scanning the few entries here costs nothing beside it.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (dek, self.clock));
    }
}

/// The cache key of a DEK source: its type, encrypted bytes, key ID and annotations.
fn cache_key(object: &EncryptedObject) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(object.encrypted_dek_source_type.to_be_bytes());
    for part in [&object.encrypted_dek_source[..], object.key_id.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    for (k, v) in &object.annotations {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v);
    }
    h.finalize().into()
}

/// `sha256:<hex>` of a key ID, as upstream logs and reports key IDs.
fn key_id_hash(key_id: &str) -> String {
    if key_id.is_empty() {
        return String::new();
    }
    let digest = sha2::Sha256::digest(key_id.as_bytes());
    format!("sha256:{}", data_encoding::HEXLOWER.encode(&digest))
}

/// One `kms` provider element of the configuration.
pub struct Kms {
    pub name: String,
    /// `k8s:enc:kms:v2:<name>:`
    pub prefix: Box<[u8]>,
    plugin: Plugin,
    state: ArcSwapOption<WriteState>,
    cache: Mutex<DekCache>,
    probe: tokio::sync::Mutex<Probe>,
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kms({})", self.name)
    }
}

impl Kms {
    /// A provider whose plugin listens at `socket`. Nothing is called until `start` (or a read).
    pub fn new(name: &str, socket: std::path::PathBuf, timeout: Duration) -> Kms {
        Kms {
            name: name.to_string(),
            prefix: format!("{}{name}:", envelope::KMS_V2_PREFIX)
                .into_bytes()
                .into(),
            plugin: Plugin::new(socket, timeout),
            state: ArcSwapOption::empty(),
            cache: Mutex::new(DekCache::default()),
            probe: tokio::sync::Mutex::new(Probe::default()),
        }
    }

    /// Primes the write state with one probe (waiting for it, as upstream's start does; a
    /// failure is logged, not fatal: the plugin may start after the server) and starts the
    /// status poll, which ends when the provider is dropped (a reload replaced it).
    pub fn start(self: &Arc<Self>) {
        let (done, wait) = std::sync::mpsc::channel();
        let weak = Arc::downgrade(self);
        plugin::runtime().spawn(async move {
            let first = match weak.upgrade() {
                Some(kms) => kms.check().await,
                None => return,
            };
            let _ = done.send(());
            poll(weak, first.is_ok()).await;
        });
        let _ = wait.recv();
    }

    /// The provider's health, probing again when the last result is older than its TTL.
    pub async fn health(self: &Arc<Self>) -> Result<(), Error> {
        let kms = self.clone();
        plugin::runtime()
            .spawn(async move { kms.check().await })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Upstream's probe: `Status`, then the write state kept (same key ID) or made anew.
    async fn check(&self) -> Result<(), Error> {
        let mut probe = self.probe.lock().await;
        if let Some((at, result)) = &probe.last {
            let ttl = if result.is_ok() {
                PROBE_OK_TTL
            } else {
                PROBE_FAILED_TTL
            };
            if at.elapsed() < ttl {
                return result.clone();
            }
        }
        let result = match self.plugin.status().await {
            Err(e) => Err(format!(
                "failed to perform status section of the healthz check for KMS Provider {}, error: {e}",
                self.name
            )),
            Ok(status) => self.healthy_and_rotated(&mut probe, status).await,
        };
        if let Err(e) = &result {
            eprintln!(
                "kapi: encryption: kms plugin {} failed its health check: {e}",
                self.name
            );
        }
        probe.last = Some((Instant::now(), result.clone()));
        result
    }

    async fn healthy_and_rotated(
        &self,
        probe: &mut Probe,
        status: plugin::StatusResponse,
    ) -> Result<(), Error> {
        let mut errors = Vec::new();
        if status.healthz != "ok" {
            errors.push(format!("got unexpected healthz status: {}", status.healthz));
        }
        if status.version != "v2" && status.version != "v2beta1" {
            errors.push(format!(
                "expected KMSv2 API version v2, got {}",
                status.version
            ));
        } else {
            if probe.version.is_empty() {
                probe.version = status.version.clone();
            }
            if probe.version != status.version {
                errors.push(format!(
                    "KMSv2 API version should not change after the initial status response version {}, got {}",
                    probe.version, status.version
                ));
            }
        }
        match envelope::validate_key_id(&status.key_id) {
            Err(e) => errors.push(format!(
                "got invalid KMSv2 KeyID hash {:?}: {e}",
                key_id_hash(&status.key_id)
            )),
            Ok(()) => {
                if let Err(e) = self.rotate_on_key_id_change(&status.key_id).await {
                    errors.push(e);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(format!(
                "kmsv2 Provider {} is not healthy, error: {}",
                self.name, errors[0]
            )),
            _ => Err(format!(
                "kmsv2 Provider {} is not healthy, error: [{}]",
                self.name,
                errors.join(", ")
            )),
        }
    }

    /// Keeps the seed while `Status` reports the key ID it was encrypted under (moving its
    /// expiry on), else has the plugin encrypt a new one. On failure the old state stays usable
    /// until it expires.
    async fn rotate_on_key_id_change(&self, status_key_id: &str) -> Result<(), Error> {
        let expires = SystemTime::now() + WRITE_STATE_TTL;
        let current = self.state.load_full();
        if let Some(state) = &current
            && state.object.key_id == status_key_id
        {
            self.state.store(Some(Arc::new(WriteState {
                seed: state.seed,
                object: state.object.clone(),
                expires,
            })));
            return Ok(());
        }
        let uid = uuid::Uuid::new_v4().to_string();
        let mut seed = [0u8; SEED_SIZE];
        let generated = async {
            random(&mut seed)?;
            let response = self
                .plugin
                .encrypt(seed.to_vec(), uid.clone())
                .await
                .map_err(|e| format!("failed to encrypt DEK, error: {e}"))?;
            let object = EncryptedObject {
                encrypted_data: Vec::new(),
                key_id: response.key_id,
                encrypted_dek_source: response.ciphertext,
                annotations: response.annotations,
                encrypted_dek_source_type: HKDF_SHA256_XNONCE_AES_GCM_SEED,
            };
            EncryptedObject {
                encrypted_data: vec![0],
                ..object.clone()
            }
            .validate()?;
            Ok::<_, Error>(object)
        }
        .await;
        match generated {
            Ok(object) if object.key_id == status_key_id => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(cache_key(&object), Arc::from(&seed[..]));
                }
                self.state.store(Some(Arc::new(WriteState {
                    seed,
                    object,
                    expires,
                })));
                Ok(())
            }
            outcome => {
                let (err, encrypt_key_id) = match &outcome {
                    Ok(o) => (String::new(), o.key_id.as_str()),
                    Err(e) => (e.clone(), ""),
                };
                Err(format!(
                    "failed to rotate DEK uid={uid:?}, useSeed=true, errGen={err}, statusKeyIDHash={:?}, \
                     encryptKeyIDHash={:?}, stateKeyIDHash={:?}",
                    key_id_hash(status_key_id),
                    key_id_hash(encrypt_key_id),
                    key_id_hash(current.as_ref().map_or("", |s| s.object.key_id.as_str())),
                ))
            }
        }
    }

    /// The stored form of `value`: the prefix and an `EncryptedObject` sealed with the current
    /// seed. Fails when there is no state yet or it expired.
    pub fn seal(&self, value: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, Error> {
        let state = self
            .state
            .load_full()
            .ok_or("got unexpected nil transformer")?;
        let now = SystemTime::now();
        if now > state.expires {
            return Err(format!(
                "encryptedDEKSource with keyID hash {:?} expired at {} (current time is {})",
                key_id_hash(&state.object.key_id),
                rfc3339(state.expires),
                rfc3339(now)
            ));
        }
        let object = EncryptedObject {
            encrypted_data: envelope::seal_with_seed(&state.seed, value, etcd_key)?,
            ..state.object.clone()
        };
        envelope::encode(&self.prefix, &object)
    }

    /// Whether `stored` is not what a write would store now: another key ID or DEK source type.
    pub fn wrote(&self, stored: &[u8]) -> bool {
        let Some(rest) = stored.strip_prefix(&*self.prefix) else {
            return false;
        };
        let (Ok(object), Some(state)) = (EncryptedObject::decode(rest), self.state.load_full())
        else {
            return false;
        };
        object.key_id == state.object.key_id
            && object.encrypted_dek_source_type == state.object.encrypted_dek_source_type
    }

    /// The plaintext of `sealed` (the bytes after the prefix): the seed from the cache, or from
    /// the plugin's `Decrypt`.
    pub async fn open(&self, sealed: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, Error> {
        let object = EncryptedObject::decode(sealed)?;
        let key = cache_key(&object);
        let cached = self.cache.lock().ok().and_then(|mut c| c.get(&key));
        let dek = match cached {
            Some(dek) => dek,
            None => {
                cache_misses().inc();
                let plain = self
                    .plugin
                    .decrypt(DecryptRequest {
                        ciphertext: object.encrypted_dek_source.clone(),
                        uid: uuid::Uuid::new_v4().to_string(),
                        key_id: object.key_id.clone(),
                        annotations: object.annotations.clone(),
                    })
                    .await
                    .map_err(|e| format!("failed to decrypt DEK, error: {e}"))?;
                let dek: Arc<[u8]> = Arc::from(plain);
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(key, dek.clone());
                }
                dek
            }
        };
        envelope::open_data(
            object.encrypted_dek_source_type,
            &dek,
            &object.encrypted_data,
            etcd_key,
        )
    }
}

/// The status poll: every `POLL_INTERVAL`, or `POLL_RETRY_INTERVAL` until a failing probe passes.
async fn poll(kms: Weak<Kms>, mut healthy: bool) {
    loop {
        tokio::time::sleep(if healthy {
            POLL_INTERVAL
        } else {
            POLL_RETRY_INTERVAL
        })
        .await;
        let Some(kms) = kms.upgrade() else { return };
        healthy = kms.check().await.is_ok();
    }
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    crate::api::rest::rfc3339(secs)
}

fn cache_misses() -> &'static prometheus::IntCounter {
    static MISSES: std::sync::LazyLock<prometheus::IntCounter> = std::sync::LazyLock::new(|| {
        use crate::metrics::{Stability, help, register};
        register(
            prometheus::IntCounter::new(
                "apiserver_storage_envelope_transformation_cache_misses_total",
                help(
                    Stability::Alpha,
                    None,
                    "Total number of cache misses while accessing key decryption key(KEK).",
                ),
            )
            .expect("a valid metric"),
        )
    });
    &MISSES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dek_cache_drops_the_least_recently_used() {
        let mut cache = DekCache::default();
        for i in 0..DEK_CACHE_ENTRIES {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            cache.insert(k, Arc::from(&[1u8][..]));
        }
        let first = [0u8; 32];
        assert!(cache.get(&first).is_some());
        cache.insert([0xff; 32], Arc::from(&[2u8][..]));
        assert_eq!(cache.entries.len(), DEK_CACHE_ENTRIES);
        assert!(cache.get(&first).is_some(), "recently used stays");
        let mut second = [0u8; 32];
        second[..8].copy_from_slice(&1u64.to_be_bytes());
        assert!(cache.get(&second).is_none(), "least recently used went");
    }

    #[test]
    fn writes_without_a_state_fail_as_upstreams() {
        let kms = Kms::new("p", "/nonexistent/kms.sock".into(), Duration::from_secs(1));
        assert_eq!(
            kms.seal(b"v", b"/k").unwrap_err(),
            "got unexpected nil transformer"
        );
        let seed = [4u8; SEED_SIZE];
        kms.state.store(Some(Arc::new(WriteState {
            seed,
            object: EncryptedObject {
                encrypted_data: vec![],
                key_id: "k1".into(),
                encrypted_dek_source: vec![1, 2],
                annotations: Default::default(),
                encrypted_dek_source_type: HKDF_SHA256_XNONCE_AES_GCM_SEED,
            },
            expires: SystemTime::now() - Duration::from_secs(1),
        })));
        assert!(kms.seal(b"v", b"/k").unwrap_err().contains("expired at"));
    }
}
