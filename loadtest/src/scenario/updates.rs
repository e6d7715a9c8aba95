//! `updates`: existing pods bound to the run's `nodes` nodes are PATCHed (an annotation bump) at
//! `update_rate` per second, spread round-robin over the nodes, so that each acknowledged write
//! is one event for that node's kubelet watch and feeds the watch delivery latency.
//!
//! With `known_pods`, the pods are the ones an earlier populate of the same run id created,
//! addressed by name (no LIST: fair to a server whose full LIST is slow); otherwise they are
//! found by a paginated LIST (label `app=load`, as populate creates them). With
//! kubelets in the run, the updates start once every kubelet's watch is open (or half the run
//! has passed).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinSet;

use super::{Ctx, Pacer};
use crate::client::{Api, Call};
use crate::metrics::Scope;
use crate::objects;
use crate::watch::LIST_PAGE;

/// Updates in flight on each update client's connection: at 1,000/s and tens of milliseconds per
/// write, a few clients keep the rate.
const IN_FLIGHT_PER_CLIENT: usize = 8;
/// A page of the LIST that finds the pods may take this long (a server busy with the kubelets'
/// LISTs), and is tried this many times.
const PAGE_TIMEOUT: Duration = Duration::from_secs(300);
const PAGE_ATTEMPTS: usize = 3;
/// How often the wait for the kubelets' watches checks them.
const WATCH_POLL: Duration = Duration::from_millis(100);

#[derive(Deserialize, Default)]
struct PodMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    node_name: String,
}

#[derive(Deserialize)]
struct PodRef {
    #[serde(default)]
    metadata: PodMeta,
    #[serde(default)]
    spec: PodSpec,
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    cont: String,
}

#[derive(Deserialize)]
struct PodRefs {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<PodRef>,
}

/// The index of a node kapi-load names (`kapi-load-node-<i>`), if below `nodes`.
fn node_index(name: &str, nodes: usize) -> Option<usize> {
    let prefix = objects::node_name(0);
    let i: usize = name
        .strip_prefix(&prefix[..prefix.len() - 1])?
        .parse()
        .ok()?;
    (i < nodes).then_some(i)
}

/// The pods populate created in run `run_id`, grouped by node as it bound them (pod i on node
/// i mod nodes, in namespace i mod namespaces); only nodes that have pods.
fn known_pods(
    run_id: u64,
    pods: usize,
    nodes: usize,
    namespaces: usize,
) -> Vec<Vec<(String, String)>> {
    let mut by_node: Vec<Vec<(String, String)>> = vec![Vec::new(); nodes.max(1)];
    for i in 0..pods {
        by_node[i % nodes.max(1)].push((
            objects::namespace_name(i % namespaces.max(1)),
            objects::pod_name(run_id, i),
        ));
    }
    by_node.retain(|pods| !pods.is_empty());
    by_node
}

/// Pods to update, grouped by node; only nodes that have pods.
async fn find_pods(api: &Api, nodes: usize, deadline: Instant) -> Vec<Vec<(String, String)>> {
    let mut by_node: Vec<Vec<(String, String)>> = vec![Vec::new(); nodes];
    let mut cont = String::new();
    while Instant::now() < deadline {
        let mut url = format!("/api/v1/pods?labelSelector=app%3Dload&limit={LIST_PAGE}");
        if !cont.is_empty() {
            url.push_str(&format!("&continue={cont}"));
        }
        // Not timed: the kubelets' LISTs are the ones measured.
        let mut page = None;
        for attempt in 1..=PAGE_ATTEMPTS {
            match list_page(api, &url).await {
                Ok(p) => {
                    page = Some(p);
                    break;
                }
                Err(e) => eprintln!("updates: LIST {url} (attempt {attempt}): {e}"),
            }
        }
        let Some(page) = page else { break };
        for p in page.items {
            if let Some(i) = node_index(&p.spec.node_name, nodes) {
                by_node[i].push((p.metadata.namespace, p.metadata.name));
            }
        }
        if page.metadata.cont.is_empty() {
            break;
        }
        cont = page.metadata.cont;
    }
    by_node.retain(|pods| !pods.is_empty());
    by_node
}

