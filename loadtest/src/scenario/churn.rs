//! `churn`: pods created, updated (PUT) and deleted at `churn_rate` operations per second, at
//! most `churn_max` operations, each worker cycling create → update → delete on its own pod.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinSet;

use super::{Ctx, Pacer};
use crate::client::Call;
use crate::metrics::Scope;
use crate::objects;

/// Workers sharing the churn rate: enough that one slow write does not stall the rate.
const CHURN_WORKERS: usize = 4;

pub fn spawn(ctx: &Ctx, tasks: &mut JoinSet<()>) -> Result<(), String> {
    let pacer = Pacer::new(ctx.plan.churn_rate);
    let ops = Arc::new(AtomicUsize::new(0));
    for w in 0..CHURN_WORKERS {
        let api = ctx.api()?;
        let (ctx, pacer, ops) = (ctx.clone(), pacer.clone(), ops.clone());
        tasks.spawn(async move {
            let plan = &ctx.plan;
            let claim = || ops.fetch_add(1, Ordering::Relaxed) < plan.churn_max;
            for n in 0usize.. {
                if !claim() || !pacer.wait(ctx.deadline).await {
                    return;
                }
                let ns = objects::namespace_name(n % plan.namespaces.max(1));
                let name = format!("churn-{}-{w}-{n}", ctx.run_id);
                let node = objects::node_name(n % plan.nodes.max(1));
                let coll = format!("/api/v1/namespaces/{ns}/pods");
                let (status, body) = api
                    .call(
                        Call::new("POST", "pods", Scope::Namespace, &coll)
                            .json(&objects::pod(&name, &ns, &node)),
                    )
                    .await;
                if status != 201 {
                    continue;
                }
                ctx.acknowledged(&body);
                let one = format!("{coll}/{name}");
                if claim()
                    && pacer.wait(ctx.deadline).await
                    && let Ok(mut obj) = serde_json::from_slice::<serde_json::Value>(&body)
                {
                    obj["metadata"]["labels"]["churn-generation"] = serde_json::json!("2");
                    // Unconditional (no resourceVersion), as the kubelet's status patches race it.
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove("resourceVersion");
                    }
                    let (status, b) = api
                        .call(Call::new("PUT", "pods", Scope::Resource, &one).json(&obj))
                        .await;
                    if status == 200 {
                        ctx.acknowledged(&b);
                    }
                }
                if !claim() || !pacer.wait(ctx.deadline).await {
                    return;
                }
                let del = format!("{one}?gracePeriodSeconds=0");
                api.call(Call::new("DELETE", "pods", Scope::Resource, &del))
                    .await;
            }
        });
    }
    Ok(())
}
