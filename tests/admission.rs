//! Upstream's admission plugins against the real binary: those that shape every new Pod
//! (ServiceAccount, Priority, LimitRanger, DefaultTolerationSeconds, RuntimeClass) and those
//! that fill in or check classes (DefaultStorageClass, DefaultIngressClass,
//! PersistentVolumeClaimResize): what they add, and their 403s with upstream's messages.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

fn post(c: &Client, path: &str, body: Value) -> (u16, Value) {
    c.call("POST", path, "application/json", Some(body))
}

#[test]
fn a_pod_gets_its_account_token_volume_priority_and_tolerations() {
    let k = Kapi::start(&["--default-unreachable-toleration-seconds=60"], &[]);
    let c = Client::new(&k);
    k.ok(&["create", "namespace", "apps"]);
    let pods = "/api/v1/namespaces/apps/pods";

    // No default ServiceAccount in the namespace yet: upstream's 403 (after its retries).
    let (code, body) = post(&c, pods, pod("early", json!({})));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"early\" is forbidden: error looking up service account apps/default: serviceaccount \"default\" not found"
    );
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(body["details"]["kind"], "pods");

    k.default_service_account("apps");
    let (code, p) = post(
        &c,
        pods,
        pod(
            "web",
            json!({"initContainers": [{"name": "init", "image": "busybox"}],
                   "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx"}]}),
        ),
    );
    assert_eq!(code, 201, "{p}");
    let spec = &p["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    let volume = &spec["volumes"][0];
    let name = volume["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5,
        "{volume}"
    );
    assert_eq!(
        volume["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]})
    );
    for c in ["initContainers", "containers"] {
        for container in spec[c].as_array().unwrap() {
            assert_eq!(
                container["volumeMounts"],
                json!([{"name": name, "readOnly": true,
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]),
                "{container}"
            );
        }
    }
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(
        spec["tolerations"],
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 60}
        ])
    );

    // An account that opts out of the token, with pull secrets the pod inherits.
    let (code, body) = post(
        &c,
        "/api/v1/namespaces/apps/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"},
               "automountServiceAccountToken": false, "imagePullSecrets": [{"name": "registry"}]}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, p) = post(
        &c,
        pods,
        pod(
            "quiet",
            json!({"serviceAccountName": "quiet",
                   "tolerations": [{"operator": "Exists"}]}),
        ),
    );
    assert_eq!(code, 201, "{p}");
    assert!(p["spec"]["volumes"].is_null(), "{p}");
    assert!(p["spec"]["containers"][0]["volumeMounts"].is_null(), "{p}");
    assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "registry"}]));
    // A toleration of every taint covers both defaults.
    assert_eq!(p["spec"]["tolerations"], json!([{"operator": "Exists"}]));

    // The pod's own choice wins over the account's.
    let (code, p) = post(
        &c,
        pods,
        pod(
            "mounted",
            json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true}),
        ),
    );
    assert_eq!(code, 201, "{p}");
    assert_eq!(
        p["spec"]["volumes"].as_array().map(Vec::len),
        Some(1),
        "{p}"
    );

    // An account that does not exist (no retries for one that is not `default`).
    let (code, body) = post(
        &c,
        pods,
        pod("lost", json!({"serviceAccountName": "ghost"})),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"lost\" is forbidden: error looking up service account apps/ghost: serviceaccount \"ghost\" not found"
    );

    // A mirror pod may not name an account.
    let mut mirror = pod("static", json!({"serviceAccountName": "default"}));
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
    let (code, body) = post(&c, pods, mirror);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"static\" is forbidden: a mirror pod may not reference service accounts"
    );
}

