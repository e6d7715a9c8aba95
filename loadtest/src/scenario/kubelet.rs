//! `kubelets`: one simulated kubelet per node, each on its own HTTP/2 connection like a real
//! kubelet: register the Node, renew its Lease every `LEASE_RENEW`, watch its own pods
//! (`fieldSelector=spec.nodeName=<node>`) and patch a newly bound pod's status to Running.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Ctx;
use crate::client::{Api, Call};
use crate::metrics::Scope;
use crate::objects;
use crate::watch::{WatchEnd, watch};

/// The kubelet's default node-lease renew interval.
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// Pods waiting for their status patch per kubelet: a node runs at most 110 pods, and churn adds
/// a few more; beyond this, a pod's patch is dropped (and counted as an event only).
const PENDING_PODS: usize = 256;
/// Pause before re-watching after a failed watch.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

pub fn spawn(ctx: &Ctx, tasks: &mut JoinSet<()>) -> Result<(), String> {
    for i in 0..ctx.plan.nodes {
        let api = ctx.api()?;
        let ctx = ctx.clone();
        tasks.spawn(async move { kubelet(ctx, api, objects::node_name(i), i).await });
    }
    Ok(())
}

async fn kubelet(ctx: Ctx, api: Api, node: String, index: usize) {
    // A kubelet registers its Node unless it exists already (a restarted kubelet, or a
    // second run against the same cluster).
    let path = format!("/api/v1/nodes/{node}");
    let (existing, _) = api
        .call(Call::new("GET", "nodes", Scope::Resource, &path).probe())
        .await;
    if existing != 200 {
        let (status, body) = api
            .call(
                Call::new("POST", "nodes", Scope::Cluster, "/api/v1/nodes")
                    .json(&objects::node(&node)),
            )
            .await;
        if status == 201 {
            ctx.acknowledged(&body);
        }
    }
    let (tx, rx) = mpsc::channel::<(String, String)>(PENDING_PODS);
    let lease = tokio::spawn(renew_lease(ctx.clone(), api.clone(), node.clone()));
    let patcher = tokio::spawn(run_pods(ctx.clone(), api.clone(), rx, index));
    let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}");
    let mut rv = String::new();
    while Instant::now() < ctx.deadline {
        if rv.is_empty() {
            let (status, body) = api
                .call(Call::new("LIST", "pods", Scope::Cluster, &path))
                .await;
            if status != 200 {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            rv = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v["metadata"]["resourceVersion"]
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap_or_default();
        }
        let end = watch(
            &api,
            "kubelet",
            &path,
            "pods",
            Scope::Cluster,
            ctx.deadline,
            &ctx.acks,
            &mut rv,
            |ev| {
                let o = &ev.object;
                let running = o.status.get("phase").and_then(|p| p.as_str()) == Some("Running");
                if (ev.kind == "ADDED" || ev.kind == "MODIFIED")
                    && !running
                    && o.metadata.deletion_timestamp.is_none()
                {
                    let _ = tx.try_send((o.metadata.namespace.clone(), o.metadata.name.clone()));
                }
                true
            },
        )
        .await;
        match end {
            WatchEnd::Deadline => break,
            WatchEnd::Closed => {}
            WatchEnd::Failed => {
                rv.clear();
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
    drop(tx);
    let _ = lease.await;
    let _ = patcher.await;
}

/// Creates the node's Lease, then renews it every `LEASE_RENEW` with a PUT, as kubelets do.
async fn renew_lease(ctx: Ctx, api: Api, node: String) {
    let coll = format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
        objects::LEASE_NAMESPACE
    );
    let one = format!("{coll}/{node}");
    let mut lease = objects::lease(&node);
    // The lease controller gets its Lease and creates it only when missing.
    let (existing, body) = api
        .call(Call::new("GET", "leases", Scope::Resource, &one).probe())
        .await;
    let (status, body) = if existing == 200 {
        (existing, body)
    } else {
        api.call(Call::new("POST", "leases", Scope::Namespace, &coll).json(&lease))
            .await
    };
    let mut current: Option<serde_json::Value> = if status == 201 || status == 200 {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let mut tick = tokio::time::interval(LEASE_RENEW);
    tick.tick().await;
    loop {
        if tokio::time::timeout_at(ctx.deadline.into(), tick.tick())
            .await
            .is_err()
        {
            return;
        }
        if current.is_none() {
            let (status, body) = api
                .call(Call::new("GET", "leases", Scope::Resource, &one))
                .await;
            if status == 200 {
                current = serde_json::from_slice(&body).ok();
            }
        }
        if let Some(mut l) = current.take() {
            l["spec"]["renewTime"] = json!(objects::micro_time_now());
            lease = l;
            let (status, body) = api
                .call(Call::new("PUT", "leases", Scope::Resource, &one).json(&lease))
                .await;
            if status == 200 {
                ctx.acknowledged(&body);
                current = serde_json::from_slice(&body).ok();
            }
        }
    }
}

/// Marks bound pods Running, one status patch per pod, in the order the watch delivered them.
async fn run_pods(ctx: Ctx, api: Api, mut rx: mpsc::Receiver<(String, String)>, index: usize) {
    let mut started = 0usize;
    loop {
        let next = tokio::time::timeout_at(ctx.deadline.into(), rx.recv()).await;
        let Ok(Some((ns, name))) = next else { return };
        started += 1;
        let ip = format!(
            "10.{}.{}.{}",
            (index >> 8) & 0xff,
            index & 0xff,
            started % 250 + 2
        );
        let patch = json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": format!("192.168.{}.{}", (index >> 8) & 0xff, index & 0xff),
            "startTime": objects::micro_time_now().split('.').next().map(|s| format!("{s}Z")),
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ]
        }});
        let path = format!("/api/v1/namespaces/{ns}/pods/{name}/status");
        let (status, body) = api
            .call(Call::new("PATCH", "pods/status", Scope::Resource, &path).merge_patch(&patch))
            .await;
        if status == 200 {
            ctx.acknowledged(&body);
        }
    }
}
