//! The RBAC objects in force, indexed for the authorizer: roles by name, bindings by the user
//! names and groups of their subjects, so that a decision looks only at the bindings that can
//! apply to the request's user (upstream scans them all; the answers are the same).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::rules::{Request, Rule, Subject, SubjectKind};
use crate::authn::UserInfo;

/// A Role's or ClusterRole's rules, with what aggregation needs of a ClusterRole.
#[derive(Debug, Clone, Default)]
pub struct Role {
    pub name: String,
    pub namespace: String,
    pub rules: Arc<[Rule]>,
    pub labels: Vec<(String, String)>,
    /// `aggregationRule.clusterRoleSelectors`, when the ClusterRole has one.
    pub selectors: Option<Vec<Value>>,
}

impl Role {
    pub fn from_json(obj: &Value) -> Role {
        let meta = &obj["metadata"];
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        Role {
            name: s(&meta["name"]),
            namespace: s(&meta["namespace"]),
            rules: obj["rules"]
                .as_array()
                .map(|a| a.iter().map(Rule::from_json).collect::<Vec<_>>())
                .unwrap_or_default()
                .into(),
            labels: meta["labels"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect::<Vec<_>>())
                .unwrap_or_default(),
            selectors: obj["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .cloned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    Role,
    ClusterRole,
}

impl RoleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Role => "Role",
            RoleKind::ClusterRole => "ClusterRole",
        }
    }
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    /// Empty for a ClusterRoleBinding.
    pub namespace: String,
    pub role_kind: RoleKind,
    pub role_name: String,
    pub subjects: Vec<Subject>,
}

impl Binding {
    pub fn from_json(obj: &Value) -> Option<Binding> {
        let meta = &obj["metadata"];
        let role_kind = match obj["roleRef"]["kind"].as_str()? {
            "Role" => RoleKind::Role,
            "ClusterRole" => RoleKind::ClusterRole,
            _ => return None,
        };
        Some(Binding {
            name: meta["name"].as_str()?.to_string(),
            namespace: meta["namespace"].as_str().unwrap_or("").to_string(),
            role_kind,
            role_name: obj["roleRef"]["name"].as_str()?.to_string(),
            subjects: obj["subjects"]
                .as_array()
                .map(|a| a.iter().filter_map(Subject::from_json).collect())
                .unwrap_or_default(),
        })
    }

    /// As upstream's binding describers: what an "allowed by" reason names.
    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {}",
                self.name,
                self.role_kind.as_str(),
                self.role_name,
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{}", self.name, self.namespace),
                self.role_kind.as_str(),
                self.role_name,
                subject.describe(&self.namespace)
            )
        }
    }
}

/// Bindings of one scope (the cluster, or one namespace), indexed by subject.
#[derive(Debug, Default)]
struct Bindings {
    list: Vec<Arc<Binding>>,
    by_user: HashMap<String, Vec<u32>>,
    by_group: HashMap<String, Vec<u32>>,
}

impl Bindings {
    fn add(&mut self, b: Arc<Binding>) {
        let i = self.list.len() as u32;
        for s in &b.subjects {
            let entry = match s.kind {
                SubjectKind::User => self.by_user.entry(s.name.clone()),
                SubjectKind::Group => self.by_group.entry(s.name.clone()),
                SubjectKind::ServiceAccount => match s.service_account_user(&b.namespace) {
                    Some(u) => self.by_user.entry(u),
                    None => continue,
                },
            };
            let v = entry.or_default();
            if v.last() != Some(&i) {
                v.push(i);
            }
        }
        self.list.push(b);
    }

