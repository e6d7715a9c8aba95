//! Update rules against the real binary: for each kind with rules of its own on update
//! (upstream's `Validate<Kind>Update`), an update that changes what may not change is a 422
//! with upstream's cause, and one that changes what may is a 200; object metadata the server
//! owns (uid, name, timestamps, grace period, finalizers of an object being deleted) is
//! checked for every kind.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

const MERGE: &str = "application/merge-patch+json";

/// One kind's update rules: the object to create at `collection`, a merge patch that breaks a
/// rule (and the cause it gets: field, reason, message or its start), a merge patch that is
/// allowed.
struct Case {
    collection: &'static str,
    object: Value,
    refused: Value,
    cause: (&'static str, &'static str, &'static str),
    allowed: Value,
}

fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"].as_str().unwrap_or("").to_string()
}

/// The cause at `field` of a 422, or a panic naming the whole answer.
fn cause<'a>(body: &'a Value, field: &str) -> &'a Value {
    body["details"]["causes"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["field"] == field))
        .unwrap_or_else(|| panic!("no cause at {field} in {body}"))
}

fn check(c: &Client, case: &Case) {
    let (code, created) = c.call(
        "POST",
        case.collection,
        "application/json",
        Some(case.object.clone()),
    );
    assert_eq!(code, 201, "create at {}: {created}", case.collection);
    let path = format!("{}/{}", case.collection, name_of(&created));
    let (code, body) = c.call("PATCH", &path, MERGE, Some(case.refused.clone()));
    assert_eq!(code, 422, "refused update of {path}: {body}");
    assert_eq!(body["reason"], "Invalid");
    let (field, reason, message) = case.cause;
    let got = cause(&body, field);
    assert_eq!(got["reason"], reason, "{path}: {got}");
    let text = got["message"].as_str().unwrap_or("");
    assert!(
        text.starts_with(message),
        "{path}: {text:?} does not start with {message:?}"
    );
    let (code, body) = c.call("PATCH", &path, MERGE, Some(case.allowed.clone()));
    assert_eq!(code, 200, "allowed update of {path}: {body}");
}

fn labels() -> Value {
    json!({"metadata": {"labels": {"changed": "yes"}}})
}

fn core_cases() -> Vec<Case> {
    vec![
        Case {
            collection: "/api/v1/namespaces/default/persistentvolumeclaims",
            object: json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "claim"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}),
            refused: json!({"spec": {"accessModes": ["ReadWriteMany"]}}),
            cause: (
                "spec",
                "FieldValueForbidden",
                "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n",
            ),
            // The volume name is set once, by the binder.
            allowed: json!({"spec": {"volumeName": "pv-1"}}),
        },
        Case {
            collection: "/api/v1/persistentvolumes",
            object: json!({"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": "volume"},
                "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                         "hostPath": {"path": "/data"}}}),
            refused: json!({"spec": {"hostPath": {"path": "/elsewhere"}}}),
            cause: (
                "spec.persistentvolumesource",
                "FieldValueForbidden",
                "Forbidden: spec.persistentvolumesource is immutable after creation\n",
            ),
            allowed: json!({"spec": {"capacity": {"storage": "2Gi"}}}),
        },
        Case {
            collection: "/api/v1/namespaces/default/secrets",
            object: json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "frozen"},
                "immutable": true, "data": {"a": "eA=="}}),
            refused: json!({"stringData": {"a": "y"}}),
            cause: (
                "data",
                "FieldValueForbidden",
                "Forbidden: field is immutable when `immutable` is set",
            ),
            allowed: labels(),
        },
        Case {
            collection: "/api/v1/namespaces/default/secrets",
            object: json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "typed"},
                "data": {"a": "eA=="}}),
            refused: json!({"type": "example.com/other"}),
            cause: (
                "type",
                "FieldValueInvalid",
                "Invalid value: \"example.com/other\": field is immutable",
            ),
            allowed: json!({"data": {"a": "eQ=="}}),
        },
        Case {
            collection: "/api/v1/namespaces/default/configmaps",
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"},
                "immutable": true, "data": {"a": "x"}}),
            refused: json!({"immutable": false}),
            cause: (
                "immutable",
                "FieldValueForbidden",
                "Forbidden: field is immutable when `immutable` is set",
            ),
            allowed: labels(),
        },
        Case {
            collection: "/api/v1/nodes",
            object: json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
                "spec": {"providerID": "cloud://a", "podCIDRs": ["10.1.0.0/24"]}}),
            refused: json!({"spec": {"providerID": "cloud://b"}}),
            cause: (
                "spec.providerID",
                "FieldValueForbidden",
                "Forbidden: node updates may not change providerID except from \"\" to valid",
            ),
            allowed: json!({"spec": {"unschedulable": true}}),
        },
        Case {
            collection: "/api/v1/namespaces/default/resourcequotas",
            object: json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                "spec": {"hard": {"pods": "5"}, "scopes": ["BestEffort"]}}),
            refused: json!({"spec": {"scopes": ["NotBestEffort"]}}),
            cause: (
                "spec.scopes",
                "FieldValueInvalid",
                "Invalid value: [\"NotBestEffort\"]: field is immutable",
            ),
            allowed: json!({"spec": {"hard": {"pods": "6"}}}),
        },
        // Kinds whose update runs their create rules again.
        Case {
            collection: "/api/v1/namespaces/default/limitranges",
            object: json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
                "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}}),
            refused: json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"},
                "min": {"cpu": "2"}}]}}),
            cause: (
                "spec.limits[0].min[cpu]",
                "FieldValueInvalid",
                "Invalid value: ",
            ),
            allowed: json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "3"}}]}}),
        },
    ]
}

