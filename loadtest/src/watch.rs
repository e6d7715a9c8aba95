//! Reading watch streams and running informers (list then watch, or a watch-list with
//! `sendInitialEvents`), the way client-go's reflector does. Each event's delivery latency is
//! measured against the write's acknowledgement in the `AckBook`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::client::{Api, Call};
use crate::metrics::{AckBook, OpKey, Scope};

/// The largest single watch event accepted; a longer line means a broken stream.
const MAX_EVENT_BYTES: usize = 16 << 20;
/// Page size of an informer's paginated initial list (client-go's default is 500).
pub const LIST_PAGE: usize = 500;
/// Pause after a failed list or watch before trying again, so a failing server is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Server-side timeout asked for on each watch, like client-go's 5–10 min jitter, but shorter.
const WATCH_TIMEOUT_S: u64 = 300;
/// A watch request fails (and is re-established) if the server has not ended it by then.
const WATCH_REQUEST_TIMEOUT: Duration = Duration::from_secs(WATCH_TIMEOUT_S + 60);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub resource_version: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub deletion_timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct Object {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub status: serde_json::Value,
}

#[derive(Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub object: Object,
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
    #[serde(default, rename = "continue")]
    cont: String,
}

#[derive(Deserialize, Default)]
struct List {
    #[serde(default)]
    metadata: ListMeta,
}

pub enum WatchEnd {
    /// The deadline passed.
    Deadline,
    /// The server closed the stream; resume from the last resourceVersion.
    Closed,
    /// The watch failed (an error status, no response, an ERROR event such as 410 Gone): relist.
    Failed,
}

fn delivery_key(o: &Object) -> String {
    format!(
        "{}/{}@{}",
        o.metadata.namespace, o.metadata.name, o.metadata.resource_version
    )
}

/// Runs one watch request until it ends or `deadline`. `on_event` sees every event; events that
/// match an acknowledged write record their delivery latency when `measure` is true.
/// `rv` is updated to the last resourceVersion seen.
#[allow(clippy::too_many_arguments)]
pub async fn watch(
    api: &Api,
    watcher: &'static str,
    path: &str,
    resource: &'static str,
    scope: Scope,
    deadline: Instant,
    acks: &AckBook,
    rv: &mut String,
    on_event: impl FnMut(&Event) -> bool,
) -> WatchEnd {
    watch_with(
        api,
        watcher,
        path,
        resource,
        scope,
        deadline,
        acks,
        rv,
        on_event,
        || {},
    )
    .await
}

/// `watch`, calling `on_open` once the server has answered 200 (the watch is established).
#[allow(clippy::too_many_arguments)]
pub async fn watch_with(
    api: &Api,
    watcher: &'static str,
    path: &str,
    resource: &'static str,
    scope: Scope,
    deadline: Instant,
    acks: &AckBook,
    rv: &mut String,
    mut on_event: impl FnMut(&Event) -> bool,
    on_open: impl FnOnce(),
) -> WatchEnd {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut url =
        format!("{path}{sep}watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_TIMEOUT_S}");
    if !rv.is_empty() {
        url.push_str(&format!("&resourceVersion={rv}"));
    }
    let start = Instant::now();
    let sent = tokio::time::timeout_at(
        deadline.into(),
        api.request(reqwest::Method::GET, &url)
            .header("Accept", "application/json")
            // The client's timeout is for whole requests; a watch lasts until the server's end.
            .timeout(WATCH_REQUEST_TIMEOUT)
            .send(),
    )
    .await;
    let key = OpKey {
        verb: "WATCH",
        resource,
        scope,
        format: "json",
    };
    let mut resp = match sent {
        Err(_) => return WatchEnd::Deadline,
        Ok(Err(_)) => {
            api.rec.request(key, 0, start.elapsed(), &[]);
            return WatchEnd::Failed;
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    api.rec.request(key, status, start.elapsed(), &[]);
    if status != 200 {
        return WatchEnd::Failed;
    }
    on_open();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = match tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
            Err(_) => return WatchEnd::Deadline,
            Ok(Err(_)) | Ok(Ok(None)) => return WatchEnd::Closed,
            Ok(Ok(Some(c))) => c,
        };
        buf.extend_from_slice(&chunk);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(ev) = serde_json::from_slice::<Event>(&line) else {
                continue;
            };
            if ev.kind == "ERROR" {
                return WatchEnd::Failed;
            }
            if !ev.object.metadata.resource_version.is_empty() {
                rv.clone_from(&ev.object.metadata.resource_version);
            }
            let measure = on_event(&ev);
            if ev.kind != "BOOKMARK" {
                let d = if measure {
                    acks.delivered(delivery_key(&ev.object), Instant::now(), watcher, resource)
                } else {
                    None
                };
                api.rec.event(watcher, resource, d);
            }
        }
        if buf.len() > MAX_EVENT_BYTES {
            return WatchEnd::Failed;
        }
    }
}

