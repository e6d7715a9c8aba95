//! Authentication: the first stage of the request pipeline after request info. A chain of
//! authenticators, each for one kind of credential, turns a request into the `UserInfo` the
//! later stages (flow control, authorization, admission, audit) decide on.
//!
//! As upstream's union authenticator: the first authenticator that recognises the request's
//! credential decides; a credential that no authenticator accepts is a 401, whatever the path;
//! a request with no credential at all is `system:anonymous` when anonymous requests are allowed.

pub mod authentication_config;
pub mod bootstrap;
pub mod claims;
pub mod flags;
pub mod impersonation;
pub mod jwt;
pub mod jwt_authenticator;
pub mod jwt_issuer;
pub mod keys;
pub mod lookup;
pub mod loopback;
pub mod oidc;
pub mod options;
pub mod review;
pub mod serviceaccount;
pub mod structured;
pub mod token_cache;
pub mod token_file;
pub mod token_webhook;
pub mod x509;

use std::collections::BTreeMap;

use crate::api::status::Status;
use crate::transport::Request;

/// Who a request is from, as upstream's `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

impl UserInfo {
    /// A request that carried no credential (upstream's anonymous authenticator).
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS_USER.to_string(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
            ..UserInfo::default()
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// What one authenticator makes of a request.
#[derive(Debug)]
pub enum Outcome {
    /// The request carries this authenticator's kind of credential, and it is valid.
    User(UserInfo),
    /// The request carries this kind of credential, and it is not valid: a 401, unless another
    /// authenticator accepts the request.
    Invalid,
    /// The request carries no credential of this kind.
    NotMine,
}

/// What one authenticator makes of a bare token (TokenReview).
#[derive(Debug)]
pub enum TokenOutcome {
    /// Valid: the user, and the audiences it is valid for.
    User(UserInfo, Vec<String>),
    /// This authenticator's kind of token, not valid: why.
    Invalid(String),
    NotMine,
}

/// One kind of credential. Shared by every core, so `Send + Sync`; it decides from the request
/// alone (a token cache or key set it holds is its own business).
pub trait Authenticator: Send + Sync {
    fn authenticate(&self, req: &Request) -> Outcome;

    /// A bearer token on its own, for `audiences` (TokenReview). `None`: this authenticator
    /// does not know audiences, and the chain asks `authenticate` with the token as a bearer
    /// credential instead (upstream's audience-agnostic wrapping).
    fn authenticate_token(&self, _token: &str, _audiences: &[String]) -> Option<TokenOutcome> {
        None
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), as
/// upstream's bearertoken authenticator reads it; an empty token is none.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A token authenticator that may call out (an issuer's keys, a webhook): asked after the
/// others, in upstream's order (JWT authenticators, then the webhook), and awaited.
pub enum Remote {
    Jwt(std::sync::Arc<jwt_authenticator::JwtAuthenticators>),
    Webhook(std::sync::Arc<token_webhook::TokenWebhook>),
}

impl Remote {
    /// `audiences`: those the token must be good for (the webhook checks them; JWT
    /// authenticators are audience-agnostic, as upstream wraps them).
    async fn authenticate(&self, token: &str, audiences: &[String]) -> TokenOutcome {
        match self {
            Remote::Jwt(j) => j.authenticate(token).await,
            Remote::Webhook(w) => w.authenticate(token, audiences).await,
        }
    }
}

/// When a request without a credential is `system:anonymous` (`--anonymous-auth`, or the
/// configuration file's `anonymous`: enabled, for some paths only if it names conditions).
#[derive(Debug, Clone, Default)]
pub struct Anonymous {
    pub enabled: bool,
    /// Empty: every path.
    pub paths: Vec<String>,
}

impl Anonymous {
    pub fn allows(&self, path: &str) -> bool {
        self.enabled && (self.paths.is_empty() || self.paths.iter().any(|p| p == path))
    }
}

/// The authenticators of `--authentication-*` flags, in upstream's order, and when anonymous
/// requests are allowed.
pub struct Chain {
    authenticators: Vec<Box<dyn Authenticator>>,
    remote: Vec<Remote>,
    anonymous: Anonymous,
    /// The server's audiences (`--api-audiences`): what a request's token must be good for.
    api_audiences: Vec<String>,
}

impl Chain {
    pub fn new(authenticators: Vec<Box<dyn Authenticator>>, anonymous: bool) -> Chain {
        Chain {
            authenticators,
            remote: Vec::new(),
            anonymous: Anonymous {
                enabled: anonymous,
                paths: Vec::new(),
            },
            api_audiences: Vec::new(),
        }
    }

    /// Adds the token authenticators that call out, and the audiences they check.
    pub fn with_remote(
        mut self,
        remote: Vec<Remote>,
        anonymous: Anonymous,
        api_audiences: Vec<String>,
    ) -> Chain {
        self.remote = remote;
        self.anonymous = anonymous;
        self.api_audiences = api_audiences;
        self
    }

    /// The user a request is from, or upstream's 401 `Status`.
    pub async fn authenticate(&self, req: &Request) -> Result<UserInfo, Status> {
        let mut invalid = false;
        let mut found = None;
        for authenticator in &self.authenticators {
            match authenticator.authenticate(req) {
                Outcome::User(user) => {
                    found = Some(user);
                    break;
                }
                Outcome::Invalid => invalid = true,
                Outcome::NotMine => {}
            }
        }
        if found.is_none()
            && let Some(token) = bearer_token(req)
        {
            for remote in &self.remote {
                match remote.authenticate(token, &self.api_audiences).await {
                    TokenOutcome::User(user, _) => {
                        found = Some(user);
                        break;
                    }
                    TokenOutcome::Invalid(why) => {
                        // As upstream logs every failed authentication.
                        eprintln!("kapi: unable to authenticate the request: {why}");
                        invalid = true;
                    }
                    TokenOutcome::NotMine => {}
                }
            }
        }
        if let Some(mut user) = found {
            // Upstream's AuthenticatedGroupAdder.
            if !user.in_group(AUTHENTICATED_GROUP) && !user.is_anonymous() {
                user.groups.push(AUTHENTICATED_GROUP.to_string());
            }
            return Ok(user);
        }
        // A bearer token no authenticator knows is an invalid credential too.
        if invalid
            || req.headers.contains_key(http::header::AUTHORIZATION)
            || !self.anonymous.allows(req.uri.path())
        {
            return Err(Status::unauthorized());
        }
        Ok(UserInfo::anonymous())
    }

    /// TokenReview: `token` through every authenticator, for the review's `audiences` (none:
    /// the server's own, `api_audiences`). The user (with `system:authenticated`) and the
    /// audiences it is good for, or the errors met (upstream's union wording).
    pub async fn review(
        &self,
        token: &str,
        audiences: &[String],
        api_audiences: &[String],
    ) -> Result<(UserInfo, Vec<String>), String> {
        let requested = if audiences.is_empty() {
            api_audiences
        } else {
            audiences
        };
        // Audience-agnostic authenticators: good for the server's audiences the review asks for.
        let agnostic: Vec<String> = api_audiences
            .iter()
            .filter(|a| requested.contains(a))
            .cloned()
            .collect();
        let mut errors = Vec::new();
        let mut found = None;
        for authenticator in &self.authenticators {
            let outcome = match authenticator.authenticate_token(token, requested) {
                Some(outcome) => outcome,
                None => {
                    if agnostic.is_empty() {
                        continue;
                    }
                    match authenticator.authenticate(&bearer_request(token)) {
                        Outcome::User(user) => TokenOutcome::User(user, agnostic.clone()),
                        Outcome::Invalid => TokenOutcome::Invalid("invalid bearer token".into()),
                        Outcome::NotMine => TokenOutcome::NotMine,
                    }
                }
            };
            match outcome {
                TokenOutcome::User(user, auds) => {
                    found = Some((user, auds));
                    break;
                }
                TokenOutcome::Invalid(why) => errors.push(why),
                TokenOutcome::NotMine => {}
            }
        }
        if found.is_none() {
            for remote in &self.remote {
                if matches!(remote, Remote::Jwt(_)) && agnostic.is_empty() {
                    continue;
                }
                match remote.authenticate(token, requested).await {
                    TokenOutcome::User(user, auds) => {
                        let auds = match remote {
                            Remote::Jwt(_) => agnostic.clone(),
                            Remote::Webhook(_) => auds,
                        };
                        found = Some((user, auds));
                        break;
                    }
                    TokenOutcome::Invalid(why) => errors.push(why),
                    TokenOutcome::NotMine => {}
                }
            }
        }
        if let Some((mut user, auds)) = found {
            if !user.in_group(AUTHENTICATED_GROUP) {
                user.groups.push(AUTHENTICATED_GROUP.to_string());
            }
            return Ok((user, auds));
        }
        Err(match errors.len() {
            0 => String::new(),
            1 => errors.remove(0),
            _ => format!("[{}]", errors.join(", ")),
        })
    }
}

/// A request carrying only `token` as its bearer credential (no client certificate).
fn bearer_request(token: &str) -> Request {
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    Request {
        method: http::Method::POST,
        uri: crate::transport::RequestTarget::root(),
        headers,
        body: bytes::Bytes::new(),
        peer: crate::transport::Peer::anonymous(),
        http2: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(fn(&Request) -> Outcome);

    impl Authenticator for Fixed {
        fn authenticate(&self, req: &Request) -> Outcome {
            (self.0)(req)
        }
    }

    fn request(authorization: Option<&str>) -> Request {
        let mut headers = http::HeaderMap::new();
        if let Some(a) = authorization {
            headers.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        Request {
            method: http::Method::GET,
            uri: crate::transport::RequestTarget::root(),
            headers,
            body: bytes::Bytes::new(),
            peer: crate::transport::Peer::anonymous(),
            http2: false,
        }
    }

    #[test]
    fn the_first_authenticator_that_knows_the_credential_decides() {
        let chain = Chain::new(
            vec![
                Box::new(Fixed(|_| Outcome::NotMine)),
                Box::new(Fixed(|_| {
                    Outcome::User(UserInfo {
                        name: "alice".into(),
                        groups: vec!["devs".into()],
                        ..UserInfo::default()
                    })
                })),
            ],
            true,
        );
        let user = futures::executor::block_on(chain.authenticate(&request(None))).unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["devs", AUTHENTICATED_GROUP]);
    }

    #[test]
    fn anonymous_conditions_name_the_paths_allowed() {
        let any = Anonymous {
            enabled: true,
            paths: vec![],
        };
        assert!(any.allows("/api") && any.allows("/livez"));
        let some = Anonymous {
            enabled: true,
            paths: vec!["/livez".into(), "/readyz".into()],
        };
        assert!(some.allows("/livez") && !some.allows("/livez/ping") && !some.allows("/api"));
        let off = Anonymous {
            enabled: false,
            paths: vec!["/livez".into()],
        };
        assert!(!off.allows("/livez"));
    }

    #[test]
    fn no_credential_is_anonymous_and_an_unknown_one_is_401() {
        let chain = Chain::new(vec![Box::new(Fixed(|_| Outcome::NotMine))], true);
        let user = futures::executor::block_on(chain.authenticate(&request(None))).unwrap();
        assert!(user.is_anonymous());
        assert_eq!(user.groups, vec![UNAUTHENTICATED_GROUP]);
        let err = futures::executor::block_on(chain.authenticate(&request(Some("Bearer nope"))))
            .unwrap_err();
        assert_eq!(err.code, 401);
        let closed = Chain::new(vec![], false);
        assert_eq!(
            futures::executor::block_on(closed.authenticate(&request(None)))
                .unwrap_err()
                .code,
            401
        );
        let invalid = Chain::new(vec![Box::new(Fixed(|_| Outcome::Invalid))], true);
        assert_eq!(
            futures::executor::block_on(invalid.authenticate(&request(None)))
                .unwrap_err()
                .code,
            401
        );
    }
}
