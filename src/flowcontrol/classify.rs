//! Classification: which FlowSchema a request matches (the first by matchingPrecedence, then
//! name, whose priority level exists) and which flow within it (its distinguisher), as
//! upstream's matching rules read subjects, resource rules and non-resource rules.

use super::config::{
    Distinguisher, FlowSchema, NonResourceRule, PolicyRules, ResourceRule, Subject,
};

/// Upstream's wildcards: every verb, group, resource, namespace or URL.
const ALL: &str = "*";
/// The prefix of a service account's user name: `system:serviceaccount:<namespace>:<name>`.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// What classification looks at in a request.
#[derive(Debug, Clone)]
pub struct Digest<'a> {
    pub user: &'a str,
    /// The user's groups, `system:authenticated` or `system:unauthenticated` included.
    pub groups: &'a [String],
    pub target: Target<'a>,
}

#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// `/api/...` and `/apis/<group>/<version>/...` resource paths.
    Resource {
        /// get, list, watch, create, update, patch, delete, deletecollection.
        verb: &'a str,
        api_group: &'a str,
        resource: &'a str,
        subresource: Option<&'a str>,
        /// None for cluster-scoped requests.
        namespace: Option<&'a str>,
    },
    /// Everything else (discovery, health, /version, /metrics): the lower-case HTTP method.
    NonResource { verb: &'a str, path: &'a str },
}

/// The FlowSchemas in matching order.
pub struct Classifier {
    schemas: Vec<FlowSchema>,
}

/// A request's FlowSchema and flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification<'c> {
    pub schema: &'c FlowSchema,
    /// The distinguisher's value: user name, namespace, or empty.
    pub flow: String,
}

impl Classifier {
    /// `schemas` whose priority level satisfies `level_exists`, sorted by matchingPrecedence
    /// then name (upstream's order); dangling ones are left out.
    pub fn new(mut schemas: Vec<FlowSchema>, level_exists: impl Fn(&str) -> bool) -> Classifier {
        schemas.retain(|s| level_exists(&s.priority_level));
        schemas.sort_by(|a, b| {
            (a.matching_precedence, &a.name).cmp(&(b.matching_precedence, &b.name))
        });
        Classifier { schemas }
    }

    pub fn classify(&self, d: &Digest) -> Option<Classification<'_>> {
        let schema = self
            .schemas
            .iter()
            .find(|s| s.rules.iter().any(|r| rules_match(r, d)))?;
        let flow = match (schema.distinguisher, &d.target) {
            (Distinguisher::ByUser, _) => d.user.to_string(),
            (Distinguisher::ByNamespace, Target::Resource { namespace, .. }) => {
                namespace.unwrap_or("").to_string()
            }
            _ => String::new(),
        };
        Some(Classification { schema, flow })
    }
}

fn rules_match(r: &PolicyRules, d: &Digest) -> bool {
    if !r.subjects.iter().any(|s| subject_matches(s, d)) {
        return false;
    }
    match &d.target {
        Target::Resource {
            verb,
            api_group,
            resource,
            subresource,
            namespace,
        } => r.resource_rules.iter().any(|rr| {
            resource_rule_matches(rr, verb, api_group, resource, *subresource, *namespace)
        }),
        Target::NonResource { verb, path } => r
            .non_resource_rules
            .iter()
            .any(|nr| non_resource_rule_matches(nr, verb, path)),
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == ALL || x == value)
}

fn subject_matches(s: &Subject, d: &Digest) -> bool {
    match s {
        Subject::User(name) => name == ALL || name == d.user,
        Subject::Group(name) => name == ALL || d.groups.iter().any(|g| g == name),
        Subject::ServiceAccount { namespace, name } => d
            .user
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(ns, sa)| ns == namespace && (name == ALL || name == sa)),
    }
}

