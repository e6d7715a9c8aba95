//! The token authenticators that call out, as upstream's `ToAuthenticationConfig` sets them up:
//! the JWT authenticators of `--authentication-config` (or of the `--oidc-*` flags; the two are
//! mutually exclusive), the anonymous rule of the file (exclusive with `--anonymous-auth`),
//! and the webhook of `--authentication-token-webhook-config-file`. The file is read again
//! every `RELOAD_INTERVAL`; a changed, valid configuration replaces the JWT authenticators, an
//! invalid one is logged and the old one kept, as upstream's reload does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::authentication_config::{self as config, AuthenticationConfiguration, OidcFlags};
use super::jwt_authenticator::{Issuer, JwtAuthenticators};
use super::jwt_issuer::VALID_ALGS;
use super::options::Flags;
use super::{Anonymous, Remote};

/// How often `--authentication-config` is read again (upstream watches the file and re-reads
/// it every minute; reading a small file this often costs nothing and a change is seen soon).
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// What the flags start.
pub struct Started {
    pub remote: Vec<Remote>,
    /// The file's `anonymous`, if it has one (else `--anonymous-auth` decides).
    pub anonymous: Option<Anonymous>,
}

fn oidc_flags_set(f: &Flags) -> bool {
    f.oidc_issuer_url.is_some()
        || f.oidc_client_id.is_some()
        || f.oidc_ca_file.is_some()
        || f.oidc_username_claim.is_some()
        || f.oidc_username_prefix.is_some()
        || f.oidc_groups_claim.is_some()
        || f.oidc_groups_prefix.is_some()
        || !f.oidc_required_claim.is_empty()
        || !f.oidc_signing_algs.is_empty()
}

/// The `--oidc-*` flags with upstream's defaults; `None` when no issuer is configured.
fn oidc_flags(f: &Flags) -> Result<Option<OidcFlags>, String> {
    let issuer = f.oidc_issuer_url.clone().unwrap_or_default();
    let client = f.oidc_client_id.clone().unwrap_or_default();
    if oidc_flags_set(f) && (issuer.is_empty() || client.is_empty()) {
        return Err(
            "oidc-issuer-url and oidc-client-id must be specified together when any oidc-* flags are set"
                .into(),
        );
    }
    if issuer.is_empty() {
        return Ok(None);
    }
    let mut required_claims = std::collections::BTreeMap::new();
    for pair in &f.oidc_required_claim {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            format!("invalid argument {pair:?} for \"--oidc-required-claim\" flag: malformed pair, expect string=string")
        })?;
        required_claims.insert(k.to_string(), v.to_string());
    }
    Ok(Some(OidcFlags {
        issuer_url: issuer,
        client_id: client,
        ca_file: f.oidc_ca_file.clone(),
        username_claim: f
            .oidc_username_claim
            .clone()
            .unwrap_or_else(|| "sub".into()),
        username_prefix: f.oidc_username_prefix.clone().unwrap_or_default(),
        groups_claim: f.oidc_groups_claim.clone().unwrap_or_default(),
        groups_prefix: f.oidc_groups_prefix.clone().unwrap_or_default(),
        signing_algs: if f.oidc_signing_algs.is_empty() {
            vec!["RS256".into()]
        } else {
            f.oidc_signing_algs.clone()
        },
        required_claims,
    }))
}

