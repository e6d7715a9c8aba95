//! Authorization against the real kapi binary: the bootstrap policy after start, the issue's
//! reproduction (a certificate with no bindings), an authorization matrix of users, groups and
//! a service account × verbs × resources × namespaces whose expectations come from the RBAC
//! rules the test creates, `kubectl auth can-i` (and `--list`), escalation prevention, the
//! review APIs' validation, the Node authorizer, anonymous requests, `--authorization-mode`.
//! Test users are client certificates signed by the data dir's CA (openssl, with clientAuth).

mod support;

use std::process::{Command, Output};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use support::client::Client as AdminClient;
use support::kapi::{Kapi, kubectl_at};
use support::users::{User, eventually, tls_client, user};

impl User {
    fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_at(&self.kubeconfig, args, None)
    }

    /// A blocking HTTPS client presenting this user's certificate.
    fn http(&self) -> reqwest::blocking::Client {
        tls_client(&self.ca, Some((&self.cert, &self.key)))
    }

    /// (status, body) of a request as this user.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        send(&self.http(), self.port, method, path, body)
    }

    async fn kube(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        kube::Client::try_from(config).expect("client")
    }
}

fn send(
    http: &reqwest::blocking::Client,
    port: u16,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http
        .request(m, format!("https://127.0.0.1:{port}{path}"))
        .header("Accept", "application/json");
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&b).unwrap());
    }
    let resp = req.send().expect("a response");
    let code = resp.status().as_u16();
    let bytes = resp.bytes().expect("a body");
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn apply(k: &Kapi, yaml: &str) {
    // A `List` makes kubectl validate against /openapi/v2 in its protobuf form.
    let out = k.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(k: &Kapi, args: &[&str]) -> Vec<String> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "name"]);
    k.ok(&a).lines().map(str::to_string).collect()
}

#[test]
fn the_bootstrap_policy_is_created_and_reconciled() {
    let mut k = Kapi::start(&[], &[]);
    let label = "-l=kubernetes.io/bootstrapping=rbac-defaults";
    // Upstream's counts (the captured OpenShift server has one more of each).
    assert_eq!(names(&k, &["clusterroles", label]).len(), 70);
    assert_eq!(names(&k, &["clusterrolebindings", label]).len(), 51);
    assert_eq!(names(&k, &["roles", "-A", label]).len(), 7);
    assert_eq!(names(&k, &["rolebindings", "-A", label]).len(), 7);
    for name in [
        "cluster-admin",
        "system:discovery",
        "system:controller:generic-garbage-collector",
        "system:node",
    ] {
        let crb: Value =
            serde_json::from_str(&k.ok(&["get", "clusterrolebinding", name, "-o", "json"]))
                .unwrap();
        assert_eq!(
            crb["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
            "true"
        );
        assert_eq!(crb["roleRef"]["name"], name);
    }
    // The aggregated roles are filled from the system:aggregate-to-* roles.
    let rules_of = |k: &Kapi, name: &str| -> Vec<Value> {
        let r: Value =
            serde_json::from_str(&k.ok(&["get", "clusterrole", name, "-o", "json"])).unwrap();
        r["rules"].as_array().cloned().unwrap_or_default()
    };
    eventually("admin, edit and view aggregated", || {
        let view = rules_of(&k, "view");
        let admin = rules_of(&k, "admin");
        view.iter()
            .any(|r| r["resources"].as_array().unwrap().contains(&json!("pods")))
            && admin.iter().any(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("localsubjectaccessreviews"))
            })
            && admin.len() > view.len()
    });
    // A user's edits: a rule added stays, a rule removed comes back at the next start;
    // autoupdate=false protects an object.
    let mut basic: Value =
        serde_json::from_str(&k.ok(&["get", "clusterrole", "system:basic-user", "-o", "json"]))
            .unwrap();
    basic["rules"] = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]);
    k.ok_stdin(&["replace", "-f", "-"], &basic.to_string());
    let mut discovery: Value =
        serde_json::from_str(&k.ok(&["get", "clusterrole", "system:discovery", "-o", "json"]))
            .unwrap();
    discovery["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] =
        json!("false");
    discovery["rules"] = json!([{"nonResourceURLs": ["/api"], "verbs": ["get"]}]);
    k.ok_stdin(&["replace", "-f", "-"], &discovery.to_string());
    k.ok(&["delete", "clusterrolebinding", "system:monitoring"]);
    k.kill_and_restart();
    let basic = rules_of(&k, "system:basic-user");
    assert!(
        basic
            .iter()
            .any(|r| r["resources"] == json!(["configmaps"])),
        "{basic:?}"
    );
    assert!(
        basic
            .iter()
            .any(|r| r["resources"] == json!(["selfsubjectaccessreviews"])),
        "{basic:?}"
    );
    assert_eq!(rules_of(&k, "system:discovery").len(), 1);
    k.ok(&["get", "clusterrolebinding", "system:monitoring"]);
}