fn storage_cases() -> Vec<Case> {
    vec![
        Case {
            collection: "/apis/storage.k8s.io/v1/storageclasses",
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "fast"}, "provisioner": "example.com/disk",
                "parameters": {"tier": "1"}}),
            refused: json!({"provisioner": "example.com/other"}),
            cause: (
                "provisioner",
                "FieldValueForbidden",
                "Forbidden: updates to provisioner are forbidden.",
            ),
            allowed: json!({"allowVolumeExpansion": true}),
        },
        Case {
            collection: "/apis/storage.k8s.io/v1/storageclasses",
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "slow"}, "provisioner": "example.com/disk"}),
            refused: json!({"volumeBindingMode": "WaitForFirstConsumer"}),
            cause: (
                "volumeBindingMode",
                "FieldValueInvalid",
                "Invalid value: \"WaitForFirstConsumer\": field is immutable",
            ),
            allowed: labels(),
        },
        Case {
            collection: "/apis/storage.k8s.io/v1/volumeattachments",
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                "metadata": {"name": "va"},
                "spec": {"attacher": "example.com", "nodeName": "node-a",
                         "source": {"persistentVolumeName": "pv"}}}),
            refused: json!({"spec": {"nodeName": "node-b"}}),
            cause: ("spec", "FieldValueInvalid", "Invalid value: {"),
            allowed: labels(),
        },
        Case {
            collection: "/apis/storage.k8s.io/v1/csidrivers",
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                "metadata": {"name": "example.com"}, "spec": {"attachRequired": true}}),
            refused: json!({"spec": {"attachRequired": false}}),
            cause: (
                "spec.attachedRequired",
                "FieldValueInvalid",
                "Invalid value: false: field is immutable",
            ),
            allowed: json!({"spec": {"podInfoOnMount": true}}),
        },
        Case {
            collection: "/apis/storage.k8s.io/v1/csinodes",
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                "metadata": {"name": "node-a"},
                "spec": {"drivers": [{"name": "example.com", "nodeID": "n1"}]}}),
            refused: json!({"spec": {"drivers": [{"name": "example.com", "nodeID": "n2"}]}}),
            cause: (
                "spec.drivers",
                "FieldValueInvalid",
                "Invalid value: {\"name\":\"example.com\",\"nodeID\":\"n2\"}: field is immutable",
            ),
            allowed: json!({"spec": {"drivers": [{"name": "example.com", "nodeID": "n1"},
                                                 {"name": "other.example.com", "nodeID": "n1"}]}}),
        },
        Case {
            collection: "/apis/storage.k8s.io/v1/volumeattributesclasses",
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttributesClass",
                "metadata": {"name": "gold"}, "driverName": "example.com",
                "parameters": {"iops": "100"}}),
            refused: json!({"parameters": {"iops": "200"}}),
            cause: (
                "parameters",
                "FieldValueForbidden",
                "Forbidden: updates to parameters are forbidden.",
            ),
            allowed: labels(),
        },
    ]
}

