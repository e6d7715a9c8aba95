//! The service-account and bootstrap-token flags of kube-apiserver (names, defaults and help as
//! upstream's), and what they resolve to at start: the keys read, the issuers and audiences.
//! Zero-config: with no signing key, one is generated in `--data-dir` beside the generated CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::keys::{PublicKey, SigningKey};

/// The issuer kapi signs with when no `--service-account-issuer` is given: upstream's usual
/// value (kubeadm, kind) for the in-cluster name of the `kubernetes` service.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Upstream's `-h` group of these flags.
const HEADING: &str = "Authentication flags";
/// The generated signing key's file name in `--data-dir`.
const GENERATED_KEY: &str = "service-account.key";
/// Upstream's bounds on `--service-account-max-token-expiration`.
const MIN_MAX_EXPIRATION: Duration = Duration::from_secs(3600);
const MAX_MAX_EXPIRATION: Duration = Duration::from_secs(1 << 32);

/// Grouped in `-h` as upstream groups them: "Authentication flags", the signing key under
/// "Misc flags" (per flag: a heading set on the struct would carry over to the flags flattened
/// after it).
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// File containing PEM-encoded x509 RSA or ECDSA private or public keys, used to verify
    /// ServiceAccount tokens. The specified file can contain multiple keys, and the flag can be
    /// specified multiple times with different files. If unspecified, --tls-private-key-file is
    /// used. Must be specified when --service-account-signing-key-file is provided. kapi: the
    /// key generated in --data-dir (service-account.key) verifies too when it signs.
    #[arg(help_heading = HEADING, long = "service-account-key-file")]
    pub key_files: Vec<PathBuf>,
    /// Path to the file that contains the current private key of the service account token
    /// issuer. The issuer will sign issued ID tokens with this private key. kapi: when absent,
    /// an ECDSA P-256 key (ES256) is generated once in --data-dir (service-account.key) and
    /// reused by later starts.
    #[arg(long = "service-account-signing-key-file", help_heading = "Misc flags")]
    pub signing_key_file: Option<PathBuf>,
    /// Identifier of the service account token issuer. The issuer will assert this identifier
    /// in "iss" claim of issued tokens. This value is a string or URI. It is highly recommended
    /// that this be an https URL capable of serving OpenID discovery documents at
    /// {service-account-issuer}/.well-known/openid-configuration. When this flag is specified
    /// multiple times, the first is used to generate tokens and all are used to determine which
    /// issuers are accepted. kapi: https://kubernetes.default.svc.cluster.local when absent.
    #[arg(help_heading = HEADING, long = "service-account-issuer")]
    pub issuers: Vec<String>,
    /// Overrides the URI for the JSON Web Key Set in the discovery doc served at
    /// /.well-known/openid-configuration. This flag is useful if the discovery doc and key set
    /// are served to relying parties from a URL other than the API server's external address.
    #[arg(help_heading = HEADING, long = "service-account-jwks-uri")]
    pub jwks_uri: Option<String>,
    /// Identifiers of the API. The service account token authenticator will validate that
    /// tokens used against the API are bound to at least one of these audiences. If the
    /// --service-account-issuer flag is configured and this flag is not, this field defaults to
    /// a single element list containing the issuer URL.
    #[arg(help_heading = HEADING, long = "api-audiences", value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// The maximum validity duration of a token created by the service account token issuer.
    /// If an otherwise valid TokenRequest with a validity duration larger than this value is
    /// requested, a token will be issued with a validity duration of this value.
    #[arg(help_heading = HEADING, long = "service-account-max-token-expiration", default_value = "0s",
          value_parser = crate::shutdown::parse_duration)]
    pub max_token_expiration: Duration,
    /// Turns on projected service account expiration extension during token generation, which
    /// helps safe transition from legacy token to bound service account token feature. If this
    /// flag is enabled, admission injected tokens would be extended up to 1 year to prevent
    /// unexpected failure during transition, ignoring value of
    /// service-account-max-token-expiration.
    #[arg(help_heading = HEADING, long = "service-account-extend-token-expiration", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub extend_token_expiration: bool,
    /// If true, validate ServiceAccount tokens exist in etcd as part of authentication.
    #[arg(help_heading = HEADING, long = "service-account-lookup", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub lookup: bool,
    /// Enable to allow secrets of type 'bootstrap.kubernetes.io/token' in the 'kube-system'
    /// namespace to be used for TLS bootstrapping authentication.
    #[arg(help_heading = HEADING, long = "enable-bootstrap-token-auth", default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_bootstrap_token_auth: bool,
}