#[test]
fn priority_comes_from_the_pods_class_or_the_global_default() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let pods = "/api/v1/namespaces/default/pods";
    let classes = "/apis/scheduling.k8s.io/v1/priorityclasses";

    // The built-in class of node-critical pods.
    let (code, p) = post(
        &c,
        pods,
        pod(
            "critical",
            json!({"priorityClassName": "system-node-critical"}),
        ),
    );
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["priority"], 2000001000);

    let (code, body) = post(
        &c,
        pods,
        pod("unknown", json!({"priorityClassName": "nope"})),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"unknown\" is forbidden: no PriorityClass with name nope was found"
    );

    let (code, body) = post(&c, pods, pod("claims", json!({"priority": 5})));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"claims\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"
    );

    // A global default class: pods without a class get it, and a second default is refused.
    let class = |name: &str, value: i64, policy: &str| {
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
               "metadata": {"name": name}, "value": value, "globalDefault": true,
               "preemptionPolicy": policy})
    };
    let (code, body) = post(&c, classes, class("usual", 1000, "Never"));
    assert_eq!(code, 201, "{body}");
    let (code, p) = post(&c, pods, pod("plain", json!({})));
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["priorityClassName"], "usual");
    assert_eq!(p["spec"]["priority"], 1000);
    assert_eq!(p["spec"]["preemptionPolicy"], "Never");
    let (code, body) = post(
        &c,
        pods,
        pod("pushy", json!({"preemptionPolicy": "PreemptLowerPriority"})),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"pushy\" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name"
    );
    let (code, body) = post(&c, classes, class("other", 5, "Never"));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass usual is already marked as default. Only one default can exist"
    );

    // An update that leaves priority out keeps it (the plugin restores what create set).
    let (code, p) = c.call(
        "GET",
        "/api/v1/namespaces/default/pods/plain",
        "application/json",
        None,
    );
    assert_eq!(code, 200);
    let mut p = p;
    p["spec"].as_object_mut().unwrap().remove("priority");
    p["metadata"]["labels"] = json!({"touched": "yes"});
    let (code, p) = c.call(
        "PUT",
        "/api/v1/namespaces/default/pods/plain",
        "application/json",
        Some(p),
    );
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["spec"]["priority"], 1000);
}

#[test]
fn the_plugins_can_be_turned_off() {
    let k = Kapi::start(
        &["--disable-admission-plugins=ServiceAccount,Priority,DefaultTolerationSeconds"],
        &[],
    );
    let c = Client::new(&k);
    k.ok(&["create", "namespace", "bare"]);
    let (code, p) = post(&c, "/api/v1/namespaces/bare/pods", pod("p", json!({})));
    assert_eq!(code, 201, "{p}");
    assert!(p["spec"]["serviceAccountName"].is_null(), "{p}");
    assert!(p["spec"]["volumes"].is_null(), "{p}");
    assert!(p["spec"]["priority"].is_null(), "{p}");
    assert!(p["spec"]["tolerations"].is_null(), "{p}");
}

#[test]
fn limit_ranges_default_and_bound_pods_and_claims() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (code, body) = post(
        &c,
        "/api/v1/namespaces/default/limitranges",
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "bounds"},
               "spec": {"limits": [
                   {"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                    "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "1"}},
                   {"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}]}}),
    );
    assert_eq!(code, 201, "{body}");
    let pods = "/api/v1/namespaces/default/pods";
    let (code, p) = post(&c, pods, pod("sized", json!({})));
    assert_eq!(code, 201, "{p}");
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}})
    );
    assert_eq!(
        p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );
    // Burstable now (requests below limits), as upstream computes from the defaulted pod.
    assert_eq!(p["status"]["qosClass"], "Burstable");

    let (code, body) = post(
        &c,
        pods,
        pod(
            "greedy",
            json!({"containers": [{"name": "c", "image": "busybox",
                   "resources": {"limits": {"cpu": "2"}}}]}),
        ),
    );
    // Its requests default to its limits before LimitRanger looks (upstream's decoder defaults
    // first), so only the limit is named.
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"greedy\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );

    let (code, body) = post(
        &c,
        "/api/v1/namespaces/default/persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "big"},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "5Gi"}}}}),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "persistentvolumeclaims \"big\" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 5Gi"
    );
}