fn group_cases() -> Vec<Case> {
    vec![
        Case {
            collection: "/apis/networking.k8s.io/v1/ingressclasses",
            object: json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "nginx"}, "spec": {"controller": "example.com/nginx"}}),
            refused: json!({"spec": {"controller": "example.com/other"}}),
            cause: (
                "spec.controller",
                "FieldValueInvalid",
                "Invalid value: \"example.com/other\": field is immutable",
            ),
            allowed: labels(),
        },
        Case {
            collection: "/apis/networking.k8s.io/v1/ipaddresses",
            object: json!({"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
                "metadata": {"name": "192.168.7.7"},
                "spec": {"parentRef": {"resource": "services", "namespace": "default",
                                       "name": "a"}}}),
            refused: json!({"spec": {"parentRef": {"name": "b"}}}),
            cause: ("spec.parentRef", "FieldValueInvalid", "Invalid value: {"),
            allowed: labels(),
        },
        Case {
            collection: "/apis/networking.k8s.io/v1/servicecidrs",
            object: json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                "metadata": {"name": "extra"}, "spec": {"cidrs": ["10.200.0.0/24"]}}),
            refused: json!({"spec": {"cidrs": ["10.201.0.0/24"]}}),
            cause: (
                "spec.cidrs[0]",
                "FieldValueInvalid",
                "Invalid value: \"10.201.0.0/24\": field is immutable",
            ),
            // A single-family range may gain the other family.
            allowed: json!({"spec": {"cidrs": ["10.200.0.0/24", "fd00:200::/64"]}}),
        },
        Case {
            collection: "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            object: json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "slice"}, "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"]}]}),
            refused: json!({"addressType": "FQDN"}),
            cause: (
                "addressType",
                "FieldValueInvalid",
                "Invalid value: \"FQDN\": field is immutable",
            ),
            allowed: json!({"endpoints": [{"addresses": ["10.0.0.2"]}]}),
        },
        Case {
            collection: "/apis/node.k8s.io/v1/runtimeclasses",
            object: json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": "sandboxed"}, "handler": "runsc"}),
            refused: json!({"handler": "kata"}),
            cause: (
                "handler",
                "FieldValueInvalid",
                "Invalid value: \"kata\": field is immutable",
            ),
            allowed: labels(),
        },
        Case {
            collection: "/apis/scheduling.k8s.io/v1/priorityclasses",
            object: json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "important"}, "value": 1000}),
            refused: json!({"value": 2000}),
            cause: (
                "value",
                "FieldValueForbidden",
                "Forbidden: may not be changed in an update.",
            ),
            allowed: json!({"description": "now described"}),
        },
        Case {
            collection: "/apis/scheduling.k8s.io/v1/priorityclasses",
            object: json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "gentle"}, "value": 10}),
            refused: json!({"preemptionPolicy": "Never"}),
            cause: (
                "preemptionPolicy",
                "FieldValueInvalid",
                "Invalid value: \"Never\": field is immutable",
            ),
            allowed: labels(),
        },
        Case {
            collection: "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims",
            object: json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                "metadata": {"name": "gpu"},
                "spec": {"devices": {"requests": [{"name": "r",
                    "exactly": {"deviceClassName": "gpu.example.com"}}]}}}),
            refused: json!({"spec": {"devices": {"requests": [{"name": "s",
                    "exactly": {"deviceClassName": "gpu.example.com"}}]}}}),
            cause: ("spec", "FieldValueInvalid", "Invalid value: {"),
            allowed: labels(),
        },
        Case {
            collection: "/apis/resource.k8s.io/v1/namespaces/default/resourceclaimtemplates",
            object: json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                "metadata": {"name": "gpu"},
                "spec": {"spec": {"devices": {"requests": [{"name": "r",
                    "exactly": {"deviceClassName": "gpu.example.com"}}]}}}}),
            refused: json!({"spec": {"metadata": {"labels": {"a": "b"}}}}),
            cause: ("spec", "FieldValueInvalid", "Invalid value: {"),
            allowed: labels(),
        },
        Case {
            collection: "/apis/resource.k8s.io/v1/resourceslices",
            object: json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                "metadata": {"name": "node-a-gpus"},
                "spec": {"driver": "gpu.example.com", "nodeName": "node-a",
                         "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1}}}),
            refused: json!({"spec": {"driver": "other.example.com"}}),
            cause: (
                "spec.driver",
                "FieldValueInvalid",
                "Invalid value: \"other.example.com\": field is immutable",
            ),
            allowed: json!({"spec": {"pool": {"generation": 2}}}),
        },
    ]
}

