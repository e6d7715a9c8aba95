//! Encryption at rest: `--encryption-provider-config`. Sits inside `StoreClient`, between every
//! caller and the storage thread: values are sealed before a create or update leaves for the
//! store, and opened as gets, ranges, watch events (so the ingest, and so the watch cache, see
//! plaintext, kept only in memory), conflicts and deletes come back. Which providers apply is
//! chosen by the key's resource. Without the flag `StoreClient` holds no `Encryption` and values
//! pass untouched (no lookup, no copy).

pub mod config;
pub mod kms;
pub mod providers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

pub use config::{Chain, Config};
use providers::Provider;

/// How often the configuration file is read again with `--encryption-provider-config-automatic-reload`
/// (upstream watches the file and also re-reads it every minute; a short period makes a
/// rotated key usable soon, and reading a small file this often costs nothing).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The `--encryption-provider-config*` flags (their own clap group id: every module's flags
/// struct is `Flags`).
#[derive(Debug, Clone, Default, clap::Args)]
#[group(id = "encryption-flags")]
pub struct Flags {
    /// The file containing configuration for encryption providers to be used for storing
    /// secrets in etcd
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// Determines if the file set by --encryption-provider-config should be automatically
    /// reloaded if the disk contents change. Setting this to true disables the ability to
    /// uniquely identify distinct KMS plugins via the API server healthz endpoints.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub encryption_provider_config_automatic_reload: bool,
}

/// The resources of the store's key space: (key prefix below the etcd prefix, e.g. `secrets/`
/// or `services/specs/`, group, resource), from the registry.
pub type Layout = Vec<(String, String, String)>;

/// The transformer of every key, swapped whole when the configuration is reloaded.
pub struct Encryption {
    current: RwLock<Arc<Resolved>>,
    /// With automatic reload the `kms-providers` health check is there even without KMS
    /// providers (as upstream's).
    reload: bool,
    layout: Layout,
    /// `/registry/`: what every key starts with.
    etcd_prefix: String,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encryption")
    }
}

/// The resources whose keys start with one segment: (the rest of each one's prefix, its chain;
/// `None` = stored as is).
type SegmentRows = Vec<(Box<[u8]>, Option<Arc<Chain>>)>;

/// A configuration applied to the layout: each key prefix's chain, found by the key's first
/// segment without allocating.
struct Resolved {
    config: Config,
    /// First segment below the etcd prefix (`secrets`, `services`, `apps`...) → (the rest of
    /// the resource's prefix, its chain; `None` = stored as is).
    by_segment: HashMap<Box<[u8]>, SegmentRows>,
}

impl Resolved {
    fn new(config: Config, layout: &Layout) -> Resolved {
        let mut by_segment: HashMap<Box<[u8]>, SegmentRows> = HashMap::new();
        for (prefix, group, resource) in layout {
            let (segment, rest) = prefix.split_once('/').unwrap_or((prefix, ""));
            let rows = by_segment.entry(segment.as_bytes().into()).or_default();
            // Two groups may share a prefix (`events` and `events.k8s.io` both store under
            // `events/`): the first (the core group) decides, as upstream's storage does.
            if rows.iter().any(|(r, _)| **r == *rest.as_bytes()) {
                continue;
            }
            let chain = config
                .chain(group, resource)
                .filter(|c| !is_plain(c))
                .cloned();
            rows.push((rest.as_bytes().into(), chain));
        }
        Resolved { config, by_segment }
    }

