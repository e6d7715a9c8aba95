//! Service-account tokens: issued by TokenRequest (bound tokens, `kubernetes.io` claims) and
//! verified on every request that carries one as a bearer token, as upstream's
//! `pkg/serviceaccount` (claims, legacy secret-based tokens) and its JWT authenticator: issuer,
//! signature against every `--service-account-key-file` key, time, audiences, and the named
//! objects still there with the same uid (in the watch cache).
//!
//! Hot path for every request with a service-account token. Verified signatures are
//! remembered (a `TokenCache`: SHA-256 of the token → its claims, bounded, short-lived), so
//! the RSA/ECDSA check is paid once per token and minute; time, audiences and the objects are
//! checked on every use, so a deleted pod or ServiceAccount ends its tokens at once. The
//! claims themselves are `claims`'. Guarded by `benches/authn.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::Value;

pub use super::claims::{Binding, Ref, claims};
use super::claims::{Claims, Info};
use super::flags::Settings;
use super::lookup::{Identity, Kind, Lookup};
use super::token_cache::TokenCache;
use super::{Authenticator, Outcome, TokenOutcome};
use crate::transport::Request;

/// What a kubelet asks for (a projected token's default), upstream's signal to extend it.
pub const WARN_ONLY_EXPIRATION: u64 = 60 * 60 + 7;
/// What such a token is extended to: a year.
pub const EXTENDED_EXPIRATION: u64 = 24 * 365 * 60 * 60;
/// The issuer of secret-based (legacy) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Clock skew allowed on exp, nbf and iat, and how long after deletion a named object still
/// counts: go-jose's `DefaultLeeway`, as upstream.
const LEEWAY_SECS: i64 = 60;
/// Verified tokens remembered: a cluster's active service-account tokens (a few per pod on a
/// busy API server's clients) fit; past it the expired go, then all (re-verified on next use).
const VERIFIED_CAPACITY: usize = 4096;
/// How long a verified signature is trusted without checking it again. Only the signature is
/// remembered: keys never change while kapi runs, so this bounds memory, not staleness.
const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// Upstream's service-account token counters (`pkg/serviceaccount/metrics.go`).
struct Counters {
    legacy: prometheus::IntCounter,
    stale: prometheus::IntCounter,
    valid: prometheus::IntCounter,
}

static COUNTERS: std::sync::LazyLock<Counters> = std::sync::LazyLock::new(|| {
    use crate::metrics::{Stability, help, register};
    let counter = |name: &str, text: &str| {
        let opts = prometheus::Opts::new(name, help(Stability::Alpha, None, text))
            .subsystem("serviceaccount");
        register(prometheus::IntCounter::with_opts(opts).expect("a valid metric"))
    };
    Counters {
        legacy: counter(
            "legacy_tokens_total",
            "Cumulative legacy service account tokens used",
        ),
        stale: counter(
            "stale_tokens_total",
            "Cumulative stale projected service account tokens used",
        ),
        valid: counter(
            "valid_tokens_total",
            "Cumulative valid projected service account tokens used",
        ),
    }
});

pub const SA_PREFIX: &str = "system:serviceaccount:";
pub const ALL_SA_GROUP: &str = "system:serviceaccounts";
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The service-account token issuer and verifier: the resolved flags, the watch-cache lookups
/// and the verified-token memory. One per server, shared by the authenticator chain and the
/// TokenRequest and discovery handlers.
pub struct ServiceAccounts {
    pub settings: Settings,
    pub lookup: Arc<Lookup>,
    /// The issuer discovery documents, when the issuer is an https URL.
    pub discovery: Option<super::oidc::Discovery>,
    verified: TokenCache<Arc<Claims>>,
}

impl ServiceAccounts {
    pub fn new(settings: Settings, lookup: Arc<Lookup>) -> ServiceAccounts {
        let discovery =
            super::oidc::Discovery::new(&settings, settings.external_address.as_deref());
        // Listed by /metrics from the start, as upstream's registry does.
        std::sync::LazyLock::force(&COUNTERS);
        ServiceAccounts {
            settings,
            lookup,
            discovery,
            verified: TokenCache::new(VERIFIED_CAPACITY, VERIFIED_TTL),
        }
    }

