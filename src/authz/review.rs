//! The authorization group's computed resources: SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview (`kubectl auth can-i`) and
//! SelfSubjectRulesReview (`kubectl auth can-i --list`), answered by the authorizer chain
//! as upstream's `pkg/registry/authorization/*` do.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Attributes, Decision};
use crate::api::request::{ResourceRequest, Verb};
use crate::api::rest::ComputedRequest;
use crate::api::status::{Cause, Status};
use crate::authn::UserInfo;

const GROUP: &str = "authorization.k8s.io";
/// Entries of a review's user, groups or extra a client may send: far more than any real
/// user has.
const MAX_SUBJECT_ITEMS: usize = 1024;

fn invalid_cause(field: &str, value: &Value, why: &str) -> Cause {
    let shown = match value {
        Value::Null => "null".to_string(),
        v => v.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {shown}: {why}"),
        field: field.into(),
    }
}

fn invalid(kind: &str, causes: Vec<Cause>) -> Status {
    let mut s = Status::invalid(GROUP, &format!("{kind}.{GROUP}"), "", causes);
    s.kind = Some(kind.to_string());
    s
}

/// The body's kind must be the endpoint's (or absent).
fn check_kind(body: &Value, kind: &str) -> Result<(), Status> {
    if !body.is_object() {
        return Err(Status::bad_request(format!("expected a {kind} object")));
    }
    match body.get("kind").and_then(Value::as_str) {
        None | Some("") => Ok(()),
        Some(k) if k == kind => Ok(()),
        Some(k) => Err(Status::bad_request(format!(
            "the body of the request was in an unknown format: a {k} is not a {kind}"
        ))),
    }
}

