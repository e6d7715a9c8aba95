//! `--audit-policy-file`: upstream's `audit.k8s.io/v1 Policy`. Rules are tried in order; the
//! first that matches the request (users, userGroups, verbs, resources, namespaces,
//! nonResourceURLs) gives its level and stages to omit. No match: level None (not audited).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of stages, as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stages(u8);

impl Stages {
    pub fn contains(self, s: Stage) -> bool {
        self.0 & s.bit() != 0
    }
}

#[derive(Debug, Clone, Default)]
struct GroupResources {
    group: String,
    resources: Vec<String>,
    resource_names: Vec<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    omit_stages: Stages,
    omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: Stages,
    omit_managed_fields: bool,
}

/// What the request looks like to the policy.
pub struct Attributes<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub verb: &'a str,
    /// For resource requests: (group, resource, subresource, namespace, name).
    pub resource: Option<ResourceAttributes<'a>>,
    pub path: &'a str,
}

pub struct ResourceAttributes<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The policy's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Stages,
    pub omit_managed_fields: bool,
}

impl Policy {
    pub fn decide(&self, a: &Attributes<'_>) -> Decision {
        for rule in &self.rules {
            if rule.matches(a) {
                return Decision {
                    level: rule.level,
                    omit_stages: Stages(self.omit_stages.0 | rule.omit_stages.0),
                    omit_managed_fields: rule
                        .omit_managed_fields
                        .unwrap_or(self.omit_managed_fields),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: self.omit_stages,
            omit_managed_fields: self.omit_managed_fields,
        }
    }
}

fn has(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x == s)
}

impl Rule {
    fn matches(&self, a: &Attributes<'_>) -> bool {
        if !self.users.is_empty() && !has(&self.users, a.user) {
            return false;
        }
        if !self.user_groups.is_empty() && !a.groups.iter().any(|g| has(&self.user_groups, g)) {
            return false;
        }
        if !self.verbs.is_empty() && !has(&self.verbs, a.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(a);
        }
        if !self.non_resource_urls.is_empty() {
            return a.resource.is_none()
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(a.path, spec));
        }
        true
    }

