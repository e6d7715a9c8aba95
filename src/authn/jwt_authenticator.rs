//! JWT (OIDC) token authenticators, as upstream's `plugin/pkg/authenticator/token/oidc`: a
//! token whose `iss` names a configured issuer is this authenticator's (any other goes on down
//! the chain); its signature is checked against the issuer's keys (`jwt_issuer`), then `iss`,
//! `aud` (any configured audience), `exp` and `nbf`, the claim validation rules, the claim
//! mappings to a user (claims with prefixes, or CEL over `claims`), and the user validation
//! rules (CEL over `user`). The set of authenticators is swapped whole when
//! `--authentication-config` changes.
//!
//! On the path of every request bearing such a token: a token that passed is remembered for
//! `USER_TTL` (as upstream's token cache), so its signature and CEL are paid once per token and
//! ten seconds; its expiry is checked on every use.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::authentication_config::{
    CLAIMS_VARS, JwtAuthenticator as Config, PrefixedClaimOrExpression, USER_VARS,
};
use super::jwt_issuer::{self, KeySet, RemoteKeys, Source};
use super::token_cache::TokenCache;
use super::{TokenOutcome, UserInfo};
use crate::cel::{Activation, Compiled};

/// Clock skew allowed on `nbf` (go-oidc's leeway); `exp` has none, as go-oidc.
const NBF_LEEWAY_SECS: i64 = 300;

/// A claim mapping: a claim (with its prefix) or a compiled expression.
enum Mapping {
    None,
    Claim { claim: String, prefix: String },
    Expression(Compiled),
}

impl Mapping {
    fn of(m: &PrefixedClaimOrExpression) -> Result<Mapping, String> {
        Ok(if !m.expression.is_empty() {
            Mapping::Expression(crate::cel::compile(&m.expression, CLAIMS_VARS)?)
        } else if !m.claim.is_empty() {
            Mapping::Claim {
                claim: m.claim.clone(),
                prefix: m.prefix.clone().unwrap_or_default(),
            }
        } else {
            Mapping::None
        })
    }
}

/// A claim validation rule.
enum ClaimRule {
    Required {
        claim: String,
        value: String,
    },
    Expression {
        compiled: Compiled,
        source: String,
        message: String,
    },
}

struct UserRule {
    compiled: Compiled,
    source: String,
    message: String,
}

/// One configured issuer, ready: its rules compiled, its keys followed.
pub struct Issuer {
    url: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    keys: RemoteKeys,
    claim_rules: Vec<ClaimRule>,
    username: Mapping,
    groups: Mapping,
    uid: Mapping,
    extra: Vec<(String, Compiled)>,
    user_rules: Vec<UserRule>,
}