/// Lists `path` in pages of `LIST_PAGE` and returns the list's resourceVersion.
pub async fn paginated_list(
    api: &Api,
    path: &str,
    resource: &'static str,
    scope: Scope,
) -> Result<String, u16> {
    let mut cont = String::new();
    // Bounded: a list of 10M objects is 20k pages.
    for _ in 0..20_000 {
        let mut url = format!("{path}?limit={LIST_PAGE}");
        if !cont.is_empty() {
            url.push_str(&format!("&continue={cont}"));
        }
        let (status, body) = api.call(Call::new("LIST", resource, scope, &url)).await;
        if status != 200 {
            return Err(status);
        }
        let list: List = serde_json::from_slice(&body).unwrap_or_default();
        if list.metadata.cont.is_empty() {
            return Ok(list.metadata.resource_version);
        }
        cont = list.metadata.cont;
    }
    Err(0)
}

#[derive(Clone, Copy, Debug)]
pub enum InformerMode {
    ListWatch,
    WatchList,
}

/// An informer over one resource until `deadline`: sync (records the sync time), then watch,
/// relisting after a failure, resuming after a close.
pub async fn informer(
    api: Api,
    path: String,
    resource: &'static str,
    mode: InformerMode,
    deadline: Instant,
    acks: std::sync::Arc<AckBook>,
) {
    let start = Instant::now();
    let mut synced = false;
    let mut rv = String::new();
    while Instant::now() < deadline {
        if !synced {
            match mode {
                InformerMode::ListWatch => {
                    match paginated_list(&api, &path, resource, Scope::Cluster).await {
                        Ok(v) => {
                            rv = v;
                            synced = true;
                            api.rec.synced(start.elapsed());
                        }
                        Err(_) => {
                            tokio::time::sleep(RETRY_PAUSE).await;
                            continue;
                        }
                    }
                }
                InformerMode::WatchList => {
                    let url =
                        format!("{path}?sendInitialEvents=true&resourceVersionMatch=NotOlderThan");
                    let mut initial = true;
                    rv.clear();
                    let end = watch(
                        &api,
                        "informer",
                        &url,
                        resource,
                        Scope::Cluster,
                        deadline,
                        &acks,
                        &mut rv,
                        |ev| {
                            if initial
                                && ev.kind == "BOOKMARK"
                                && ev
                                    .object
                                    .metadata
                                    .annotations
                                    .get("k8s.io/initial-events-end")
                                    .map(String::as_str)
                                    == Some("true")
                            {
                                initial = false;
                                api.rec.synced(start.elapsed());
                            }
                            !initial
                        },
                    )
                    .await;
                    synced = !initial;
                    match end {
                        WatchEnd::Deadline => return,
                        WatchEnd::Closed if synced => continue,
                        _ => {
                            synced = false;
                            tokio::time::sleep(RETRY_PAUSE).await;
                            continue;
                        }
                    }
                }
            }
        }
        match watch(
            &api,
            "informer",
            &path,
            resource,
            Scope::Cluster,
            deadline,
            &acks,
            &mut rv,
            |_| true,
        )
        .await
        {
            WatchEnd::Deadline => return,
            WatchEnd::Closed => {}
            WatchEnd::Failed => {
                // A 410 or a broken stream: relist (but the sync time is only the first).
                tokio::time::sleep(RETRY_PAUSE).await;
                if let Ok(v) = paginated_list(&api, &path, resource, Scope::Cluster).await {
                    rv = v;
                }
            }
        }
    }
}
