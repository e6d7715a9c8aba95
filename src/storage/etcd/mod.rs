//! The etcd backend: kapi's store when `--etcd-servers` is given, the way several kapi instances
//! share one etcd cluster. It speaks etcd v3's gRPC API with the embedded store's semantics (see
//! `StoreClient`); each request runs as its own task on the storage thread, so one slow etcd call
//! holds up no other.
//!
//! The protobuf messages come from `etcdv3client`, which ships them generated: `etcd-client`
//! generates them in its build script and so needs `protoc` on the building machine.

mod grpc;
mod kv;
mod leases;
mod watch;

#[cfg(test)]
#[path = "../../../tests/support/etcd.rs"]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use etcdv3client::grpc::GrpcService;
use etcdv3client::{Client, pb};
use tokio::sync::{Semaphore, mpsc};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{Backend, KeyValue, MAX_BATCH, REQUEST_QUEUE, Reply, Request, StoreClient, StoreError};
use grpc::EtcdGrpc;
use leases::Leases;

/// Longest one etcd call may take before its caller gets `Unavailable`: under kube-apiserver's
/// default request timeout (60 s), so the API can still answer with a proper error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `connect` waits for etcd to answer (upstream's dial timeout): etcd may be starting
/// alongside kapi.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause between attempts while `connect` waits.
const CONNECT_RETRY: Duration = Duration::from_millis(250);

/// A health check fails past this (upstream's `--etcd-healthcheck-timeout` default).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// HTTP/2 pings find a dead etcd while watches sit idle (upstream's keepalive time and timeout).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in flight at once: a batch's worth. etcd pipelines them on one HTTP/2 connection;
/// more would only queue inside the client, and waiting here holds the storage queue back instead.
const IN_FLIGHT_REQUESTS: usize = MAX_BATCH;

/// The key a health check reads; whether it exists does not matter (as `etcdctl endpoint health`).
const HEALTH_KEY: &[u8] = b"health";

/// Where etcd is and how to reach it: kube-apiserver's `--etcd-servers`, `--etcd-cafile`,
/// `--etcd-certfile` and `--etcd-keyfile`.
#[derive(Clone, Debug, Default)]
pub struct EtcdConfig {
    /// `http://host:port` or `https://host:port`; without a scheme, https when TLS is configured.
    pub endpoints: Vec<String>,
    /// The CA that signed etcd's serving certificate; needed for https (no system roots are used).
    pub ca_file: Option<PathBuf>,
    /// The client certificate and its key, when etcd asks for one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// The etcd backend. Runs on the storage thread; see the module header.
#[derive(Debug)]
pub struct EtcdBackend {
    etcd: Etcd,
    /// Bounds the requests in flight (`IN_FLIGHT_REQUESTS`): `serve` waits for a slot.
    slots: Arc<Semaphore>,
}

/// What each request's task needs; cheap to clone (the gRPC channels are shared).
#[derive(Clone, Debug)]
struct Etcd {
    client: Client<EtcdGrpc>,
    leases: Arc<Leases>,
    /// Whether etcd answers a progress request in order with the watch's events (3.4.31, 3.5.13
    /// and 3.6 on). Older ones may answer before events they have yet to send, so their watches
    /// rely on etcd's own periodic progress notifications instead.
    progress_requests: bool,
}

/// Connects to etcd and waits (up to `CONNECT_TIMEOUT`) until it answers. Must run on the runtime
/// that will run the backend, since the connection's tasks live there: `start_etcd` does both.
pub async fn connect(cfg: &EtcdConfig) -> Result<EtcdBackend, StoreError> {
    let client = Client::with_service(EtcdGrpc::new(channels(cfg)?));
    let version = server_version(&client).await?;
    let progress_requests = orders_requested_progress(&version);
    if !progress_requests {
        eprintln!(
            "kapi: storage: etcd {version} may answer progress requests out of order; watches \
             rely on its --experimental-watch-progress-notify-interval (5s is a good value)"
        );
    }
    Ok(EtcdBackend {
        etcd: Etcd {
            client,
            leases: Arc::new(Leases::default()),
            progress_requests,
        },
        slots: Arc::new(Semaphore::new(IN_FLIGHT_REQUESTS)),
    })
}

/// Starts the storage thread (as `storage::start`) with a runtime that also drives network I/O,
/// connects to etcd on it, and returns the handle once etcd has answered.
pub fn start_etcd(cfg: EtcdConfig) -> io::Result<StoreClient> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (requests, queue) = mpsc::channel(REQUEST_QUEUE);
    let (connected, connecting) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("kapi-storage".into())
        .spawn(move || {
            runtime.block_on(async move {
                match connect(&cfg).await {
                    Ok(backend) => {
                        let _ = connected.send(Ok(()));
                        super::run(Box::new(backend), queue).await;
                    }
                    Err(e) => {
                        let _ = connected.send(Err(e));
                    }
                }
            })
        })?;
    match connecting.recv() {
        Ok(Ok(())) => Ok(StoreClient {
            requests,
            committed: None,
            encryption: None,
        }),
        Ok(Err(e)) => Err(io::Error::other(format!("connecting to etcd: {e}"))),
        Err(_) => Err(io::Error::other(
            "the storage thread ended while connecting",
        )),
    }
}