impl Issuer {
    /// `config` must have passed validation. `algorithms`: the accepted `alg` names.
    pub fn new(config: &Config, algorithms: &[String]) -> Result<Issuer, String> {
        let compile = |e: &str, vars: &[&str]| crate::cel::compile(e, vars);
        let claim_rules = config
            .claim_validation_rules
            .iter()
            .map(|r| {
                Ok(if r.expression.is_empty() {
                    ClaimRule::Required {
                        claim: r.claim.clone(),
                        value: r.required_value.clone(),
                    }
                } else {
                    ClaimRule::Expression {
                        compiled: compile(&r.expression, CLAIMS_VARS)?,
                        source: r.expression.clone(),
                        message: r.message.clone(),
                    }
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let m = &config.claim_mappings;
        let uid = if m.uid.expression.is_empty() {
            Mapping::of(&PrefixedClaimOrExpression {
                claim: m.uid.claim.clone(),
                prefix: Some(String::new()),
                expression: String::new(),
            })?
        } else {
            Mapping::Expression(compile(&m.uid.expression, CLAIMS_VARS)?)
        };
        let extra = m
            .extra
            .iter()
            .map(|e| Ok((e.key.clone(), compile(&e.value_expression, CLAIMS_VARS)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let user_rules = config
            .user_validation_rules
            .iter()
            .map(|r| {
                Ok(UserRule {
                    compiled: compile(&r.expression, USER_VARS)?,
                    source: r.expression.clone(),
                    message: r.message.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if !config.issuer.egress_selector_type.is_empty() {
            eprintln!(
                "kapi: warning: JWT issuer {}: egressSelectorType is ignored (connections go direct)",
                config.issuer.url
            );
        }
        let keys = RemoteKeys::start(Source {
            issuer: config.issuer.url.clone(),
            discovery_url: config.issuer.discovery_url.clone(),
            certificate_authority: config.issuer.certificate_authority.clone(),
        })?;
        Ok(Issuer {
            url: config.issuer.url.clone(),
            audiences: config.issuer.audiences.clone(),
            algorithms: algorithms
                .iter()
                .filter_map(|a| jwt_issuer::algorithm(a))
                .collect(),
            keys,
            claim_rules,
            username: Mapping::of(&m.username)?,
            groups: Mapping::of(&m.groups)?,
            uid,
            extra,
            user_rules,
        })
    }

    /// The claims of `token` if its signature is good (fetching the keys again once when
    /// none of those known matches).
    async fn verified(&self, token: &str) -> Result<Value, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("oidc: malformed jwt: {e}"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(format!(
                "oidc: verify token: oidc: id token signed with unsupported algorithm, expected {:?} got \"{:?}\"",
                self.algorithms
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>(),
                header.alg
            ));
        }
        if let Some(keys) = self.keys.current()
            && let Some(claims) = check_signature(token, &header, &keys)
        {
            return Ok(claims);
        }
        let keys = self
            .keys
            .refreshed()
            .await
            .map_err(|e| format!("oidc: verify token: {e}"))?;
        check_signature(token, &header, &keys).ok_or_else(|| {
            "oidc: verify token: failed to verify signature: failed to verify id token signature"
                .to_string()
        })
    }

    /// The user `token` maps to, and when the token expires.
    async fn authenticate(&self, token: &str) -> Result<(UserInfo, i64), String> {
        let claims = self.verified(token).await?;
        let now = super::serviceaccount::now_unix();
        let exp = self.check_standard_claims(&claims, now)?;
        let mut activation = Activation::default();
        activation.bind("claims", Some(&claims));
        for rule in &self.claim_rules {
            check_claim_rule(rule, &claims, &activation)?;
        }
        let user = self.map_user(&claims, &activation)?;
        if !self.user_rules.is_empty() {
            let mut a = Activation::default();
            a.bind("user", Some(&user_value(&user)));
            for rule in &self.user_rules {
                match rule.compiled.eval_bool(&a) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(format!(
                            "oidc: error evaluating user info validation rule: validation expression '{}' failed: {}",
                            rule.source, rule.message
                        ));
                    }
                    Err(e) => {
                        return Err(format!(
                            "oidc: error evaluating user info validation rule: {e}"
                        ));
                    }
                }
            }
        }
        Ok((user, exp))
    }

    /// `iss`, `aud`, `exp` and `nbf`; the expiry.
    fn check_standard_claims(&self, claims: &Value, now: i64) -> Result<i64, String> {
        let iss = claims["iss"].as_str().unwrap_or_default();
        if iss != self.url {
            return Err(format!(
                "oidc: verify token: oidc: id token issued by a different provider, expected {:?} got {iss:?}",
                self.url
            ));
        }
        let auds: Vec<&str> = match &claims["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !auds.iter().any(|a| self.audiences.iter().any(|c| c == a)) {
            return Err(format!(
                "oidc: verify token: oidc: expected audience in {:?} got {auds:?}",
                self.audiences
            ));
        }
        let time = |k: &str| claims[k].as_f64().map(|f| f as i64);
        let exp = match time("exp") {
            Some(exp) if exp > now => exp,
            _ => return Err("oidc: verify token: oidc: token is expired".into()),
        };
        if let Some(nbf) = time("nbf")
            && nbf > now.saturating_add(NBF_LEEWAY_SECS)
        {
            return Err(format!(
                "oidc: verify token: oidc: current time {now} before the nbf (not before) time: {nbf}"
            ));
        }
        Ok(exp)
    }

    fn map_user(&self, claims: &Value, activation: &Activation) -> Result<UserInfo, String> {
        let name = match &self.username {
            Mapping::Claim { claim, prefix } => {
                if claim == "email"
                    && let Some(v) = claims.get("email_verified")
                    && v.as_bool() != Some(true)
                {
                    return Err("oidc: email not verified".into());
                }
                let v = string_claim(claims, claim)
                    .map_err(|e| format!("oidc: parse username claims {claim:?}: {e}"))?;
                format!("{prefix}{v}")
            }
            Mapping::Expression(c) => {
                let v = c
                    .eval_string(activation)
                    .map_err(|e| format!("oidc: error evaluating username expression: {e}"))?;
                if v.is_empty() {
                    return Err("oidc: empty username via CEL expression is not allowed".into());
                }
                v
            }
            Mapping::None => return Err("oidc: no username mapping".into()),
        };
        let groups = match &self.groups {
            Mapping::None => Vec::new(),
            Mapping::Claim { claim, prefix } => match claims.get(claim) {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => strings(v)
                    .ok_or_else(|| {
                        format!(
                            "oidc: parse groups claim {claim:?}: not a string or list of strings"
                        )
                    })?
                    .into_iter()
                    .map(|g| format!("{prefix}{g}"))
                    .collect(),
            },
            Mapping::Expression(c) => {
                let v = c
                    .eval(activation)
                    .map_err(|e| format!("oidc: error evaluating group claim expression: {e}"))?;
                cel_strings(&v).ok_or("oidc: error evaluating group claim expression: expected a string or a list of strings")?
            }
        };
        let uid = match &self.uid {
            Mapping::None => String::new(),
            Mapping::Claim { claim, .. } => string_claim(claims, claim)
                .map_err(|e| format!("oidc: parse uid claim {claim:?}: {e}"))?,
            Mapping::Expression(c) => c
                .eval_string(activation)
                .map_err(|e| format!("oidc: error evaluating uid claim expression: {e}"))?,
        };
        let mut extra = BTreeMap::new();
        for (key, c) in &self.extra {
            let v = c
                .eval(activation)
                .map_err(|e| format!("oidc: error evaluating extra claim expression: {e}"))?;
            let values: Vec<String> = cel_strings(&v)
                .ok_or("oidc: error evaluating extra claim expression: expected a string or a list of strings")?
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            if !values.is_empty() {
                extra.insert(key.clone(), values);
            }
        }
        Ok(UserInfo {
            name,
            uid,
            groups,
            extra,
        })
    }
}

fn check_signature(token: &str, header: &jsonwebtoken::Header, keys: &KeySet) -> Option<Value> {
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    keys.candidates(header.kid.as_deref(), header.alg)
        .find_map(|k| jsonwebtoken::decode::<Value>(token, &k.decoding, &validation).ok())
        .map(|d| d.claims)
}

fn check_claim_rule(rule: &ClaimRule, claims: &Value, a: &Activation) -> Result<(), String> {
    match rule {
        ClaimRule::Required { claim, value } => {
            let got = string_claim(claims, claim)
                .map_err(|e| format!("oidc: parse claim {claim}: {e}"))?;
            if &got != value {
                return Err(format!(
                    "oidc: required claim {claim} value does not match. Got = {got}, want = {value}"
                ));
            }
        }
        ClaimRule::Expression {
            compiled,
            source,
            message,
        } => match compiled.eval_bool(a) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "oidc: error evaluating claim validation expression: validation expression '{source}' failed: {message}"
                ));
            }
            Err(e) => {
                return Err(format!(
                    "oidc: error evaluating claim validation expression: {e}"
                ));
            }
        },
    }
    Ok(())
}

fn string_claim(claims: &Value, claim: &str) -> Result<String, String> {
    match claims.get(claim) {
        None => Err("claim not present".into()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {other} into Go value of type string"
        )),
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) => list
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

fn cel_strings(v: &::cel::Value) -> Option<Vec<String>> {
    match v {
        ::cel::Value::String(s) => Some(vec![s.to_string()]),
        ::cel::Value::List(list) => list
            .iter()
            .map(|x| match x {
                ::cel::Value::String(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// The user as CEL's `user` sees it (authentication.k8s.io/v1 UserInfo).
fn user_value(u: &UserInfo) -> Value {
    json!({"username": u.name, "uid": u.uid, "groups": u.groups, "extra": u.extra})
}

/// Users of tokens that passed every check, remembered (upstream's token success cache): a
/// token is verified and mapped once per `USER_TTL`, not on each request; its expiry is still
/// checked on each. Capacity: a cluster's active OIDC users' tokens fit.
const USER_CAPACITY: usize = 4096;
/// Upstream's `TokenSuccessCacheTTL`.
const USER_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Every configured issuer, swapped whole on reload.
pub struct JwtAuthenticators {
    issuers: ArcSwap<Vec<Arc<Issuer>>>,
    users: TokenCache<(UserInfo, i64)>,
}

impl JwtAuthenticators {
    pub fn new(issuers: Vec<Issuer>) -> JwtAuthenticators {
        JwtAuthenticators {
            issuers: ArcSwap::from_pointee(issuers.into_iter().map(Arc::new).collect()),
            users: TokenCache::new(USER_CAPACITY, USER_TTL),
        }
    }

    /// A new configuration: its issuers, and nothing remembered from the old one.
    pub fn replace(&self, issuers: Vec<Issuer>) {
        self.issuers
            .store(Arc::new(issuers.into_iter().map(Arc::new).collect()));
        self.users.clear();
    }

    /// The issuer `token` claims to be from, if it is one of ours (no signature checked yet).
    fn issuer_of(&self, token: &str) -> Option<Arc<Issuer>> {
        if !super::jwt::is_jws(token) {
            return None;
        }
        let claims = super::jwt::unverified_claims(token)?;
        let iss = claims["iss"].as_str()?;
        self.issuers.load().iter().find(|i| i.url == iss).cloned()
    }

    /// The user `token` names, as the chain's remote authenticators answer.
    pub async fn authenticate(&self, token: &str) -> TokenOutcome {
        let key = TokenCache::<(UserInfo, i64)>::key(&[token.as_bytes()]);
        if let Some((user, exp)) = self.users.get(&key)
            && exp > super::serviceaccount::now_unix()
        {
            return TokenOutcome::User(user, Vec::new());
        }
        let Some(issuer) = self.issuer_of(token) else {
            return TokenOutcome::NotMine;
        };
        match issuer.authenticate(token).await {
            Ok((user, exp)) => {
                self.users.put(key, (user.clone(), exp));
                TokenOutcome::User(user, Vec::new())
            }
            Err(why) => TokenOutcome::Invalid(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_values_are_read_as_upstream() {
        let claims = json!({"s": "x", "n": 1, "l": ["a", "b"], "bad": ["a", 1]});
        assert_eq!(string_claim(&claims, "s").unwrap(), "x");
        assert!(string_claim(&claims, "n").is_err());
        assert_eq!(
            string_claim(&claims, "missing").unwrap_err(),
            "claim not present"
        );
        assert_eq!(strings(&claims["l"]).unwrap(), vec!["a", "b"]);
        assert_eq!(strings(&claims["s"]).unwrap(), vec!["x"]);
        assert!(strings(&claims["bad"]).is_none());
    }
}
