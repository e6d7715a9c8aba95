//! Watches on etcd. Each `WatchStream` is one etcd watch on its own gRPC stream, forwarded by its
//! own task: each etcd response's events become one `Events` item (etcd sends them in revision
//! order), progress notifications become `Progress`, and compaction is the `Compacted` error that
//! ends the watch. The task cancels the etcd watch once the client drops its stream.
//!
//! Unlike the embedded store, which refuses a watch from a compacted revision outright, etcd
//! reports the compaction on the watch's stream: such a watch is answered with a stream whose
//! only item is `Error(Compacted)`.

use std::time::Duration;

use bytes::Bytes;
use etcdv3client::ErrKind;
use etcdv3client::pb::{self, watch_request::RequestUnion};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tonic::Streaming;

use super::kv::{first_key, prefix_end};
use super::{Etcd, key_value, unavailable};
use crate::storage::watch::{Refused, WatchSink, channel};
use crate::storage::{Event, Revision, StoreError, WATCH_BUFFER_ITEMS, WatchItem, WatchStream};

/// Requests a watch sends after its create: progress requests and the final cancel. A full queue
/// means a progress request is still pending, and one is enough.
const WATCH_REQUESTS: usize = 2;

/// How often a watch asks etcd for progress, when etcd answers such requests in order: the
/// embedded store's progress interval.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// How soon a watch notices that its client dropped the stream, and cancels the etcd watch.
const CANCEL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The key the compaction probe watches; any key will do.
const COMPACTION_PROBE_KEY: &[u8] = b"/";

/// How long the probe waits for etcd's answer (etcd checks watchers that are behind every 100 ms).
const COMPACTION_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One etcd watch: where its requests go and where its responses come from.
struct EtcdWatch {
    id: i64,
    requests: mpsc::Sender<pb::WatchRequest>,
    responses: Streaming<pb::WatchResponse>,
}

/// Watches the keys under `prefix` from the revision after `after` (0: from now), with the
/// previous kv of each event. Answers once etcd has taken the watch.
pub(super) async fn start(
    etcd: &Etcd,
    prefix: Bytes,
    after: Revision,
) -> Result<WatchStream, StoreError> {
    if after < 0 {
        return Err(StoreError::Internal(format!("negative revision {after}")));
    }
    let watch = open(
        etcd,
        pb::WatchCreateRequest {
            key: first_key(&prefix),
            range_end: prefix_end(&prefix),
            start_revision: if after == 0 {
                0
            } else {
                after.saturating_add(1)
            },
            progress_notify: true,
            prev_kv: true,
            ..Default::default()
        },
    )
    .await?;
    let (sink, stream) = channel(WATCH_BUFFER_ITEMS);
    tokio::spawn(forward(watch, sink, etcd.progress_requests));
    Ok(stream)
}

/// The revision etcd has compacted to, which its `Compacted` errors do not carry: a watch from
/// revision 1 is answered with it. 0 if etcd does not say in time.
pub(super) async fn compacted_revision(etcd: &Etcd) -> Revision {
    let probe = async {
        let create = pb::WatchCreateRequest {
            key: COMPACTION_PROBE_KEY.to_vec(),
            start_revision: 1,
            ..Default::default()
        };
        let mut watch = match open(etcd, create).await {
            Ok(watch) => watch,
            Err(StoreError::Compacted { compact_revision }) => return compact_revision,
            Err(_) => return 0,
        };
        while let Ok(Some(response)) = watch.responses.message().await {
            if response.compact_revision > 0 {
                return response.compact_revision;
            }
            if response.canceled || !response.events.is_empty() {
                break;
            }
        }
        0
    };
    tokio::time::timeout(COMPACTION_PROBE_TIMEOUT, probe)
        .await
        .unwrap_or(0)
}

/// Opens a gRPC watch stream, creates the watch on it, and waits for etcd to confirm it.
async fn open(etcd: &Etcd, create: pb::WatchCreateRequest) -> Result<EtcdWatch, StoreError> {
    // A stream that could not reach its endpoint is opened again on the next one.
    let mut attempts = etcd.client.service().endpoint_count();
    let (requests, mut responses) = loop {
        let (requests, outgoing) = mpsc::channel(WATCH_REQUESTS);
        requests
            .try_send(request(RequestUnion::CreateRequest(create.clone())))
            .map_err(|_| StoreError::Internal("a new watch's request queue is full".into()))?;
        let outgoing = futures::stream::unfold(outgoing, |mut outgoing| async move {
            outgoing.recv().await.map(|request| (request, outgoing))
        });
        match etcd.client.watch.clone().watch(outgoing).await {
            Ok(responses) => break (requests, responses),
            Err(e) if e.kind() == ErrKind::ConnectFailed && attempts > 1 => attempts -= 1,
            Err(e) => return Err(unavailable(e)),
        }
    };
    let created = responses
        .message()
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::Unavailable("etcd closed the watch stream".into()))?;
    if created.compact_revision > 0 {
        return Err(StoreError::Compacted {
            compact_revision: created.compact_revision,
        });
    }
    if !created.created || created.canceled {
        return Err(StoreError::Unavailable(format!(
            "etcd refused the watch: {}",
            created.cancel_reason
        )));
    }
    Ok(EtcdWatch {
        id: created.watch_id,
        requests,
        responses,
    })
}

