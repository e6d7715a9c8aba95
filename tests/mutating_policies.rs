//! MutatingAdmissionPolicies and CEL's `authorizer` against the real binary, driven with
//! kubectl and JSON calls: ApplyConfiguration and JSONPatch mutations, params from a
//! ConfigMap, matchConditions, failurePolicy Fail and Ignore on an expression that errs,
//! reinvocation (IfNeeded against Never), and a ValidatingAdmissionPolicy that asks the
//! authorizer about the requesting user (impersonated with `--as`).

mod support;

use base64::Engine;
use serde_json::{Value, json};
use support::client::Client;
use support::hook::Hook;
use support::kapi::Kapi;
use support::users::{eventually, until_allowed};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn apply(k: &Kapi, yaml: &str) {
    let out = k.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    caught_up(k);
}

/// Waits until the watch cache (which admission reads policies from) holds every write so
/// far: a consistent list is answered only once the cache reached the store's revision.
fn caught_up(k: &Kapi) {
    k.ok(&["get", "namespaces", "-o", "name"]);
}

fn get(k: &Kapi, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k.ok(&all)).expect("JSON")
}

/// Labels ConfigMaps with the team its params name (ApplyConfiguration), unless their name
/// starts with `skip-` (matchConditions).
const TEAM_LABEL: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: team-label}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
  matchConditions:
  - name: not-skipped
    expression: "!object.metadata.name.startsWith('skip-')"
  variables:
  - name: team
    expression: "params.data.team"
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{labels: {"team": variables.team}}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: team-label-binding}
spec:
  policyName: team-label
  paramRef: {name: team-params, namespace: default, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector:
      matchLabels: {team-label: "on"}
"#;

/// Adds a sidecar container and an env variable to Deployments (JSONPatch), then notes the
/// sidecar's defaulted pull policy (ApplyConfiguration).
const SIDECAR: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: sidecar}
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  matchConditions:
  - name: no-sidecar-yet
    expression: "!object.spec.template.spec.containers.exists(c, c.name == 'sidecar')"
  reinvocationPolicy: Never
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [
          JSONPatch{op: "add", path: "/spec/template/spec/containers/-",
            value: Object.spec.template.spec.containers{name: "sidecar", image: "busybox:1"}},
          JSONPatch{op: "add", path: "/spec/template/spec/containers/0/env",
            value: [Object.spec.template.spec.containers.env{name: "INJECTED", value: "yes"}]},
          JSONPatch{op: "add", path: "/metadata/annotations", value: {"injected": "true"}},
          JSONPatch{op: "add", path: "/metadata/annotations/" + jsonpatch.escapeKey("example.com/by"),
            value: "sidecar"}
        ]
  # The next mutation sees the sidecar with its defaults.
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{annotations: {
          "sidecar-pull-policy": object.spec.template.spec.containers[1].imagePullPolicy}}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: sidecar-binding}
spec:
  policyName: sidecar
"#;

/// A mutation whose expression errs (no such key) on Secrets.
const BROKEN: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: broken}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [secrets]
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: "Object{metadata: Object.metadata{labels: {'x': object.data.missing}}}"
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: broken-binding}
spec:
  policyName: broken
"#;

/// Two policies copy a label that a third, later one sets: the IfNeeded one runs again after
/// that change, the Never one does not.
const REINVOCATION: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: a-copy-if-needed}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
    namespaceSelector: {matchLabels: {reinvoke: "on"}}
  reinvocationPolicy: IfNeeded
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{annotations: {
          "copied-if-needed": object.metadata.?labels.?source.orValue("none")}}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: a-copy-never}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
    namespaceSelector: {matchLabels: {reinvoke: "on"}}
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{annotations: {
          "copied-never": object.metadata.?labels.?source.orValue("none")}}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: b-source}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
    namespaceSelector: {matchLabels: {reinvoke: "on"}}
  reinvocationPolicy: Never
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "add", path: "/metadata/labels", value: {"source": "b"}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: a-copy-if-needed}
spec: {policyName: a-copy-if-needed}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: a-copy-never}
spec: {policyName: a-copy-never}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: b-source}
spec: {policyName: b-source}
"#;