trait OkStdin {
    fn ok_stdin(&self, args: &[&str], stdin: &str) -> String;
}

impl OkStdin for Kapi {
    fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The issue's reproduction: a certificate with no bindings lists no Secrets and cannot make
/// itself cluster-admin; anonymous requests reach only the public health and version paths.
#[test]
fn a_user_without_bindings_and_anonymous_users_are_refused() {
    let k = Kapi::start(&[], &[]);
    let alice = user(&k, "alice", &["devs"]);
    let out = alice.kubectl(&["get", "secrets", "-A"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            r#"secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" at the cluster scope"#
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = alice.kubectl(&[
        "create",
        "clusterrolebinding",
        "mine",
        "--clusterrole=cluster-admin",
        "--user=alice",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            r#"User "alice" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#
        )
    );
    assert!(
        k.kubectl(&["get", "clusterrolebinding", "mine"])
            .status
            .code()
            != Some(0)
    );
    // What every authenticated user may do: discovery and its own reviews.
    let (code, _) = alice.call("GET", "/api", None);
    assert_eq!(code, 200);
    let out = alice.kubectl(&["auth", "can-i", "list", "secrets"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    assert_eq!(out.status.code(), Some(1));
    let anon = tls_client(&k.data_dir.join("ca.crt"), None);
    for path in ["/livez", "/readyz", "/version", "/healthz"] {
        assert_eq!(send(&anon, k.port, "GET", path, None).0, 200, "{path}");
    }
    for path in ["/metrics", "/api", "/api/v1/namespaces"] {
        let (code, body) = send(&anon, k.port, "GET", path, None);
        assert_eq!(code, 403, "{path}: {body}");
    }
    let (_, body) = send(&anon, k.port, "GET", "/metrics", None);
    assert_eq!(
        body["message"],
        r#"forbidden: User "system:anonymous" cannot get path "/metrics""#
    );
}

/// One grant of the test's RBAC objects, as the expectation model reads it.
struct Grant {
    applies: fn(&str, &[&str]) -> bool,
    /// None: every namespace (a ClusterRoleBinding).
    namespace: Option<&'static str>,
    verbs: &'static [&'static str],
    group: &'static str,
    resource: &'static str,
    names: &'static [&'static str],
}

const POLICY: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: a}}
- {apiVersion: v1, kind: Namespace, metadata: {name: b}}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: pod-reader}
  rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: readers-read-pods}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: readers}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: cm-writer, namespace: a}
  rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list, create, delete]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: alice-cm, namespace: a}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-writer}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: deploy-admin}
  rules: [{apiGroups: [apps], resources: ["*"], verbs: ["*"]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: bot-deploys, namespace: b}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: deploy-admin}
  subjects: [{kind: ServiceAccount, name: bot}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: one-secret}
  rules: [{apiGroups: [""], resources: [secrets], resourceNames: [s1], verbs: [get, delete]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: devs-secret, namespace: a}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: one-secret}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: devs}]
"#;