/// What the flags resolve to: keys read, defaults filled in.
#[derive(Clone)]
pub struct Settings {
    /// Accepted issuers; the first signs.
    pub issuers: Vec<String>,
    pub api_audiences: Vec<String>,
    /// None only where no key could be had (the fuzzing harness): TokenRequest is then a 500.
    pub signing_key: Option<Arc<SigningKey>>,
    pub public_keys: Vec<PublicKey>,
    /// Seconds; 0 is no cap.
    pub max_expiration: u64,
    pub extend_expiration: bool,
    pub lookup: bool,
    pub jwks_uri: Option<String>,
    pub bootstrap_tokens: bool,
    /// host:port clients reach the server at: the default `jwks_uri`'s host, as upstream's
    /// external address.
    pub external_address: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            issuers: vec![DEFAULT_ISSUER.to_string()],
            api_audiences: vec![DEFAULT_ISSUER.to_string()],
            signing_key: None,
            public_keys: Vec::new(),
            max_expiration: 0,
            extend_expiration: true,
            lookup: true,
            jwks_uri: None,
            bootstrap_tokens: false,
            external_address: None,
        }
    }
}

impl Settings {
    /// What no flags give: the key generated in (or read back from) `data_dir`, the default
    /// issuer and audiences (the in-process harness serves with these).
    pub fn zero_config(data_dir: &Path) -> Result<Settings, String> {
        let key = generated_key(data_dir)?;
        Ok(Settings {
            public_keys: vec![key.public.clone()],
            signing_key: Some(Arc::new(key)),
            ..Settings::default()
        })
    }
}

impl Flags {
    /// Reads the key files (generating the signing key in `data_dir` when none is given) and
    /// checks the flags as upstream's validation does. `tls_key` (`--tls-private-key-file`)
    /// verifies when no key file is given, as upstream.
    pub fn resolve(&self, data_dir: &Path, tls_key: Option<&Path>) -> Result<Settings, String> {
        let max = self.max_token_expiration;
        if !max.is_zero() && !(MIN_MAX_EXPIRATION..=MAX_MAX_EXPIRATION).contains(&max) {
            return Err(
                "service-account-max-token-expiration must be between 1 hour and 2^32 seconds"
                    .into(),
            );
        }
        for issuer in &self.issuers {
            if issuer.is_empty() {
                return Err("service-account-issuer should not be an empty string".into());
            }
            if issuer.contains(':') && !looks_like_url(issuer) {
                return Err(format!(
                    "service-account-issuer {issuer:?} contained a ':' but was not a valid URL"
                ));
            }
        }
        let mut key_files = self.key_files.clone();
        if key_files.is_empty()
            && let Some(tls_key) = tls_key
        {
            match super::keys::public_keys_from_file(tls_key) {
                Ok(_) => key_files.push(tls_key.to_path_buf()),
                Err(_) => eprintln!(
                    "kapi: the TLS key is not an RSA or ECDSA key; it does not verify \
                     service-account tokens"
                ),
            }
        }
        let signing_key = match &self.signing_key_file {
            Some(path) => {
                if key_files.is_empty() {
                    return Err("--service-account-key-file must be specified when \
                         --service-account-signing-key-file is provided"
                        .into());
                }
                SigningKey::from_file(path)?
            }
            None => generated_key(data_dir)?,
        };
        let mut public_keys = Vec::new();
        for path in &key_files {
            public_keys.extend(super::keys::public_keys_from_file(path)?);
        }
        if self.signing_key_file.is_none()
            && !public_keys.iter().any(|k| k.kid == signing_key.public.kid)
        {
            public_keys.push(signing_key.public.clone());
        }
        let issuers = if self.issuers.is_empty() {
            vec![DEFAULT_ISSUER.to_string()]
        } else {
            self.issuers.clone()
        };
        let api_audiences = if self.api_audiences.is_empty() {
            vec![issuers[0].clone()]
        } else {
            self.api_audiences.clone()
        };
        if self.extend_expiration_warns() {
            eprintln!(
                "kapi: service-account-extend-token-expiration is true, enabling tokens valid \
                 up to 31536000 seconds, which is longer than \
                 service-account-max-token-expiration set to {}s",
                max.as_secs()
            );
        }
        Ok(Settings {
            issuers,
            api_audiences,
            signing_key: Some(Arc::new(signing_key)),
            public_keys,
            max_expiration: max.as_secs(),
            extend_expiration: self.extend_token_expiration,
            lookup: self.lookup,
            jwks_uri: self.jwks_uri.clone().filter(|u| !u.is_empty()),
            bootstrap_tokens: self.enable_bootstrap_token_auth,
            external_address: None,
        })
    }

