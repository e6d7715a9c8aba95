//! Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-<key>` headers): after
//! authentication and before flow control, as upstream's filter. Each thing asked for is
//! authorized as the verb `impersonate` on `users`, `serviceaccounts`, `groups`,
//! `uids` or `userextras/<key>`; the request then runs as the impersonated user.

use std::collections::BTreeMap;

use super::{ANONYMOUS_USER, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, UserInfo};
use crate::api::request::{ResourceRequest, Verb};
use crate::api::status::Status;
use crate::authz::{Attributes, Chain};
use crate::transport::Request;

pub const USER_HEADER: &str = "impersonate-user";
pub const GROUP_HEADER: &str = "impersonate-group";
pub const UID_HEADER: &str = "impersonate-uid";
pub const EXTRA_PREFIX: &str = "impersonate-extra-";

/// Groups or extra values one request may ask for: each is an authorization decision.
const MAX_IMPERSONATED_VALUES: usize = 256;

/// One thing asked for, as the resource it is authorized on.
struct Wanted {
    group: &'static str,
    resource: &'static str,
    subresource: Option<String>,
    namespace: Option<String>,
    name: String,
}

/// Whether the request asks to impersonate anyone (cheap: most requests do not).
pub fn requested(req: &Request) -> bool {
    req.headers
        .keys()
        .any(|k| k.as_str().starts_with("impersonate-"))
}

/// The user the request runs as: `user` itself, or the impersonated user when `user` may
/// impersonate everything asked for; upstream's 403 (or 500 for groups or extras without a
/// user, as upstream answers) otherwise.
pub async fn impersonate(req: &Request, user: UserInfo, authz: &Chain) -> Result<UserInfo, Status> {
    let text = |v: &http::HeaderValue| v.to_str().unwrap_or("").to_owned();
    let requested_user = req.headers.get(USER_HEADER).map(text).unwrap_or_default();
    let groups: Vec<String> = req.headers.get_all(GROUP_HEADER).iter().map(text).collect();
    let uid = req.headers.get(UID_HEADER).map(text);
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &req.headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .to_lowercase();
            extra.entry(key).or_default().push(text(value));
        }
    }
    let mut wanted = Vec::new();
    let mut username = String::new();
    let mut sa_groups = Vec::new();
    if !requested_user.is_empty() {
        if let Some((ns, name)) = service_account(&requested_user) {
            wanted.push(Wanted {
                group: "",
                resource: "serviceaccounts",
                subresource: None,
                namespace: Some(ns.to_owned()),
                name: name.to_owned(),
            });
            sa_groups = vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{ns}"),
            ];
        } else {
            wanted.push(Wanted {
                group: "",
                resource: "users",
                subresource: None,
                namespace: None,
                name: requested_user.clone(),
            });
        }
        username = requested_user.clone();
    }
    for g in &groups {
        wanted.push(Wanted {
            group: "",
            resource: "groups",
            subresource: None,
            namespace: None,
            name: g.clone(),
        });
    }
    for (key, values) in &extra {
        for v in values {
            wanted.push(Wanted {
                group: "authentication.k8s.io",
                resource: "userextras",
                subresource: Some(key.clone()),
                namespace: None,
                name: v.clone(),
            });
        }
    }
    if let Some(uid) = &uid {
        wanted.push(Wanted {
            group: "authentication.k8s.io",
            resource: "uids",
            subresource: None,
            namespace: None,
            name: uid.clone(),
        });
    }
    if wanted.len() > MAX_IMPERSONATED_VALUES {
        return Err(Status::bad_request(format!(
            "at most {MAX_IMPERSONATED_VALUES} impersonation values may be requested"
        )));
    }
    if requested_user.is_empty() {
        if wanted.is_empty() {
            return Ok(user);
        }
        return Err(Status::internal(format!(
            "requested {} without impersonating a user",
            wanted
                .iter()
                .map(|w| format!("{}/{}", w.resource, w.name))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for w in &wanted {
        let rr = ResourceRequest {
            verb: Verb::Get,
            group: w.group.to_owned(),
            version: "v1".to_owned(),
            resource: w.resource.to_owned(),
            namespace: w.namespace.clone(),
            name: Some(w.name.clone()),
            subresource: w.subresource.clone(),
        };
        let attrs = Attributes {
            user: &user,
            verb: "impersonate",
            resource: Some(&rr),
            path: "",
            selected_name: None,
            selectors: crate::authz::Selectors::default(),
        };
        authz.authorize(&attrs).await?;
    }
    let groups_specified = !groups.is_empty();
    let mut new_groups = if groups_specified { groups } else { sa_groups };
    if !groups_specified
        && username != ANONYMOUS_USER
        && !new_groups
            .iter()
            .any(|g| g == AUTHENTICATED_GROUP || g == UNAUTHENTICATED_GROUP)
    {
        new_groups.push(AUTHENTICATED_GROUP.to_owned());
    }
    Ok(UserInfo {
        name: username,
        uid: uid.unwrap_or_default(),
        groups: new_groups,
        extra,
    })
}

/// `system:serviceaccount:<namespace>:<name>` → (namespace, name).
fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}
