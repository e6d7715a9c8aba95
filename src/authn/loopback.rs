//! The loopback credential: a random bearer token made at start and known only to this
//! process, with which kapi's own start-up work and reconcilers call its API (upstream's
//! loopback client, user `system:apiserver` in `system:masters`).

use super::{Authenticator, Outcome, UserInfo, bearer_token};
use crate::transport::Request;

pub const LOOPBACK_USER: &str = "system:apiserver";

pub struct Loopback {
    token: String,
    uid: String,
}

/// A new loopback token: two v4 UUIDs (244 random bits from the OS).
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Loopback {
    pub fn with_token(token: &str) -> Loopback {
        Loopback {
            token: token.to_owned(),
            uid: uuid::Uuid::new_v4().to_string(),
        }
    }
}

impl Authenticator for Loopback {
    fn authenticate(&self, req: &Request) -> Outcome {
        match bearer_token(req) {
            // Compared in constant time: the token is a secret.
            Some(t) if constant_time_eq(t.as_bytes(), self.token.as_bytes()) => {
                Outcome::User(UserInfo {
                    name: LOOPBACK_USER.into(),
                    uid: self.uid.clone(),
                    groups: vec!["system:masters".into()],
                    ..UserInfo::default()
                })
            }
            _ => Outcome::NotMine,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