fn grants() -> Vec<Grant> {
    vec![
        Grant {
            applies: |_, groups| groups.contains(&"readers"),
            namespace: None,
            verbs: &["get", "list"],
            group: "",
            resource: "pods",
            names: &[],
        },
        Grant {
            applies: |user, _| user == "alice",
            namespace: Some("a"),
            verbs: &["get", "list", "create", "delete"],
            group: "",
            resource: "configmaps",
            names: &[],
        },
        Grant {
            applies: |user, _| user == "system:serviceaccount:b:bot",
            namespace: Some("b"),
            verbs: &["*"],
            group: "apps",
            resource: "*",
            names: &[],
        },
        Grant {
            applies: |_, groups| groups.contains(&"devs"),
            namespace: Some("a"),
            verbs: &["get", "delete"],
            group: "",
            resource: "secrets",
            names: &["s1"],
        },
    ]
}

fn expected(
    user: &str,
    groups: &[&str],
    verb: &str,
    group: &str,
    resource: &str,
    ns: &str,
    name: &str,
) -> bool {
    grants().iter().any(|g| {
        (g.applies)(user, groups)
            && g.namespace.is_none_or(|n| n == ns)
            && (g.verbs.contains(&"*") || g.verbs.contains(&verb))
            && g.group == group
            && (g.resource == "*" || g.resource == resource)
            && (g.names.is_empty() || g.names.contains(&name))
    })
}

#[test]
fn the_authorization_matrix_follows_the_rbac_rules() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let k = Kapi::start(&[], &[]);
    apply(&k, POLICY);
    let subjects: Vec<(&str, Vec<&str>)> = vec![
        ("alice", vec!["readers"]),
        ("bob", vec!["devs"]),
        ("carol", vec![]),
        (
            "system:serviceaccount:b:bot",
            vec!["system:serviceaccounts", "system:serviceaccounts:b"],
        ),
    ];
    let users: Vec<User> = subjects.iter().map(|(n, g)| user(&k, n, g)).collect();
    // The last object of the policy is in force.
    eventually("the policy in force", || {
        users[1]
            .call("GET", "/api/v1/namespaces/a/secrets/s1", None)
            .0
            != 403
    });
    let resources = [
        ("", "pods"),
        ("", "configmaps"),
        ("", "secrets"),
        ("apps", "deployments"),
    ];
    let mut cells = 0;
    let mut allowed = 0;
    for (u, (name, groups)) in users.iter().zip(&subjects) {
        let http = u.http();
        let kube = rt.block_on(u.kube());
        let reviews: Api<SelfSubjectAccessReview> = Api::all(kube.clone());
        for ns in ["a", "b"] {
            for (group, resource) in resources {
                let base = if group.is_empty() {
                    format!("/api/v1/namespaces/{ns}/{resource}")
                } else {
                    format!("/apis/{group}/v1/namespaces/{ns}/{resource}")
                };
                for verb in ["get", "list", "create", "delete"] {
                    let obj = (verb == "get" || verb == "delete").then_some("s1");
                    let want = expected(name, groups, verb, group, resource, ns, obj.unwrap_or(""));
                    let (method, path, body) = match verb {
                        "get" => ("GET", format!("{base}/s1"), None),
                        "list" => ("GET", base.clone(), None),
                        "create" => (
                            "POST",
                            format!("{base}?dryRun=All"),
                            Some(json!({"metadata": {"name": "x"}})),
                        ),
                        _ => ("DELETE", format!("{base}/s1?dryRun=All"), None),
                    };
                    let (code, body) = send(&http, k.port, method, &path, body);
                    assert_eq!(
                        code != 403,
                        want,
                        "{name} {verb} {resource} in {ns}: {code} {body}"
                    );
                    if code == 403 {
                        let what = if group.is_empty() {
                            resource.to_string()
                        } else {
                            format!("{resource}.{group}")
                        };
                        let msg = body["message"].as_str().unwrap_or("");
                        assert!(
                            msg.contains(&format!(
                                "is forbidden: User \"{name}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""
                            )) && msg.starts_with(&what),
                            "{msg}"
                        );
                    }
                    let review = SelfSubjectAccessReview {
                        spec: SelfSubjectAccessReviewSpec {
                            resource_attributes: Some(ResourceAttributes {
                                namespace: Some(ns.into()),
                                verb: Some(verb.into()),
                                group: Some(group.into()),
                                resource: Some(resource.into()),
                                name: obj.map(str::to_string),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    let answer = rt
                        .block_on(reviews.create(&PostParams::default(), &review))
                        .expect("a SelfSubjectAccessReview");
                    let status = answer.status.expect("a status");
                    assert_eq!(
                        status.allowed, want,
                        "review: {name} {verb} {resource} in {ns}"
                    );
                    cells += 1;
                    allowed += usize::from(want);
                }
            }
        }
        // The typed client sees the same: alice lists configmaps in a, not in b.
        if *name == "alice" {
            let a: Api<ConfigMap> = Api::namespaced(kube.clone(), "a");
            rt.block_on(a.list(&ListParams::default()))
                .expect("alice lists a's configmaps");
            let b: Api<ConfigMap> = Api::namespaced(kube.clone(), "b");
            match rt.block_on(b.list(&ListParams::default())) {
                Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
                other => panic!("alice listed b's configmaps: {other:?}"),
            }
        }
    }
    assert_eq!(cells, 4 * 2 * 4 * 4);
    assert!(allowed > 10 && allowed < cells / 2, "{allowed} of {cells}");
    // Cluster-wide: the ClusterRoleBinding covers every namespace; a RoleBinding does not.
    assert_eq!(users[0].call("GET", "/api/v1/pods", None).0, 200);
    assert_eq!(
        users[3].call("GET", "/apis/apps/v1/deployments", None).0,
        403
    );

    // kubectl auth can-i and can-i --list.
    let can = |u: &User, args: &[&str]| {
        let mut a = vec!["auth", "can-i"];
        a.extend_from_slice(args);
        let out = u.kubectl(&a);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(can(&users[0], &["create", "configmaps", "-n", "a"]), "yes");
    assert_eq!(can(&users[0], &["create", "configmaps", "-n", "b"]), "no");
    assert_eq!(can(&users[1], &["get", "secrets/s1", "-n", "a"]), "yes");
    assert_eq!(can(&users[1], &["get", "secrets/s2", "-n", "a"]), "no");
    assert_eq!(
        can(&users[3], &["delete", "deployments.apps", "-n", "b"]),
        "yes"
    );
    let list = can(&users[0], &["--list", "-n", "a"]);
    let row = |resource: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        row("configmaps").contains("[get list create delete]"),
        "{list}"
    );
    assert!(row("pods").contains("[get list]"), "{list}");
    assert!(row("secrets").is_empty(), "{list}");
    let list_b = can(&users[0], &["--list", "-n", "b"]);
    assert!(!list_b.contains("configmaps"), "{list_b}");
}

#[test]
fn escalation_needs_the_permissions_or_escalate_or_bind() {
    let k = Kapi::start(&[], &[]);
    apply(
        &k,
        r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: team}}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: rbac-writer, namespace: team}
  rules:
  - {apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [create, update, get]}
  - {apiGroups: [""], resources: [configmaps], verbs: [get, list]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: dana-rbac, namespace: team}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rbac-writer}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}]