    /// The bindings whose subjects may name `user`, in the order they were added.
    fn for_user(&self, user: &UserInfo) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        if let Some(v) = self.by_user.get(&user.name) {
            out.extend(v);
        }
        for g in &user.groups {
            if let Some(v) = self.by_group.get(g) {
                out.extend(v);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Where a visited rule comes from, or why rules could not be read.
pub enum Visit<'a> {
    Rule {
        source: &'a dyn Fn() -> String,
        rule: &'a Rule,
    },
    Error(String),
}

/// Everything in force at one moment. Rebuilt (by `super::follow`) when the cache's RBAC
/// objects change; shared read-only by every core.
#[derive(Debug, Default)]
pub struct Policy {
    cluster_roles: HashMap<String, Arc<Role>>,
    roles: HashMap<String, HashMap<String, Arc<Role>>>,
    cluster_bindings: Bindings,
    role_bindings: HashMap<String, Bindings>,
}

impl Policy {
    pub fn build(
        cluster_roles: impl IntoIterator<Item = Arc<Role>>,
        roles: impl IntoIterator<Item = Arc<Role>>,
        cluster_bindings: impl IntoIterator<Item = Arc<Binding>>,
        role_bindings: impl IntoIterator<Item = Arc<Binding>>,
    ) -> Policy {
        let mut p = Policy::default();
        for r in cluster_roles {
            p.cluster_roles.insert(r.name.clone(), r);
        }
        for r in roles {
            p.roles
                .entry(r.namespace.clone())
                .or_default()
                .insert(r.name.clone(), r);
        }
        for b in cluster_bindings {
            p.cluster_bindings.add(b);
        }
        for b in role_bindings {
            p.role_bindings
                .entry(b.namespace.clone())
                .or_default()
                .add(b);
        }
        p
    }

    pub fn cluster_role(&self, name: &str) -> Option<&Arc<Role>> {
        self.cluster_roles.get(name)
    }

    pub fn cluster_roles(&self) -> impl Iterator<Item = &Arc<Role>> {
        self.cluster_roles.values()
    }

    /// A binding's role's rules, or upstream's not-found message.
    pub fn role_rules(
        &self,
        kind: RoleKind,
        namespace: &str,
        name: &str,
    ) -> Result<&Arc<[Rule]>, String> {
        let found = match kind {
            RoleKind::ClusterRole => self.cluster_roles.get(name),
            RoleKind::Role => self.roles.get(namespace).and_then(|m| m.get(name)),
        };
        found.map(|r| &r.rules).ok_or_else(|| {
            let what = match kind {
                RoleKind::ClusterRole => "clusterrole",
                RoleKind::Role => "role",
            };
            format!("{what}.rbac.authorization.k8s.io {name:?} not found")
        })
    }

    /// Upstream's `VisitRulesFor`: the rules of the ClusterRoleBindings, then (with a
    /// namespace) of the RoleBindings there, that apply to `user`; stops when `visit` says
    /// false.
    pub fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        visit: &mut dyn FnMut(Visit<'_>) -> bool,
    ) {
        let mut scopes = vec![&self.cluster_bindings];
        if !namespace.is_empty()
            && let Some(b) = self.role_bindings.get(namespace)
        {
            scopes.push(b);
        }
        for scope in scopes {
            for i in scope.for_user(user) {
                let b = &scope.list[i as usize];
                let Some(subject) = b.subjects.iter().find(|s| s.applies_to(user, &b.namespace))
                else {
                    continue;
                };
                match self.role_rules(b.role_kind, &b.namespace, &b.role_name) {
                    Ok(rules) => {
                        let source = || b.describe(subject);
                        for rule in rules.iter() {
                            if !visit(Visit::Rule {
                                source: &source,
                                rule,
                            }) {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        if !visit(Visit::Error(e)) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Upstream's RBAC decision: allowed with the binding that allowed it, or not (with the
    /// errors met on the way, as upstream's denial reason).
    pub fn authorize(&self, user: &UserInfo, req: &Request<'_>) -> (bool, String) {
        let mut allowed = None;
        let mut errors: Vec<String> = Vec::new();
        self.visit(user, req.namespace(), &mut |v| match v {
            Visit::Rule { source, rule } => {
                if rule.allows(req) {
                    allowed = Some(source());
                    false
                } else {
                    true
                }
            }
            Visit::Error(e) => {
                errors.push(e);
                true
            }
        });
        match allowed {
            Some(source) => (true, format!("RBAC: allowed by {source}")),
            None if errors.is_empty() => (false, String::new()),
            None => (false, format!("RBAC: {}", aggregate(&errors))),
        }
    }

    /// Every rule that applies to `user` in `namespace`, and the errors met (upstream's
    /// `RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit(user, namespace, &mut |v| {
            match v {
                Visit::Rule { rule, .. } => rules.push(rule.clone()),
                Visit::Error(e) => errors.push(e),
            }
            true
        });
        (rules, errors)
    }
}

/// Go's `utilerrors.NewAggregate(...).Error()`: one error as itself, more in brackets.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    fn policy() -> Policy {
        let role = |v: Value| Arc::new(Role::from_json(&v));
        let binding = |v: Value| Arc::new(Binding::from_json(&v).unwrap());
        Policy::build(
            [role(json!({"metadata": {"name": "reader"}, "rules": [
                {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}))],
            [role(
                json!({"metadata": {"name": "cm", "namespace": "a"}, "rules": [
                {"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}]}),
            )],
            [binding(json!({"metadata": {"name": "devs-read"},
                "roleRef": {"kind": "ClusterRole", "name": "reader"},
                "subjects": [{"kind": "Group", "name": "devs"}]}))],
            [
                binding(json!({"metadata": {"name": "sa-cm", "namespace": "a"},
                    "roleRef": {"kind": "Role", "name": "cm"},
                    "subjects": [{"kind": "ServiceAccount", "name": "bot"}]})),
                binding(json!({"metadata": {"name": "dangling", "namespace": "a"},
                    "roleRef": {"kind": "Role", "name": "gone"},
                    "subjects": [{"kind": "User", "name": "carol"}]})),
            ],
        )
    }

    fn pods<'a>(verb: &'a str, ns: &'a str) -> Request<'a> {
        Request::Resource {
            verb,
            group: "",
            resource: "pods",
            subresource: None,
            name: "",
            namespace: ns,
        }
    }

    #[test]
    fn bindings_grant_their_roles_to_their_subjects() {
        let p = policy();
        let alice = user("alice", &["devs"]);
        let (ok, why) = p.authorize(&alice, &pods("list", "b"));
        assert!(ok);
        assert_eq!(
            why,
            r#"RBAC: allowed by ClusterRoleBinding "devs-read" of ClusterRole "reader" to Group "devs""#
        );
        assert!(!p.authorize(&alice, &pods("delete", "b")).0);
        let bot = user("system:serviceaccount:a:bot", &[]);
        let cm = |ns| Request::Resource {
            verb: "create",
            group: "",
            resource: "configmaps",
            subresource: None,
            name: "",
            namespace: ns,
        };
        let (ok, why) = p.authorize(&bot, &cm("a"));
        assert!(ok);
        assert_eq!(
            why,
            r#"RBAC: allowed by RoleBinding "sa-cm/a" of Role "cm" to ServiceAccount "bot/a""#
        );
        assert!(!p.authorize(&bot, &cm("b")).0);
        let carol = user("carol", &[]);
        assert_eq!(
            p.authorize(&carol, &cm("a")),
            (
                false,
                r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#.to_string()
            )
        );
    }
}