#[test]
fn classes_are_defaulted_and_checked() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let storage_class = |name: &str, default: bool, expand: bool| {
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": name, "annotations":
                   {"storageclass.kubernetes.io/is-default-class": default.to_string()}},
               "provisioner": "example.com/disk", "allowVolumeExpansion": expand})
    };
    let classes = "/apis/storage.k8s.io/v1/storageclasses";
    assert_eq!(
        post(&c, classes, storage_class("fixed", true, false)).0,
        201
    );
    let claim = |name: &str, class: Option<&str>| {
        let mut v = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": name},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(class) = class {
            v["spec"]["storageClassName"] = json!(class);
        }
        v
    };
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims";
    let (code, p) = post(&c, claims, claim("a", None));
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["storageClassName"], "fixed");
    // An empty class is a choice: no default.
    let (code, p) = post(&c, claims, claim("b", Some("")));
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["storageClassName"], "");
    // Two defaults: the newest (a second later) wins.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        post(&c, classes, storage_class("growing", true, true)).0,
        201
    );
    let (code, p) = post(&c, claims, claim("c", None));
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["storageClassName"], "growing");

    // Growing a claim: only bound ones of a class that allows it.
    let grow = |name: &str| {
        c.call(
            "PATCH",
            &format!("{claims}/{name}"),
            "application/merge-patch+json",
            Some(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})),
        )
    };
    // An unbound claim's requests are fixed by the update rules, before admission (upstream's
    // order: validation, then validating admission).
    let (code, body) = grow("c");
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["field"], "spec", "{body}");
    for name in ["a", "c"] {
        let (code, body) = c.call(
            "PATCH",
            &format!("{claims}/{name}/status"),
            "application/merge-patch+json",
            Some(json!({"status": {"phase": "Bound"}})),
        );
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = grow("a");
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "persistentvolumeclaims \"a\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
    );
    let (code, body) = grow("c");
    assert_eq!(code, 200, "{body}");

    // Ingresses get the default IngressClass.
    let (code, body) = post(
        &c,
        "/apis/networking.k8s.io/v1/ingressclasses",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": "web", "annotations":
                   {"ingressclass.kubernetes.io/is-default-class": "true"}},
               "spec": {"controller": "example.com/ingress"}}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, p) = post(
        &c,
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
               "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}),
    );
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["ingressClassName"], "web");
}

#[test]
fn a_runtime_class_gives_pods_its_overhead_and_scheduling() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (code, body) = post(
        &c,
        "/apis/node.k8s.io/v1/runtimeclasses",
        json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "sandboxed"},
               "handler": "runsc", "overhead": {"podFixed": {"cpu": "250m", "memory": "120Mi"}},
               "scheduling": {"nodeSelector": {"sandbox": "yes"},
                              "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}}),
    );
    assert_eq!(code, 201, "{body}");
    let pods = "/api/v1/namespaces/default/pods";
    let (code, p) = post(
        &c,
        pods,
        pod("boxed", json!({"runtimeClassName": "sandboxed"})),
    );
    assert_eq!(code, 201, "{p}");
    assert_eq!(
        p["spec"]["overhead"],
        json!({"cpu": "250m", "memory": "120Mi"})
    );
    assert_eq!(p["spec"]["nodeSelector"], json!({"sandbox": "yes"}));
    // After DefaultTolerationSeconds' two (RuntimeClass comes later in upstream's order).
    assert_eq!(
        p["spec"]["tolerations"][2],
        json!({"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"})
    );
    let (code, body) = post(&c, pods, pod("lost", json!({"runtimeClassName": "nope"})));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"lost\" is forbidden: pod rejected: RuntimeClass \"nope\" not found"
    );
    let (code, body) = post(
        &c,
        pods,
        pod(
            "clash",
            json!({"runtimeClassName": "sandboxed", "nodeSelector": {"sandbox": "no"}}),
        ),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"clash\" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; pod.spec.nodeSelector[sandbox] = no"
    );
    let (code, body) = post(&c, pods, pod("heavy", json!({"overhead": {"cpu": "1"}})));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"heavy\" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
    );
}