    /// `token` as a bearer credential for `audiences` (a TokenReview's, or the server's own):
    /// not a service-account token of ours, invalid (why), or the user and the audiences it is
    /// good for (the intersection, as upstream).
    pub fn authenticate_token(&self, token: &str, audiences: &[String]) -> TokenOutcome {
        if token.len() > super::jwt::MAX_TOKEN_BYTES {
            return TokenOutcome::NotMine;
        }
        let key = TokenCache::<Arc<Claims>>::key(&[token.as_bytes()]);
        // A remembered token passed every check below before: its bytes are the same.
        let claims = match self.verified.get(&key) {
            Some(c) => c,
            None => {
                if !super::jwt::is_jws(token) {
                    return TokenOutcome::NotMine;
                }
                // Whose token is it? Only ours are worth a signature check.
                let Some(unverified) = super::jwt::unverified_claims(token) else {
                    return TokenOutcome::NotMine;
                };
                let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
                if iss != LEGACY_ISSUER && !self.settings.issuers.iter().any(|i| i == iss) {
                    return TokenOutcome::NotMine;
                }
                match super::jwt::verify(token, &self.settings.public_keys) {
                    Ok(v) => {
                        let c = Arc::new(Claims::parse(&v));
                        self.verified.put(key, c.clone());
                        c
                    }
                    Err(e) => return TokenOutcome::Invalid(format!("invalid bearer token, {e}")),
                }
            }
        };
        // Audiences: a token without any is good for the server's own (legacy tokens).
        let token_auds = if claims.aud.is_empty() {
            COUNTERS.legacy.inc();
            &self.settings.api_audiences
        } else {
            &claims.aud
        };
        let auds: Vec<String> = token_auds
            .iter()
            .filter(|a| audiences.contains(a))
            .cloned()
            .collect();
        if auds.is_empty() {
            return TokenOutcome::Invalid(format!(
                "invalid bearer token, token audiences {:?} is invalid for the target audiences {:?}",
                token_auds, audiences
            ));
        }
        let checked = if claims.iss == LEGACY_ISSUER {
            self.validate_legacy(token, &claims)
        } else {
            self.validate_bound(&claims)
        };
        match checked {
            Ok(info) => TokenOutcome::User(info.user(), auds),
            Err(e) => TokenOutcome::Invalid(format!("invalid bearer token, {e}")),
        }
    }

    /// Upstream's bound-token validator: time, then the ServiceAccount and the bound objects.
    fn validate_bound(&self, c: &Claims) -> Result<Info, String> {
        let now = now_unix();
        if c.exp
            .is_some_and(|exp| now > exp.saturating_add(LEEWAY_SECS))
        {
            return Err("service account token has expired".into());
        }
        if c.nbf
            .is_some_and(|nbf| now.saturating_add(LEEWAY_SECS) < nbf)
        {
            return Err("service account token is not valid yet".into());
        }
        if c.iat
            .is_some_and(|iat| now.saturating_add(LEEWAY_SECS) < iat)
        {
            return Err("service account token is issued in the future".into());
        }
        let deleted_before = now - LEEWAY_SECS;
        let gone = |id: &Identity| id.deletion_timestamp.is_some_and(|t| t < deleted_before);
        let ns = &c.namespace;
        let sa = &c.service_account;
        let found = self
            .lookup
            .identity(Kind::ServiceAccount, ns, &sa.name)
            .ok_or_else(|| format!("serviceaccounts \"{}\" not found", sa.name))?;
        if found.uid != sa.uid {
            return Err(format!(
                "service account UID ({}) does not match claim ({})",
                found.uid, sa.uid
            ));
        }
        if gone(&found) {
            return Err(format!("service account {ns}/{} has been deleted", sa.name));
        }
        if let Some(secret) = &c.secret {
            let found = self
                .lookup
                .identity(Kind::Secret, ns, &secret.name)
                .ok_or("service account token has been invalidated")?;
            if found.uid != secret.uid {
                return Err(format!(
                    "secret UID ({}) does not match service account secret ref claim ({})",
                    found.uid, secret.uid
                ));
            }
            if gone(&found) {
                return Err("service account token has been invalidated".into());
            }
        }
        if let Some(pod) = &c.pod {
            let found = self
                .lookup
                .identity(Kind::Pod, ns, &pod.name)
                .ok_or("service account token has been invalidated")?;
            if found.uid != pod.uid {
                return Err(format!(
                    "pod UID ({}) does not match service account pod ref claim ({})",
                    found.uid, pod.uid
                ));
            }
            if gone(&found) {
                return Err("service account token has been invalidated".into());
            }
        }
        // A pod-bound token names its pod's node for information only; a node-bound one is
        // checked against the node.
        if let (Some(node), None) = (&c.node, &c.pod) {
            let found = self
                .lookup
                .identity(Kind::Node, "", &node.name)
                .ok_or("service account token has been invalidated")?;
            if found.uid != node.uid {
                return Err(format!(
                    "node UID ({}) does not match service account node ref claim ({})",
                    found.uid, node.uid
                ));
            }
            if gone(&found) {
                return Err("service account token has been invalidated".into());
            }
        }
        // A kubelet's extended token past the hour it asked for: still valid, counted stale.
        if let Some(warn_after) = c.warn_after.filter(|&w| w != 0) {
            if now > warn_after {
                COUNTERS.stale.inc();
            } else {
                COUNTERS.valid.inc();
            }
        }
        Ok(Info {
            namespace: c.namespace.clone(),
            name: sa.name.clone(),
            uid: sa.uid.clone(),
            pod: c.pod.clone(),
            node: c.node.clone(),
            credential_id: (!c.jti.is_empty()).then(|| format!("JTI={}", c.jti)),
        })
    }

