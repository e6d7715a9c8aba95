//! Authorization: the stage after authentication and flow control. A chain of authorizers
//! (upstream's `--authorization-mode`, in order) decides whether the request's user may do the
//! request's verb on its resource or path; the first that allows or denies decides, and a
//! request no authorizer allows is a 403 with upstream's message.

pub mod review;

use crate::api::request::{ResourceRequest, Target};
use crate::api::status::Status;
use crate::authn::UserInfo;

/// What a request asks to do, as upstream's `authorizer.Attributes`.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    /// The Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection)
    /// for a resource request; the lower-cased HTTP method for a path.
    pub verb: &'a str,
    pub resource: Option<&'a ResourceRequest>,
    /// The request's path (what a non-resource rule matches).
    pub path: &'a str,
}

impl<'a> Attributes<'a> {
    pub fn new(
        user: &'a UserInfo,
        method: &'a http::Method,
        path: &'a str,
        target: Option<&'a Target>,
    ) -> Attributes<'a> {
        match target {
            Some(Target::Resource(rr)) => Attributes {
                user,
                verb: rr.verb.as_str(),
                resource: Some(rr),
                path,
            },
            _ => Attributes {
                user,
                verb: non_resource_verb(method),
                resource: None,
                path,
            },
        }
    }
}

/// A non-resource request's verb: its method, lower-cased, as upstream's RequestInfoFactory.
fn non_resource_verb(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "get",
        http::Method::HEAD => "head",
        http::Method::POST => "post",
        http::Method::PUT => "put",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        http::Method::OPTIONS => "options",
        _ => "unknown",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused, with the reason upstream appends to its message (may be empty).
    Deny(String),
    /// This authorizer has no rule for the request; the next one decides.
    NoOpinion,
}

/// One authorization mode. Shared by every core; decides from memory, never from the store.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision;
}

pub struct Chain(Vec<Box<dyn Authorizer>>);

impl Chain {
    pub fn new(authorizers: Vec<Box<dyn Authorizer>>) -> Chain {
        Chain(authorizers)
    }

    /// Ok when allowed; else upstream's 403 `Status`.
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Result<(), Status> {
        let mut reason = String::new();
        for authorizer in &self.0 {
            match authorizer.authorize(attrs) {
                Decision::Allow => return Ok(()),
                Decision::Deny(why) => {
                    reason = why;
                    break;
                }
                Decision::NoOpinion => {}
            }
        }
        Err(forbidden(attrs, &reason))
    }
}

/// Upstream's `system:masters` group: allowed everything, whatever the modes
/// (its privileged-group authorizer comes first).
pub struct PrivilegedGroup;

impl Authorizer for PrivilegedGroup {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        if attrs.user.in_group("system:masters") {
            Decision::Allow
        } else {
            Decision::NoOpinion
        }
    }
}

/// Until RBAC arrives (the security issue): every authenticated user may do anything, and
/// everyone may read the paths upstream's bootstrap `system:public-info-viewer` role opens to
/// unauthenticated users (health and version).
pub struct Interim;

impl Authorizer for Interim {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        if !attrs.user.is_anonymous() {
            return Decision::Allow;
        }
        if attrs.resource.is_none() && attrs.verb == "get" && public_info(attrs.path) {
            return Decision::Allow;
        }
        Decision::NoOpinion
    }
}

/// The paths of upstream's `system:public-info-viewer` ClusterRole.
fn public_info(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
    ) || ["/healthz/", "/livez/", "/readyz/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Upstream's 403 for a refused request: `<resource>.<group> "<name>" is forbidden: User
/// "<user>" cannot <verb> resource "<resource>[/<subresource>]" in API group "<group>" <scope>`,
/// or `forbidden: User "<user>" cannot <verb> path "<path>"`; a reason follows after `: `.
pub fn forbidden(attrs: &Attributes<'_>, reason: &str) -> Status {
    let user = &attrs.user.name;
    let mut status = match attrs.resource {
        Some(rr) => {
            let gr = if rr.group.is_empty() {
                rr.resource.clone()
            } else {
                format!("{}.{}", rr.resource, rr.group)
            };
            let named = match &rr.name {
                Some(n) => format!("{gr} \"{n}\""),
                None => gr,
            };
            let resource = match &rr.subresource {
                Some(sub) => format!("{}/{sub}", rr.resource),
                None => rr.resource.clone(),
            };
            let scope = match &rr.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            let mut s = Status::new(
                403,
                "Forbidden",
                format!(
                    "{named} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
                    attrs.verb, rr.group
                ),
            );
            s.kind = Some(rr.resource.clone());
            s.group = Some(rr.group.clone()).filter(|g| !g.is_empty());
            s.name = rr.name.clone();
            s
        }
        None => Status::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{user}\" cannot {} path \"{}\"",
                attrs.verb, attrs.path
            ),
        ),
    };
    if !reason.is_empty() {
        status.message = format!("{}: {reason}", status.message);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::{Query, parse};

    fn decide(user: &UserInfo, method: http::Method, path: &str) -> Result<(), Status> {
        let target = parse(&method, path, &Query::default());
        let chain = Chain::new(vec![Box::new(PrivilegedGroup), Box::new(Interim)]);
        chain.authorize(&Attributes::new(user, &method, path, target.as_ref()))
    }

    #[test]
    fn anonymous_users_read_only_public_info() {
        let anon = UserInfo::anonymous();
        assert!(decide(&anon, http::Method::GET, "/livez").is_ok());
        assert!(decide(&anon, http::Method::GET, "/readyz/etcd").is_ok());
        assert!(decide(&anon, http::Method::GET, "/version").is_ok());
        let e = decide(&anon, http::Method::GET, "/metrics").unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "forbidden: User \"system:anonymous\" cannot get path \"/metrics\""
        );
        let e = decide(&anon, http::Method::GET, "/api/v1/namespaces/ns/pods/p/log").unwrap_err();
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: User \"system:anonymous\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"ns\""
        );
        let e = decide(&anon, http::Method::GET, "/apis/apps/v1/deployments").unwrap_err();
        assert_eq!(
            e.message,
            "deployments.apps is forbidden: User \"system:anonymous\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
    }

    #[test]
    fn authenticated_users_are_allowed_until_rbac() {
        let alice = UserInfo {
            name: "alice".into(),
            groups: vec!["system:authenticated".into()],
            ..UserInfo::default()
        };
        assert!(decide(&alice, http::Method::DELETE, "/api/v1/namespaces/x").is_ok());
    }
}
