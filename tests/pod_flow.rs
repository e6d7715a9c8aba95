//! The pod flow end to end, with controllers written with the `kube` crate doing what their
//! upstream counterparts do, each as the identity its counterpart has, against kapi with
//! `Node,RBAC`, NodeRestriction and the ServiceAccount plugin in force:
//!
//! - the controller-manager (`system:kube-controller-manager`) creates each controller's
//!   ServiceAccount and gets its token from the TokenRequest API;
//! - deployment, replica set, job, endpointslice, garbage collector, namespace, service account
//!   and root CA controllers run on those tokens;
//! - the scheduler (`system:kube-scheduler`) posts `pods/binding` to one of three Nodes;
//! - a kubelet per node (`system:node:<n>`) registers its Node, asks tokens for its pods'
//!   ServiceAccounts, patches `pods/status` (Running with a pod IP, or Succeeded for a Job's
//!   pod) and finishes graceful deletions.
//!
//! The test drives kubectl's part as the admin and checks each step's visible result; every
//! wait is bounded.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use kube::{Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::kapi::Kapi;
use support::objects::{name_of, namespace_of, uid_of};
use support::users::user;

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// How long any one step may take to become visible (debug build, shared machine).
const WAIT: Duration = Duration::from_secs(60);
/// How often a controller looks again (they poll rather than watch: simpler, and the flow's
/// objects are few).
const PASS_INTERVAL: Duration = Duration::from_millis(150);
const NOW: &str = "2026-12-02T10:00:00Z";

type Errors = Arc<Mutex<BTreeMap<String, String>>>;

fn val<T: Serialize>(o: &T) -> Value {
    serde_json::to_value(o).expect("an object serializes")
}

fn typed<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a well-formed object")
}

fn deleting(v: &Value) -> bool {
    v["metadata"]["deletionTimestamp"].is_string()
}

fn owned_by(v: &Value, owner_uid: &str) -> bool {
    v["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["uid"] == owner_uid))
}

fn pod_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn label_selector(match_labels: &Value) -> String {
    match_labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

async fn list<K>(api: &Api<K>, lp: &ListParams) -> Result<Vec<Value>, kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    Ok(api.list(lp).await?.items.iter().map(val).collect())
}

/// A kube client from a kubeconfig file.
async fn client_from(kubeconfig: &std::path::Path) -> Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

/// A client with a certificate `CN=<name>` in `groups`, signed by kapi's CA.
async fn cert_client(k: &Kapi, name: &str, groups: &[&str]) -> Client {
    let u = user(k, name, groups);
    client_from(&u.kubeconfig).await
}

/// The controller-manager's part for `--use-service-account-credentials`: the controller's
/// ServiceAccount in kube-system and a token for it from the TokenRequest API; a client on it.
async fn controller_client(k: &Kapi, kcm: &Client, controller: &str) -> Client {
    let sas: Api<ServiceAccount> = Api::namespaced(kcm.clone(), "kube-system");
    sas.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": controller}})),
    )
    .await
    .unwrap_or_else(|e| panic!("the controller-manager creates {controller}'s account: {e}"));
    let tr = sas
        .create_token_request(
            controller,
            &PostParams::default(),
            &typed::<TokenRequest>(json!({"spec": {"expirationSeconds": 3600}})),
        )
        .await
        .unwrap_or_else(|e| panic!("a token for {controller}: {e}"));
    let token = tr
        .status
        .and_then(|s| s.token)
        .expect("a TokenRequest's token");
    let file = k.data_dir.join(format!("{controller}.kubeconfig"));
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kapi\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: kapi\n    user: u\ncurrent-context: c\n",
            k.port,
            k.data_dir.join("ca.crt").display()
        ),
    )
    .unwrap();
    client_from(&file).await
}

/// Runs `pass` every `PASS_INTERVAL` until aborted, keeping its last error by `name`.
fn spawn<F, Fut>(errors: &Errors, name: &str, pass: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), kube::Error>> + Send,
{
    let (errors, name) = (errors.clone(), name.to_string());
    tokio::spawn(async move {
        loop {
            if let Err(e) = pass().await {
                let mut errors = errors.lock().unwrap_or_else(|e| e.into_inner());
                errors.insert(name.clone(), e.to_string());
            }
            tokio::time::sleep(PASS_INTERVAL).await;
        }
    })
}

/// The deployment controller's name for a template: a hash of it in the safe alphabet.
fn template_hash(template: &Value) -> String {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| SAFE[usize::from(d - b'0')] as char)
        .collect()
}

// Every controller below reads as the controller-manager's informers do, with its own
// identity (`r`), and writes with its controller's ServiceAccount token (`c`).