#[test]
fn resource_quotas_count_and_bound_what_a_namespace_uses() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    k.ok(&["create", "namespace", "q"]);
    k.default_service_account("q");
    let quotas = "/api/v1/namespaces/q/resourcequotas";
    let hard = json!({"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi",
                      "count/configmaps": "1"});
    let (code, body) = post(
        &c,
        quotas,
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
               "spec": {"hard": hard}}),
    );
    assert_eq!(code, 201, "{body}");
    // Until the quota controller has filled its status, the quota constrains nothing.
    let (code, body) = post(
        &c,
        "/api/v1/namespaces/q/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "early"}}),
    );
    assert_eq!(code, 201, "{body}");
    k.ok(&["delete", "configmap", "early", "-n", "q"]);
    // What the resourcequota controller writes.
    let (code, body) = c.json(
        "PATCH",
        &format!("{quotas}/compute/status"),
        "application/merge-patch+json",
        &json!({"status": {"hard": hard, "used": {"pods": "0", "requests.cpu": "0",
                "requests.memory": "0", "count/configmaps": "0"}}}),
    );
    assert_eq!(code, 200, "{body}");

    let sized = |cpu: &str| {
        json!({"containers": [{"name": "c", "image": "busybox",
               "resources": {"requests": {"cpu": cpu, "memory": "512Mi"}}}]})
    };
    // A quota on cpu and memory: every container must state them.
    let (code, body) = post(
        &c,
        "/api/v1/namespaces/q/pods",
        pod(
            "bare",
            json!({"containers": [{"name": "c", "image": "busybox"}]}),
        ),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"bare\" is forbidden: failed quota: compute: must specify requests.cpu for: c; requests.memory for: c"
    );
    let (code, body) = post(&c, "/api/v1/namespaces/q/pods", pod("one", sized("600m")));
    assert_eq!(code, 201, "{body}");
    let (_, quota) = c.call("GET", &format!("{quotas}/compute"), "", None);
    assert_eq!(
        quota["status"]["used"],
        json!({"pods": "1", "requests.cpu": "600m", "requests.memory": "512Mi",
               "count/configmaps": "0"}),
        "{quota}"
    );
    // A dry run is checked but not counted.
    let (code, body) = post(
        &c,
        "/api/v1/namespaces/q/pods?dryRun=All",
        pod("dry", sized("100m")),
    );
    assert_eq!(code, 201, "{body}");
    let (_, again) = c.call("GET", &format!("{quotas}/compute"), "", None);
    assert_eq!(again["status"]["used"], quota["status"]["used"]);
    // Past the hard limit: 403 naming what was asked, used and allowed.
    let (code, body) = post(&c, "/api/v1/namespaces/q/pods", pod("two", sized("600m")));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"two\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
    );
    let (code, body) = post(&c, "/api/v1/namespaces/q/pods", pod("small", sized("400m")));
    assert_eq!(code, 201, "{body}");
    let (_, quota) = c.call("GET", &format!("{quotas}/compute"), "", None);
    assert_eq!(quota["status"]["used"]["requests.memory"], "1Gi", "{quota}");
    // Object counts.
    k.ok(&["create", "configmap", "first", "-n", "q"]);
    let out = k.kubectl(&["create", "configmap", "second", "-n", "q"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "exceeded quota: compute, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1"
        ),
        "{out:?}"
    );
    // A quota whose usage is not known yet refuses what it constrains.
    let (code, body) = post(
        &c,
        quotas,
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "objects"},
               "spec": {"hard": {"services": "1"}}}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = c.json(
        "PATCH",
        &format!("{quotas}/objects/status"),
        "application/merge-patch+json",
        &json!({"status": {"hard": {"services": "1"}}}),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = post(
        &c,
        "/api/v1/namespaces/q/services",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"port": 80}]}}),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "services \"web\" is forbidden: status unknown for quota: objects, resources: services"
    );
}