/// Upstream's `ValidateSelfSubjectAccessReviewSpec` (and, for the others, the user check).
fn validate_spec(spec: &Value, needs_subject: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ra = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let nra = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    if let (Some(_), Some(n)) = (ra, nra) {
        causes.push(invalid_cause(
            "spec.nonResourceAttributes",
            n,
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if ra.is_none() && nra.is_none() {
        causes.push(invalid_cause(
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if needs_subject {
        let user = spec["user"].as_str().unwrap_or("");
        let groups = spec["groups"].as_array().is_some_and(|g| !g.is_empty());
        if user.is_empty() && !groups {
            causes.push(invalid_cause(
                "spec.user",
                &json!(user),
                "at least one of user or group must be specified",
            ));
        }
    }
    causes
}

/// Metadata other than `namespace` (and managedFields) must be empty on a review.
fn validate_meta(body: &Value, allow_namespace: bool, causes: &mut Vec<Cause>) {
    let mut meta = body.get("metadata").cloned().unwrap_or(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
        m.remove("creationTimestamp");
        if allow_namespace {
            m.remove("namespace");
        }
        m.retain(|_, v| !v.is_null() && v != "" && v != &json!({}) && v != &json!([]));
    }
    if meta.as_object().is_some_and(|m| !m.is_empty()) {
        let why = if allow_namespace {
            "must be empty except for namespace"
        } else {
            "must be empty"
        };
        causes.push(invalid_cause("metadata", &meta, why));
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .take(MAX_SUBJECT_ITEMS)
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The user a SubjectAccessReview asks about.
fn spec_user(spec: &Value) -> UserInfo {
    let mut extra = BTreeMap::new();
    if let Some(m) = spec["extra"].as_object() {
        for (k, v) in m.iter().take(MAX_SUBJECT_ITEMS) {
            extra.insert(k.clone(), strings(v));
        }
    }
    UserInfo {
        name: spec["user"].as_str().unwrap_or("").to_string(),
        uid: spec["uid"].as_str().unwrap_or("").to_string(),
        groups: strings(&spec["groups"]),
        extra,
    }
}

/// Asks the chain about `spec`'s attributes for `user`; the review's status.
async fn decide(req: &ComputedRequest<'_>, user: &UserInfo, spec: &Value) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let decision = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let opt = |v: &Value| Some(s(v)).filter(|x| !x.is_empty());
        let version = s(&ra["version"]);
        let rr = ResourceRequest {
            // The verb asked about is the attributes' own; this one is not read.
            verb: Verb::Get,
            group: s(&ra["group"]),
            version: if version.is_empty() {
                "*".into()
            } else {
                version
            },
            resource: s(&ra["resource"]),
            namespace: opt(&ra["namespace"]),
            name: opt(&ra["name"]),
            subresource: opt(&ra["subresource"]),
        };
        let verb = s(&ra["verb"]);
        let attrs = Attributes {
            user,
            verb: &verb,
            resource: Some(&rr),
            path: "",
            selected_name: None,
            selectors: crate::authz::Selectors::default(),
        };
        req.api.authz.decide(&attrs).await
    } else {
        let nra = &spec["nonResourceAttributes"];
        let (verb, path) = (s(&nra["verb"]), s(&nra["path"]));
        let attrs = Attributes {
            user,
            verb: &verb,
            resource: None,
            path: &path,
            selected_name: None,
            selectors: crate::authz::Selectors::default(),
        };
        req.api.authz.decide(&attrs).await
    };
    let (allowed, denied, reason) = match decision.decision {
        Decision::Allow(r) => (true, false, r),
        Decision::Deny(r) => (false, true, r),
        Decision::NoOpinion(r) => (false, false, r),
    };
    let mut status = json!({"allowed": allowed});
    if denied {
        status["denied"] = json!(true);
    }
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    if let Some(error) = decision.error {
        status["evaluationError"] = json!(error);
    }
    status
}

fn answer(mut body: Value, kind: &str, status: Value) -> Value {
    body["apiVersion"] = json!(format!("{GROUP}/v1"));
    body["kind"] = json!(kind);
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    body["status"] = status;
    body
}

pub async fn subject_access_review(req: &ComputedRequest<'_>) -> Result<Value, Status> {
    const KIND: &str = "SubjectAccessReview";
    check_kind(&req.body, KIND)?;
    let spec = req.body["spec"].clone();
    let mut causes = validate_spec(&spec, true);
    validate_meta(&req.body, false, &mut causes);
    if !causes.is_empty() {
        return Err(invalid(KIND, causes));
    }
    let status = decide(req, &spec_user(&spec), &spec).await;
    Ok(answer(req.body.clone(), KIND, status))
}

pub async fn local_subject_access_review(req: &ComputedRequest<'_>) -> Result<Value, Status> {
    const KIND: &str = "LocalSubjectAccessReview";
    check_kind(&req.body, KIND)?;
    let namespace = req.rr.namespace.clone().unwrap_or_default();
    let mut body = req.body.clone();
    match body["metadata"]["namespace"].as_str() {
        None | Some("") => {
            if !body["metadata"].is_object() {
                body["metadata"] = json!({});
            }
            body["metadata"]["namespace"] = json!(namespace);
        }
        Some(ns) if ns == namespace => {}
        Some(_) => {
            return Err(Status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let spec = body["spec"].clone();
    let mut causes = validate_spec(&spec, true);
    validate_meta(&body, true, &mut causes);
    if let Some(n) = spec.get("nonResourceAttributes").filter(|v| !v.is_null()) {
        causes.push(invalid_cause(
            "spec.nonResourceAttributes",
            n,
            "disallowed on this kind of request",
        ));
    }
    if !causes.is_empty() {
        return Err(invalid(KIND, causes));
    }
    if namespace.is_empty() {
        return Err(Status::bad_request(
            "namespace is required on this type: ".to_string(),
        ));
    }
    if spec["resourceAttributes"]["namespace"]
        .as_str()
        .unwrap_or("")
        != namespace
    {
        return Err(Status::bad_request(format!(
            "spec.resourceAttributes.namespace must match namespace: {namespace}"
        )));
    }
    let status = decide(req, &spec_user(&spec), &spec).await;
    Ok(answer(body, KIND, status))
}

pub async fn self_subject_access_review(req: &ComputedRequest<'_>) -> Result<Value, Status> {
    const KIND: &str = "SelfSubjectAccessReview";
    check_kind(&req.body, KIND)?;
    let spec = req.body["spec"].clone();
    let causes = validate_spec(&spec, false);
    if !causes.is_empty() {
        return Err(invalid(KIND, causes));
    }
    let status = decide(req, req.user, &spec).await;
    Ok(answer(req.body.clone(), KIND, status))
}

pub async fn self_subject_rules_review(req: &ComputedRequest<'_>) -> Result<Value, Status> {
    const KIND: &str = "SelfSubjectRulesReview";
    check_kind(&req.body, KIND)?;
    let namespace = req.body["spec"]["namespace"].as_str().unwrap_or("");
    if namespace.is_empty() {
        return Err(Status::bad_request("no namespace on request"));
    }
    let rules = req.api.authz.rules_for(req.user, namespace);
    let resource_rules: Vec<Value> = rules
        .resource
        .iter()
        .map(|r| {
            let mut v = json!({"verbs": r.verbs});
            for (k, list) in [
                ("apiGroups", &r.api_groups),
                ("resources", &r.resources),
                ("resourceNames", &r.resource_names),
            ] {
                if !list.is_empty() {
                    v[k] = json!(list);
                }
            }
            v
        })
        .collect();
    let non_resource_rules: Vec<Value> = rules
        .non_resource
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": rules.incomplete,
    });
    if !rules.errors.is_empty() {
        status["evaluationError"] = json!(super::rbac::policy::aggregate(&rules.errors));
    }
    Ok(json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": KIND,
        "metadata": {},
        "spec": {},
        "status": status,
    }))
}
