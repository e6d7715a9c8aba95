//! Resources computed on request and never stored: the review APIs (TokenReview,
//! SelfSubjectReview, SubjectAccessReview and its kin) and the `serviceaccounts/token`
//! subresource (TokenRequest). The generic handler decodes the body once; the module that owns
//! the resource computes the answer object; this file encodes it (201, as upstream).

use crate::jsonptr::At;
use std::sync::Arc;

use http::StatusCode;
use kapi_codec::FieldValidation;
use serde_json::{Value, json};

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
    /// `pods/binding` and the older `bindings` resource: the scheduler's placement.
    Binding,
    /// `pods/eviction`: a pod deleted if its disruption budget allows.
    Eviction,
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
        ("", "pods", Some("binding")) | ("", "bindings", None) => Route::Binding,
        ("", "pods", Some("eviction")) => Route::Eviction,
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
        match route {
            Route::Binding => return self.bind(creq.body).await,
            Route::Eviction => return self.evict(creq.body).await,
            _ => {}
        }
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
            Route::Binding | Route::Eviction => unreachable!("answered above"),
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

/// Attempts of a binding against concurrent writers of the pod (upstream's GuaranteedUpdate
/// retries likewise).
const BINDING_ATTEMPTS: usize = 64;

impl Ctx<'_> {
    /// Assigns a pod to a node (upstream's `BindingREST`): `spec.nodeName` set once, the
    /// binding's annotations copied, the `PodScheduled` condition true; 201 with a Success
    /// Status. A pod already bound or being deleted is 409.
    async fn bind(&self, body: Value) -> Result<Response, Status> {
        if body["kind"].as_str().is_some_and(|k| k != "Binding")
            || body["apiVersion"].as_str().is_some_and(|v| v != "v1")
        {
            return Err(Status::bad_request(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; expected v1 Binding, got {}/{}",
                body["apiVersion"].as_str().unwrap_or(""),
                body["kind"].as_str().unwrap_or("")
            )));
        }
        let binding_name = body["metadata"]["name"].as_str().unwrap_or("");
        let pod_name = match self.rr.subresource.as_deref() {
            Some(_) => {
                let name = self.rr.name.clone().unwrap_or_default();
                if !binding_name.is_empty() && binding_name != name {
                    return Err(Status::bad_request(
                        "name in URL does not match name in Binding object",
                    ));
                }
                name
            }
            None => binding_name.to_owned(),
        };
        let target = &body["target"];
        let node = target["name"].as_str().unwrap_or("");
        let mut causes = Vec::new();
        if pod_name.is_empty() {
            causes.push(crate::kinds::podspec_rules::required(
                "metadata.name".into(),
            ));
        }
        if node.is_empty() {
            causes.push(crate::kinds::podspec_rules::required("target.name".into()));
        }
        if let Some(kind) = target["kind"].as_str()
            && !kind.is_empty()
            && kind != "Node"
        {
            causes.push(crate::kinds::podspec_rules::not_supported(
                "target.kind".into(),
                &json!(kind),
                &["Node"],
            ));
        }
        if !causes.is_empty() {
            return Err(Status::invalid("", "Binding", &pod_name, causes));
        }
        let pods = self
            .api
            .registry
            .get("", "v1", "pods")
            .ok_or_else(|| Status::internal("no pods resource"))?;
        let rr = self.pod_request(Verb::Update, &pod_name);
        let pod_ctx = self.for_request(pods, &rr);
        let gr = crate::api::status::GroupResource {
            group: "",
            resource: "pods/binding",
        };
        let dry_run = self.dry_run()?;
        for _ in 0..BINDING_ATTEMPTS {
            let current = pod_ctx.current().await?;
            let served = crate::api::objects::served(pods, &current.value, current.mod_revision)?;
            let mut pod = crate::api::objects::to_value(pods, &served)?;
            if pod.at("/metadata/deletionTimestamp").is_some() {
                return Err(Status::conflict(
                    gr,
                    &pod_name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            if let Some(bound) = pod.at("/spec/nodeName").and_then(Value::as_str)
                && !bound.is_empty()
            {
                return Err(Status::conflict(
                    gr,
                    &pod_name,
                    &format!("pod {pod_name} is already assigned to node {bound:?}"),
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            // The binding's labels (with its node's topology labels, when PodTopologyLabels
            // is on) become the pod's.
            let mut labels: Vec<(String, String)> = body["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            if self.api.admission.has("PodTopologyLabels") {
                for (k, v) in crate::admission::topology::node_labels(self.api, node)? {
                    if !labels.iter().any(|(l, _)| *l == k) {
                        labels.push((k, v));
                    }
                }
            }
            if !labels.is_empty()
                && let Some(meta) = pod["metadata"].as_object_mut()
                && let Some(existing) = meta
                    .entry("labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            {
                for (k, v) in labels {
                    existing.insert(k, json!(v));
                }
            }
            if let Some(annotations) = body["metadata"]["annotations"].as_object()
                && let Some(meta) = pod["metadata"].as_object_mut()
            {
                let target = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(t) = target.as_object_mut() {
                    for (k, v) in annotations {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
            set_scheduled(&mut pod);
            if dry_run {
                break;
            }
            let (value, _) =
                crate::api::objects::encode_for_storage(pods, &pod, FieldValidation::Ignore)?;
            let key = pod_ctx.key(&pod_name);
            match self
                .api
                .store
                .update(key.as_bytes(), value, current.mod_revision)
                .await
            {
                Ok(_) => break,
                Err(crate::storage::StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(super::store_error(pods, &pod_name, e)),
            }
        }
        let status = Status::new(201, "", "");
        let body = crate::api::objects::encode_status(&status, self.enc, self.pretty);
        Ok(self.ok(StatusCode::CREATED, body))
    }
}

/// `PodScheduled` true, as upstream's binding sets it (a condition already there is updated).
fn set_scheduled(pod: &mut Value) {
    let now = crate::api::rest::now_rfc3339();
    let Some(status) = pod
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})))
    else {
        return;
    };
    let Some(status) = status.as_object_mut() else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    match list.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(c) => {
            if c["status"] != "True" {
                c["status"] = json!("True");
                c["lastTransitionTime"] = json!(now);
            }
        }
        None => list.push(json!({
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": null,
            "lastTransitionTime": now,
        })),
    }
}
