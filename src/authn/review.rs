//! The authentication group's computed resources: TokenReview (runs a token through the
//! authenticator chain), SelfSubjectReview (`kubectl auth whoami`), and TokenRequest
//! (`serviceaccounts/<name>/token`, a bound service-account token).

use serde_json::Value;

use crate::api::rest::ComputedRequest;
use crate::api::status::Status;

/// Not served yet (the security issue): 405 as for a verb the resource lacks.
fn not_yet(what: &str) -> Status {
    Status::new(405, "MethodNotAllowed", format!("{what} is not served yet"))
}

pub async fn token_review(_req: &ComputedRequest<'_>) -> Result<Value, Status> {
    Err(not_yet("TokenReview"))
}

pub async fn self_subject_review(_req: &ComputedRequest<'_>) -> Result<Value, Status> {
    Err(not_yet("SelfSubjectReview"))
}

pub async fn token_request(_req: &ComputedRequest<'_>) -> Result<Value, Status> {
    Err(not_yet("TokenRequest"))
}
