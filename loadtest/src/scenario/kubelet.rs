//! `kubelets`: one simulated kubelet per node, each on its own HTTP/2 connection like a real
//! kubelet: register the Node, renew its Lease every `LEASE_RENEW`, patch its Node's status every
//! `NODE_STATUS_REPORT`, watch its own pods (`fieldSelector=spec.nodeName=<node>`) and patch a
//! newly bound pod's status to Running. `heartbeat_only` kubelets only renew and patch.
//!
//! For many thousands of watches on a small machine: `watch_only` kubelets only LIST+WATCH their
//! pods, and `kubelets_per_connection` multiplexes that many kubelets on one HTTP/2 connection
//! (real kubelets each have their own).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Ctx;
use crate::client::{Api, Call};
use crate::metrics::Scope;
use crate::objects;
use crate::watch::Event;
use crate::watch::{WatchEnd, watch_with};

/// The kubelet's default node-lease renew interval.
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How often a kubelet patches its Node's status (heartbeat conditions) without a change.
const NODE_STATUS_REPORT: Duration = Duration::from_secs(60);
/// Pods waiting for their status patch per kubelet: a node runs at most 110 pods, and churn adds
/// a few more; beyond this, a pod's patch is dropped (and counted as an event only).
const PENDING_PODS: usize = 256;
/// Pause before re-watching after a failed watch.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Kubelets started per second (their connections, their first LISTs): a real cluster's kubelets
/// do not all start in the same millisecond, and a burst of thousands would only measure it.
const STARTS_PER_SECOND: f64 = 2000.0;

pub fn spawn(ctx: &Ctx, tasks: &mut JoinSet<()>) -> Result<(), String> {
    let per_conn = ctx.plan.kubelets_per_connection.max(1);
    let pacer = super::Pacer::new(STARTS_PER_SECOND);
    let first_rv = StartRv::default();
    for first in (0..ctx.plan.nodes).step_by(per_conn) {
        let api = ctx.api()?;
        let ctx = ctx.clone();
        let (pacer, first_rv) = (pacer.clone(), first_rv.clone());
        let last = (first + per_conn).min(ctx.plan.nodes);
        tasks.spawn(async move {
            if per_conn > 1 {
                // Open the connection first, so the group's requests share it rather than race
                // to open one each.
                let _ = tokio::time::timeout_at(
                    ctx.deadline.into(),
                    api.request(reqwest::Method::GET, "/version").send(),
                )
                .await;
            }
            let mut group = JoinSet::new();
            for i in first..last {
                if !pacer.wait(ctx.deadline).await {
                    break;
                }
                let (ctx, api, rv) = (ctx.clone(), api.clone(), first_rv.clone());
                group.spawn(async move { kubelet(ctx, api, objects::node_name(i), i, rv).await });
            }
            while group.join_next().await.is_some() {}
        });
    }
    Ok(())
}

/// With `skip_list`: the resourceVersion every kubelet watches from, of one LIST (limit=1) taken
/// by the first kubelet.
type StartRv = Arc<tokio::sync::OnceCell<String>>;

async fn start_rv(api: &Api, cell: &StartRv) -> String {
    cell.get_or_init(|| async {
        let (status, body) = api
            .call(Call::new(
                "LIST",
                "pods",
                Scope::Cluster,
                "/api/v1/pods?limit=1",
            ))
            .await;
        if status != 200 {
            eprintln!("kubelets: LIST /api/v1/pods?limit=1: HTTP {status}; the kubelets will LIST");
        }
        list_rv(&body)
    })
    .await
    .clone()
}