    /// The chain of the resource `key` (below the etcd prefix) belongs to.
    fn chain(&self, key: &[u8]) -> Option<Arc<Chain>> {
        let slash = key.iter().position(|b| *b == b'/')?;
        let (segment, rest) = (&key[..slash], &key[slash + 1..]);
        if let Some(rows) = self.by_segment.get(segment) {
            return rows
                .iter()
                .find(|(p, _)| rest.starts_with(p))
                .and_then(|(_, c)| c.clone());
        }
        // Not a built-in: a custom resource, stored under `<group>/<resource>/`.
        let group = std::str::from_utf8(segment).ok()?;
        if !group.contains('.') {
            return None;
        }
        let end = rest.iter().position(|b| *b == b'/')?;
        let resource = std::str::from_utf8(&rest[..end]).ok()?;
        self.config
            .chain(group, resource)
            .filter(|c| !is_plain(c))
            .cloned()
    }
}

/// A chain that stores values as they are: identity first and nothing else to read with.
fn is_plain(chain: &Chain) -> bool {
    matches!(chain.as_slice(), [Provider::Identity])
}

impl Encryption {
    pub fn new(config: Config, layout: Layout, etcd_prefix: &str) -> Encryption {
        Encryption {
            current: RwLock::new(Arc::new(Resolved::new(config, &layout))),
            reload: false,
            layout,
            etcd_prefix: etcd_prefix.to_string(),
        }
    }

    /// Applies a new configuration to every later read and write (its KMS providers primed
    /// first; the old ones stop polling once no request holds them).
    pub fn replace(&self, config: Config) {
        for kms in config.kms_providers() {
            kms.start();
        }
        let resolved = Arc::new(Resolved::new(config, &self.layout));
        match self.current.write() {
            Ok(mut current) => *current = resolved,
            Err(poisoned) => *poisoned.into_inner() = resolved,
        }
    }

    /// The `kms-providers` health check: `None` when it is not there (no KMS provider, no
    /// reload), else every KMS provider's probe, failures named `kms-provider-<i>`.
    pub async fn kms_health(&self) -> Option<Result<(), String>> {
        let providers = self.resolved().config.kms_providers();
        if providers.is_empty() && !self.reload {
            return None;
        }
        let mut errors = Vec::new();
        for (i, kms) in providers.iter().enumerate() {
            if let Err(e) = kms.health().await {
                errors.push(format!("kms-provider-{i}: {e}"));
            }
        }
        Some(match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        })
    }

    fn resolved(&self) -> Arc<Resolved> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn chain(&self, key: &[u8]) -> Option<Arc<Chain>> {
        let below = key.strip_prefix(self.etcd_prefix.as_bytes())?;
        let current = match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        current.chain(below)
    }

    /// The value to store at `key`: sealed by its resource's first provider.
    pub fn seal(&self, key: &[u8], value: Bytes) -> Result<Bytes, String> {
        let Some(chain) = self.chain(key) else {
            return Ok(value);
        };
        let first = chain.first().ok_or("no providers")?;
        let result = first.seal(&value, key);
        count("to_storage", first.prefix(), result.is_ok());
        match result {
            Ok(Some(sealed)) => Ok(Bytes::from(sealed)),
            Ok(None) => Ok(value),
            Err(e) => Err(format!("unable to transform key {:?}: {e}", lossy(key))),
        }
    }

    /// Whether values of `key`'s resource are transformed at all.
    pub fn encrypts(&self, key: &[u8]) -> bool {
        self.chain(key).is_some()
    }

    /// Whether `stored` (the value at `key`) differs in form from what a write would store now.
    pub fn is_stale(&self, key: &[u8], stored: &[u8]) -> bool {
        match self.chain(key) {
            Some(chain) => chain.first().is_some_and(|p| !p.wrote(stored)),
            None => false,
        }
    }

    /// The plaintext of the value stored at `key`, read by the provider whose prefix it carries.
    pub async fn open(&self, key: &[u8], value: Bytes) -> Result<Bytes, String> {
        let Some(chain) = self.chain(key) else {
            return Ok(value);
        };
        let result = open_with(&chain, key, &value).await;
        count("from_storage", value_prefix(&value), result.is_ok());
        result
            .map(Bytes::from)
            .map_err(|e| format!("unable to transform key {:?}: {e}", lossy(key)))
    }
}

