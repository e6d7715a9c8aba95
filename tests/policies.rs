//! ValidatingAdmissionPolicies against the real binary, driven with kubectl: a policy's CEL
//! validations refuse (Deny), warn (Warn) or pass the writes its bindings select, with
//! upstream's messages, params from a ConfigMap, and the policy objects' own validation.

mod support;

use support::kapi::Kapi;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  variables:
  - name: limit
    expression: "int(params.data.maxReplicas)"
  validations:
  - expression: "object.spec.replicas <= variables.limit"
    messageExpression: "'replicas must be at most ' + string(variables.limit)"
  - expression: "object.metadata.name.startsWith('web')"
    reason: Forbidden
---
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: default}
data: {maxReplicas: "5"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: max-replicas-binding}
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector:
      matchLabels: {policy: enforced}
"#;

#[test]
fn policies_refuse_and_warn_with_their_cel_validations() {
    let k = Kapi::start(&[], &[]);
    let out = k.kubectl_stdin(&["apply", "-f", "-"], POLICY);
    assert!(out.status.success(), "{}", stderr(&out));
    k.ok(&["create", "namespace", "strict"]);
    k.ok(&["label", "namespace", "strict", "policy=enforced"]);
    k.ok(&["create", "namespace", "free"]);

    // Selected: too many replicas is refused with the message expression's words.
    let out = k.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=6",
        "-n",
        "strict",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas must be at most 5"
        ),
        "{}",
        stderr(&out)
    );
    // A validation with reason Forbidden answers 403.
    let out = k.kubectl(&[
        "create",
        "deployment",
        "api",
        "--image=nginx",
        "-n",
        "strict",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "deployments.apps \"api\" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding \
             'max-replicas-binding' denied request: failed expression: object.metadata.name.startsWith('web')"
        ),
        "{}",
        stderr(&out)
    );
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=5",
        "-n",
        "strict",
    ]);
    // Not selected: anything goes.
    k.ok(&[
        "create",
        "deployment",
        "api",
        "--image=nginx",
        "--replicas=9",
        "-n",
        "free",
    ]);

    // A Warn binding: admitted with a Warning.
    let warn = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: warn-everywhere}
spec:
  policyName: max-replicas
  validationActions: [Warn]
  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Deny}
"#;
    let out = k.kubectl_stdin(&["apply", "-f", "-"], warn);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = k.kubectl(&["scale", "deployment", "api", "--replicas=8", "-n", "free"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = k.kubectl(&["label", "deployment", "api", "touched=yes", "-n", "free"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Warning: Validation failed for ValidatingAdmissionPolicy 'max-replicas' with binding 'warn-everywhere': replicas must be at most 5"
        ),
        "{}",
        stderr(&out)
    );

    // A policy whose expression does not compile is refused.
    let bad = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: broken}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  validations:
  - expression: "objekt.spec != null"
"#;
    let out = k.kubectl_stdin(&["apply", "-f", "-"], bad);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("spec.validations[0].expression: Invalid value: \"objekt.spec != null\"")
            && stderr(&out).contains("undeclared reference to 'objekt'"),
        "{}",
        stderr(&out)
    );
}

const LIBRARY_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: config-values}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [configmaps]
  validations:
  - expression: "!has(object.data) || !('limit' in object.data) || (isQuantity(object.data.limit) && quantity(object.data.limit).isLessThan(quantity('1Gi')))"
    messageExpression: "'limit ' + object.data.limit + ' must be a quantity below 1Gi'"
  - expression: "!has(object.data) || !('endpoint' in object.data) || (isURL(object.data.endpoint) && url(object.data.endpoint).getScheme() == 'https')"
    message: endpoint must be an https URL
  - expression: "!has(object.data) || !('peer' in object.data) || cidr('10.0.0.0/8').containsIP(object.data.peer)"
    message: peer must be in 10.0.0.0/8
  - expression: "!has(object.data) || object.data.all(k, format.dns1123Label().validate(k) == optional.none() || k.contains('.'))"
    message: keys must be DNS labels
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: config-values-binding}
spec:
  policyName: config-values
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {policy: values}
"#;

#[test]
fn policies_use_the_kubernetes_cel_libraries() {
    let k = Kapi::start(&[], &[]);
    let out = k.kubectl_stdin(&["apply", "-f", "-"], LIBRARY_POLICY);
    assert!(out.status.success(), "{}", stderr(&out));
    k.ok(&["create", "namespace", "checked"]);
    k.ok(&["label", "namespace", "checked", "policy=values"]);

    k.ok(&[
        "create",
        "configmap",
        "good",
        "-n",
        "checked",
        "--from-literal=limit=512Mi",
        "--from-literal=endpoint=https://example.com/hook",
        "--from-literal=peer=10.1.2.3",
    ]);
    let refused = |args: &[&str], message: &str| {
        let mut all = vec!["create", "configmap", "bad", "-n", "checked"];
        all.extend_from_slice(args);
        let out = k.kubectl(&all);
        assert!(!out.status.success(), "{args:?} was admitted");
        assert!(
            stderr(&out).contains(&format!(
                "ValidatingAdmissionPolicy 'config-values' with binding 'config-values-binding' denied request: {message}"
            )),
            "{}",
            stderr(&out)
        );
    };
    refused(
        &["--from-literal=limit=2Gi"],
        "limit 2Gi must be a quantity below 1Gi",
    );
    refused(
        &["--from-literal=limit=lots"],
        "limit lots must be a quantity below 1Gi",
    );
    refused(
        &["--from-literal=endpoint=http://example.com"],
        "endpoint must be an https URL",
    );
    refused(
        &["--from-literal=peer=192.168.0.1"],
        "peer must be in 10.0.0.0/8",
    );
    refused(&["--from-literal=Bad_Key=x"], "keys must be DNS labels");
}
