//! Authentication: the first stage of the request pipeline after request info. A chain of
//! authenticators, each for one kind of credential, turns a request into the `UserInfo` the
//! later stages (flow control, authorization, admission, audit) decide on.
//!
//! As upstream's union authenticator: the first authenticator that recognises the request's
//! credential decides; a credential that no authenticator accepts is a 401, whatever the path;
//! a request with no credential at all is `system:anonymous` when anonymous requests are allowed.

pub mod bootstrap;
pub mod claims;
pub mod flags;
pub mod impersonation;
pub mod jwt;
pub mod keys;
pub mod lookup;
pub mod loopback;
pub mod oidc;
pub mod options;
pub mod review;
pub mod serviceaccount;
pub mod token_file;
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

/// The authenticators of `--authentication-*` flags, in upstream's order, and whether
/// anonymous requests are allowed (`--anonymous-auth`).
pub struct Chain {
    authenticators: Vec<Box<dyn Authenticator>>,
    anonymous: bool,
}

impl Chain {
    pub fn new(authenticators: Vec<Box<dyn Authenticator>>, anonymous: bool) -> Chain {
        Chain {
            authenticators,
            anonymous,
        }
    }

    /// The user a request is from, or upstream's 401 `Status`.
    pub fn authenticate(&self, req: &Request) -> Result<UserInfo, Status> {
        let mut invalid = false;
        for authenticator in &self.authenticators {
            match authenticator.authenticate(req) {
                Outcome::User(mut user) => {
                    // Upstream's AuthenticatedGroupAdder.
                    if !user.in_group(AUTHENTICATED_GROUP) && !user.is_anonymous() {
                        user.groups.push(AUTHENTICATED_GROUP.to_string());
                    }
                    return Ok(user);
                }
                Outcome::Invalid => invalid = true,
                Outcome::NotMine => {}
            }
        }
        // A bearer token no authenticator knows is an invalid credential too.
        if invalid || req.headers.contains_key(http::header::AUTHORIZATION) || !self.anonymous {
            return Err(Status::unauthorized());
        }
        Ok(UserInfo::anonymous())
    }

    /// TokenReview: `token` through every authenticator, for the review's `audiences` (none:
    /// the server's own, `api_audiences`). The user (with `system:authenticated`) and the
    /// audiences it is good for, or the errors met (upstream's union wording).
    pub fn review(
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
        let mut errors = Vec::new();
        for authenticator in &self.authenticators {
            let outcome = match authenticator.authenticate_token(token, requested) {
                Some(outcome) => outcome,
                None => {
                    // Audience-agnostic: good for the server's audiences the review asks for.
                    let auds: Vec<String> = api_audiences
                        .iter()
                        .filter(|a| requested.contains(a))
                        .cloned()
                        .collect();
                    if auds.is_empty() {
                        continue;
                    }
                    match authenticator.authenticate(&bearer_request(token)) {
                        Outcome::User(user) => TokenOutcome::User(user, auds),
                        Outcome::Invalid => TokenOutcome::Invalid("invalid bearer token".into()),
                        Outcome::NotMine => TokenOutcome::NotMine,
                    }
                }
            };
            match outcome {
                TokenOutcome::User(mut user, auds) => {
                    if !user.in_group(AUTHENTICATED_GROUP) {
                        user.groups.push(AUTHENTICATED_GROUP.to_string());
                    }
                    return Ok((user, auds));
                }
                TokenOutcome::Invalid(why) => errors.push(why),
                TokenOutcome::NotMine => {}
            }
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
        let user = chain.authenticate(&request(None)).unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["devs", AUTHENTICATED_GROUP]);
    }

    #[test]
    fn no_credential_is_anonymous_and_an_unknown_one_is_401() {
        let chain = Chain::new(vec![Box::new(Fixed(|_| Outcome::NotMine))], true);
        let user = chain.authenticate(&request(None)).unwrap();
        assert!(user.is_anonymous());
        assert_eq!(user.groups, vec![UNAUTHENTICATED_GROUP]);
        let err = chain
            .authenticate(&request(Some("Bearer nope")))
            .unwrap_err();
        assert_eq!(err.code, 401);
        let closed = Chain::new(vec![], false);
        assert_eq!(closed.authenticate(&request(None)).unwrap_err().code, 401);
        let invalid = Chain::new(vec![Box::new(Fixed(|_| Outcome::Invalid))], true);
        assert_eq!(invalid.authenticate(&request(None)).unwrap_err().code, 401);
    }
}