/// One pass of the deployment controller: a ReplicaSet per template hash, the current one at
/// the Deployment's replicas and the older ones at 0, and the Deployment's status.
async fn deployment_pass(r: Client, c: Client) -> Result<(), kube::Error> {
    for d in list(&Api::<Deployment>::all(r.clone()), &ListParams::default()).await? {
        if deleting(&d) {
            continue;
        }
        let ns = namespace_of(&d);
        let rs_api: Api<ReplicaSet> = Api::namespaced(c.clone(), &ns);
        let hash = template_hash(&d["spec"]["template"]);
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let owned: Vec<Value> = list(
            &Api::<ReplicaSet>::namespaced(r.clone(), &ns),
            &ListParams::default(),
        )
        .await?
        .into_iter()
        .filter(|rs| owned_by(rs, &uid_of(&d)))
        .collect();
        let current = format!("{}-{hash}", name_of(&d));
        if !owned.iter().any(|rs| name_of(rs) == current) {
            let mut template = d["spec"]["template"].clone();
            template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"]["matchLabels"].clone();
            selector["pod-template-hash"] = json!(hash);
            let rs = json!({"metadata": {"name": current, "labels": template["metadata"]["labels"],
                    "annotations": {"deployment.kubernetes.io/revision": (owned.len() + 1).to_string()},
                    "ownerReferences": [owner(&d, "apps/v1", "Deployment")]},
                "spec": {"replicas": want, "selector": {"matchLabels": selector}, "template": template}});
            rs_api
                .create(&PostParams::default(), &typed::<ReplicaSet>(rs))
                .await?;
        }
        let mut status = (0, 0, 0);
        for rs in &owned {
            let target = if name_of(rs) == current { want } else { 0 };
            if rs["spec"]["replicas"].as_i64() != Some(target) {
                rs_api
                    .patch(
                        &name_of(rs),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"replicas": target}})),
                    )
                    .await?;
            }
            let n = |f: &str| rs["status"][f].as_i64().unwrap_or(0);
            status.0 += n("replicas");
            status.1 += n("readyReplicas");
            if name_of(rs) == current {
                status.2 = n("replicas");
            }
        }
        let mut with = d.clone();
        with["status"] = json!({"observedGeneration": d["metadata"]["generation"],
            "replicas": status.0, "readyReplicas": status.1, "availableReplicas": status.1,
            "updatedReplicas": status.2});
        if with["status"] != d["status"] {
            Api::<Deployment>::namespaced(c.clone(), &ns)
                .replace_status(&name_of(&d), &PostParams::default(), &typed(with))
                .await?;
        }
    }
    Ok(())
}

fn owner(o: &Value, api_version: &str, kind: &str) -> Value {
    val(&OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name_of(o),
        uid: uid_of(o),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// One pass of the replica set controller: pods created or deleted to the replicas, and the
/// ReplicaSet's status.
async fn replicaset_pass(r: Client, c: Client) -> Result<(), kube::Error> {
    for rs in list(&Api::<ReplicaSet>::all(r.clone()), &ListParams::default()).await? {
        if deleting(&rs) {
            continue;
        }
        let ns = namespace_of(&rs);
        let pods_api: Api<Pod> = Api::namespaced(c.clone(), &ns);
        let selector = label_selector(&rs["spec"]["selector"]["matchLabels"]);
        let active: Vec<Value> = list(
            &Api::<Pod>::namespaced(r.clone(), &ns),
            &ListParams::default().labels(&selector),
        )
        .await?
        .into_iter()
        .filter(|p| owned_by(p, &uid_of(&rs)) && !deleting(p))
        .collect();
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1) as usize;
        for _ in active.len()..want {
            let template = &rs["spec"]["template"];
            let pod = json!({"metadata": {"generateName": format!("{}-", name_of(&rs)),
                    "labels": template["metadata"]["labels"],
                    "ownerReferences": [owner(&rs, "apps/v1", "ReplicaSet")]},
                "spec": template["spec"]});
            pods_api
                .create(&PostParams::default(), &typed::<Pod>(pod))
                .await?;
        }
        for extra in active.iter().skip(want) {
            pods_api
                .delete(&name_of(extra), &DeleteParams::default())
                .await?;
        }
        let ready = active.iter().take(want).filter(|p| pod_ready(p)).count();
        let n = active.len().min(want);
        let mut with = rs.clone();
        with["status"] = json!({"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]});
        if with["status"] != rs["status"] {
            Api::<ReplicaSet>::namespaced(c.clone(), &ns)
                .replace_status(&name_of(&rs), &PostParams::default(), &typed(with))
                .await?;
        }
    }
    Ok(())
}

/// One pass of the scheduler: each unbound pod bound to the node with the fewest pods.
async fn scheduler_pass(c: Client) -> Result<(), kube::Error> {
    let pods = list(&Api::<Pod>::all(c.clone()), &ListParams::default()).await?;
    let mut load: BTreeMap<&str, usize> = NODES.iter().map(|n| (*n, 0)).collect();
    for p in &pods {
        if let Some(n) = p["spec"]["nodeName"].as_str()
            && let Some(count) = load.get_mut(n)
        {
            *count += 1;
        }
    }
    for p in pods
        .iter()
        .filter(|p| !p["spec"]["nodeName"].is_string() && !deleting(p))
    {
        let node = load
            .iter()
            .min_by_key(|(n, count)| (**count, **n))
            .map(|(n, _)| *n)
            .unwrap_or(NODES[0]);
        *load.entry(node).or_default() += 1;
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name_of(p), "uid": uid_of(p)},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        Api::<Pod>::namespaced(c.clone(), &namespace_of(p))
            .create_subresource::<Value, Value>(
                "binding",
                &name_of(p),
                &PostParams::default(),
                &binding,
            )
            .await?;
    }
    Ok(())
}

/// A kubelet's registration: its Node, then a Ready status with its address and capacity.
async fn kubelet_registers(c: &Client, index: usize) -> Result<(), kube::Error> {
    let node = NODES[index];
    let nodes: Api<Node> = Api::all(c.clone());
    nodes
        .create(
            &PostParams::default(),
            &typed(
                json!({"metadata": {"name": node, "labels": {"kubernetes.io/hostname": node,
                "kubernetes.io/os": "linux"}}}),
            ),
        )
        .await?;
    nodes
        .patch_status(
            node,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": NOW, "lastTransitionTime": NOW}],
                "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", index + 1)}],
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})),
        )
        .await?;
    Ok(())
}