#[test]
fn mutating_policies_change_the_writes_they_select() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);

    // ApplyConfiguration with params, and matchConditions that skip.
    k.ok(&[
        "create",
        "configmap",
        "team-params",
        "--from-literal=team=blue",
    ]);
    apply(&k, TEAM_LABEL);
    k.ok(&["create", "namespace", "labelled"]);
    k.ok(&["label", "namespace", "labelled", "team-label=on"]);
    k.ok(&["create", "configmap", "settings", "-n", "labelled"]);
    let cm = get(&k, &["get", "configmap", "settings", "-n", "labelled"]);
    assert_eq!(cm["metadata"]["labels"], json!({"team": "blue"}), "{cm}");
    k.ok(&["create", "configmap", "skip-me", "-n", "labelled"]);
    let cm = get(&k, &["get", "configmap", "skip-me", "-n", "labelled"]);
    assert!(cm["metadata"]["labels"].is_null(), "{cm}");
    // Outside the binding's namespaces nothing changes.
    k.ok(&["create", "configmap", "plain"]);
    let cm = get(&k, &["get", "configmap", "plain"]);
    assert!(cm["metadata"]["labels"].is_null(), "{cm}");
    // Missing params with `Deny`: the write is refused.
    k.ok(&["delete", "configmap", "team-params"]);
    let out = k.kubectl(&["create", "configmap", "orphan", "-n", "labelled"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "policy 'team-label' with binding 'team-label-binding' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
        ),
        "{}",
        stderr(&out)
    );

    // JSONPatch: a container, an env variable and an escaped annotation key.
    apply(&k, SIDECAR);
    k.ok(&["create", "deployment", "web", "--image=nginx"]);
    let d = get(&k, &["get", "deployment", "web"]);
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(2), "{d}");
    assert_eq!(containers[1]["name"], "sidecar");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "INJECTED", "value": "yes"}])
    );
    assert_eq!(
        d["metadata"]["annotations"],
        json!({"injected": "true", "example.com/by": "sidecar",
               "sidecar-pull-policy": "IfNotPresent"})
    );
    // The match condition keeps an update from adding a second sidecar.
    k.ok(&["label", "deployment", "web", "touched=yes"]);
    let d = get(&k, &["get", "deployment", "web"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{d}"
    );

    // failurePolicy Fail: an expression that errs refuses the write, as upstream words it.
    apply(&k, BROKEN);
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "s1"}, "data": {"a": "Yg=="}});
    let (code, status) = c.json(
        "POST",
        "/api/v1/namespaces/default/secrets",
        "application/json",
        &secret,
    );
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Invalid", "{status}");
    let message = status["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(
            "policy 'broken' with binding 'broken-binding' denied request: expression '"
        ) && message.ends_with("resulted in error: no such key: missing"),
        "{status}"
    );
    assert_eq!(status["details"]["causes"][0]["message"], message);
    // failurePolicy Ignore: the mutation is skipped and the write goes through.
    k.ok(&[
        "patch",
        "mutatingadmissionpolicy",
        "broken",
        "--type=merge",
        "-p",
        r#"{"spec":{"failurePolicy":"Ignore"}}"#,
    ]);
    caught_up(&k);
    let (code, created) = c.json(
        "POST",
        "/api/v1/namespaces/default/secrets",
        "application/json",
        &secret,
    );
    assert_eq!(code, 201, "{created}");
    assert!(created["metadata"]["labels"].is_null(), "{created}");

    // Reinvocation: only the IfNeeded policy sees the later policy's label.
    apply(&k, REINVOCATION);
    k.ok(&["create", "namespace", "again"]);
    k.ok(&["label", "namespace", "again", "reinvoke=on"]);
    k.ok(&["create", "configmap", "copied", "-n", "again"]);
    let cm = get(&k, &["get", "configmap", "copied", "-n", "again"]);
    assert_eq!(cm["metadata"]["labels"]["source"], "b", "{cm}");
    assert_eq!(
        cm["metadata"]["annotations"]["copied-if-needed"], "b",
        "{cm}"
    );
    assert_eq!(
        cm["metadata"]["annotations"]["copied-never"], "none",
        "{cm}"
    );

    a_webhooks_change_reinvokes_earlier_policies(&k, &c);
    the_authorizer_answers_for_the_requesting_user(&k);
}

