//! The authorization group's computed resources: SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview (`kubectl auth can-i`) and
//! SelfSubjectRulesReview (`kubectl auth can-i --list`), answered by the authorizer chain.

use serde_json::Value;

use crate::api::rest::ComputedRequest;
use crate::api::status::Status;

/// Not served yet (the security issue): 405 as for a verb the resource lacks.
fn not_yet(what: &str) -> Status {
    Status::new(405, "MethodNotAllowed", format!("{what} is not served yet"))
}

pub async fn subject_access_review(_req: &ComputedRequest<'_>) -> Result<Value, Status> {
    Err(not_yet("SubjectAccessReview"))
}

pub async fn local_subject_access_review(_req: &ComputedRequest<'_>) -> Result<Value, Status> {
    Err(not_yet("LocalSubjectAccessReview"))
}

pub async fn self_subject_access_review(_req: &ComputedRequest<'_>) -> Result<Value, Status> {
    Err(not_yet("SelfSubjectAccessReview"))
}

pub async fn self_subject_rules_review(_req: &ComputedRequest<'_>) -> Result<Value, Status> {
    Err(not_yet("SelfSubjectRulesReview"))
}