"#,
    );
    let dana = user(&k, "dana", &["ops"]);
    eventually("dana's role in force", || {
        dana.call("GET", "/api/v1/namespaces/team/configmaps", None)
            .0
            == 200
    });
    let role = |name: &str, resource: &str, verbs: &[&str]| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": "team"},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": verbs}],
        })
    };
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles";
    // What dana holds she may grant; more she may not.
    let (code, body) = dana.call("POST", roles, Some(role("cm-read", "configmaps", &["get"])));
    assert_eq!(code, 201, "{body}");
    let (code, body) = dana.call(
        "POST",
        roles,
        Some(role("secret-read", "secrets", &["get", "list"])),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "roles.rbac.authorization.k8s.io \"secret-read\" is forbidden: user \"dana\" (groups=[\"ops\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}"
    );
    assert_eq!(body["reason"], "Forbidden");
    // Binding a role she does not hold the permissions of.
    let binding = |name: &str, kind: &str, role: &str| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "erin"}],
        })
    };
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings";
    // The new Role is in the authorizer's index within its poll (upstream's informers lag
    // alike: until then the binding is a 400, its role not found).
    eventually("a binding of the new role", || {
        dana.call(
            "POST",
            bindings,
            Some(binding("erin-cm", "Role", "cm-read")),
        )
        .0 == 201
    });
    let (code, body) = dana.call(
        "POST",
        bindings,
        Some(binding("erin-edit", "ClusterRole", "edit")),
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{body}"
    );
    let (code, body) = dana.call(
        "POST",
        bindings,
        Some(binding("erin-x", "ClusterRole", "no-such-role")),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "clusterrole.rbac.authorization.k8s.io \"no-such-role\" not found"
    );
    // `escalate` on roles and `bind` on the ClusterRole lift the checks.
    apply(
        &k,
        r#"
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: escalate-bind-edit}
  rules:
  - {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [escalate]}
  - {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [edit]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: dana-escalate, namespace: team}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: escalate-bind-edit}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}]
