//! Service-account tokens: issued by TokenRequest (bound tokens, `kubernetes.io` claims) and
//! verified on every request that carries one as a bearer token, as upstream's
//! `pkg/serviceaccount` (claims, legacy secret-based tokens) and its JWT authenticator: issuer,
//! signature against every `--service-account-key-file` key, time, audiences, and the named
//! objects still there with the same uid (in the watch cache).
//!
//! Hot path for every request with a service-account token. Verified signatures are
//! remembered (`VerifiedTokens`: SHA-256 of the token → its claims, bounded, short-lived), so
//! the RSA/ECDSA check is paid once per token and minute; time, audiences and the objects are
//! checked on every use, so a deleted pod or ServiceAccount ends its tokens at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

use super::flags::Settings;
use super::lookup::{Identity, Kind, Lookup};
use super::{Authenticator, Outcome, TokenOutcome, UserInfo};
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

/// A name and uid the `kubernetes.io` claim refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

impl Ref {
    fn from(v: &Value) -> Option<Ref> {
        let o = v.as_object()?;
        Some(Ref {
            name: o.get("name")?.as_str()?.to_string(),
            uid: o
                .get("uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }

    /// As upstream's `ref`: each field omitted when empty (a pod's node that is not there is
    /// named without a uid).
    fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        if !self.name.is_empty() {
            o.insert("name".into(), json!(self.name));
        }
        if !self.uid.is_empty() {
            o.insert("uid".into(), json!(self.uid));
        }
        Value::Object(o)
    }
}

/// The claims of a token, as far as kapi reads them.
#[derive(Debug, Clone, Default)]
struct Claims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: String,
    namespace: String,
    service_account: Ref,
    pod: Option<Ref>,
    secret: Option<Ref>,
    node: Option<Ref>,
    warn_after: Option<i64>,
}

impl Claims {
    fn parse(v: &Value) -> Claims {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let n = |k: &str| v.get(k).and_then(Value::as_f64).map(|f| f as i64);
        let aud = match v.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let mut c = Claims {
            iss: s("iss"),
            sub: s("sub"),
            aud,
            exp: n("exp"),
            nbf: n("nbf"),
            iat: n("iat"),
            jti: s("jti"),
            ..Claims::default()
        };
        if let Some(k) = v.get("kubernetes.io") {
            c.namespace = k
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            c.service_account = k
                .get("serviceaccount")
                .and_then(Ref::from)
                .unwrap_or_default();
            c.pod = k.get("pod").and_then(Ref::from);
            c.secret = k.get("secret").and_then(Ref::from);
            c.node = k.get("node").and_then(Ref::from);
            c.warn_after = k.get("warnafter").and_then(Value::as_f64).map(|f| f as i64);
        } else {
            // A legacy token: its own claim names, and the Secret holding it.
            c.namespace = s("kubernetes.io/serviceaccount/namespace");
            c.service_account = Ref {
                name: s("kubernetes.io/serviceaccount/service-account.name"),
                uid: s("kubernetes.io/serviceaccount/service-account.uid"),
            };
            let secret = s("kubernetes.io/serviceaccount/secret.name");
            c.secret = Some(Ref {
                name: secret,
                uid: String::new(),
            });
        }
        c
    }
}

/// What a verified, still valid token says about its bearer (upstream's ServiceAccountInfo).
struct Info {
    namespace: String,
    name: String,
    uid: String,
    pod: Option<Ref>,
    node: Option<Ref>,
    credential_id: Option<String>,
}

impl Info {
    fn user(self) -> UserInfo {
        let mut extra = BTreeMap::new();
        if let Some(pod) = self.pod.filter(|p| !p.uid.is_empty()) {
            extra.insert(POD_NAME_KEY.to_string(), vec![pod.name]);
            extra.insert(POD_UID_KEY.to_string(), vec![pod.uid]);
        }
        if let Some(id) = self.credential_id {
            extra.insert(CREDENTIAL_ID_KEY.to_string(), vec![id]);
        }
        if let Some(node) = self.node {
            extra.insert(NODE_NAME_KEY.to_string(), vec![node.name]);
            if !node.uid.is_empty() {
                extra.insert(NODE_UID_KEY.to_string(), vec![node.uid]);
            }
        }
        UserInfo {
            name: format!("{SA_PREFIX}{}:{}", self.namespace, self.name),
            uid: self.uid,
            groups: vec![
                ALL_SA_GROUP.to_string(),
                format!("{ALL_SA_GROUP}:{}", self.namespace),
            ],
            extra,
        }
    }
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A verified token's claims, and when its signature was checked.
type Verified = (Instant, Arc<Claims>);

/// Tokens whose signature has been checked: SHA-256 of the token → its claims.
struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Verified>>,
}

impl VerifiedTokens {
    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Claims>> {
        let entries = self.entries.lock().ok()?;
        let (at, claims) = entries.get(digest)?;
        (at.elapsed() < VERIFIED_TTL).then(|| claims.clone())
    }

    fn put(&self, digest: [u8; 32], claims: Arc<Claims>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= VERIFIED_CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < VERIFIED_TTL);
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest, (Instant::now(), claims));
    }
}