#[async_trait::async_trait]
impl Backend for EtcdBackend {
    async fn serve(&mut self, batch: Vec<Request>) {
        for request in batch {
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                // Never closed: the backend owns the semaphore.
                request.fail(StoreError::Internal("request slots closed".into()));
                continue;
            };
            let etcd = self.etcd.clone();
            tokio::spawn(async move {
                etcd.serve(request).await;
                drop(slot);
            });
        }
    }

    /// Nothing: etcd expires leases, catches watchers up and sends progress itself.
    async fn tick(&mut self) {}
}

impl Etcd {
    /// Serves one request and answers it.
    async fn serve(self, request: Request) {
        match request {
            Request::Get { key, reply } => {
                answer(reply, within(REQUEST_TIMEOUT, self.get(&key)).await);
            }
            Request::Range {
                prefix,
                start,
                revision,
                limit,
                reply,
            } => {
                let range = self.range(&prefix, &start, revision, limit);
                answer(reply, within(REQUEST_TIMEOUT, range).await);
            }
            Request::Create {
                key,
                value,
                lease_ttl_seconds,
                reply,
            } => {
                let create = self.create(key, value, lease_ttl_seconds);
                answer(reply, within(REQUEST_TIMEOUT, create).await);
            }
            Request::Update {
                key,
                value,
                expected_mod_revision,
                lease_ttl_seconds,
                reply,
            } => {
                let update = self.update(key, value, expected_mod_revision, lease_ttl_seconds);
                answer(reply, within(REQUEST_TIMEOUT, update).await);
            }
            Request::Delete {
                key,
                expected_mod_revision,
                reply,
            } => {
                let delete = self.delete(key, expected_mod_revision);
                answer(reply, within(REQUEST_TIMEOUT, delete).await);
            }
            Request::CurrentRevision { reply } => {
                answer(
                    reply,
                    within(REQUEST_TIMEOUT, self.current_revision()).await,
                );
            }
            Request::Compact { revision, reply } => {
                answer(reply, within(REQUEST_TIMEOUT, self.compact(revision)).await);
            }
            Request::Watch {
                prefix,
                after,
                reply,
            } => {
                let watch = watch::start(&self, prefix, after);
                answer(reply, within(REQUEST_TIMEOUT, watch).await);
            }
            Request::Health { reply } => {
                answer(reply, within(HEALTH_TIMEOUT, self.health()).await);
            }
        }
    }

