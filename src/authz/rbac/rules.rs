//! RBAC policy rules and subjects as the authorizer holds them, parsed once from the stored
//! objects, and upstream's matching of a request against a rule
//! (`pkg/apis/rbac/v1/evaluation_helpers.go`).

use serde_json::{Value, json};

use crate::authn::UserInfo;

/// One `PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Rule {
    pub fn from_json(v: &Value) -> Rule {
        Rule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rule as the API writes it (empty lists left out).
    pub fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("verbs".into(), json!(self.verbs));
        for (k, v) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !v.is_empty() {
                o.insert(k.into(), json!(v));
            }
        }
        Value::Object(o)
    }

    pub fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    pub fn group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// `resource` is `resource[/subresource]`; a rule's `*/sub` matches any resource's `sub`.
    pub fn resource_matches(&self, combined: &str, subresource: Option<&str>) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || subresource.is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
        })
    }

    pub fn name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    /// `*`, the path itself, or a prefix ending in `*`.
    pub fn url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == "*"
                || u == path
                || u.strip_suffix('*')
                    .is_some_and(|p| path.starts_with(p.trim_end_matches('*')))
        })
    }

    /// Whether the rule allows the request (upstream's `RuleAllows`).
    pub fn allows(&self, req: &Request<'_>) -> bool {
        match req {
            Request::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                let combined;
                let res = match subresource {
                    Some(sub) => {
                        combined = format!("{resource}/{sub}");
                        combined.as_str()
                    }
                    None => resource,
                };
                self.verb_matches(verb)
                    && self.group_matches(group)
                    && self.resource_matches(res, *subresource)
                    && self.name_matches(name)
            }
            Request::NonResource { verb, path } => {
                self.verb_matches(verb) && self.url_matches(path)
            }
        }
    }
}

/// A request as RBAC sees it.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    Resource {
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        subresource: Option<&'a str>,
        /// Empty when the request names no object.
        name: &'a str,
        /// Empty at the cluster scope.
        namespace: &'a str,
    },
    NonResource {
        verb: &'a str,
        path: &'a str,
    },
}

impl Request<'_> {
    pub fn namespace(&self) -> &str {
        match self {
            Request::Resource { namespace, .. } => namespace,
            Request::NonResource { .. } => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

/// One subject of a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
    /// A ServiceAccount's namespace (the binding's when empty).
    pub namespace: String,
}

impl Subject {
    pub fn from_json(v: &Value) -> Option<Subject> {
        let kind = match v.get("kind").and_then(Value::as_str)? {
            "User" => SubjectKind::User,
            "Group" => SubjectKind::Group,
            "ServiceAccount" => SubjectKind::ServiceAccount,
            _ => return None,
        };
        Some(Subject {
            kind,
            name: v.get("name").and_then(Value::as_str)?.to_string(),
            namespace: v
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }

    /// The user name a ServiceAccount subject stands for, in a binding of `binding_ns`.
    pub fn service_account_user(&self, binding_ns: &str) -> Option<String> {
        let ns = if self.namespace.is_empty() {
            binding_ns
        } else {
            &self.namespace
        };
        (!ns.is_empty()).then(|| format!("system:serviceaccount:{ns}:{}", self.name))
    }

    /// Whether the subject is `user` (upstream's `appliesToUser`).
    pub fn applies_to(&self, user: &UserInfo, binding_ns: &str) -> bool {
        match self.kind {
            SubjectKind::User => user.name == self.name,
            SubjectKind::Group => user.in_group(&self.name),
            SubjectKind::ServiceAccount => {
                self.service_account_user(binding_ns).as_deref() == Some(user.name.as_str())
            }
        }
    }

    /// As upstream's `describeSubject`, for the "allowed by" reason.
    pub fn describe(&self, binding_ns: &str) -> String {
        match self.kind {
            SubjectKind::User => format!("User {:?}", self.name),
            SubjectKind::Group => format!("Group {:?}", self.name),
            SubjectKind::ServiceAccount => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                format!("ServiceAccount {:?}", format!("{}/{ns}", self.name))
            }
        }
    }
}

/// Whether every request `covered` allows is allowed by one of `owner` (upstream's
/// `Covers`, used by escalation checks): the rules of `covered` not covered, broken down to
/// one verb, group, resource and name (or URL) each.
pub fn uncovered(owner: &[Rule], covered: &[Rule]) -> Vec<Rule> {
    let mut missing = Vec::new();
    for rule in covered {
        for part in breakdown(rule) {
            if !owner.iter().any(|o| rule_covers(o, &part)) {
                missing.push(part);
            }
        }
    }
    missing
}

/// One rule per verb, group, resource and name (or per verb and URL), as upstream's
/// `BreakdownRule`.
fn breakdown(rule: &Rule) -> Vec<Rule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                if rule.resource_names.is_empty() {
                    out.push(Rule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        ..Rule::default()
                    });
                }
                for name in &rule.resource_names {
                    out.push(Rule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        resource_names: vec![name.clone()],
                        ..Rule::default()
                    });
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(Rule {
                verbs: vec![verb.clone()],
                non_resource_urls: vec![url.clone()],
                ..Rule::default()
            });
        }
    }
    out
}