/// The watch's task: etcd's responses to the client until either side ends.
async fn forward(mut watch: EtcdWatch, sink: WatchSink, request_progress: bool) {
    let mut cancel_checks = tokio::time::interval(CANCEL_CHECK_INTERVAL);
    let mut progress_requests = tokio::time::interval(PROGRESS_INTERVAL);
    progress_requests.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The newest revision the client has been told about, by an event or a progress note.
    let mut told: Revision = 0;
    let end = loop {
        tokio::select! {
            response = watch.responses.message() => {
                let outcome = match response {
                    Ok(Some(response)) => deliver(&sink, response, &mut told),
                    Ok(None) => Err(Some(StoreError::Unavailable("etcd ended the watch".into()))),
                    Err(status) => Err(Some(unavailable(status))),
                };
                if let Err(end) = outcome {
                    break end;
                }
            }
            _ = cancel_checks.tick() => {
                if sink.is_cancelled() {
                    break None;
                }
            }
            _ = progress_requests.tick(), if request_progress => {
                let progress = RequestUnion::ProgressRequest(pb::WatchProgressRequest {});
                let _ = watch.requests.try_send(request(progress));
            }
        }
    };
    // Dropping the stream ends the watch on etcd too; the cancel says so first.
    let cancel = RequestUnion::CancelRequest(pb::WatchCancelRequest { watch_id: watch.id });
    let _ = watch.requests.try_send(request(cancel));
    if let Some(error) = end {
        sink.end(error);
    }
}

/// Hands one etcd response to the client. `Err` ends the watch: with the error the client gets,
/// or `None` when the client is gone.
fn deliver(
    sink: &WatchSink,
    response: pb::WatchResponse,
    told: &mut Revision,
) -> Result<(), Option<StoreError>> {
    if response.compact_revision > 0 {
        return Err(Some(StoreError::Compacted {
            compact_revision: response.compact_revision,
        }));
    }
    if response.canceled {
        return Err(Some(StoreError::Unavailable(format!(
            "etcd cancelled the watch: {}",
            response.cancel_reason
        ))));
    }
    if response.events.is_empty() {
        // A progress notification: every event up to its header's revision has been sent. A note
        // that tells nothing new, or finds the buffer full (the reader is behind), is dropped.
        let revision = response.header.map_or(0, |h| h.revision);
        if revision <= *told || !sink.has_room() {
            return Ok(());
        }
        *told = revision;
        return send(sink, WatchItem::Progress(revision));
    }
    let events = response
        .events
        .into_iter()
        .map(event)
        .collect::<Result<Vec<_>, _>>()
        .map_err(Some)?;
    // etcd sends events in revision order; every reader relies on it.
    let first = events[0].revision();
    let last = events[events.len() - 1].revision();
    if first <= *told || events.windows(2).any(|w| w[0].revision() > w[1].revision()) {
        return Err(Some(StoreError::Internal(format!(
            "etcd sent watch events out of order (revisions {first}..={last} after {told})"
        ))));
    }
    *told = last;
    send(sink, WatchItem::Events(events))
}

fn send(sink: &WatchSink, item: WatchItem) -> Result<(), Option<StoreError>> {
    match sink.send(item) {
        Ok(()) => Ok(()),
        Err(Refused::Full) => Err(Some(StoreError::Unavailable("watcher fell behind".into()))),
        Err(Refused::Cancelled) => Err(None),
    }
}

fn event(e: pb::Event) -> Result<Event, StoreError> {
    let kv =
        e.kv.ok_or_else(|| StoreError::Internal("etcd sent an event without its key".into()))?;
    let prev = e.prev_kv.map(key_value);
    if e.r#type == pb::event::EventType::Delete as i32 {
        Ok(Event::Delete {
            key: kv.key.into(),
            mod_revision: kv.mod_revision,
            prev,
        })
    } else {
        Ok(Event::Put {
            kv: key_value(kv),
            prev,
        })
    }
}

fn request(request: RequestUnion) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(request),
    }
}