/// The service-account token issuer and verifier: the resolved flags, the watch-cache lookups
/// and the verified-token memory. One per server, shared by the authenticator chain and the
/// TokenRequest and discovery handlers.
pub struct ServiceAccounts {
    pub settings: Settings,
    pub lookup: Arc<Lookup>,
    /// The issuer discovery documents, when the issuer is an https URL.
    pub discovery: Option<super::oidc::Discovery>,
    verified: VerifiedTokens,
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
            verified: VerifiedTokens {
                entries: Mutex::new(HashMap::new()),
            },
        }
    }

    /// `token` as a bearer credential for `audiences` (a TokenReview's, or the server's own):
    /// not a service-account token of ours, invalid (why), or the user and the audiences it is
    /// good for (the intersection, as upstream).
    pub fn authenticate_token(&self, token: &str, audiences: &[String]) -> TokenOutcome {
        if token.len() > super::jwt::MAX_TOKEN_BYTES {
            return TokenOutcome::NotMine;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
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

/// What a bound token names besides its ServiceAccount.
pub struct Binding {
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    pub node: Option<Ref>,
}

#[allow(clippy::too_many_arguments)]
/// Upstream's `Claims`: the standard claims (a fresh jti) and the `kubernetes.io` claim.
pub fn claims(
    issuer: &str,
    namespace: &str,
    sa: &Ref,
    binding: &Binding,
    now: i64,
    expiration: u64,
    warn_after: Option<u64>,
    audiences: &[String],
) -> Value {
    let mut k = json!({
        "namespace": namespace,
        "serviceaccount": sa.to_json(),
    });
    if let Some(pod) = &binding.pod {
        k["pod"] = pod.to_json();
    }
    if let Some(secret) = &binding.secret {
        k["secret"] = secret.to_json();
    }
    if let Some(node) = &binding.node {
        k["node"] = node.to_json();
    }
    if let Some(w) = warn_after {
        k["warnafter"] = json!(now.saturating_add(w as i64));
    }
    json!({
        "iss": issuer,
        "sub": format!("{SA_PREFIX}{namespace}:{}", sa.name),
        "aud": audiences,
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(expiration as i64),
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": k,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_through_their_parser() {
        let sa = Ref {
            name: "builder".into(),
            uid: "u1".into(),
        };
        let binding = Binding {
            pod: Some(Ref {
                name: "p".into(),
                uid: "u2".into(),
            }),
            secret: None,
            node: Some(Ref {
                name: "n".into(),
                uid: "u3".into(),
            }),
        };
        let v = claims(
            "https://issuer",
            "ns",
            &sa,
            &binding,
            1000,
            EXTENDED_EXPIRATION,
            Some(WARN_ONLY_EXPIRATION),
            &["a".to_string()],
        );
        assert_eq!(v["sub"], "system:serviceaccount:ns:builder");
        assert_eq!(v["kubernetes.io"]["warnafter"], 1000 + 3607);
        let c = Claims::parse(&v);
        assert_eq!(c.aud, vec!["a"]);
        assert_eq!(c.exp, Some(1000 + 31_536_000));
        assert_eq!(c.service_account, sa);
        assert_eq!(c.pod, binding.pod);
        assert_eq!(c.node, binding.node);
        assert_eq!(c.warn_after, Some(4607));
        let user = Info {
            namespace: c.namespace,
            name: c.service_account.name,
            uid: c.service_account.uid,
            pod: c.pod,
            node: c.node,
            credential_id: Some(format!("JTI={}", c.jti)),
        }
        .user();
        assert_eq!(user.name, "system:serviceaccount:ns:builder");
        assert_eq!(
            user.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:ns"]
        );
        assert_eq!(user.extra[POD_UID_KEY], vec!["u2"]);
        assert_eq!(user.extra[NODE_NAME_KEY], vec!["n"]);
        assert!(user.extra[CREDENTIAL_ID_KEY][0].starts_with("JTI="));
    }

    #[test]
    fn legacy_claims_name_their_secret() {
        let c = Claims::parse(&json!({
            "iss": LEGACY_ISSUER,
            "sub": "system:serviceaccount:ns:old",
            "kubernetes.io/serviceaccount/namespace": "ns",
            "kubernetes.io/serviceaccount/secret.name": "old-token",
            "kubernetes.io/serviceaccount/service-account.name": "old",
            "kubernetes.io/serviceaccount/service-account.uid": "u9",
        }));
        assert_eq!(c.namespace, "ns");
        assert_eq!(c.secret.unwrap().name, "old-token");
        assert_eq!(c.service_account.uid, "u9");
        assert!(c.aud.is_empty());
    }
}