/// One pass of a kubelet: its pods (by `spec.nodeName`) started — a token for the pod's
/// ServiceAccount, then Running with an IP, or Succeeded for a pod that runs to completion —
/// and its pods' graceful deletions finished.
async fn kubelet_pass(c: Client, index: usize, ips: Arc<Mutex<u32>>) -> Result<(), kube::Error> {
    let node = NODES[index];
    let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
    for p in list(&Api::<Pod>::all(c.clone()), &lp).await? {
        let pods: Api<Pod> = Api::namespaced(c.clone(), &namespace_of(&p));
        if deleting(&p) {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid_of(&p)),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            pods.delete(&name_of(&p), &dp).await?;
            continue;
        }
        if p["status"]["phase"] != "Pending" {
            continue;
        }
        let sa = p["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        Api::<ServiceAccount>::namespaced(c.clone(), &namespace_of(&p))
            .create_token_request(
                sa,
                &PostParams::default(),
                &typed(json!({"spec": {"expirationSeconds": 3607, "boundObjectRef":
                    {"apiVersion": "v1", "kind": "Pod", "name": name_of(&p), "uid": uid_of(&p)}}})),
            )
            .await?;
        let completes = p["spec"]["restartPolicy"] != "Always";
        let (phase, ready, state) = if completes {
            (
                "Succeeded",
                "False",
                json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": NOW, "finishedAt": NOW}}),
            )
        } else {
            ("Running", "True", json!({"running": {"startedAt": NOW}}))
        };
        let ip = {
            let mut next = ips.lock().unwrap();
            *next += 1;
            format!("10.200.{}.{}", index, *next)
        };
        let container = &p["spec"]["containers"][0];
        pods.patch_status(
            &name_of(&p),
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                "hostIP": format!("10.0.0.{}", index + 1), "startTime": NOW,
                "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": NOW},
                               {"type": "ContainersReady", "status": ready, "lastTransitionTime": NOW}],
                "containerStatuses": [{"name": container["name"], "image": container["image"],
                    "imageID": "", "ready": !completes, "restartCount": 0, "state": state}]}})),
        )
        .await?;
    }
    Ok(())
}

