//! Update rules of the apps, batch, policy, rbac, autoscaling, admissionregistration,
//! flowcontrol, events.k8s.io and apiregistration kinds against the real binary: for each kind
//! an object is created, an allowed change (merge patch) is taken with 200, and a change
//! upstream refuses on update — an immutable field, or a rule the update runs again — is a 422
//! naming upstream's cause, leaving the stored object as it was. Status updates of the kinds
//! with a status subresource check their counters.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

const MERGE: &str = "application/merge-patch+json";

/// One kind's case: where it lives, what is created, a change that is taken, a change that
/// is refused with `(field, reason, message)` — a message starting with `...` is matched by
/// what it contains (the rest prints a whole object or a compiler's report).
struct Case {
    collection: &'static str,
    object: Value,
    allowed: Value,
    refused: Value,
    cause: (&'static str, &'static str, &'static str),
}

fn pod_template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

fn named(kind: &str, api: &str, name: &str, rest: Value) -> Value {
    let mut obj = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}});
    for (k, v) in rest.as_object().into_iter().flatten() {
        obj[k] = v.clone();
    }
    obj
}

/// Deployments, ReplicaSets and DaemonSets: the replicas (where they have them) and image
/// change, the selector does not.
fn selector_case(kind: &str, resource: &'static str, replicas: bool) -> Case {
    let mut spec = json!({"selector": {"matchLabels": {"app": "web"}},
                          "template": pod_template(json!({"app": "web"}))});
    let mut allowed = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:2"}]}}}});
    if replicas {
        spec["replicas"] = json!(1);
        allowed["spec"]["replicas"] = json!(3);
    }
    Case {
        collection: resource,
        object: named(kind, "apps/v1", "web", json!({"spec": spec})),
        allowed,
        refused: json!({"spec": {"selector": {"matchLabels": {"app": "web", "v": "2"}},
                                 "template": {"metadata": {"labels": {"app": "web", "v": "2"}}}}}),
        cause: (
            "spec.selector",
            "FieldValueInvalid",
            "Invalid value: {\"matchLabels\":{\"app\":\"web\",\"v\":\"2\"}}: field is immutable",
        ),
    }
}

