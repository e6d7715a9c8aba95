//! A Service's allocations around its write, as upstream's Service REST brackets them
//! (`beginCreate`/`beginUpdate` and their transactions): cluster IPs (`allocation`) and node
//! ports (`node_ports`) are claimed before the object is written; once it is written, what the
//! Service no longer holds is released; if the write fails, what was claimed for it goes back.

use std::sync::Arc;

use serde_json::Value;

use super::{allocation, node_ports};
use crate::api::server::Api;
use crate::api::status::Status;
use crate::kinds::service_updates;

/// What one Service write claimed and what it gives up once written.
#[derive(Debug, Default)]
pub(super) struct Held {
    ns: String,
    name: String,
    ips: allocation::Changed,
    ports: node_ports::Changed,
}

impl Held {
    /// The write happened: what the Service let go of is released.
    pub async fn commit(self, api: &Arc<Api>) {
        allocation::release_held(api, &self.ns, &self.name, &self.ips.released).await;
        node_ports::release(api, &self.ports.released).await;
    }

    /// The write did not happen: what it claimed goes back.
    pub async fn revert(self, api: &Arc<Api>) {
        self.ips.claimed.release(api).await;
        node_ports::release(api, &self.ports.claimed).await;
    }
}

/// Families, cluster IPs and node ports of a new Service.
pub(super) async fn begin_create(
    api: &Arc<Api>,
    svc: &mut Value,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Held, Status> {
    let claimed = allocation::allocate(api, svc, ns, name, dry_run).await?;
    let ports = match node_ports::allocate(api, svc, name, dry_run).await {
        Ok(ports) => ports,
        Err(e) => {
            claimed.release(api).await;
            return Err(e);
        }
    };
    Ok(Held {
        ns: ns.to_owned(),
        name: name.to_owned(),
        ips: allocation::Changed {
            claimed,
            released: Vec::new(),
        },
        ports: node_ports::Changed {
            claimed: ports,
            released: Vec::new(),
        },
    })
}

/// An updated Service's allocations: values the client left out are the old ones, then the
/// address and node-port changes its new spec asks for.
pub(super) async fn begin_update(
    api: &Arc<Api>,
    svc: &mut Value,
    old: &Value,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Held, Status> {
    service_updates::keep_allocated_values(svc, old);
    let mut ips = allocation::update(api, svc, old, ns, name, dry_run).await?;
    if dry_run {
        // A dry run shows the outcome and lets nothing go.
        ips.released.clear();
    }
    let ports = match node_ports::update(api, svc, old, name, dry_run).await {
        Ok(ports) => ports,
        Err(e) => {
            ips.claimed.release(api).await;
            return Err(e);
        }
    };
    Ok(Held {
        ns: ns.to_owned(),
        name: name.to_owned(),
        ips,
        ports,
    })
}
