//! `populate`: nodes (when no kubelets register them) and pods bound to them, created by
//! `clients` clients together at `populate_rate` per second, until `pods` or the deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinSet;

use super::{Ctx, Pacer};
use crate::client::Call;
use crate::metrics::Scope;
use crate::objects;

pub fn spawn(ctx: &Ctx, tasks: &mut JoinSet<()>) -> Result<(), String> {
    let next_pod = Arc::new(AtomicUsize::new(0));
    let next_node = Arc::new(AtomicUsize::new(0));
    let pacer = Pacer::new(ctx.plan.populate_rate);
    for _ in 0..ctx.plan.clients.max(1) {
        let api = ctx.api()?;
        let ctx = ctx.clone();
        let (next_pod, next_node, pacer) = (next_pod.clone(), next_node.clone(), pacer.clone());
        tasks.spawn(async move {
            let plan = &ctx.plan;
            if !plan.kubelets {
                loop {
                    let i = next_node.fetch_add(1, Ordering::Relaxed);
                    if i >= plan.nodes || !pacer.wait(ctx.deadline).await {
                        break;
                    }
                    let body = objects::node(&objects::node_name(i));
                    let (_, b) = api
                        .call(
                            Call::new("POST", "nodes", Scope::Cluster, "/api/v1/nodes")
                                .json(&body)
                                .may_exist(),
                        )
                        .await;
                    ctx.acknowledged(&b);
                }
            }
            loop {
                let i = next_pod.fetch_add(1, Ordering::Relaxed);
                if i >= plan.pods || !pacer.wait(ctx.deadline).await {
                    break;
                }
                let ns = objects::namespace_name(i % plan.namespaces.max(1));
                let node = objects::node_name(i % plan.nodes.max(1));
                let mut body = objects::pod(&objects::pod_name(ctx.run_id, i), &ns, &node);
                if plan.pod_padding > 0 {
                    body["metadata"]["annotations"]["kapi-load/padding"] =
                        "x".repeat(plan.pod_padding).into();
                }
                let path = format!("/api/v1/namespaces/{ns}/pods");
                let (status, b) = api
                    .call(Call::new("POST", "pods", Scope::Namespace, &path).json(&body))
                    .await;
                if status == 201 {
                    ctx.acknowledged(&b);
                }
            }
        });
    }
    Ok(())
}