    fn extend_expiration_warns(&self) -> bool {
        self.extend_token_expiration
            && !self.max_token_expiration.is_zero()
            && self.max_token_expiration.as_secs() < super::serviceaccount::EXTENDED_EXPIRATION
    }
}

fn looks_like_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
        }
        None => false,
    }
}

/// The signing key generated in `data_dir` on first start, read back on later ones.
fn generated_key(data_dir: &Path) -> Result<SigningKey, String> {
    let path = data_dir.join(GENERATED_KEY);
    if path.exists() {
        return SigningKey::from_file(&path);
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let key = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    crate::pki::write_file(&path, key.serialize_pem().as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    SigningKey::from_file(&path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: Flags,
    }

    fn flags(args: &[&str]) -> Flags {
        Cli::try_parse_from(std::iter::once("kapi").chain(args.iter().copied()))
            .unwrap()
            .flags
    }

    #[test]
    fn zero_config_generates_a_key_once_and_defaults_issuer_and_audiences() {
        let dir = tempfile::tempdir().unwrap();
        let first = flags(&[]).resolve(dir.path(), None).unwrap();
        assert_eq!(first.issuers, vec![DEFAULT_ISSUER]);
        assert_eq!(first.api_audiences, vec![DEFAULT_ISSUER]);
        assert!(first.extend_expiration && first.lookup && !first.bootstrap_tokens);
        let again = flags(&[]).resolve(dir.path(), None).unwrap();
        let kid = |s: &Settings| s.signing_key.as_ref().unwrap().public.kid.clone();
        assert_eq!(kid(&first), kid(&again));
        assert_eq!(first.public_keys.len(), 1);
    }

    #[test]
    fn given_keys_issuers_and_audiences_are_taken_as_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/serviceaccounts");
        let s = flags(&[
            "--service-account-key-file",
            &format!("{data}/rsa.pub"),
            "--service-account-key-file",
            &format!("{data}/ec.key"),
            "--service-account-signing-key-file",
            &format!("{data}/rsa.key"),
            "--service-account-issuer=https://a.example",
            "--service-account-issuer=https://b.example",
            "--service-account-max-token-expiration=2h",
            "--service-account-lookup=false",
            "--enable-bootstrap-token-auth",
        ])
        .resolve(dir.path(), None)
        .unwrap();
        assert_eq!(s.issuers, vec!["https://a.example", "https://b.example"]);
        assert_eq!(s.api_audiences, vec!["https://a.example"]);
        assert_eq!(s.public_keys.len(), 2);
        assert_eq!(s.max_expiration, 7200);
        assert!(!s.lookup && s.bootstrap_tokens);
        assert!(!dir.path().join(GENERATED_KEY).exists());
    }

    #[test]
    fn the_tls_key_verifies_when_no_key_file_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/serviceaccounts");
        let key = format!("{data}/rsa.key");
        let s = flags(&["--service-account-signing-key-file", &key])
            .resolve(dir.path(), Some(Path::new(&key)))
            .unwrap();
        assert_eq!(s.public_keys.len(), 1);
        assert_eq!(
            s.public_keys[0].kid,
            s.signing_key.as_ref().unwrap().public.kid
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let short = flags(&["--service-account-max-token-expiration=10m"]);
        assert!(short.resolve(dir.path(), None).is_err());
        let url = flags(&["--service-account-issuer=https:"]);
        assert!(url.resolve(dir.path(), None).is_err());
        let lonely = flags(&["--service-account-signing-key-file=/nonexistent"]);
        assert!(lonely.resolve(dir.path(), None).is_err());
    }
}
