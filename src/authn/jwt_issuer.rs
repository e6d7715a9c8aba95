//! The keys of one JWT issuer (`--authentication-config` or `--oidc-issuer-url`): its discovery
//! document (`<issuer>/.well-known/openid-configuration`, or `discoveryURL`) names a JWKS,
//! both fetched over HTTPS verified with the issuer's `certificateAuthority` (the system's
//! roots without one), off the serving cores: a tokio task per issuer on the `kapi-oidc`
//! thread. Requests read the current key set without waiting; a token signed by a key not in
//! it asks for a refresh and waits for that one attempt.
//!
//! Bounded: each document is read up to `MAX_DOCUMENT_BYTES`, `MAX_KEYS` keys are kept, a
//! refresh happens at most every `MIN_REFRESH_INTERVAL` however many tokens ask, and a request
//! waits at most `REFRESH_WAIT` for one.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use jsonwebtoken::{Algorithm, DecodingKey};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

/// Most bytes of a discovery document or a key set read (real ones are a few KiB).
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Keys of one key set kept (issuers publish a handful; rotation adds one or two).
const MAX_KEYS: usize = 64;
/// How long one fetch (connect, send, answer) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Fewest seconds between two fetches: tokens naming unknown keys cannot make the issuer a
/// target, and one fetch serves every request waiting for it.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a request waits for a refresh it asked for.
const REFRESH_WAIT: Duration = Duration::from_secs(15);
/// How often keys are fetched again without being asked (go-oidc's remote key set refreshes
/// on an unknown key id only; a period also drops keys the issuer retired).
const PERIODIC_REFRESH: Duration = Duration::from_secs(300);
/// After a failed fetch, how soon it is tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Issuer tasks the thread's queue holds before it starts them (one per JWT authenticator,
/// at most 64 per configuration, reloads included).
const QUEUE_DEPTH: usize = 256;

/// The signing algorithms upstream's JWT authenticator accepts (`oidc.AllValidSigningAlgorithms`;
/// ES512 is not among jsonwebtoken's, so it is refused).
pub const VALID_ALGS: &[&str] = &[
    "ES256", "ES384", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512",
];

pub fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        _ => return None,
    })
}

/// The certificates of a `certificateAuthority`, with Go's wording when there are none.
pub fn roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err("data does not contain any valid RSA or ECDSA certificates".into());
    }
    Ok(certs)
}

/// One key of the set.
pub struct Key {
    pub kid: Option<String>,
    /// The `alg` the JWK names, if any: then only tokens of that algorithm use it.
    pub alg: Option<Algorithm>,
    pub decoding: DecodingKey,
}

/// The issuer's key set, as last fetched.
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    /// The keys a token with `kid` and `alg` may be signed with.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            k.alg.is_none_or(|a| a == alg) && (kid.is_none() || k.kid.as_deref() == kid)
        })
    }

    /// Parses a JWKS; symmetric keys and keys it cannot read are left out.
    pub fn parse(body: &[u8]) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("decoding keys: {e}"))?;
        let list = doc["keys"]
            .as_array()
            .ok_or("the key set has no \"keys\" list")?;
        let mut keys = Vec::new();
        for jwk in list.iter().take(MAX_KEYS) {
            if !matches!(jwk["kty"].as_str(), Some("RSA" | "EC")) {
                continue;
            }
            if jwk["use"].as_str().is_some_and(|u| u != "sig") {
                continue;
            }
            let Ok(parsed) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone()) else {
                continue;
            };
            let Ok(decoding) = DecodingKey::from_jwk(&parsed) else {
                continue;
            };
            let alg = match jwk["alg"].as_str() {
                Some(name) => match algorithm(name) {
                    Some(a) => Some(a),
                    None => continue,
                },
                None => None,
            };
            keys.push(Key {
                kid: jwk["kid"].as_str().map(str::to_string),
                alg,
                decoding,
            });
        }
        Ok(KeySet { keys })
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts `task` on the `kapi-oidc` thread.
fn spawn(task: Task) -> Result<(), String> {
    static QUEUE: OnceLock<tokio::sync::mpsc::Sender<Task>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        crate::offthread::spawn("kapi-oidc", QUEUE_DEPTH, |mut rx| async move {
            while let Some(task) = rx.recv().await {
                tokio::spawn(task);
            }
        })
    });
    queue
        .try_send(task)
        .map_err(|_| "too many JWT issuers starting at once".to_string())
}

/// One issuer's keys, shared by the requests and the task that fetches them. The task ends
/// when the last `RemoteKeys` is dropped (a reload that removed the issuer).
pub struct RemoteKeys {
    current: Arc<ArcSwapOption<KeySet>>,
    /// Asks the task for a fetch now (capacity 1: asking again while one is asked is a no-op).
    refresh: tokio::sync::mpsc::Sender<()>,
    /// Bumped after every fetch attempt, good or not: waiters wake on it.
    attempts: tokio::sync::watch::Receiver<u64>,
    /// The last fetch's error, for the token's error message.
    last_error: Arc<ArcSwapOption<String>>,
}

/// Where and how the issuer's documents are fetched.
#[derive(Clone)]
pub struct Source {
    pub issuer: String,
    /// `discoveryURL`, or empty for `<issuer>/.well-known/openid-configuration`.
    pub discovery_url: String,
    /// PEM; the system's roots when empty.
    pub certificate_authority: String,
}