#[test]
fn immutable_fields_of_each_kind_are_refused_and_the_rest_may_change() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    for case in core_cases()
        .iter()
        .chain(&storage_cases())
        .chain(&group_cases())
    {
        check(&c, case);
    }
    // A namespace's phase follows its deletion timestamp, through `namespaces/status`.
    k.ok(&["create", "namespace", "phased"]);
    // Its finalizers change only through `namespaces/finalize`.
    let (code, body) = c.call(
        "PATCH",
        "/api/v1/namespaces/phased",
        MERGE,
        Some(json!({"spec": {"finalizers": []}, "metadata": {"labels": {"a": "b"}}})),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(body["metadata"]["labels"]["a"], "b");
    let (code, body) = c.call(
        "PATCH",
        "/api/v1/namespaces/phased/status",
        MERGE,
        Some(json!({"status": {"phase": "Terminating"}})),
    );
    assert_eq!(code, 422, "{body}");
    let got = cause(&body, "status.Phase");
    assert_eq!(
        got["message"],
        "Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
    );
    // A bound claim may grow (its class, patched above, allows expansion) but not shrink
    // below its capacity.
    let (code, body) = c.call(
        "POST",
        "/api/v1/namespaces/default/persistentvolumeclaims",
        "application/json",
        Some(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "grown"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                     "resources": {"requests": {"storage": "1Gi"}}}})),
    );
    assert_eq!(code, 201, "{body}");
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims/grown";
    let (code, body) = c.call(
        "PATCH",
        &format!("{claims}/status"),
        MERGE,
        Some(json!({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = c.call(
        "PATCH",
        claims,
        MERGE,
        Some(json!({"spec": {"resources": {"requests": {"storage": "3Gi"}}}})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = c.call(
        "PATCH",
        claims,
        MERGE,
        Some(json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}})),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        cause(&body, "spec.resources.requests.storage")["message"],
        "Forbidden: field can not be less than status.capacity"
    );
}

#[test]
fn server_owned_metadata_may_not_change() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, created) = c.call(
        "POST",
        cms,
        "application/json",
        Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "owned", "finalizers": ["example.com/hold"]}})),
    );
    assert_eq!(code, 201, "{created}");
    let path = format!("{cms}/owned");
    let refused = [
        (
            json!({"metadata": {"uid": "not-the-uid"}}),
            "metadata.uid",
            "Invalid value: \"not-the-uid\": field is immutable".to_string(),
        ),
        (
            json!({"metadata": {"name": "other"}}),
            "metadata.name",
            "Invalid value: \"other\": field is immutable".to_string(),
        ),
        (
            json!({"metadata": {"deletionGracePeriodSeconds": 30}}),
            "metadata.deletionGracePeriodSeconds",
            "Invalid value: 30: field is immutable".to_string(),
        ),
        (
            json!({"metadata": {"deletionTimestamp": "2030-01-02T03:04:05Z"}}),
            "metadata.deletionTimestamp",
            "Invalid value: 2030-01-02 03:04:05 +0000 UTC: field is immutable".to_string(),
        ),
    ];
    for (patch, field, message) in refused {
        let (code, body) = c.call("PATCH", &path, MERGE, Some(patch));
        assert_eq!(code, 422, "{body}");
        let got = cause(&body, field);
        assert_eq!(got["reason"], "FieldValueInvalid");
        assert_eq!(got["message"], message.as_str());
        // Upstream names the object as the request does (a renamed one by its new name).
        let shown = if field == "metadata.name" {
            "other"
        } else {
            "owned"
        };
        assert_eq!(
            body["message"],
            format!("ConfigMap \"{shown}\" is invalid: {field}: {message}")
        );
    }
    // What the request leaves out is kept: the uid and creation time come from the object.
    let mut put = created.clone();
    put["metadata"].as_object_mut().unwrap().remove("uid");
    put["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("creationTimestamp");
    put["data"] = json!({"k": "v"});
    let (code, updated) = c.call("PUT", &path, "application/json", Some(put));
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        updated["metadata"]["creationTimestamp"],
        created["metadata"]["creationTimestamp"]
    );
    // A PUT naming another uid is about another object: a failed precondition, 409.
    let mut stale = updated.clone();
    stale["metadata"]["uid"] = json!("0b3e2a34-0000-4000-8000-000000000000");
    let (code, body) = c.call("PUT", &path, "application/json", Some(stale));
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        body["message"],
        format!(
            "Operation cannot be fulfilled on configmaps \"owned\": Precondition failed: UID in precondition: 0b3e2a34-0000-4000-8000-000000000000, UID in object meta: {}",
            created["metadata"]["uid"].as_str().unwrap()
        )
    );
    // Another namespace in the body is the URL's mismatch, a 400.
    let (code, body) = c.call(
        "PATCH",
        &path,
        MERGE,
        Some(json!({"metadata": {"namespace": "kube-system"}})),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    // Being deleted (held by its finalizer), it takes no new finalizers but may drop its own.
    let (code, _) = c.call("DELETE", &path, "", None);
    assert_eq!(code, 200);
    let (code, body) = c.call(
        "PATCH",
        &path,
        MERGE,
        Some(json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}})),
    );
    assert_eq!(code, 422, "{body}");
    let got = cause(&body, "metadata.finalizers");
    assert_eq!(got["reason"], "FieldValueForbidden");
    assert_eq!(
        got["message"],
        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/more\"}"
    );
    let (code, body) = c.call(
        "PATCH",
        &path,
        MERGE,
        Some(json!({"metadata": {"finalizers": null}})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, _) = c.call("GET", &path, "", None);
    assert_eq!(code, 404);
}