    /// etcd's error as the store's. `Compacted` asks etcd for its compaction revision, which the
    /// error does not carry.
    async fn store_error(&self, e: etcdv3client::Error) -> StoreError {
        use etcdv3client::ErrKind;
        match e.kind() {
            ErrKind::Compacted => StoreError::Compacted {
                compact_revision: watch::compacted_revision(self).await,
            },
            ErrKind::FutureRev => StoreError::FutureRevision,
            ErrKind::EmptyKey
            | ErrKind::RequestTooLarge
            | ErrKind::TooManyOps
            | ErrKind::DuplicateKey
            | ErrKind::InvalidSortOption
            | ErrKind::LeaseTTLTooLarge => StoreError::Internal(format!("etcd refused: {e}")),
            _ => unavailable(e),
        }
    }
}

/// A caller that stopped waiting needs no answer: a failed send is ignored.
fn answer<T>(reply: Reply<T>, result: Result<T, StoreError>) {
    let _ = reply.send(result);
}

/// `call`, or `Unavailable` if etcd has not answered within `limit`.
async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!(
            "etcd did not answer within {limit:?}"
        )))
    })
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("etcd: {e}"))
}

/// etcd's kv as the store's (the bytes move, they are not copied).
fn key_value(kv: pb::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key.into(),
        value: kv.value.into(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

/// A channel to each endpoint; connections are made as requests need them.
fn channels(cfg: &EtcdConfig) -> Result<Vec<Channel>, StoreError> {
    let tls = tls_config(cfg)?;
    let mut endpoints = Vec::with_capacity(cfg.endpoints.len());
    for address in &cfg.endpoints {
        let uri = if address.contains("://") {
            address.clone()
        } else if tls.is_some() {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        };
        let bad = |e: &dyn std::fmt::Display| {
            StoreError::Internal(format!("etcd endpoint {address:?}: {e}"))
        };
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| bad(&e))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        if uri.starts_with("https://") {
            let Some(tls) = &tls else {
                return Err(bad(&"https needs --etcd-cafile"));
            };
            endpoint = endpoint.tls_config(tls.clone()).map_err(|e| bad(&e))?;
        }
        endpoints.push(endpoint.connect_lazy());
    }
    if endpoints.is_empty() {
        return Err(StoreError::Internal("no etcd endpoints given".into()));
    }
    Ok(endpoints)
}

/// The TLS settings, if a CA is given: etcd's CA, and the client certificate when there is one.
fn tls_config(cfg: &EtcdConfig) -> Result<Option<ClientTlsConfig>, StoreError> {
    let identity = match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => Some(Identity::from_pem(read(cert)?, read(key)?)),
        (None, None) => None,
        _ => {
            return Err(StoreError::Internal(
                "--etcd-certfile and --etcd-keyfile go together".into(),
            ));
        }
    };
    let Some(ca) = &cfg.ca_file else {
        return match identity {
            Some(_) => Err(StoreError::Internal(
                "a client certificate for etcd needs --etcd-cafile too".into(),
            )),
            None => Ok(None),
        };
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Ok(Some(tls))
}

fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path)
        .map_err(|e| StoreError::Internal(format!("reading {}: {e}", path.display())))
}

/// etcd's version, asked until it answers or `CONNECT_TIMEOUT` passes.
async fn server_version(client: &Client<EtcdGrpc>) -> Result<String, StoreError> {
    let status = http::uri::PathAndQuery::from_static("/etcdserverpb.Maintenance/Status");
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        let attempt = tokio::time::timeout_at(
            deadline,
            client.service().unary::<_, pb::StatusResponse>(
                tonic::Request::new(pb::StatusRequest {}),
                status.clone(),
            ),
        )
        .await;
        match attempt {
            Ok(Ok(response)) => return Ok(response.into_inner().version),
            Ok(Err(_)) if tokio::time::Instant::now() + CONNECT_RETRY < deadline => {
                tokio::time::sleep(CONNECT_RETRY).await;
            }
            Ok(Err(e)) => return Err(unavailable(e)),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "etcd did not answer within {CONNECT_TIMEOUT:?}"
                )));
            }
        }
    }
}

/// Whether etcd `version` sends a requested progress notification only after the events before
/// it (etcd-io/etcd#15220, fixed in 3.4.31 and 3.5.13 with its follow-up).
fn orders_requested_progress(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (3, m) => m >= 6,
        (m, _) => m > 3,
    }
}
