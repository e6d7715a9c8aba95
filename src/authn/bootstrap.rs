//! Bootstrap tokens (`--enable-bootstrap-token-auth`): `Bearer <id>.<secret>` names the Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`; while it holds
//! that secret, allows authentication and has not expired, the bearer is
//! `system:bootstrap:<id>` in `system:bootstrappers` and the Secret's `auth-extra-groups`.
//! As upstream, a token whose Secret does not fit is not this authenticator's (then a 401).

use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

use super::lookup::{Kind, Lookup};
use super::{Authenticator, Outcome, UserInfo};
use crate::transport::Request;

const NAMESPACE: &str = "kube-system";
const SECRET_PREFIX: &str = "bootstrap-token-";
const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const USER_PREFIX: &str = "system:bootstrap:";
const GROUP: &str = "system:bootstrappers";

pub struct BootstrapTokens(pub Arc<Lookup>);

/// `<id>.<secret>`: 6 and 16 characters of `[a-z0-9]`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// A Secret's `data[key]`, decoded.
fn data(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret.get("data")?.get(key)?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl BootstrapTokens {
    /// The bearer of `token`, `None` when it is not a valid bootstrap token, or the error of a
    /// Secret whose extra groups are not bootstrap groups.
    fn user(&self, token: &str) -> Result<Option<UserInfo>, ()> {
        let Some((id, secret)) = parse(token) else {
            return Ok(None);
        };
        let name = format!("{SECRET_PREFIX}{id}");
        let Ok(Some(obj)) = self.0.object(Kind::Secret, NAMESPACE, &name) else {
            return Ok(None);
        };
        if obj.pointer("/metadata/deletionTimestamp").is_some()
            || obj.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
        {
            return Ok(None);
        }
        if !data(&obj, "token-secret").is_some_and(|s| same(&s, secret))
            || data(&obj, "token-id").as_deref() != Some(id)
        {
            return Ok(None);
        }
        if let Some(exp) = data(&obj, "expiration") {
            match kapi_codec::goscalar::parse_rfc3339(&exp) {
                Ok((at, _)) if at > super::serviceaccount::now_unix() => {}
                _ => return Ok(None),
            }
        }
        if data(&obj, "usage-bootstrap-authentication").as_deref() != Some("true") {
            return Ok(None);
        }
        let mut groups = vec![GROUP.to_string()];
        if let Some(extra) = data(&obj, "auth-extra-groups") {
            for g in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                if !g.starts_with(&format!("{GROUP}:")) {
                    return Err(());
                }
                if !groups.iter().any(|x| x == g) {
                    groups.push(g.to_string());
                }
            }
        }
        Ok(Some(UserInfo {
            name: format!("{USER_PREFIX}{id}"),
            groups,
            ..UserInfo::default()
        }))
    }
}

impl Authenticator for BootstrapTokens {
    fn authenticate(&self, req: &Request) -> Outcome {
        let Some(token) = super::bearer_token(req) else {
            return Outcome::NotMine;
        };
        match self.user(token) {
            Ok(Some(user)) => Outcome::User(user),
            Ok(None) => Outcome::NotMine,
            Err(()) => Outcome::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_is_six_dot_sixteen_lowercase_alphanumerics() {
        assert_eq!(
            parse("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse("ABCDEF.0123456789abcdef"), None);
        assert_eq!(parse("abcdef.0123456789abcde"), None);
        assert_eq!(parse("abcdef0123456789abcdef"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