fn resource_rule_matches(
    rr: &ResourceRule,
    verb: &str,
    api_group: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: Option<&str>,
) -> bool {
    if !has(&rr.verbs, verb) || !has(&rr.api_groups, api_group) {
        return false;
    }
    let resource_ok = rr.resources.iter().any(|r| {
        r == ALL
            || match subresource {
                None => r == resource,
                Some(sub) => r.split_once('/') == Some((resource, sub)),
            }
    });
    if !resource_ok {
        return false;
    }
    match namespace {
        None | Some("") => rr.cluster_scope,
        Some(ns) => has(&rr.namespaces, ns),
    }
}

fn non_resource_rule_matches(nr: &NonResourceRule, verb: &str, path: &str) -> bool {
    has(&nr.verbs, verb)
        && nr.non_resource_urls.iter().any(|u| {
            u == ALL
                || u == path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with('/') && path.starts_with(prefix))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowcontrol::bootstrap;
    use crate::flowcontrol::config::{FlowSchema, PriorityLevel};

    fn bootstrap_classifier() -> Classifier {
        let levels: Vec<PriorityLevel> = bootstrap::priority_levels()
            .iter()
            .filter_map(|o| PriorityLevel::from_json(&o.object))
            .collect();
        let schemas: Vec<FlowSchema> = bootstrap::flow_schemas()
            .iter()
            .filter_map(|o| FlowSchema::from_json(&o.object))
            .collect();
        assert_eq!(levels.len(), 8);
        assert_eq!(schemas.len(), 11);
        Classifier::new(schemas, |l| levels.iter().any(|p| p.name == l))
    }

    fn groups(gs: &[&str]) -> Vec<String> {
        gs.iter().map(|g| g.to_string()).collect()
    }

    fn res<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        ns: Option<&'a str>,
    ) -> Target<'a> {
        Target::Resource {
            verb,
            api_group: group,
            resource,
            subresource: None,
            namespace: ns,
        }
    }

    fn classify(c: &Classifier, user: &str, gs: &[&str], target: Target) -> (String, String) {
        let groups = groups(gs);
        let d = Digest {
            user,
            groups: &groups,
            target,
        };
        let got = c.classify(&d).expect("every request matches catch-all");
        (got.schema.name.clone(), got.flow)
    }

    #[test]
    fn bootstrap_schemas_classify_as_upstream() {
        let c = bootstrap_classifier();
        let authed = ["system:authenticated"];
        assert_eq!(
            classify(
                &c,
                "admin",
                &["system:masters", "system:authenticated"],
                res("delete", "", "pods", Some("x"))
            )
            .0,
            "exempt"
        );
        assert_eq!(
            classify(
                &c,
                "system:anonymous",
                &["system:unauthenticated"],
                Target::NonResource {
                    verb: "get",
                    path: "/livez"
                }
            )
            .0,
            "probes"
        );
        // A POST to a health path is not a probe.
        assert_eq!(
            classify(
                &c,
                "bob",
                &authed,
                Target::NonResource {
                    verb: "post",
                    path: "/healthz"
                }
            ),
            ("global-default".into(), "bob".into())
        );
        let node = ["system:nodes", "system:authenticated"];
        assert_eq!(
            classify(
                &c,
                "system:node:n1",
                &node,
                res(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    Some("kube-node-lease")
                )
            )
            .0,
            "system-node-high"
        );
        let mut status = res("patch", "", "nodes", None);
        if let Target::Resource { subresource, .. } = &mut status {
            *subresource = Some("status");
        }
        assert_eq!(
            classify(&c, "system:node:n1", &node, status).0,
            "system-node-high"
        );
        assert_eq!(
            classify(
                &c,
                "system:node:n1",
                &node,
                res("get", "", "pods", Some("default"))
            ),
            ("system-nodes".into(), "system:node:n1".into())
        );
        assert_eq!(
            classify(
                &c,
                "system:kube-controller-manager",
                &authed,
                res(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    Some("kube-system")
                )
            )
            .0,
            "system-leader-election"
        );
        assert_eq!(
            classify(
                &c,
                "system:kube-scheduler",
                &authed,
                res("list", "", "pods", Some("ns1"))
            ),
            ("kube-scheduler".into(), "ns1".into())
        );
        let sa = [
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
        ];
        assert_eq!(
            classify(
                &c,
                "system:serviceaccount:kube-system:deployment-controller",
                &sa,
                res("list", "apps", "deployments", None)
            ),
            ("kube-system-service-accounts".into(), "".into())
        );
        let sa = [
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated",
        ];
        assert_eq!(
            classify(
                &c,
                "system:serviceaccount:team:app",
                &sa,
                res("get", "", "configmaps", Some("team"))
            )
            .0,
            "service-accounts"
        );
        assert_eq!(
            classify(
                &c,
                "alice",
                &authed,
                res("list", "", "configmaps", Some("default"))
            ),
            ("global-default".into(), "alice".into())
        );
    }

    #[test]
    fn rules_read_wildcards_scopes_and_url_prefixes() {
        let rr = ResourceRule {
            verbs: vec!["get".into()],
            api_groups: vec!["apps".into()],
            resources: vec!["deployments/scale".into()],
            cluster_scope: false,
            namespaces: vec!["team".into()],
        };
        assert!(resource_rule_matches(
            &rr,
            "get",
            "apps",
            "deployments",
            Some("scale"),
            Some("team")
        ));
        assert!(!resource_rule_matches(
            &rr,
            "get",
            "apps",
            "deployments",
            None,
            Some("team")
        ));
        assert!(!resource_rule_matches(
            &rr,
            "get",
            "apps",
            "deployments",
            Some("scale"),
            Some("other")
        ));
        assert!(!resource_rule_matches(
            &rr,
            "get",
            "apps",
            "deployments",
            Some("scale"),
            None
        ));
        assert!(!resource_rule_matches(
            &rr,
            "list",
            "apps",
            "deployments",
            Some("scale"),
            Some("team")
        ));
        let nr = NonResourceRule {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["/apis/*".into(), "/version".into()],
        };
        assert!(non_resource_rule_matches(&nr, "get", "/apis/apps/v1"));
        assert!(non_resource_rule_matches(&nr, "get", "/version"));
        assert!(!non_resource_rule_matches(&nr, "get", "/versions"));
        assert!(!non_resource_rule_matches(&nr, "get", "/api"));
        let d = Digest {
            user: "system:serviceaccount:ns:sa",
            groups: &[],
            target: Target::NonResource {
                verb: "get",
                path: "/",
            },
        };
        assert!(subject_matches(
            &Subject::ServiceAccount {
                namespace: "ns".into(),
                name: "*".into()
            },
            &d
        ));
        assert!(!subject_matches(
            &Subject::ServiceAccount {
                namespace: "other".into(),
                name: "*".into()
            },
            &d
        ));
        assert!(subject_matches(
            &Subject::ServiceAccount {
                namespace: "ns".into(),
                name: "sa".into()
            },
            &d
        ));
    }

    #[test]
    fn precedence_then_name_decides_and_dangling_schemas_are_skipped() {
        let fs = |name: &str, precedence: i64, level: &str| FlowSchema {
            name: name.into(),
            uid: String::new(),
            matching_precedence: precedence,
            priority_level: level.into(),
            distinguisher: Distinguisher::None,
            rules: vec![PolicyRules {
                subjects: vec![Subject::Group("*".into())],
                resource_rules: vec![],
                non_resource_rules: vec![NonResourceRule {
                    verbs: vec!["*".into()],
                    non_resource_urls: vec!["*".into()],
                }],
            }],
        };
        let c = Classifier::new(
            vec![
                fs("b", 10, "l"),
                fs("a", 10, "l"),
                fs("first", 5, "missing"),
                fs("z", 20, "l"),
            ],
            |l| l == "l",
        );
        let d = Digest {
            user: "u",
            groups: &[],
            target: Target::NonResource {
                verb: "get",
                path: "/x",
            },
        };
        assert_eq!(c.classify(&d).unwrap().schema.name, "a");
    }
}