impl RemoteKeys {
    pub fn start(source: Source) -> Result<RemoteKeys, String> {
        let current = Arc::new(ArcSwapOption::empty());
        let last_error = Arc::new(ArcSwapOption::empty());
        let (refresh, asked) = tokio::sync::mpsc::channel(1);
        let (done, attempts) = tokio::sync::watch::channel(0u64);
        spawn(Box::pin(follow(
            source,
            current.clone(),
            last_error.clone(),
            asked,
            done,
        )))?;
        Ok(RemoteKeys {
            current,
            refresh,
            attempts,
            last_error,
        })
    }

    /// The keys as last fetched, if any fetch succeeded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// Asks for a fetch and waits (at most `REFRESH_WAIT`) for the attempt to end; the keys
    /// then, or the error of the attempt.
    pub async fn refreshed(&self) -> Result<Arc<KeySet>, String> {
        let mut attempts = self.attempts.clone();
        attempts.borrow_and_update();
        let _ = self.refresh.try_send(());
        let waited = monoio::time::timeout(REFRESH_WAIT, attempts.changed()).await;
        if waited.is_err() {
            return Err("timed out waiting for the issuer's keys".into());
        }
        match (self.current(), self.last_error.load_full()) {
            (_, Some(e)) => Err(e.to_string()),
            (Some(keys), None) => Ok(keys),
            (None, None) => Err("the issuer's keys are not fetched yet".into()),
        }
    }
}

/// The issuer's task: fetches at once, then when asked (at most every
/// `MIN_REFRESH_INTERVAL`) or every `PERIODIC_REFRESH`, until every `RemoteKeys` is gone.
async fn follow(
    source: Source,
    current: Arc<ArcSwapOption<KeySet>>,
    last_error: Arc<ArcSwapOption<String>>,
    mut asked: tokio::sync::mpsc::Receiver<()>,
    done: tokio::sync::watch::Sender<u64>,
) {
    let ca = (!source.certificate_authority.is_empty())
        .then(|| source.certificate_authority.as_bytes().to_vec());
    let client = match crate::admission::webhook::client::https_client(ca.as_deref(), None, None) {
        Ok(c) => c,
        Err(e) => {
            last_error.store(Some(Arc::new(format!("oidc: {e}"))));
            done.send_modify(|n| *n += 1);
            return;
        }
    };
    loop {
        // Whoever asked so far is served by this fetch; whoever asks while it runs, by the
        // next one.
        while asked.try_recv().is_ok() {}
        let wait = match fetch(&client, &source).await {
            Ok(keys) => {
                current.store(Some(Arc::new(keys)));
                last_error.store(None);
                PERIODIC_REFRESH
            }
            Err(e) => {
                eprintln!("kapi: warning: JWT issuer {}: {e}", source.issuer);
                last_error.store(Some(Arc::new(e)));
                RETRY_INTERVAL
            }
        };
        done.send_modify(|n| *n = n.wrapping_add(1));
        tokio::time::sleep(MIN_REFRESH_INTERVAL).await;
        tokio::select! {
            got = asked.recv() => if got.is_none() { return },
            _ = tokio::time::sleep(wait.saturating_sub(MIN_REFRESH_INTERVAL)) => {
                if done.is_closed() { return }
            }
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut resp = client
        .get(url)
        .header("Accept", "application/json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            format!(
                "Get {url:?}: {}",
                crate::admission::webhook::client::chain(&e)
            )
        })?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("Get {url:?}: {e}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(format!(
            "{}: {}",
            status,
            String::from_utf8_lossy(&body[..body.len().min(256)])
        ));
    }
    Ok(body)
}

/// The discovery document, then the key set it names.
async fn fetch(client: &reqwest::Client, source: &Source) -> Result<KeySet, String> {
    let discovery = if source.discovery_url.is_empty() {
        format!(
            "{}/.well-known/openid-configuration",
            source.issuer.trim_end_matches('/')
        )
    } else {
        source.discovery_url.clone()
    };
    let body = get(client, &discovery)
        .await
        .map_err(|e| format!("oidc: failed to query provider: {e}"))?;
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("oidc: failed to decode provider discovery object: {e}"))?;
    let issuer = doc["issuer"].as_str().unwrap_or_default();
    if issuer != source.issuer {
        return Err(format!(
            "oidc: issuer did not match the issuer returned by provider, expected {:?} got {issuer:?}",
            source.issuer
        ));
    }
    let jwks_uri = doc["jwks_uri"]
        .as_str()
        .filter(|u| u.starts_with("https://"))
        .ok_or("oidc: the discovery document names no https jwks_uri")?;
    let body = get(client, jwks_uri)
        .await
        .map_err(|e| format!("fetching keys: {e}"))?;
    KeySet::parse(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_keep_signing_keys_only() {
        let key = crate::authn::keys::SigningKey::from_pem(include_bytes!(
            "../../tests/data/serviceaccounts/rsa.key"
        ))
        .unwrap();
        let ec = crate::authn::keys::SigningKey::from_pem(include_bytes!(
            "../../tests/data/serviceaccounts/ec.key"
        ))
        .unwrap();
        let body = serde_json::json!({"keys": [
            key.public.jwk(),
            ec.public.jwk(),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
            {"kty": "RSA", "kid": "broken"},
        ]});
        let set = KeySet::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.len(), 2);
        let kid = key.public.kid.as_str();
        assert_eq!(set.candidates(Some(kid), Algorithm::RS256).count(), 1);
        // A JWK that names its algorithm is not used for another.
        assert_eq!(set.candidates(Some(kid), Algorithm::RS512).count(), 0);
        assert_eq!(set.candidates(None, Algorithm::ES256).count(), 1);
        assert!(KeySet::parse(b"{}").is_err());
        assert!(roots(b"not a certificate").is_err());
    }
}