"#,
    );
    eventually("escalate in force", || {
        dana.call(
            "POST",
            roles,
            Some(role("secret-read", "secrets", &["get", "list"])),
        )
        .0 == 201
    });
    let (code, body) = dana.call(
        "POST",
        bindings,
        Some(binding("erin-edit", "ClusterRole", "edit")),
    );
    assert_eq!(code, 201, "{body}");
    let (code, _) = dana.call(
        "POST",
        bindings,
        Some(binding("erin-admin", "ClusterRole", "admin")),
    );
    assert_eq!(code, 403);
    // system:masters is never checked.
    let admin = AdminClient::new(&k);
    let (code, _) = admin.json(
        "POST",
        bindings,
        "application/json",
        &binding("erin-admin", "ClusterRole", "admin"),
    );
    assert_eq!(code, 201);
}

#[test]
fn the_review_apis_answer_and_validate_as_upstream() {
    let k = Kapi::start(&[], &[]);
    let admin = AdminClient::new(&k);
    let sar = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let post = |path: &str, body: Value| admin.json("POST", path, "application/json", &body);
    let (code, body) = post(
        sar,
        json!({"spec": {"user": "system:kube-scheduler", "resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "binding", "namespace": "default"}}}),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "SubjectAccessReview");
    assert_eq!(body["status"]["allowed"], true);
    assert_eq!(
        body["status"]["reason"],
        "RBAC: allowed by ClusterRoleBinding \"system:kube-scheduler\" of ClusterRole \"system:kube-scheduler\" to User \"system:kube-scheduler\""
    );
    let (_, body) = post(
        sar,
        json!({"spec": {"user": "nobody", "nonResourceAttributes": {"verb": "get", "path": "/metrics"}}}),
    );
    assert_eq!(body["status"], json!({"allowed": false}));
    let (code, body) = post(
        sar,
        json!({"spec": {"resourceAttributes": {"verb": "get"}}}),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified"
    );
    let (code, body) = post(sar, json!({"spec": {"user": "u"}}));
    assert_eq!(code, 422);
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.resourceAttributes"
    );
    let lsar = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
    let (code, body) = post(
        lsar,
        json!({"spec": {"user": "u", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "other"}}}),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "spec.resourceAttributes.namespace must match namespace: default"
    );
    let (code, body) = post(
        lsar,
        json!({"spec": {"groups": ["system:masters"], "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}}),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"]["allowed"], true);
    assert_eq!(body["metadata"]["namespace"], "default");
    let ssrr = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
    let (code, body) = post(ssrr, json!({"spec": {}}));
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["message"], "no namespace on request");
    let (code, body) = post(ssrr, json!({"spec": {"namespace": "default"}}));
    assert_eq!(code, 201);
    assert_eq!(body["status"]["incomplete"], false);
    assert!(
        body["status"]["resourceRules"]
            .as_array()
            .unwrap()
            .contains(&json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}))
    );
}

#[test]
fn a_node_reads_only_what_its_pods_use_and_changes_only_its_own_objects() {
    let k = Kapi::start(&[], &[]);
    apply(
        &k,
        r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Secret, metadata: {name: used, namespace: default}, stringData: {a: b}}
- {apiVersion: v1, kind: Secret, metadata: {name: unused, namespace: default}, stringData: {a: b}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg, namespace: default}, data: {a: b}}
- apiVersion: v1
  kind: Pod
  metadata: {name: p1, namespace: default}
  spec:
    nodeName: n1
    containers:
    - name: c
      image: busybox
      env: [{name: A, valueFrom: {secretKeyRef: {name: used, key: a}}}]
    volumes: [{name: v, configMap: {name: cfg}}]
"#,
    );
    let n1 = user(&k, "system:node:n1", &["system:nodes"]);
    let n2 = user(&k, "system:node:n2", &["system:nodes"]);
    eventually("the pod in the cache", || {
        n1.call("GET", "/api/v1/namespaces/default/secrets/used", None)
            .0
            == 200
    });
    assert_eq!(
        n1.call("GET", "/api/v1/namespaces/default/configmaps/cfg", None)
            .0,
        200
    );
    let (code, body) = n1.call("GET", "/api/v1/namespaces/default/secrets/unused", None);
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "secrets \"unused\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"
    );
    let (code, body) = n1.call("GET", "/api/v1/namespaces/default/secrets", None);
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with(": No Object name found"),
        "{body}"
    );
    // A kubelet's single-object watch (fieldSelector metadata.name) is allowed, as upstream
    // makes the selected name the request's.
    let (code, body) = n1.call(
        "GET",
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dused&limit=1",
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"][0]["metadata"]["name"], "used");
    let (code, body) = n1.call(
        "GET",
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dunused",
        None,
    );
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "secrets \"unused\" is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"
    );
    assert_eq!(
        n2.call("GET", "/api/v1/namespaces/default/secrets/used", None)
            .0,
        403
    );
    // Pods and nodes as upstream's AuthorizeNodeWithSelectors: a node gets the pods bound to
    // it and lists them by its own spec.nodeName; it reads only its own Node (which need not
    // exist yet).
    assert_eq!(
        n1.call("GET", "/api/v1/namespaces/default/pods/p1", None).0,
        200
    );
    let (code, body) = n2.call("GET", "/api/v1/namespaces/default/pods/p1", None);
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with(": no relationship found between node 'n2' and this object"),
        "{body}"
    );
    let (code, body) = n2.call("GET", "/api/v1/namespaces/default/pods", None);
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with(": can only list/watch pods with spec.nodeName field selector"),
        "{body}"
    );
    let (code, body) = n1.call("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"][0]["metadata"]["name"], "p1");
    assert_eq!(
        n2.call("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", None)
            .0,
        403
    );
    assert_eq!(n2.call("GET", "/api/v1/nodes/n2", None).0, 404);
    assert_eq!(
        n2.call(
            "GET",
            "/api/v1/nodes?fieldSelector=metadata.name%3Dn2",
            None
        )
        .0,
        200
    );
    let (code, body) = n2.call("GET", "/api/v1/nodes", None);
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with(": node 'n2' cannot read all nodes, only its own Node object"),
        "{body}"
    );
    assert_eq!(n2.call("GET", "/api/v1/nodes/n1", None).0, 403);
}