/// The test webhook labels what it is sent `hooked-by: webhook`.
fn label_by_webhook(_path: &str, review: &Value) -> Value {
    let patch =
        json!([{"op": "add", "path": "/metadata/labels", "value": {"hooked-by": "webhook"}}]);
    let response = json!({"uid": review["request"]["uid"], "allowed": true,
        "patchType": "JSONPatch",
        "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string())});
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Policies run before webhooks; a webhook's change runs the IfNeeded policies again. The
/// webhook's match condition asks the authorizer.
fn a_webhooks_change_reinvokes_earlier_policies(k: &Kapi, c: &Client) {
    let hook = Hook::start(label_by_webhook);
    k.ok(&["create", "namespace", "via-hook"]);
    k.ok(&["label", "namespace", "via-hook", "hooked=on"]);
    apply(
        k,
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: copy-hook-label}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
    namespaceSelector: {matchLabels: {hooked: "on"}}
  reinvocationPolicy: IfNeeded
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{annotations: {
          "hooked-by": object.metadata.?labels[?"hooked-by"].orValue("nobody")}}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: copy-hook-label}
spec: {policyName: copy-hook-label}
"#,
    );
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration", "metadata": {"name": "label"},
        "webhooks": [{"name": "label.example.com",
            "clientConfig": {"url": format!("https://127.0.0.1:{}/label", hook.port),
                             "caBundle": hook.ca_bundle()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"hooked": "on"}},
            "matchConditions": [{"name": "may-create",
                "expression": "authorizer.requestResource.check('create').allowed()"}],
            "sideEffects": "None", "admissionReviewVersions": ["v1"]}]});
    let (code, body) = c.json(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        "application/json",
        &config,
    );
    assert_eq!(code, 201, "{body}");
    caught_up(k);
    k.ok(&[
        "create",
        "configmap",
        "hooked",
        "-n",
        "via-hook",
        "--from-literal=k=v",
    ]);
    let cm = get(k, &["get", "configmap", "hooked", "-n", "via-hook"]);
    assert_eq!(cm["metadata"]["labels"]["hooked-by"], "webhook", "{cm}");
    assert_eq!(
        cm["metadata"]["annotations"]["hooked-by"], "webhook",
        "{cm}"
    );
    let reviews = hook.reviews();
    assert_eq!(reviews.len(), 1);
    // The webhook sees the create's managedFields as objects (kapi keeps a create's fieldsV1
    // as text until it is stored, and parses it for whatever reads objects whole).
    let sent = &reviews[0]["request"]["object"]["metadata"]["managedFields"];
    assert_eq!(
        sent[0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}}),
        "{sent}"
    );
    let stored = get(
        k,
        &[
            "get",
            "configmap",
            "hooked",
            "-n",
            "via-hook",
            "--show-managed-fields",
        ],
    );
    assert_eq!(
        stored["metadata"]["managedFields"][0]["fieldsV1"]["f:data"],
        json!({".": {}, "f:k": {}}),
        "{stored}"
    );
}

/// Alice may create ConfigMaps in `guarded`; Bob may also delete Deployments there.
const USERS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: guarded, labels: {guarded: "yes"}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: writer, namespace: guarded}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [create, get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deleter, namespace: guarded}
rules:
- {apiGroups: [apps], resources: [deployments], verbs: [delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: writers, namespace: guarded}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: writer}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deleters, namespace: guarded}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deleter}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: deleters-only}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
    namespaceSelector: {matchLabels: {guarded: "yes"}}
  matchConditions:
  - name: may-create-this
    expression: "authorizer.requestResource.check('create').allowed()"
  variables:
  - name: deletes
    expression: >
      authorizer.group('apps').resource('deployments').namespace(request.namespace)
        .check('delete')
  validations:
  - expression: "variables.deletes.allowed() && !variables.deletes.errored()"
    messageExpression: "'user ' + request.userInfo.username + ' may not delete deployments'"
  - expression: >
      !authorizer.serviceAccount('guarded', 'robot').group('').resource('configmaps')
        .namespace('guarded').check('create').allowed()
    message: "robots must not write here"
  - expression: "authorizer.path('/healthz').check('get').allowed()"
    message: "the health check is closed"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: deleters-only}
spec:
  policyName: deleters-only
  validationActions: [Deny]
"#;

/// A ValidatingAdmissionPolicy asks the authorizer about the user who writes (one Kapi for
/// the whole file: start-up costs seconds).
fn the_authorizer_answers_for_the_requesting_user(k: &Kapi) {
    apply(k, USERS);
    // Roles, bindings and policies are in force once the watch cache has them.
    until_allowed(
        k,
        &["create", "configmaps", "-n", "guarded", "--as", "alice"],
    );
    until_allowed(
        k,
        &["delete", "deployments", "-n", "guarded", "--as", "bob"],
    );
    let denied = "ValidatingAdmissionPolicy 'deleters-only' with binding 'deleters-only' denied request: user alice may not delete deployments";
    eventually("the policy denies alice", || {
        let out = k.kubectl(&["--as=alice", "create", "configmap", "a", "-n", "guarded"]);
        assert!(!out.status.success(), "alice's configmap was created");
        stderr(&out).contains(denied)
    });
    let out = k.kubectl(&["--as=bob", "create", "configmap", "b", "-n", "guarded"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