fn list_rv(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

async fn kubelet(ctx: Ctx, api: Api, node: String, index: usize, first_rv: StartRv) {
    if ctx.plan.watch_only {
        return watch_pods(&ctx, &api, &node, &first_rv, |_| {}).await;
    }
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
    let lease = tokio::spawn(renew_lease(ctx.clone(), api.clone(), node.clone()));
    let status = tokio::spawn(report_node_status(ctx.clone(), api.clone(), node.clone()));
    if ctx.plan.heartbeat_only {
        let _ = lease.await;
        let _ = status.await;
        return;
    }
    let (tx, rx) = mpsc::channel::<(String, String)>(PENDING_PODS);
    let patcher = tokio::spawn(run_pods(ctx.clone(), api.clone(), rx, index));
    watch_pods(&ctx, &api, &node, &first_rv, |ev| {
        let o = &ev.object;
        let running = o.status.get("phase").and_then(|p| p.as_str()) == Some("Running");
        if (ev.kind == "ADDED" || ev.kind == "MODIFIED")
            && !running
            && o.metadata.deletion_timestamp.is_none()
        {
            let _ = tx.try_send((o.metadata.namespace.clone(), o.metadata.name.clone()));
        }
    })
    .await;
    drop(tx);
    let _ = lease.await;
    let _ = status.await;
    let _ = patcher.await;
}

/// LIST+WATCH of the node's pods until the deadline, relisting after a failed watch. The first
/// time a watch is open, `ctx.watching` counts this kubelet. Watch-only kubelets list with
/// `resourceVersion=0`, as client-go's reflector does first. With `skip_list`, the first watch
/// starts from the shared resourceVersion instead of a LIST of its own.
async fn watch_pods(
    ctx: &Ctx,
    api: &Api,
    node: &str,
    first_rv: &StartRv,
    mut on_pod: impl FnMut(&Event),
) {
    let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}");
    let list_path = if ctx.plan.watch_only {
        format!("{path}&resourceVersion=0")
    } else {
        path.clone()
    };
    let counted = AtomicBool::new(false);
    let watching = Arc::clone(&ctx.watching);
    let mut rv = if ctx.plan.skip_list {
        start_rv(api, first_rv).await
    } else {
        String::new()
    };
    while Instant::now() < ctx.deadline {
        if rv.is_empty() {
            let (status, body) = api
                .call(Call::new("LIST", "pods", Scope::Cluster, &list_path))
                .await;
            if status != 200 {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            rv = list_rv(&body);
        }
        let end = watch_with(
            api,
            "kubelet",
            &path,
            "pods",
            Scope::Cluster,
            ctx.deadline,
            &ctx.acks,
            &mut rv,
            |ev| {
                on_pod(ev);
                true
            },
            || {
                if !counted.swap(true, Ordering::Relaxed) {
                    watching.fetch_add(1, Ordering::Relaxed);
                }
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
    count_due(&ctx.rec.lease_renewals_due, ctx.deadline, LEASE_RENEW);
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

/// Adds the renewals every `period` from now that fall before `deadline` to `due`.
fn count_due(due: &std::sync::atomic::AtomicU64, deadline: Instant, period: Duration) {
    let left = deadline.saturating_duration_since(Instant::now());
    due.fetch_add(
        (left.as_secs_f64() / period.as_secs_f64()) as u64,
        Ordering::Relaxed,
    );
}

/// Patches the Node's status every `NODE_STATUS_REPORT` (its Ready condition's heartbeat), as a
/// kubelet reports its status even when nothing changed.
async fn report_node_status(ctx: Ctx, api: Api, node: String) {
    let path = format!("/api/v1/nodes/{node}/status");
    let mut tick = tokio::time::interval(NODE_STATUS_REPORT);
    tick.tick().await;
    count_due(&ctx.rec.node_status_due, ctx.deadline, NODE_STATUS_REPORT);
    loop {
        if tokio::time::timeout_at(ctx.deadline.into(), tick.tick())
            .await
            .is_err()
        {
            return;
        }
        let now = objects::micro_time_now();
        let heartbeat = format!("{}Z", now.split('.').next().unwrap_or_default());
        let patch = json!({"status": {"conditions": [{
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": heartbeat,
        }]}});
        let (status, body) = api
            .call(Call::new("PATCH", "nodes/status", Scope::Resource, &path).merge_patch(&patch))
            .await;
        if status == 200 {
            ctx.acknowledged(&body);
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