fn has_all(owner: &[String], wanted: &[String]) -> bool {
    owner.iter().any(|o| o == "*") || wanted.iter().all(|w| owner.contains(w))
}

/// Upstream's `ruleCovers`: whether `owner` grants everything `sub` (one broken-down rule)
/// does.
fn rule_covers(owner: &Rule, sub: &Rule) -> bool {
    let verbs = has_all(&owner.verbs, &sub.verbs);
    let urls = sub.non_resource_urls.iter().all(|u| {
        owner.non_resource_urls.iter().any(|o| {
            o == "*" || o == u || (o.ends_with('*') && u.starts_with(o.trim_end_matches('*')))
        })
    });
    let groups = has_all(&owner.api_groups, &sub.api_groups);
    let resources = sub.resources.iter().all(|r| {
        owner.resources.iter().any(|o| {
            o == "*"
                || o == r
                || (o.starts_with("*/")
                    && r.split_once('/').map(|(_, s)| s) == o.strip_prefix("*/"))
        })
    });
    let names =
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names);
    verbs && urls && groups && resources && names
}

/// Upstream's compact form of a rule in messages (`PolicyRule.CompactString`):
/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
pub fn compact(rule: &Rule) -> String {
    let list = |v: &[String]| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut parts = Vec::new();
    for (label, v) in [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ] {
        if !v.is_empty() {
            parts.push(format!("{label}:[{}]", list(v)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    fn res<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        sub: Option<&'a str>,
        name: &'a str,
    ) -> Request<'a> {
        Request::Resource {
            verb,
            group,
            resource,
            subresource: sub,
            name,
            namespace: "ns",
        }
    }

    #[test]
    fn rules_match_as_upstreams() {
        let r =
            rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "*/scale"]}));
        assert!(r.allows(&res("get", "", "pods", None, "p")));
        assert!(!r.allows(&res("list", "", "pods", None, "")));
        assert!(!r.allows(&res("get", "apps", "pods", None, "p")));
        assert!(!r.allows(&res("get", "", "pods", Some("log"), "p")));
        assert!(r.allows(&res("get", "", "deployments", Some("scale"), "d")));
        let named = rule(
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["secrets"], "resourceNames": ["s1"]}),
        );
        assert!(named.allows(&res("delete", "", "secrets", None, "s1")));
        assert!(!named.allows(&res("delete", "", "secrets", None, "s2")));
        assert!(!named.allows(&res("list", "", "secrets", None, "")));
        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez*"]}));
        let nr = |path| Request::NonResource { verb: "get", path };
        assert!(urls.allows(&nr("/healthz")));
        assert!(!urls.allows(&nr("/healthz/etcd")));
        assert!(urls.allows(&nr("/livez/etcd")));
        assert!(!urls.allows(&Request::NonResource {
            verb: "post",
            path: "/healthz"
        }));
    }

    #[test]
    fn coverage_breaks_rules_down() {
        let owner = vec![
            rule(json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]})),
            rule(json!({"verbs": ["*"], "apiGroups": ["apps"], "resources": ["*/scale"]})),
        ];
        let asked = vec![rule(
            json!({"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        let missing = uncovered(&owner, &asked);
        assert_eq!(missing.len(), 1);
        assert_eq!(
            compact(&missing[0]),
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#
        );
        let scale = vec![rule(
            json!({"verbs": ["update"], "apiGroups": ["apps"], "resources": ["deployments/scale"]}),
        )];
        assert!(uncovered(&owner, &scale).is_empty());
    }
}
