//! `list`: a client issuing LISTs in rotation — full and paginated, JSON and protobuf,
//! cluster- and namespace-scoped — at most once per `list_interval_ms`.

use std::time::Duration;

use super::Ctx;
use crate::client::{Api, Call};
use crate::metrics::Scope;
use crate::objects;
use crate::watch::paginated_list;

pub async fn client(ctx: Ctx, api: Api, id: usize) {
    let interval = Duration::from_millis(ctx.plan.list_interval_ms.max(1));
    let ns = objects::namespace_name(id % ctx.plan.namespaces.max(1));
    let ns_path = format!("/api/v1/namespaces/{ns}/pods");
    let mut tick = tokio::time::interval(interval);
    for n in id.. {
        if tokio::time::timeout_at(ctx.deadline.into(), tick.tick())
            .await
            .is_err()
        {
            return;
        }
        let call = match n % 5 {
            0 => Call::new("LIST", "pods", Scope::Cluster, "/api/v1/pods"),
            1 => Call::new("LIST", "pods", Scope::Cluster, "/api/v1/pods").protobuf(),
            2 => Call::new("LIST", "pods", Scope::Namespace, &ns_path).protobuf(),
            3 => Call::new("LIST", "nodes", Scope::Cluster, "/api/v1/nodes"),
            _ => {
                let _ = tokio::time::timeout_at(
                    ctx.deadline.into(),
                    paginated_list(&api, &ns_path, "pods", Scope::Namespace),
                )
                .await;
                continue;
            }
        };
        let _ = tokio::time::timeout_at(ctx.deadline.into(), api.call(call)).await;
    }
}