    /// Upstream's legacy validator: the claims it needs, and (with `--service-account-lookup`)
    /// its Secret still holding this very token and its ServiceAccount still the same.
    fn validate_legacy(&self, token: &str, c: &Claims) -> Result<Info, String> {
        let secret_name = c.secret.as_ref().map(|s| s.name.as_str()).unwrap_or("");
        if c.sub.is_empty() {
            return Err("sub claim is missing".into());
        }
        if c.namespace.is_empty() {
            return Err("namespace claim is missing".into());
        }
        if secret_name.is_empty() {
            return Err("secretName claim is missing".into());
        }
        if c.service_account.name.is_empty() {
            return Err("serviceAccountName claim is missing".into());
        }
        if c.service_account.uid.is_empty() {
            return Err("serviceAccountUID claim is missing".into());
        }
        let (ns, sa) = (&c.namespace, &c.service_account);
        if c.sub != format!("{SA_PREFIX}{ns}:{}", sa.name) {
            return Err("sub claim is invalid".into());
        }
        if self.settings.lookup {
            let secret = self
                .lookup
                .object(Kind::Secret, ns, secret_name)
                .ok()
                .flatten()
                .ok_or("Token has been invalidated")?;
            if secret.pointer("/metadata/deletionTimestamp").is_some() {
                return Err("Token has been invalidated".into());
            }
            let held = secret
                .pointer("/data/token")
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            if held.as_deref() != Some(token.as_bytes()) {
                return Err("Token does not match server's copy".into());
            }
            let found = self
                .lookup
                .identity(Kind::ServiceAccount, ns, &sa.name)
                .ok_or_else(|| format!("serviceaccounts \"{}\" not found", sa.name))?;
            if found.deletion_timestamp.is_some() {
                return Err(format!("ServiceAccount {ns}/{} has been deleted", sa.name));
            }
            if found.uid != sa.uid {
                return Err(format!(
                    "ServiceAccount UID ({}) does not match claim ({})",
                    found.uid, sa.uid
                ));
            }
            // Tokens the legacy-token cleaner marked invalid (upstream's label).
            if secret
                .pointer("/metadata/labels/kubernetes.io~1legacy-token-invalid-since")
                .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            {
                return Err(format!(
                    "the token in secret {ns}/{secret_name} for service account {ns}/{} has \
                     been marked invalid. Use tokens from the TokenRequest API or manually \
                     created secret-based tokens, or remove the \
                     'kubernetes.io/legacy-token-invalid-since' label from the secret to \
                     temporarily allow use of this token",
                    sa.name
                ));
            }
        }
        Ok(Info {
            namespace: ns.clone(),
            name: sa.name.clone(),
            uid: sa.uid.clone(),
            pod: None,
            node: None,
            credential_id: None,
        })
    }

    /// A signed token with `claims`, from the first issuer.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let key = self
            .settings
            .signing_key
            .as_ref()
            .ok_or("no service-account signing key is configured")?;
        super::jwt::sign(key, claims)
    }
}

/// The authenticator in the chain: bearer tokens issued by one of our issuers (or legacy).
pub struct ServiceAccountTokens(pub Arc<ServiceAccounts>);

impl Authenticator for ServiceAccountTokens {
    fn authenticate(&self, req: &Request) -> Outcome {
        let Some(token) = super::bearer_token(req) else {
            return Outcome::NotMine;
        };
        match self
            .0
            .authenticate_token(token, &self.0.settings.api_audiences)
        {
            TokenOutcome::User(user, _) => Outcome::User(user),
            TokenOutcome::Invalid(_) => Outcome::Invalid,
            TokenOutcome::NotMine => Outcome::NotMine,
        }
    }

    fn authenticate_token(&self, token: &str, audiences: &[String]) -> Option<TokenOutcome> {
        Some(self.0.authenticate_token(token, audiences))
    }
}