/// Checks the flags and the file as upstream does at start, and starts what they configure.
/// `sa_issuers`: the service-account issuers (no JWT authenticator may claim one);
/// `api_audiences`: the server's audiences (the webhook's implicit ones).
pub fn start(
    f: &Flags,
    sa_issuers: &[String],
    api_audiences: &[String],
) -> Result<Started, String> {
    let mut remote = Vec::new();
    let mut anonymous = None;
    if let Some(path) = &f.authentication_config {
        if oidc_flags_set(f) {
            return Err(
                "authentication-config file and oidc-* flags are mutually exclusive".into(),
            );
        }
        let (c, data) = config::load(path).map_err(|e| {
            format!(
                "failed to load authentication configuration from file {:?}: {e}",
                path.display().to_string()
            )
        })?;
        if let Some(a) = &c.anonymous {
            if f.anonymous_auth.is_some() {
                return Err("anonymous: Forbidden: --anonymous-auth flag cannot be set when anonymous field is configured in authentication configuration file".into());
            }
            anonymous = Some(Anonymous {
                enabled: a.enabled,
                paths: a.conditions.iter().map(|c| c.path.clone()).collect(),
            });
        }
        let jwt = Arc::new(JwtAuthenticators::new(issuers(&c, sa_issuers)?));
        remote.push(Remote::Jwt(jwt.clone()));
        follow(path.clone(), data, c, jwt, sa_issuers.to_vec())?;
    } else if let Some(oidc) = oidc_flags(f)? {
        for alg in &oidc.signing_algs {
            if !VALID_ALGS.contains(&alg.as_str()) {
                return Err(format!("oidc: unsupported signing alg: {alg:?}"));
            }
        }
        let c = AuthenticationConfiguration {
            jwt: vec![oidc.authenticator()?],
            ..AuthenticationConfiguration::default()
        };
        check(&c, sa_issuers)?;
        let issuer = Issuer::new(&c.jwt[0], &oidc.signing_algs)?;
        remote.push(Remote::Jwt(Arc::new(JwtAuthenticators::new(vec![issuer]))));
    }
    if let Some(file) = &f.authentication_token_webhook_config_file {
        let webhook = super::token_webhook::TokenWebhook::load(
            file,
            &f.authentication_token_webhook_version,
            f.authentication_token_webhook_cache_ttl,
            api_audiences.to_vec(),
        )
        .map_err(|e| format!("--authentication-token-webhook-config-file: {e}"))?;
        remote.push(Remote::Webhook(Arc::new(webhook)));
    }
    Ok(Started { remote, anonymous })
}

fn check(c: &AuthenticationConfiguration, sa_issuers: &[String]) -> Result<(), String> {
    let errors = config::validate(c, sa_issuers);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "invalid authentication configuration: {}",
            config::aggregate(&errors)
        ))
    }
}

/// The file's JWT authenticators, validated and started (every algorithm upstream knows is
/// accepted from a file).
fn issuers(c: &AuthenticationConfiguration, sa_issuers: &[String]) -> Result<Vec<Issuer>, String> {
    check(c, sa_issuers)?;
    let algs: Vec<String> = VALID_ALGS.iter().map(|a| a.to_string()).collect();
    c.jwt.iter().map(|a| Issuer::new(a, &algs)).collect()
}

/// Follows the file from a thread of its own.
fn follow(
    path: PathBuf,
    data: Vec<u8>,
    first: AuthenticationConfiguration,
    jwt: Arc<JwtAuthenticators>,
    sa_issuers: Vec<String>,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name("kapi-authn-reload".into())
        .spawn(move || reload_loop(&path, data, &first, &jwt, &sa_issuers))
        .map(|_| ())
        .map_err(|e| format!("starting the authentication configuration reload: {e}"))
}

fn reload_loop(
    path: &Path,
    mut loaded: Vec<u8>,
    first: &AuthenticationConfiguration,
    jwt: &JwtAuthenticators,
    sa_issuers: &[String],
) {
    use crate::metrics::{Stability, help, register};
    let reloads = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "apiserver_authentication_config_controller_automatic_reloads_total",
            help(
                Stability::Alpha,
                None,
                "Total number of automatic reloads of authentication configuration split by status and apiserver identity.",
            ),
        ),
        &["status"],
    )
    .ok()
    .map(register);
    loop {
        std::thread::sleep(RELOAD_INTERVAL);
        let Ok((c, data)) = config::load(path).map(|(c, d)| (Some(c), d)).or_else(|e| {
            // A file that no longer decodes is an error of the new contents.
            std::fs::read(path).map(|d| (None, d)).map_err(|_| e)
        }) else {
            continue;
        };
        if data == loaded {
            continue;
        }
        loaded = data;
        let result = match c {
            None => Err("failed to load authentication config".to_string()),
            Some(c) if c.anonymous != first.anonymous => {
                Err("anonymous: Forbidden: changed from initial configuration file".into())
            }
            Some(c) => issuers(&c, sa_issuers),
        };
        let status = match result {
            Ok(new) => {
                jwt.replace(new);
                eprintln!("kapi: reloaded authentication config {}", path.display());
                "success"
            }
            Err(e) => {
                eprintln!(
                    "kapi: error: failed to reload authentication config {}; keeping the previous one: {e}",
                    path.display()
                );
                "failure"
            }
        };
        if let Some(r) = &reloads {
            r.with_label_values(&[status]).inc();
        }
    }
}
