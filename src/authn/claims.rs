//! The claims of service-account tokens, as upstream's `pkg/serviceaccount/claims.go` and
//! `legacy.go` name them: the standard ones and the `kubernetes.io` claim of bound tokens, the
//! `kubernetes.io/serviceaccount/*` claims of legacy ones; and the user a valid token names.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::UserInfo;
use super::serviceaccount::{
    ALL_SA_GROUP, CREDENTIAL_ID_KEY, NODE_NAME_KEY, NODE_UID_KEY, POD_NAME_KEY, POD_UID_KEY,
    SA_PREFIX,
};

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
pub(super) struct Claims {
    pub(super) iss: String,
    pub(super) sub: String,
    pub(super) aud: Vec<String>,
    pub(super) exp: Option<i64>,
    pub(super) nbf: Option<i64>,
    pub(super) iat: Option<i64>,
    pub(super) jti: String,
    pub(super) namespace: String,
    pub(super) service_account: Ref,
    pub(super) pod: Option<Ref>,
    pub(super) secret: Option<Ref>,
    pub(super) node: Option<Ref>,
    pub(super) warn_after: Option<i64>,
}

impl Claims {
    pub(super) fn parse(v: &Value) -> Claims {
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
pub(super) struct Info {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) uid: String,
    pub(super) pod: Option<Ref>,
    pub(super) node: Option<Ref>,
    pub(super) credential_id: Option<String>,
}

impl Info {
    pub(super) fn user(self) -> UserInfo {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::serviceaccount::{EXTENDED_EXPIRATION, LEGACY_ISSUER, WARN_ONLY_EXPIRATION};

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