    fn matches_resource(&self, a: &Attributes<'_>) -> bool {
        let Some(r) = &a.resource else {
            return false;
        };
        // Cluster-scoped resources have the empty namespace.
        if !self.namespaces.is_empty() && !has(&self.namespaces, r.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if r.subresource.is_empty() {
            r.resource.to_string()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        for gr in &self.resources {
            if gr.group != r.group {
                continue;
            }
            if gr.resources.is_empty() {
                return true;
            }
            for res in &gr.resources {
                if !gr.resource_names.is_empty() && !has(&gr.resource_names, r.name) {
                    continue;
                }
                if *res == combined || res == "*" {
                    return true;
                }
                if !r.subresource.is_empty() && res.strip_prefix("*/") == Some(r.subresource) {
                    return true;
                }
                if res.strip_suffix("/*") == Some(r.resource) {
                    return true;
                }
            }
        }
        false
    }
}

fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || spec
            .strip_suffix('*')
            .is_some_and(|p| path.starts_with(p.trim_end_matches('*')))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn stages(v: &Value, path: &str, errors: &mut Vec<String>) -> Stages {
    let mut set = Stages::default();
    for (i, s) in strings(v).iter().enumerate() {
        match Stage::parse(s) {
            Some(stage) => set.0 |= stage.bit(),
            None => errors.push(format!(
                "{path}[{i}]: Unsupported value: {s:?}: supported values: \"Panic\", \
                 \"RequestReceived\", \"ResponseComplete\", \"ResponseStarted\""
            )),
        }
    }
    set
}

/// Reads and checks a policy file's bytes (YAML or JSON).
pub fn parse(data: &[u8]) -> Result<Policy, String> {
    let doc = kapi_codec::yaml::from_yaml(data).map_err(|e| e.to_string())?;
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    if kind != "Policy" || api_version != "audit.k8s.io/v1" {
        return Err(format!(
            "failed decoding: no kind {kind:?} is registered for version {api_version:?}; \
             an audit.k8s.io/v1 Policy is expected"
        ));
    }
    let mut errors = Vec::new();
    let omit_stages = stages(&doc["omitStages"], "omitStages", &mut errors);
    let mut rules = Vec::new();
    for (i, r) in doc["rules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let level = match r["level"].as_str() {
            None | Some("") => {
                errors.push(format!("rules[{i}].level: Required value"));
                Level::None
            }
            Some(s) => Level::parse(s).unwrap_or_else(|| {
                errors.push(format!(
                    "rules[{i}].level: Unsupported value: {s:?}: supported values: \"Metadata\", \
                     \"None\", \"Request\", \"RequestResponse\""
                ));
                Level::None
            }),
        };
        let resources: Vec<GroupResources> = r["resources"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|g| GroupResources {
                group: g["group"].as_str().unwrap_or_default().to_string(),
                resources: strings(&g["resources"]),
                resource_names: strings(&g["resourceNames"]),
            })
            .collect();
        let non_resource_urls = strings(&r["nonResourceURLs"]);
        let namespaces = strings(&r["namespaces"]);
        if !non_resource_urls.is_empty() && (!resources.is_empty() || !namespaces.is_empty()) {
            errors.push(format!(
                "rules[{i}].nonResourceURLs: Invalid value: {}: rules cannot apply to both \
                 regular resources and non-resource URLs",
                serde_json::to_string(&non_resource_urls).unwrap_or_default()
            ));
        }
        rules.push(Rule {
            level,
            users: strings(&r["users"]),
            user_groups: strings(&r["userGroups"]),
            verbs: strings(&r["verbs"]),
            resources,
            namespaces,
            non_resource_urls,
            omit_stages: stages(
                &r["omitStages"],
                &format!("rules[{i}].omitStages"),
                &mut errors,
            ),
            omit_managed_fields: r["omitManagedFields"].as_bool(),
        });
    }
    if !errors.is_empty() {
        return Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            format!("[{}]", errors.join(", "))
        });
    }
    Ok(Policy {
        rules,
        omit_stages,
        omit_managed_fields: doc["omitManagedFields"].as_bool().unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-proxy"]
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["pods/log", "configmaps"]
    resourceNames: ["watched"]
- level: Request
  verbs: [create, delete]
  namespaces: [prod]
- level: Metadata
  userGroups: ["system:masters"]
  omitStages: [ResponseStarted]
"#;

    fn resource<'a>(
        verb: &'a str,
        resource: &'a str,
        sub: &'a str,
        ns: &'a str,
        name: &'a str,
        groups: &'a [String],
    ) -> Attributes<'a> {
        Attributes {
            user: "alice",
            groups,
            verb,
            resource: Some(ResourceAttributes {
                group: "",
                resource,
                subresource: sub,
                namespace: ns,
                name,
            }),
            path: "/api/v1/x",
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = parse(POLICY.as_bytes()).unwrap();
        let masters = vec!["system:masters".to_string()];
        let none: Vec<String> = vec![];
        let level = |a: &Attributes<'_>| p.decide(a).level;
        assert_eq!(
            level(&resource("get", "pods", "log", "a", "watched", &none)),
            Level::RequestResponse
        );
        assert_eq!(
            level(&resource("get", "pods", "", "a", "watched", &none)),
            Level::None
        );
        assert_eq!(
            level(&resource("get", "configmaps", "", "a", "other", &none)),
            Level::None
        );
        assert_eq!(
            level(&resource("create", "pods", "", "prod", "x", &none)),
            Level::Request
        );
        assert_eq!(
            level(&resource("get", "pods", "", "prod", "x", &masters)),
            Level::Metadata
        );
        let d = p.decide(&resource("get", "pods", "", "prod", "x", &masters));
        assert!(d.omit_stages.contains(Stage::RequestReceived));
        assert!(d.omit_stages.contains(Stage::ResponseStarted));
        assert!(!d.omit_stages.contains(Stage::ResponseComplete));
        let health = Attributes {
            user: "admin",
            groups: &masters,
            verb: "get",
            resource: None,
            path: "/healthz/etcd",
        };
        assert_eq!(level(&health), Level::None);
        let metrics = Attributes {
            path: "/metrics",
            ..health
        };
        assert_eq!(level(&metrics), Level::Metadata);
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(
            parse(b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n")
                .unwrap_err()
                .contains("Unsupported value")
        );
        assert!(
            parse(b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- users: [a]\n")
                .unwrap_err()
                .contains("level: Required")
        );
        assert!(parse(b"apiVersion: v1\nkind: ConfigMap\n").is_err());
    }
}