#[test]
fn authorization_mode_orders_the_chain_and_refuses_bad_modes() {
    let k = Kapi::start(&["--authorization-mode=RBAC,AlwaysAllow"], &[]);
    let alice = user(&k, "alice", &[]);
    assert_eq!(alice.call("GET", "/api/v1/secrets", None).0, 200);
    drop(k);
    let k = Kapi::start(&["--authorization-mode=AlwaysDeny"], &[]);
    let alice = user(&k, "alice", &[]);
    let (code, body) = alice.call("GET", "/version", None);
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "forbidden: User \"alice\" cannot get path \"/version\": Everything is forbidden."
    );
    // The admin (system:masters) is allowed whatever the modes.
    assert_eq!(
        AdminClient::new(&k)
            .call("GET", "/api/v1/secrets", "", None)
            .0,
        200
    );
    drop(k);
    for (flag, says) in [
        (
            "--authorization-mode=Node,Webhook",
            "authorization-mode Webhook's authorization config file not passed",
        ),
        (
            "--authorization-mode=RBAC,Magic",
            "\"Magic\" is not a valid mode",
        ),
        (
            "--authorization-config=/nonexistent.yaml",
            "open /nonexistent.yaml: no such file or directory",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_kapi"))
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "--secure-port",
                &support::kapi::free_port().to_string(),
                flag,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flag}: {err}");
    }
}