fn job(name: &str, suspend: bool) -> Value {
    named(
        "Job",
        "batch/v1",
        name,
        json!({"spec": {"suspend": suspend, "completions": 2, "parallelism": 1,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
}

fn hook_config(name: &str) -> Value {
    named(
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        name,
        json!({"webhooks": [{"name": "check.example.com", "sideEffects": "None",
            "failurePolicy": "Ignore", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://127.0.0.1:9/check"},
            "rules": [{"operations": ["CREATE"], "apiGroups": ["example.com"],
                       "apiVersions": ["v1"], "resources": ["widgets"]}]}]}),
    )
}

fn policy(kind: &str, name: &str, validating: bool) -> Value {
    let mut spec = json!({"matchConstraints": {"resourceRules": [{"operations": ["CREATE"],
        "apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["widgets"]}]}});
    if validating {
        spec["validations"] = json!([{"expression": "true"}]);
    } else {
        spec["reinvocationPolicy"] = json!("Never");
        spec["mutations"] = json!([{"patchType": "JSONPatch", "jsonPatch": {"expression": "[]"}}]);
    }
    named(
        kind,
        "admissionregistration.k8s.io/v1",
        name,
        json!({"spec": spec}),
    )
}

/// Role bindings: the subjects change, the role reference does not.
fn binding_case(kind: &str, collection: &'static str) -> Case {
    let role_ref = |name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name});
    let subjects =
        |who: &str| json!([{"kind": "User", "name": who, "apiGroup": "rbac.authorization.k8s.io"}]);
    Case {
        collection,
        object: named(
            kind,
            "rbac.authorization.k8s.io/v1",
            "update-rules-readers",
            json!({"roleRef": role_ref("view"), "subjects": subjects("alice")}),
        ),
        allowed: json!({"subjects": subjects("bob")}),
        refused: json!({"roleRef": role_ref("edit")}),
        cause: (
            "roleRef",
            "FieldValueInvalid",
            "Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"ClusterRole\",\"Name\":\"edit\"}: cannot change roleRef",
        ),
    }
}

fn cases() -> Vec<Case> {
    let claim_template = json!([{"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    let rbac = "rbac.authorization.k8s.io/v1";
    vec![
        selector_case(
            "Deployment",
            "/apis/apps/v1/namespaces/default/deployments",
            true,
        ),
        selector_case(
            "ReplicaSet",
            "/apis/apps/v1/namespaces/default/replicasets",
            true,
        ),
        selector_case(
            "DaemonSet",
            "/apis/apps/v1/namespaces/default/daemonsets",
            false,
        ),
        Case {
            collection: "/apis/apps/v1/namespaces/default/statefulsets",
            object: named(
                "StatefulSet",
                "apps/v1",
                "db",
                json!({"spec": {
                "serviceName": "db", "replicas": 1,
                "selector": {"matchLabels": {"app": "db"}},
                "template": pod_template(json!({"app": "db"}))}}),
            ),
            allowed: json!({"spec": {"replicas": 2, "minReadySeconds": 5,
                "revisionHistoryLimit": 4, "template": {"spec": {"containers": [
                    {"name": "c", "image": "nginx:2"}]}}}}),
            refused: json!({"spec": {"volumeClaimTemplates": claim_template}}),
            cause: (
                "spec",
                "FieldValueForbidden",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ),
        },
        Case {
            collection: "/apis/apps/v1/namespaces/default/controllerrevisions",
            object: named(
                "ControllerRevision",
                "apps/v1",
                "rev",
                json!({
                "data": {"spec": {"x": 1}}, "revision": 1}),
            ),
            allowed: json!({"metadata": {"labels": {"kept": "yes"}}}),
            refused: json!({"data": {"spec": {"x": 2}}}),
            cause: (
                "data",
                "FieldValueInvalid",
                "Invalid value: {\"spec\":{\"x\":2}}: field is immutable",
            ),
        },
        Case {
            collection: "/apis/batch/v1/namespaces/default/jobs",
            object: job("run", false),
            allowed: json!({"spec": {"parallelism": 2, "backoffLimit": 2}}),
            refused: json!({"spec": {"completions": 3}}),
            cause: (
                "spec.completions",
                "FieldValueInvalid",
                "Invalid value: 3: field is immutable",
            ),
        },
        // A suspended Job that never ran may move its pods, not change what they run.
        Case {
            collection: "/apis/batch/v1/namespaces/default/jobs",
            object: job("held", true),
            allowed: json!({"spec": {"template": {"metadata": {"annotations": {"a": "b"}},
                "spec": {"nodeSelector": {"zone": "a"},
                         "tolerations": [{"key": "k", "operator": "Exists"}]}}}}),
            refused: json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "other"}]}}}}),
            cause: (
                "spec.template",
                "FieldValueInvalid",
                "...: field is immutable",
            ),
        },
        Case {
            collection: "/apis/batch/v1/namespaces/default/cronjobs",
            object: named(
                "CronJob",
                "batch/v1",
                "nightly",
                json!({"spec": {
                "schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
            ),
            allowed: json!({"spec": {"schedule": "0 2 * * *", "suspend": true}}),
            refused: json!({"spec": {"schedule": "0 2 * *"}}),
            cause: (
                "spec.schedule",
                "FieldValueInvalid",
                "...expected exactly 5 fields, found 4: [0 2 * *]",
            ),
        },
        Case {
            collection: "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            object: named(
                "PodDisruptionBudget",
                "policy/v1",
                "web",
                json!({"spec": {
                "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
            ),
            allowed: json!({"spec": {"minAvailable": 2,
                "selector": {"matchLabels": {"app": "web2"}}}}),
            refused: json!({"spec": {"minAvailable": "120%"}}),
            cause: (
                "spec.minAvailable",
                "FieldValueInvalid",
                "Invalid value: \"120%\": must not be greater than 100%",
            ),
        },
        binding_case(
            "RoleBinding",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        ),
        binding_case(
            "ClusterRoleBinding",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        ),
        Case {
            collection: "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            object: named(
                "Role",
                rbac,
                "reader",
                json!({"rules": [{"verbs": ["get"],
                "apiGroups": [""], "resources": ["pods"]}]}),
            ),
            allowed: json!({"rules": [{"verbs": ["get", "list"], "apiGroups": [""],
                "resources": ["pods"]}]}),
            refused: json!({"rules": [{"verbs": [], "apiGroups": [""], "resources": ["pods"]}]}),
            cause: (
                "rules[0].verbs",
                "FieldValueRequired",
                "Required value: verbs must contain at least one value",
            ),
        },
        Case {
            collection: "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
            object: named(
                "HorizontalPodAutoscaler",
                "autoscaling/v2",
                "web",
                json!({"spec": {
                "minReplicas": 2, "maxReplicas": 4,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
            ),
            allowed: json!({"spec": {"maxReplicas": 6}}),
            refused: json!({"spec": {"maxReplicas": 1}}),
            cause: (
                "spec.maxReplicas",
                "FieldValueInvalid",
                "Invalid value: 1: must be greater than or equal to `minReplicas`",
            ),
        },
        Case {
            collection: "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            object: hook_config("update-rules"),
            allowed: json!({"webhooks": [{"name": "check.example.com", "sideEffects": "NoneOnDryRun",
                "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
                "clientConfig": {"url": "https://127.0.0.1:9/check"}}]}),
            refused: json!({"webhooks": [{"name": "check.example.com", "sideEffects": "Some",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": "https://127.0.0.1:9/check"}}]}),
            cause: (
                "webhooks[0].sideEffects",
                "FieldValueNotSupported",
                "Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
            ),
        },
        Case {
            collection: "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
            object: policy("ValidatingAdmissionPolicy", "update-rules", true),
            allowed: json!({"spec": {"validations": [{"expression": "true"},
                {"expression": "object.metadata.name != ''"}]}}),
            refused: json!({"spec": {"validations": [{"expression": "nope.x"}]}}),
            cause: (
                "spec.validations[0].expression",
                "FieldValueInvalid",
                "...undeclared reference to 'nope'",
            ),
        },
        Case {
            collection: "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies",
            object: policy("MutatingAdmissionPolicy", "update-rules", false),
            allowed: json!({"spec": {"failurePolicy": "Ignore"}}),
            refused: json!({"spec": {"reinvocationPolicy": "Sometimes"}}),
            cause: (
                "spec.reinvocationPolicy",
                "FieldValueNotSupported",
                "Unsupported value: \"Sometimes\": supported values: \"IfNeeded\", \"Never\"",
            ),
        },
        Case {
            collection: "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
            object: named(
                "ValidatingAdmissionPolicyBinding",
                "admissionregistration.k8s.io/v1",
                "update-rules",
                json!({"spec": {"policyName": "update-rules",
                    "validationActions": ["Deny"]}}),
            ),
            allowed: json!({"spec": {"validationActions": ["Warn", "Audit"]}}),
            refused: json!({"spec": {"validationActions": ["Deny", "Deny"]}}),
            cause: (
                "spec.validationActions[1]",
                "FieldValueDuplicate",
                "Duplicate value: \"Deny\"",
            ),
        },
        Case {
            collection: "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings",
            object: named(
                "MutatingAdmissionPolicyBinding",
                "admissionregistration.k8s.io/v1",
                "update-rules",
                json!({"spec": {"policyName": "update-rules"}}),
            ),
            allowed: json!({"spec": {"policyName": "other-policy"}}),
            refused: json!({"spec": {"policyName": ""}}),
            cause: ("spec.policyName", "FieldValueRequired", "Required value"),
        },
        Case {
            collection: "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations",
            object: named(
                "PriorityLevelConfiguration",
                "flowcontrol.apiserver.k8s.io/v1",
                "update-rules",
                json!({"spec": {"type": "Limited", "limited": {
                    "nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}}),
            ),
            allowed: json!({"spec": {"limited": {"nominalConcurrencyShares": 7}}}),
            refused: json!({"spec": {"type": "Exempt"}}),
            cause: (
                "spec.type",
                "FieldValueInvalid",
                "Invalid value: \"Exempt\": type must be 'Exempt' if and only if name is 'exempt'",
            ),
        },
        Case {
            collection: "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas",
            object: named(
                "FlowSchema",
                "flowcontrol.apiserver.k8s.io/v1",
                "update-rules",
                json!({"spec": {"matchingPrecedence": 9000,
                    "priorityLevelConfiguration": {"name": "update-rules"},
                    "rules": [{"subjects": [{"kind": "User", "user": {"name": "nobody"}}],
                        "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/nowhere"]}]}]}}),
            ),
            allowed: json!({"spec": {"matchingPrecedence": 9100}}),
            refused: json!({"spec": {"matchingPrecedence": 20000}}),
            cause: (
                "spec.matchingPrecedence",
                "FieldValueInvalid",
                "Invalid value: 20000: must not be greater than 10000",
            ),
        },
        Case {
            collection: "/apis/events.k8s.io/v1/namespaces/default/events",
            object: named(
                "Event",
                "events.k8s.io/v1",
                "pulled",
                json!({
                "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "example.com/kubelet",
                "reportingInstance": "node-1", "action": "Pull", "reason": "Pulled",
                "note": "pulled the image", "type": "Normal",
                "regarding": {"kind": "Pod", "namespace": "default", "name": "p"}}),
            ),
            allowed: json!({"series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}}),
            refused: json!({"note": "something else"}),
            cause: (
                "message",
                "FieldValueInvalid",
                "Invalid value: \"something else\": field is immutable",
            ),
        },
        Case {
            collection: "/apis/apiregistration.k8s.io/v1/apiservices",
            object: named(
                "APIService",
                "apiregistration.k8s.io/v1",
                "v1.updaterules.example.com",
                json!({"spec": {"group": "updaterules.example.com", "version": "v1",
                    "groupPriorityMinimum": 100, "versionPriority": 10,
                    "service": {"namespace": "default", "name": "nowhere"},
                    "insecureSkipTLSVerify": true}}),
            ),
            allowed: json!({"spec": {"versionPriority": 20}}),
            refused: json!({"spec": {"versionPriority": 5000}}),
            cause: (
                "spec.versionPriority",
                "FieldValueInvalid",
                "Invalid value: 5000: must be positive and less than 1000",
            ),
        },
    ]
}

/// Whether `got` is the expected message (or contains what a `...` one gives).
fn message_matches(got: &str, want: &str) -> bool {
    match want.strip_prefix("...") {
        Some(part) => got.contains(part),
        None => got == want,
    }
}

#[test]
fn each_kind_takes_its_allowed_updates_and_refuses_its_immutable_ones() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    for case in cases() {
        let name = case.object["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let what = format!("{} {name}", case.object["kind"]);
        let (code, created) = c.call(
            "POST",
            case.collection,
            "application/json",
            Some(case.object.clone()),
        );
        assert_eq!(code, 201, "{what}: {created}");
        let path = format!("{}/{name}", case.collection);
        let (code, updated) = c.call("PATCH", &path, MERGE, Some(case.allowed.clone()));
        assert_eq!(code, 200, "{what}: {updated}");
        let (code, status) = c.call("PATCH", &path, MERGE, Some(case.refused.clone()));
        assert_eq!(code, 422, "{what}: {status}");
        assert_eq!(status["reason"], "Invalid", "{what}: {status}");
        let causes = status["details"]["causes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let (field, reason, message) = case.cause;
        let found = causes.iter().any(|cause| {
            cause["field"] == field
                && cause["reason"] == reason
                && message_matches(cause["message"].as_str().unwrap_or(""), message)
        });
        assert!(found, "{what}: no {field} {reason} {message:?} in {status}");
        // The refused update stored nothing.
        let (code, now) = c.call("GET", &path, "application/json", None);
        assert_eq!(code, 200, "{what}: {now}");
        assert_eq!(
            now["metadata"]["resourceVersion"], updated["metadata"]["resourceVersion"],
            "{what}"
        );
    }
    status_updates_check_their_counters(&c);
}

/// Status updates (`<kind>/status`) check the status, and only the status.
fn status_updates_check_their_counters(c: &Client) {
    let deployment = "/apis/apps/v1/namespaces/default/deployments/web/status";
    let (code, body) = c.call(
        "PATCH",
        deployment,
        MERGE,
        Some(json!({"status": {"replicas": 1, "readyReplicas": 2}})),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "status.readyReplicas"
    );
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "Invalid value: 2: cannot be greater than status.replicas"
    );
    let (code, body) = c.call(
        "PATCH",
        deployment,
        MERGE,
        Some(json!({"status": {"replicas": 3, "readyReplicas": 2, "collisionCount": 2}})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = c.call(
        "PATCH",
        deployment,
        MERGE,
        Some(json!({"status": {"collisionCount": 1}})),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "field": "status.collisionCount",
               "message": "Invalid value: 1: cannot be decremented"})
    );
    let (code, body) = c.call(
        "PATCH",
        "/apis/apiregistration.k8s.io/v1/apiservices/v1.updaterules.example.com/status",
        MERGE,
        Some(json!({"status": {"conditions": [{"type": "Available", "status": "Maybe"}]}})),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "status.conditions[0].status"
    );
    let (code, body) = c.call(
        "PATCH",
        "/apis/batch/v1/namespaces/default/jobs/run/status",
        MERGE,
        Some(json!({"status": {"active": -1}})),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["field"], "status.active");
}