/// One pass of the endpointslice controller: each selecting Service's slice holds its ready
/// pods' addresses.
async fn endpointslice_pass(r: Client, c: Client) -> Result<(), kube::Error> {
    for svc in list(&Api::<Service>::all(r.clone()), &ListParams::default()).await? {
        let ns = namespace_of(&svc);
        let selector = label_selector(&svc["spec"]["selector"]);
        if selector.is_empty() {
            continue;
        }
        let pods = list(
            &Api::<Pod>::namespaced(r.clone(), &ns),
            &ListParams::default().labels(&selector),
        )
        .await?;
        let mut endpoints: Vec<Value> = pods
            .iter()
            .filter(|p| pod_ready(p) && !deleting(p) && p["status"]["podIP"].is_string())
            .map(|p| json!({"addresses": [p["status"]["podIP"]],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": p["spec"]["nodeName"],
                "targetRef": {"kind": "Pod", "name": name_of(p), "namespace": ns, "uid": uid_of(p)}}))
            .collect();
        endpoints.sort_by_key(|e| e["addresses"][0].as_str().unwrap_or_default().to_string());
        let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), &ns);
        let lp =
            ListParams::default().labels(&format!("kubernetes.io/service-name={}", name_of(&svc)));
        let existing = list(&Api::<EndpointSlice>::namespaced(r.clone(), &ns), &lp).await?;
        match existing.first() {
            None => {
                let slice = json!({"metadata": {"generateName": format!("{}-", name_of(&svc)),
                        "labels": {"kubernetes.io/service-name": name_of(&svc),
                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                        "ownerReferences": [owner(&svc, "v1", "Service")]},
                    "addressType": "IPv4", "endpoints": endpoints,
                    "ports": [{"name": "", "port": svc["spec"]["ports"][0]["targetPort"], "protocol": "TCP"}]});
                slices
                    .create(&PostParams::default(), &typed::<EndpointSlice>(slice))
                    .await?;
            }
            Some(slice)
                if slice["endpoints"].as_array().cloned().unwrap_or_default() != endpoints =>
            {
                let mut with = slice.clone();
                with["endpoints"] = json!(endpoints);
                slices
                    .replace(&name_of(slice), &PostParams::default(), &typed(with))
                    .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One pass of the job controller: a Job's pod (tracked by its finalizer), and once it has
/// succeeded, the finalizer removed and the Job complete.
async fn job_pass(r: Client, c: Client) -> Result<(), kube::Error> {
    for job in list(&Api::<Job>::all(r.clone()), &ListParams::default()).await? {
        let complete = job["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Complete"));
        if complete || deleting(&job) {
            continue;
        }
        let ns = namespace_of(&job);
        let pods_api: Api<Pod> = Api::namespaced(c.clone(), &ns);
        let pods: Vec<Value> = list(
            &Api::<Pod>::namespaced(r.clone(), &ns),
            &ListParams::default(),
        )
        .await?
        .into_iter()
        .filter(|p| owned_by(p, &uid_of(&job)))
        .collect();
        let jobs: Api<Job> = Api::namespaced(c.clone(), &ns);
        let Some(pod) = pods.first() else {
            let template = &job["spec"]["template"];
            let pod = json!({"metadata": {"generateName": format!("{}-", name_of(&job)),
                    "labels": template["metadata"]["labels"],
                    "finalizers": ["batch.kubernetes.io/job-tracking"],
                    "ownerReferences": [owner(&job, "batch/v1", "Job")]},
                "spec": template["spec"]});
            pods_api
                .create(&PostParams::default(), &typed::<Pod>(pod))
                .await?;
            let mut with = job.clone();
            with["status"] = json!({"active": 1, "ready": 0, "terminating": 0, "startTime": NOW,
                "uncountedTerminatedPods": {}});
            jobs.replace_status(&name_of(&job), &PostParams::default(), &typed(with))
                .await?;
            continue;
        };
        if pod["status"]["phase"] != "Succeeded" {
            continue;
        }
        pods_api
            .patch(
                &name_of(pod),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await?;
        let condition = |t: &str| {
            json!({"type": t, "status": "True", "reason": "CompletionsReached",
                "message": "Reached expected number of succeeded pods",
                "lastProbeTime": NOW, "lastTransitionTime": NOW})
        };
        let mut with = job.clone();
        with["status"] = json!({"succeeded": 1, "active": 0, "ready": 0, "terminating": 0,
            "startTime": job["status"]["startTime"], "completionTime": NOW,
            "uncountedTerminatedPods": {},
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")]});
        jobs.replace_status(&name_of(&job), &PostParams::default(), &typed(with))
            .await?;
    }
    Ok(())
}

/// The kinds the garbage collector looks at, owners before dependents.
#[derive(Clone, Copy)]
enum Kind {
    Deployment,
    ReplicaSet,
    Job,
    Pod,
}

impl Kind {
    fn of(kind: &str) -> Option<Kind> {
        match kind {
            "Deployment" => Some(Kind::Deployment),
            "ReplicaSet" => Some(Kind::ReplicaSet),
            "Job" => Some(Kind::Job),
            "Pod" => Some(Kind::Pod),
            _ => None,
        }
    }

    fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Kind::Deployment => ("apps", "v1", "Deployment", "deployments"),
            Kind::ReplicaSet => ("apps", "v1", "ReplicaSet", "replicasets"),
            Kind::Job => ("batch", "v1", "Job", "jobs"),
            Kind::Pod => ("", "v1", "Pod", "pods"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    fn api(self, c: &Client, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(c.clone(), ns, &self.resource())
    }

    async fn list(self, c: &Client) -> Result<Vec<Value>, kube::Error> {
        list(
            &Api::<DynamicObject>::all_with(c.clone(), &self.resource()),
            &ListParams::default(),
        )
        .await
    }

    /// Deletes `o` (if it is still the same object) with `policy`.
    async fn delete(
        self,
        c: &Client,
        o: &Value,
        policy: PropagationPolicy,
    ) -> Result<(), kube::Error> {
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid_of(o)),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api(c, &namespace_of(o)).delete(&name_of(o), &dp).await {
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }
}

/// One pass of the garbage collector: the dependents of an owner deleted in the foreground
/// are deleted (in the foreground too) before its `foregroundDeletion` finalizer goes; a
/// dependent whose owner is gone is deleted (background).
async fn garbage_collector_pass(r: Client, c: Client) -> Result<(), kube::Error> {
    let kinds = [Kind::Deployment, Kind::ReplicaSet, Kind::Job, Kind::Pod];
    let mut all = Vec::new();
    for kind in kinds {
        for o in kind.list(&r).await? {
            all.push((kind, o));
        }
    }
    for (kind, o) in &all {
        let finalizers = o["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if deleting(o) && finalizers.iter().any(|f| f == "foregroundDeletion") {
            let dependents: Vec<&(Kind, Value)> = all
                .iter()
                .filter(|(_, d)| owned_by(d, &uid_of(o)))
                .collect();
            for (dk, d) in &dependents {
                if !deleting(d) {
                    dk.delete(&c, d, PropagationPolicy::Foreground).await?;
                }
            }
            if dependents.is_empty() {
                let rest: Vec<Value> = finalizers
                    .into_iter()
                    .filter(|f| f != "foregroundDeletion")
                    .collect();
                let patch = Patch::Merge(json!({"metadata": {"finalizers": rest,
                    "resourceVersion": o["metadata"]["resourceVersion"]}}));
                kind.api(&c, &namespace_of(o))
                    .patch(&name_of(o), &PatchParams::default(), &patch)
                    .await?;
            }
        }
        for r in o["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(owner_kind) = r["kind"].as_str().and_then(Kind::of) else {
                continue;
            };
            let name = r["name"].as_str().unwrap_or_default();
            let present = owner_kind.api(&c, &namespace_of(o)).get_opt(name).await?;
            let gone = present.is_none_or(|p| p.metadata.uid.as_deref() != r["uid"].as_str());
            if gone && !deleting(o) {
                kind.delete(&c, o, PropagationPolicy::Background).await?;
            }
        }
    }
    Ok(())
}

/// The resources the namespace controller empties a namespace of (those the flow creates).
async fn namespace_contents(c: &Client, ns: &str, delete: bool) -> Result<usize, kube::Error> {
    let lp = ListParams::default();
    let dp = DeleteParams::default();
    macro_rules! each {
        ($($t:ty),*) => {{
            let mut left = 0;
            $(
                let api: Api<$t> = Api::namespaced(c.clone(), ns);
                if delete {
                    api.delete_collection(&dp, &lp).await?;
                }
                left += api.list(&lp).await?.items.len();
            )*
            left
        }};
    }
    Ok(each!(
        ConfigMap,
        Deployment,
        ReplicaSet,
        Job,
        Pod,
        Service,
        EndpointSlice,
        ServiceAccount
    ))
}

/// One pass of the namespace controller: a terminating namespace emptied, then finalized.
async fn namespace_pass(r: Client, c: Client) -> Result<(), kube::Error> {
    let namespaces: Api<Namespace> = Api::all(c.clone());
    for ns in list(&Api::<Namespace>::all(r.clone()), &ListParams::default()).await? {
        let finalizers = ns["spec"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !deleting(&ns) || !finalizers.iter().any(|f| f == "kubernetes") {
            continue;
        }
        let name = name_of(&ns);
        namespace_contents(&c, &name, true).await?;
        if namespace_contents(&c, &name, false).await? > 0 {
            continue;
        }
        let mut with = ns.clone();
        with["spec"]["finalizers"] = json!([]);
        namespaces
            .replace_subresource("finalize", &name, &PostParams::default(), &with)
            .await?;
    }
    Ok(())
}

/// One pass of the service account and root CA publisher controllers: each active
/// namespace's `default` ServiceAccount and `kube-root-ca.crt`.
async fn namespace_defaults_pass(
    r: Client,
    sa: Client,
    root_ca: Client,
) -> Result<(), kube::Error> {
    for ns in list(&Api::<Namespace>::all(r.clone()), &ListParams::default()).await? {
        if deleting(&ns) {
            continue;
        }
        let name = name_of(&ns);
        let accounts: Api<ServiceAccount> = Api::namespaced(r.clone(), &name);
        if accounts.get_opt("default").await?.is_none() {
            Api::<ServiceAccount>::namespaced(sa.clone(), &name)
                .create(
                    &PostParams::default(),
                    &typed(json!({"metadata": {"name": "default"}})),
                )
                .await?;
        }
        let cms: Api<ConfigMap> = Api::namespaced(r.clone(), &name);
        if cms.get_opt("kube-root-ca.crt").await?.is_none() {
            Api::<ConfigMap>::namespaced(root_ca.clone(), &name).create(
                &PostParams::default(),
                &typed(json!({"metadata": {"name": "kube-root-ca.crt"},
                    "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}})),
            )
            .await?;
        }
    }
    Ok(())
}

/// The test's view as the admin, and the controllers' last errors for its failure messages.
struct Flow {
    admin: Client,
    errors: Errors,
}

impl Flow {
    /// Waits (bounded) until `check` gives a value.
    async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                let errors = self
                    .errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                panic!("not within {WAIT:?}: {what}; the controllers' last errors: {errors:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn pods(&self, ns: &str, selector: &str) -> Vec<Value> {
        list(
            &Api::<Pod>::namespaced(self.admin.clone(), ns),
            &ListParams::default().labels(selector),
        )
        .await
        .unwrap_or_default()
    }

    async fn replicasets(&self, ns: &str, selector: &str) -> Vec<Value> {
        list(
            &Api::<ReplicaSet>::namespaced(self.admin.clone(), ns),
            &ListParams::default().labels(selector),
        )
        .await
        .unwrap_or_default()
    }

    /// The running (ready, addressed) pods of `selector` once there are exactly `n` pods and
    /// all of them run.
    async fn running(&self, ns: &str, selector: &str, n: usize) -> Vec<Value> {
        self.eventually(
            &format!("{n} pods of {selector} running in {ns}"),
            || async {
                let pods = self.pods(ns, selector).await;
                let running = pods
                    .iter()
                    .filter(|p| {
                        p["status"]["phase"] == "Running"
                            && pod_ready(p)
                            && p["status"]["podIP"].is_string()
                    })
                    .count();
                (pods.len() == n && running == n).then_some(pods)
            },
        )
        .await
    }

    /// The addresses of the Service's EndpointSlices once they are exactly `want`.
    async fn slice_addresses(&self, ns: &str, service: &str, want: &BTreeSet<String>) {
        let slices: Api<EndpointSlice> = Api::namespaced(self.admin.clone(), ns);
        let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
        self.eventually(
            &format!("the EndpointSlice of {service} holds {want:?}"),
            || async {
                let items = list(&slices, &lp).await.unwrap_or_default();
                let got: BTreeSet<String> = items
                    .iter()
                    .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                    .filter_map(|e| e["addresses"][0].as_str().map(str::to_string))
                    .collect();
                (!items.is_empty() && &got == want).then_some(())
            },
        )
        .await
    }

    async fn gone<K>(&self, api: &Api<K>, name: &str)
    where
        K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        self.eventually(&format!("{name} deleted"), || async {
            matches!(api.get_opt(name).await, Ok(None)).then_some(())
        })
        .await
    }
}

fn ips(pods: &[Value]) -> BTreeSet<String> {
    pods.iter()
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect()
}

fn deployment(name: &str, replicas: i64, image: &str) -> Deployment {
    typed(json!({"metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]}}}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_services_jobs_and_namespaces_flow_through_kube_controllers() {
    let k = Kapi::start_control_plane();
    let admin = client_from(&k.kubeconfig()).await;
    let errors: Errors = Arc::default();
    let flow = Flow {
        admin: admin.clone(),
        errors: errors.clone(),
    };

    // The components and their identities.
    let kcm = cert_client(&k, "system:kube-controller-manager", &[]).await;
    let mut controllers = BTreeMap::new();
    for name in [
        "deployment-controller",
        "replicaset-controller",
        "job-controller",
        "endpointslice-controller",
        "generic-garbage-collector",
        "namespace-controller",
        "service-account-controller",
        "root-ca-cert-publisher",
    ] {
        controllers.insert(name, controller_client(&k, &kcm, name).await);
    }
    let scheduler = cert_client(&k, "system:kube-scheduler", &[]).await;
    let mut kubelets = Vec::new();
    for (i, node) in NODES.iter().enumerate() {
        let c = cert_client(&k, &format!("system:node:{node}"), &["system:nodes"]).await;
        kubelet_registers(&c, i)
            .await
            .unwrap_or_else(|e| panic!("{node} registers: {e}"));
        kubelets.push(c);
    }
    // NodeRestriction: a kubelet changes only its own Node.
    let foreign = Api::<Node>::all(kubelets[0].clone())
        .patch(
            NODES[1],
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await;
    assert!(
        matches!(&foreign, Err(kube::Error::Api(s)) if s.code == 403),
        "{foreign:?}"
    );
    let nodes = list(&Api::<Node>::all(admin.clone()), &ListParams::default())
        .await
        .unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(
        nodes
            .iter()
            .all(|n| n["status"]["conditions"][0]["status"] == "True"),
        "{nodes:?}"
    );

    let c = |n: &str| controllers[n].clone();
    let mut tasks = vec![
        spawn(&errors, "deployment", {
            let c = c("deployment-controller");
            let r = kcm.clone();
            move || deployment_pass(r.clone(), c.clone())
        }),
        spawn(&errors, "replicaset", {
            let c = c("replicaset-controller");
            let r = kcm.clone();
            move || replicaset_pass(r.clone(), c.clone())
        }),
        spawn(&errors, "job", {
            let c = c("job-controller");
            let r = kcm.clone();
            move || job_pass(r.clone(), c.clone())
        }),
        spawn(&errors, "endpointslice", {
            let c = c("endpointslice-controller");
            let r = kcm.clone();
            move || endpointslice_pass(r.clone(), c.clone())
        }),
        spawn(&errors, "garbage-collector", {
            let c = c("generic-garbage-collector");
            let r = kcm.clone();
            move || garbage_collector_pass(r.clone(), c.clone())
        }),
        spawn(&errors, "namespace", {
            let c = c("namespace-controller");
            let r = kcm.clone();
            move || namespace_pass(r.clone(), c.clone())
        }),
        spawn(&errors, "namespace-defaults", {
            let (sa, ca) = (c("service-account-controller"), c("root-ca-cert-publisher"));
            let r = kcm.clone();
            move || namespace_defaults_pass(r.clone(), sa.clone(), ca.clone())
        }),
        spawn(&errors, "scheduler", {
            let c = scheduler.clone();
            move || scheduler_pass(c.clone())
        }),
    ];
    for (i, kubelet) in kubelets.iter().enumerate() {
        let (c, next_ip) = (kubelet.clone(), Arc::new(Mutex::new(0)));
        tasks.push(spawn(&errors, NODES[i], move || {
            kubelet_pass(c.clone(), i, next_ip.clone())
        }));
    }

    // A namespace; its default ServiceAccount comes from its controller.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "shop"}})),
        )
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "shop");
    flow.eventually("shop's default ServiceAccount", || async {
        accounts.get_opt("default").await.ok().flatten()
    })
    .await;

    // A Deployment of 3: one ReplicaSet, 3 pods bound to the nodes, running with addresses.
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "shop");
    deployments
        .create(&PostParams::default(), &deployment("web", 3, "nginx:1.27"))
        .await
        .unwrap();
    let pods = flow.running("shop", "app=web", 3).await;
    let rss = flow.replicasets("shop", "app=web").await;
    assert_eq!(rss.len(), 1, "{rss:?}");
    let first_rs = rss[0].clone();
    for p in &pods {
        assert!(owned_by(p, &uid_of(&first_rs)), "{p}");
        assert!(
            NODES.contains(&p["spec"]["nodeName"].as_str().unwrap_or_default()),
            "{p}"
        );
        assert_eq!(p["spec"]["containers"][0]["image"], "nginx:1.27");
    }
    let spread: BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    assert_eq!(
        spread.len(),
        3,
        "the scheduler spreads 3 pods over 3 nodes: {spread:?}"
    );
    flow.eventually("the Deployment reports 3 ready replicas", || async {
        let d = val(&deployments.get("web").await.ok()?);
        (d["status"]["readyReplicas"] == 3).then_some(())
    })
    .await;

    // A Service: its EndpointSlice holds the ready pods' addresses.
    let services: Api<Service> = Api::namespaced(admin.clone(), "shop");
    let svc = services
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})),
        )
        .await
        .unwrap();
    let cluster_ip = svc.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    assert!(cluster_ip.starts_with("10.32.0."), "{cluster_ip}");
    flow.slice_addresses("shop", "web", &ips(&pods)).await;

    // Scaled 3 → 5 through the scale subresource.
    let scale = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(5));
    let pods = flow.running("shop", "app=web", 5).await;
    flow.slice_addresses("shop", "web", &ips(&pods)).await;

    // A new image: a second ReplicaSet takes the 5 replicas, the first goes to 0.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}}})),
        )
        .await
        .unwrap();
    let pods = flow
        .eventually("5 pods of the new image running", || async {
            let pods = flow.pods("shop", "app=web").await;
            let new = pods
                .iter()
                .filter(|p| p["spec"]["containers"][0]["image"] == "nginx:1.28" && pod_ready(p))
                .count();
            (pods.len() == 5 && new == 5).then_some(pods)
        })
        .await;
    let rss = flow.replicasets("shop", "app=web").await;
    assert_eq!(rss.len(), 2, "{rss:?}");
    let replicas: BTreeMap<String, i64> = rss
        .iter()
        .map(|rs| (name_of(rs), rs["spec"]["replicas"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(replicas.get(&name_of(&first_rs)), Some(&0), "{replicas:?}");
    assert!(replicas.values().any(|r| *r == 5), "{replicas:?}");
    flow.slice_addresses("shop", "web", &ips(&pods)).await;

    // A Job's pod runs to completion; the Job completes.
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "shop");
    jobs.create(
        &PostParams::default(),
        &typed(
            json!({"metadata": {"name": "once"}, "spec": {"template": {"spec": {
            "containers": [{"name": "once", "image": "busybox", "command": ["true"]}],
            "restartPolicy": "Never"}}}}),
        ),
    )
    .await
    .unwrap();
    let job = flow
        .eventually("the Job completes", || async {
            let j = val(&jobs.get("once").await.ok()?);
            let complete = j["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Complete" && c["status"] == "True")
            });
            complete.then_some(j)
        })
        .await;
    assert_eq!(job["status"]["succeeded"], 1, "{job}");
    let job_pods = flow.pods("shop", "job-name=once").await;
    assert_eq!(job_pods.len(), 1, "{job_pods:?}");
    assert_eq!(job_pods[0]["status"]["phase"], "Succeeded");
    assert!(
        job_pods[0]["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{}",
        job_pods[0]
    );

    // Foreground deletion: kapi keeps the Deployment (deletionTimestamp, foregroundDeletion)
    // until the garbage collector has removed its ReplicaSets and their pods.
    let deleted = deployments
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    let kept = val(&deleted
        .left()
        .expect("a foreground delete answers the object"));
    assert!(deleting(&kept), "{kept}");
    assert!(
        kept["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion")),
        "{kept}"
    );
    flow.gone(&deployments, "web").await;
    assert!(flow.replicasets("shop", "app=web").await.is_empty());
    flow.eventually("the Deployment's pods collected", || async {
        flow.pods("shop", "app=web").await.is_empty().then_some(())
    })
    .await;
    flow.eventually("the Service's EndpointSlice emptied", || async {
        let slices = list(
            &Api::<EndpointSlice>::namespaced(admin.clone(), "shop"),
            &ListParams::default(),
        )
        .await
        .ok()?;
        slices
            .iter()
            .all(|s| s["endpoints"].as_array().is_none_or(Vec::is_empty))
            .then_some(())
    })
    .await;

    // Background deletion: kapi removes the Deployment at once, the collector its dependents.
    deployments
        .create(&PostParams::default(), &deployment("api", 2, "api:1"))
        .await
        .unwrap();
    flow.running("shop", "app=api", 2).await;
    deployments
        .delete("api", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deployments.get_opt("api").await.unwrap().is_none());
    flow.eventually(
        "the background-deleted Deployment's ReplicaSet and pods collected",
        || async {
            let left = flow.replicasets("shop", "app=api").await.len()
                + flow.pods("shop", "app=api").await.len();
            (left == 0).then_some(())
        },
    )
    .await;

    // A namespace with content deleted: kapi sets it Terminating; the namespace controller
    // empties it and finalizes it.
    namespaces
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "scratch"}})),
        )
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(admin.clone(), "scratch")
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "settings"}, "data": {"a": "b"}})),
        )
        .await
        .unwrap();
    let scratch_accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "scratch");
    flow.eventually("scratch's default ServiceAccount", || async {
        scratch_accounts.get_opt("default").await.ok().flatten()
    })
    .await;
    Api::<Deployment>::namespaced(admin.clone(), "scratch")
        .create(&PostParams::default(), &deployment("tmp", 1, "tmp:1"))
        .await
        .unwrap();
    flow.running("scratch", "app=tmp", 1).await;
    let terminating = val(&namespaces
        .delete("scratch", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("a namespace delete answers the namespace"));
    assert_eq!(
        terminating["status"]["phase"], "Terminating",
        "{terminating}"
    );
    assert_eq!(
        terminating["spec"]["finalizers"],
        json!(["kubernetes"]),
        "{terminating}"
    );
    let refused = Api::<ConfigMap>::namespaced(admin.clone(), "scratch")
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "late"}})),
        )
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404),
        "{refused:?}"
    );
    flow.gone(&namespaces, "scratch").await;

    // What remains: shop with its Service, the completed Job and its pod.
    assert!(services.get_opt("web").await.unwrap().is_some());
    assert_eq!(flow.pods("shop", "").await.len(), 1);
    assert!(jobs.get_opt("once").await.unwrap().is_some());
    for t in tasks {
        t.abort();
    }
}
