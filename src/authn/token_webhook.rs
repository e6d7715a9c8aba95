//! The webhook token authenticator (`--authentication-token-webhook-config-file`): a bearer
//! token no other authenticator knows is POSTed in a TokenReview
//! (`--authentication-token-webhook-version`, v1beta1 by default as upstream) to the server the
//! kubeconfig names, and its answer names the user. Answers are remembered for
//! `--authentication-token-webhook-cache-ttl` (SHA-256 of the token and audiences →
//! answer), in a bounded map; the calls go through the outbound HTTPS thread of the admission
//! webhooks, so no call blocks a serving core.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::token_cache::TokenCache;
use super::{TokenOutcome, UserInfo};

/// Answers remembered: a cluster's active webhook tokens fit; past it the expired go, then
/// all (asked again on next use).
const CACHE_CAPACITY: usize = 4096;
/// How long one TokenReview call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const VERSIONS: &[&str] = &["v1", "v1beta1"];

/// What the webhook said about a token.
#[derive(Clone)]
enum Answer {
    /// Authenticated: the user and the audiences it named (none: the server's).
    User(UserInfo, Vec<String>),
    /// Not authenticated, and why if it said.
    Refused(String),
}

pub struct TokenWebhook {
    url: String,
    ca_bundle: Option<Vec<u8>>,
    /// The kubeconfig user's `token` (or `tokenFile`), presented to the webhook.
    bearer_token: Option<String>,
    /// The kubeconfig user's client certificate and key, when it has both.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    version: String,
    /// The server's own audiences, for an answer that names none (upstream's implicit ones).
    api_audiences: Vec<String>,
    cache: TokenCache<Answer>,
}

impl TokenWebhook {
    /// Reads the kubeconfig: its current context's cluster (`server`, `certificate-authority`)
    /// and user (`token` or `tokenFile`; client certificates are not presented).
    pub fn load(
        config_file: &Path,
        version: &str,
        ttl: Duration,
        api_audiences: Vec<String>,
    ) -> Result<TokenWebhook, String> {
        if !VERSIONS.contains(&version) {
            return Err(format!(
                "unsupported authentication webhook version {version:?}, supported versions are {:?}",
                VERSIONS
            ));
        }
        let config = crate::kubeconfig::Kubeconfig::read(config_file)?;
        if !config.server.starts_with("https://") {
            return Err("the kubeconfig names no https cluster server".into());
        }
        let identity = config.identity();
        let crate::kubeconfig::Kubeconfig {
            server: url,
            certificate_authority: ca_bundle,
            token: bearer_token,
            ..
        } = config;
        Ok(TokenWebhook {
            url,
            ca_bundle,
            bearer_token,
            identity,
            version: version.to_string(),
            api_audiences,
            cache: TokenCache::new(CACHE_CAPACITY, ttl),
        })
    }

    async fn ask(&self, token: &str, audiences: &[String]) -> Result<Answer, String> {
        let mut spec = json!({"token": token});
        if !audiences.is_empty() {
            spec["audiences"] = json!(audiences);
        }
        let review = json!({
            "apiVersion": format!("authentication.k8s.io/{}", self.version),
            "kind": "TokenReview",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": {"user": {}},
        });
        let body =
            crate::admission::webhook::client::post(crate::admission::webhook::client::Call {
                url: self.url.clone(),
                resolve: None,
                ca_bundle: self.ca_bundle.clone(),
                body: serde_json::to_vec(&review).map_err(|e| e.to_string())?,
                timeout: CALL_TIMEOUT,
                token: self.bearer_token.clone(),
                identity: self.identity.clone(),
                ..Default::default()
            })
            .await?;
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("decoding the webhook's TokenReview: {e}"))?;
        let status = &answer["status"];
        if status["authenticated"].as_bool() != Some(true) {
            return Ok(Answer::Refused(
                status["error"].as_str().unwrap_or_default().to_string(),
            ));
        }
        let u = &status["user"];
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let extra: BTreeMap<String, Vec<String>> = u["extra"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), strs(v))).collect())
            .unwrap_or_default();
        Ok(Answer::User(
            UserInfo {
                name: u["username"].as_str().unwrap_or_default().to_string(),
                uid: u["uid"].as_str().unwrap_or_default().to_string(),
                groups: strs(&u["groups"]),
                extra,
            },
            strs(&status["audiences"]),
        ))
    }

    /// The user `token` is for, valid for (some of) `audiences` (upstream's: the webhook's
    /// audiences if it names any, else the server's, intersected with those wanted).
    pub async fn authenticate(&self, token: &str, audiences: &[String]) -> TokenOutcome {
        let mut parts = vec![token.as_bytes()];
        parts.extend(audiences.iter().map(|a| a.as_bytes()));
        let key = TokenCache::<Answer>::key(&parts);
        let answer = match self.cache.get(&key) {
            Some(a) => a,
            None => match self.ask(token, audiences).await {
                Ok(a) => {
                    self.cache.put(key, a.clone());
                    a
                }
                Err(e) => return TokenOutcome::Invalid(e),
            },
        };
        match answer {
            Answer::Refused(why) if why.is_empty() => TokenOutcome::NotMine,
            Answer::Refused(why) => TokenOutcome::Invalid(why),
            Answer::User(user, got) => {
                let got = if got.is_empty() {
                    &self.api_audiences
                } else {
                    &got
                };
                let auds: Vec<String> = audiences
                    .iter()
                    .filter(|a| got.contains(a))
                    .cloned()
                    .collect();
                if !audiences.is_empty() && auds.is_empty() {
                    return TokenOutcome::NotMine;
                }
                TokenOutcome::User(user, auds)
            }
        }
    }
}
