//! Resources computed on request and never stored: the review APIs (TokenReview,
//! SelfSubjectReview, SubjectAccessReview and its kin) and the `serviceaccounts/token`
//! subresource (TokenRequest). The generic handler decodes the body once; the module that owns
//! the resource computes the answer object; this file encodes it (201, as upstream).

use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;

use super::Ctx;
use crate::api::request::{Query, ResourceRequest, Verb};
use crate::api::server::Api;
use crate::api::status::Status;
use crate::authn::UserInfo;
use crate::transport::{Request, Response};

/// What a computed resource's handler gets: the request's user and target, and its decoded body.
pub struct ComputedRequest<'a> {
    pub api: &'a Arc<Api>,
    pub req: &'a Request,
    pub user: &'a UserInfo,
    pub rr: &'a ResourceRequest,
    pub query: &'a Query,
    pub body: Value,
    pub dry_run: bool,
    /// Warnings the handler adds to the answer (`Warning: 299 - "..."` headers).
    pub warnings: std::cell::RefCell<Vec<String>>,
}

/// Whether (group, resource, subresource, verb) is computed here.
pub(super) fn is_computed(rr: &ResourceRequest) -> bool {
    route(rr).is_some()
}

#[derive(Clone, Copy)]
enum Route {
    TokenReview,
    SelfSubjectReview,
    TokenRequest,
    SubjectAccessReview,
    LocalSubjectAccessReview,
    SelfSubjectAccessReview,
    SelfSubjectRulesReview,
}

fn route(rr: &ResourceRequest) -> Option<Route> {
    if rr.verb != Verb::Create {
        return None;
    }
    let r = match (
        rr.group.as_str(),
        rr.resource.as_str(),
        rr.subresource.as_deref(),
    ) {
        ("authentication.k8s.io", "tokenreviews", None) => Route::TokenReview,
        ("authentication.k8s.io", "selfsubjectreviews", None) => Route::SelfSubjectReview,
        ("", "serviceaccounts", Some("token")) => Route::TokenRequest,
        ("authorization.k8s.io", "subjectaccessreviews", None) => Route::SubjectAccessReview,
        ("authorization.k8s.io", "localsubjectaccessreviews", None) => {
            Route::LocalSubjectAccessReview
        }
        ("authorization.k8s.io", "selfsubjectaccessreviews", None) => {
            Route::SelfSubjectAccessReview
        }
        ("authorization.k8s.io", "selfsubjectrulesreviews", None) => Route::SelfSubjectRulesReview,
        _ => return None,
    };
    Some(r)
}

impl Ctx<'_> {
    /// Serves a computed resource: decode, compute, answer 201 with the computed object.
    pub(super) async fn computed(&self) -> Result<Response, Status> {
        let Some(route) = route(self.rr) else {
            return Err(Status::no_such_resource());
        };
        // The handler checks the body's kind (a TokenRequest goes to `serviceaccounts`).
        let body = self.body_offloaded().await?;
        let creq = ComputedRequest {
            api: self.api,
            req: self.req,
            user: self.user,
            rr: self.rr,
            query: self.query,
            body,
            dry_run: self.dry_run()?,
            warnings: Default::default(),
        };
        let answer = match route {
            Route::TokenReview => crate::authn::review::token_review(&creq).await?,
            Route::SelfSubjectReview => crate::authn::review::self_subject_review(&creq).await?,
            Route::TokenRequest => crate::authn::review::token_request(&creq).await?,
            Route::SubjectAccessReview => {
                crate::authz::review::subject_access_review(&creq).await?
            }
            Route::LocalSubjectAccessReview => {
                crate::authz::review::local_subject_access_review(&creq).await?
            }
            Route::SelfSubjectAccessReview => {
                crate::authz::review::self_subject_access_review(&creq).await?
            }
            Route::SelfSubjectRulesReview => {
                crate::authz::review::self_subject_rules_review(&creq).await?
            }
        };
        let body = match self.enc {
            crate::api::negotiate::Encoding::Protobuf => {
                crate::api::objects::value_envelope(&answer)?
            }
            enc => {
                let json =
                    serde_json::to_vec(&answer).map_err(|e| Status::internal(e.to_string()))?;
                crate::api::objects::finish_json(json, enc, self.pretty)?
            }
        };
        let warnings = creq.warnings.take();
        Ok(self.warnings_response(self.ok(StatusCode::CREATED, body), &warnings))
    }
}