async fn list_page(api: &Api, url: &str) -> Result<PodRefs, String> {
    let resp = api
        .request(reqwest::Method::GET, url)
        .header("Accept", "application/json")
        .timeout(PAGE_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

pub fn spawn(ctx: &Ctx, tasks: &mut JoinSet<()>) -> Result<(), String> {
    let ctx = ctx.clone();
    let apis = (0..ctx.plan.update_clients.max(1))
        .map(|_| ctx.api())
        .collect::<Result<Vec<_>, _>>()?;
    tasks.spawn(async move {
        let plan = &ctx.plan;
        let nodes = if plan.known_pods > 0 {
            known_pods(ctx.run_id, plan.known_pods, plan.nodes, plan.namespaces)
        } else {
            find_pods(&apis[0], plan.nodes, ctx.deadline).await
        };
        let pods: usize = nodes.iter().map(Vec::len).sum();
        if pods == 0 {
            eprintln!(
                "updates: no pod labelled app=load is bound to kapi-load-node-0..{}: nothing to update (run populate first)",
                ctx.plan.nodes
            );
            return;
        }
        if ctx.plan.kubelets {
            // At most half the run: a few watches that never open must not stop the updates.
            let run = Duration::from_secs(ctx.plan.duration_s);
            let give_up = ctx.deadline.checked_sub(run / 2).unwrap_or(ctx.deadline);
            while ctx.watching.load(Ordering::Relaxed) < ctx.plan.nodes
                && Instant::now() < give_up
            {
                tokio::time::sleep(WATCH_POLL).await;
            }
        }
        eprintln!(
            "updates: {pods} pods on {} nodes; {} kubelet watches open; updating at {}/s from {:.1} s of the run",
            nodes.len(),
            ctx.watching.load(Ordering::Relaxed),
            ctx.plan.update_rate,
            ctx.rec.start.elapsed().as_secs_f64()
        );
        ctx.rec.updates_started();
        let nodes = Arc::new(nodes);
        let pacer = Pacer::new(ctx.plan.update_rate);
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = JoinSet::new();
        for api in apis {
            // Open the connection before its workers share it.
            let _ = api.request(reqwest::Method::GET, "/version").send().await;
            for _ in 0..IN_FLIGHT_PER_CLIENT {
                let (ctx, api, nodes, pacer, next) = (
                    ctx.clone(),
                    api.clone(),
                    nodes.clone(),
                    pacer.clone(),
                    next.clone(),
                );
                workers.spawn(async move {
                    while pacer.wait(ctx.deadline).await {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        // Round-robin over the nodes, then over each node's pods.
                        let on_node = &nodes[k % nodes.len()];
                        let (ns, name) = &on_node[(k / nodes.len()) % on_node.len()];
                        let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
                        // The run id too: a value an earlier run left would make a no-op
                        // patch, which changes nothing and so sends no event.
                        let value = format!("{}-{k}", ctx.run_id);
                        let patch =
                            json!({"metadata": {"annotations": {"kapi-load/update": value}}});
                        let (status, body) = api
                            .call(
                                Call::new("PATCH", "pods", Scope::Resource, &path)
                                    .merge_patch(&patch),
                            )
                            .await;
                        if status == 200 {
                            ctx.acknowledged(&body);
                        }
                    }
                });
            }
        }
        while workers.join_next().await.is_some() {}
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_indexes_are_read_from_kapi_load_node_names() {
        assert_eq!(node_index(&objects::node_name(17), 20), Some(17));
        assert_eq!(node_index(&objects::node_name(17), 17), None);
        assert_eq!(node_index("other-node-1", 20), None);
        assert_eq!(node_index(&format!("{}x", objects::node_name(1)), 20), None);
    }

    #[test]
    fn known_pods_are_grouped_as_populate_bound_them() {
        let by_node = known_pods(7, 5, 2, 3);
        assert_eq!(by_node.len(), 2);
        assert_eq!(by_node[0].len(), 3);
        assert_eq!(
            by_node[1][1],
            (objects::namespace_name(0), objects::pod_name(7, 3))
        );
        // More nodes than pods: only nodes with pods.
        assert_eq!(known_pods(7, 2, 10, 1).len(), 2);
    }
}