/// `k8s:enc:aescbc:v1:` of an encrypted value (its provider's prefix), `` of a plain one.
fn value_prefix(value: &[u8]) -> &str {
    if !value.starts_with(providers::ENCRYPTED_PREFIX) {
        return "";
    }
    // k8s:enc:<provider>:v1: is four colons long.
    let end = value
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b':')
        .nth(3)
        .map_or(0, |(i, _)| i + 1);
    std::str::from_utf8(&value[..end]).unwrap_or("")
}

static TRANSFORMATIONS: std::sync::LazyLock<prometheus::IntCounterVec> = std::sync::LazyLock::new(
    || {
        use crate::metrics::{Stability, help, register};
        register(
            prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "apiserver_storage_transformation_operations_total",
                    help(
                        Stability::Alpha,
                        None,
                        "Total number of transformations. Successful transformation will have a status 'OK' and a varied status string when the transformation fails. The status, resource, and transformation_type fields can be used for alerting purposes. For example, you can monitor for encryption/decryption failures using the transformation_type (e.g., from_storage for decryption and to_storage for encryption). Additionally, these fields can be used to ensure that the correct transformers are applied to each resource.",
                    ),
                ),
                &["transformation_type", "transformer_prefix", "status"],
            )
            .expect("a valid metric"),
        )
    },
);

/// Counts one transformation of an encrypted resource's value.
fn count(kind: &str, prefix: &str, ok: bool) {
    let prefix = if prefix.is_empty() {
        "identity"
    } else {
        prefix
    };
    let status = if ok { "OK" } else { "Unknown" };
    TRANSFORMATIONS
        .with_label_values(&[kind, prefix, status])
        .inc();
}

/// Reads `value` with the first provider of `chain` whose prefix it carries. Identity (empty
/// prefix) matches everything but refuses encrypted data, and then the next provider is tried,
/// so `[identity, aescbc]` reads both plain and old encrypted values. A KMS provider's value may
/// need its plugin (`Decrypt`), awaited here.
pub async fn open_with(chain: &Chain, key: &[u8], value: &[u8]) -> Result<Vec<u8>, String> {
    for provider in chain {
        if let Provider::Kms(kms) = provider {
            match value.strip_prefix(&*kms.prefix) {
                Some(sealed) => return kms.open(sealed, key).await,
                None => continue,
            }
        }
        match provider.open(value, key) {
            None => continue,
            Some(Err(_)) if matches!(provider, Provider::Identity) => continue,
            Some(result) => return result,
        }
    }
    Err("no matching prefix found".into())
}

fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Reads `--encryption-provider-config` (an error stops the server, as upstream's start) and,
/// with automatic reload, follows the file. `None` when the flag is absent.
pub fn start(
    flags: &Flags,
    layout: Layout,
    etcd_prefix: &str,
) -> Result<Option<Arc<Encryption>>, String> {
    let Some(path) = &flags.encryption_provider_config else {
        return Ok(None);
    };
    let (config, data) = config::load(path)
        .map_err(|e| format!("--encryption-provider-config: error while parsing file: {e}"))?;
    for kms in config.kms_providers() {
        kms.start();
    }
    let mut encryption = Encryption::new(config, layout, etcd_prefix);
    encryption.reload = flags.encryption_provider_config_automatic_reload;
    let encryption = Arc::new(encryption);
    if flags.encryption_provider_config_automatic_reload {
        let (e, path) = (encryption.clone(), path.clone());
        std::thread::Builder::new()
            .name("kapi-encryption-reload".into())
            .spawn(move || follow(&e, &path, data))
            .map_err(|e| format!("starting the encryption configuration reload: {e}"))?;
    }
    Ok(Some(encryption))
}

/// Re-reads the file every `RELOAD_INTERVAL`; a changed, valid configuration replaces the old
/// one, an invalid one is logged and the old one kept (as upstream's reload controller does).
fn follow(encryption: &Encryption, path: &std::path::Path, loaded: Vec<u8>) {
    use crate::metrics::{Stability, help, register};
    let reloads = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "apiserver_encryption_config_controller_automatic_reloads_total",
            help(
                Stability::Alpha,
                None,
                "Total number of reload successes and failures of encryption configuration split by apiserver identity.",
            ),
        ),
        &["status"],
    )
    .ok()
    .map(register);
    crate::reload::follow(
        path,
        loaded,
        RELOAD_INTERVAL,
        "encryption",
        |data| config::parse(data).map(|config| encryption.replace(config)),
        |status| {
            if let Some(r) = &reloads {
                r.with_label_values(&[status]).inc();
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        [
            ("secrets/", "", "secrets"),
            ("configmaps/", "", "configmaps"),
            ("services/specs/", "", "services"),
            ("deployments/", "apps", "deployments"),
        ]
        .iter()
        .map(|(p, g, r)| (p.to_string(), g.to_string(), r.to_string()))
        .collect()
    }

    const CONFIG: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets, widgets.example.com]
  providers:
  - aesgcm: {keys: [{name: key2, secret: MDEyMzQ1Njc4OWFiY2RlZg==}]}
  - aescbc: {keys: [{name: key1, secret: MDEyMzQ1Njc4OWFiY2RlZg==}]}
  - identity: {}
"#;

    fn sealed_again(e: &Encryption, key: &[u8]) -> Bytes {
        e.seal(key, Bytes::from_static(b"v")).unwrap()
    }

    #[test]
    fn only_configured_resources_are_sealed_and_all_providers_read() {
        let e = Encryption::new(
            config::parse(CONFIG.as_bytes()).unwrap(),
            layout(),
            "/registry/",
        );
        let key = b"/registry/secrets/default/s";
        let sealed = e.seal(key, Bytes::from_static(b"k8s\0plain")).unwrap();
        assert!(sealed.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
        assert_eq!(
            futures::executor::block_on(e.open(key, sealed)).unwrap(),
            &b"k8s\0plain"[..]
        );
        // Plain values (written before encryption) are still read through identity.
        assert_eq!(
            futures::executor::block_on(e.open(key, Bytes::from_static(b"old"))).unwrap(),
            &b"old"[..]
        );
        // Other resources pass untouched.
        let cm = b"/registry/configmaps/default/c";
        assert_eq!(e.seal(cm, Bytes::from_static(b"v")).unwrap(), &b"v"[..]);
        assert!(!e.is_stale(key, &e.seal(key, Bytes::from_static(b"v")).unwrap()));
        assert_eq!(value_prefix(&sealed_again(&e, key)), "k8s:enc:aesgcm:v1:");
        assert!(e.is_stale(key, b"old"));
        // Custom resources by group and resource.
        let cr = b"/registry/example.com/widgets/default/w";
        assert!(
            e.seal(cr, Bytes::from_static(b"{}"))
                .unwrap()
                .starts_with(b"k8s:enc:aesgcm")
        );
    }

    #[test]
    fn a_value_of_a_key_no_longer_configured_is_an_error() {
        let e = Encryption::new(
            config::parse(CONFIG.as_bytes()).unwrap(),
            layout(),
            "/registry/",
        );
        let key = b"/registry/secrets/default/s";
        let sealed = e.seal(key, Bytes::from_static(b"v")).unwrap();
        e.replace(
            config::parse(
                br#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - aescbc: {keys: [{name: key1, secret: MDEyMzQ1Njc4OWFiY2RlZg==}]}
"#,
            )
            .unwrap(),
        );
        let err = futures::executor::block_on(e.open(key, sealed)).unwrap_err();
        assert!(err.contains("no matching prefix found"), "{err}");
        assert!(futures::executor::block_on(e.open(key, Bytes::from_static(b"plain"))).is_err());
    }
}
