//! The client of a KMS v2 plugin: upstream's `v2.KeyManagementService` (Status, Encrypt,
//! Decrypt) over the plugin's unix socket. The messages are written by hand with prost and the
//! calls made with tonic's generic `Grpc` client (no protoc, no generated code), as the etcd
//! client does.
//!
//! Every call runs on the `kapi-kms` thread's tokio runtime (tonic needs tokio; the serving
//! cores run monoio): a caller awaits the call's `JoinHandle`, which any executor can, so a core
//! waiting for the plugin only parks its task, never the core. Each call is bounded by the
//! provider's `timeout`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::codec::ProstCodec;
use tonic::transport::{Channel, Endpoint, Uri};

use super::super::providers::Error;

/// Largest message accepted from a plugin: a status, or an encrypted seed with its key ID
/// (1 kB each at most) and annotations (32 kB at most); anything bigger is not a plugin's answer.
const MAX_PLUGIN_MESSAGE: usize = 128 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub healthz: String,
    #[prost(string, tag = "3")]
    pub key_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DecryptRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub ciphertext: Vec<u8>,
    #[prost(string, tag = "2")]
    pub uid: String,
    #[prost(string, tag = "3")]
    pub key_id: String,
    #[prost(btree_map = "string, bytes", tag = "4")]
    pub annotations: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DecryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub plaintext: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EncryptRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub plaintext: Vec<u8>,
    #[prost(string, tag = "2")]
    pub uid: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EncryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub ciphertext: Vec<u8>,
    #[prost(string, tag = "2")]
    pub key_id: String,
    #[prost(btree_map = "string, bytes", tag = "3")]
    pub annotations: BTreeMap<String, Vec<u8>>,
}

/// The runtime every plugin call and status poll runs on: one current-thread tokio runtime on
/// its own thread, started when the first KMS provider is built.
pub fn runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the KMS plugins");
        let handle = runtime.handle().clone();
        // The thread only drives the runtime; it lives as long as the process.
        std::thread::Builder::new()
            .name("kapi-kms".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("the KMS plugin thread");
        handle
    })
}

/// One plugin, reached at its socket. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Plugin {
    grpc: Grpc<Channel>,
    timeout: Duration,
}

impl Plugin {
    /// A client of the plugin listening at `socket`; it connects on the first call (and again
    /// after the plugin restarts).
    pub fn new(socket: PathBuf, timeout: Duration) -> Plugin {
        let _runtime = runtime().enter();
        // The URI is not dialled: every connection goes to the socket.
        let channel = Endpoint::from_static("http://kms.plugin").connect_with_connector_lazy(
            tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }),
        );
        Plugin {
            grpc: Grpc::new(channel).max_decoding_message_size(MAX_PLUGIN_MESSAGE),
            timeout,
        }
    }

    pub async fn status(&self) -> Result<StatusResponse, Error> {
        self.call("Status", StatusRequest {}).await
    }

    pub async fn encrypt(&self, plaintext: Vec<u8>, uid: String) -> Result<EncryptResponse, Error> {
        self.call("Encrypt", EncryptRequest { plaintext, uid })
            .await
    }

    pub async fn decrypt(&self, request: DecryptRequest) -> Result<Vec<u8>, Error> {
        let response: DecryptResponse = self.call("Decrypt", request).await?;
        Ok(response.plaintext)
    }

    /// One unary call on the plugin runtime, within the timeout.
    async fn call<M, T>(&self, method: &'static str, request: M) -> Result<T, Error>
    where
        M: prost::Message + Send + Sync + 'static,
        T: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = self.grpc.clone();
        let timeout = self.timeout;
        let call = async move {
            let path = PathAndQuery::from_static(match method {
                "Status" => "/v2.KeyManagementService/Status",
                "Encrypt" => "/v2.KeyManagementService/Encrypt",
                _ => "/v2.KeyManagementService/Decrypt",
            });
            let result = async {
                grpc.ready()
                    .await
                    .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                grpc.unary(tonic::Request::new(request), path, ProstCodec::default())
                    .await
            };
            match tokio::time::timeout(timeout, result).await {
                Ok(Ok(response)) => Ok(response.into_inner()),
                Ok(Err(status)) => Err(rpc_error(&status)),
                Err(_) => Err(
                    "rpc error: code = DeadlineExceeded desc = context deadline exceeded".into(),
                ),
            }
        };
        runtime()
            .spawn(call)
            .await
            .unwrap_or_else(|e| Err(format!("the KMS plugin call ended: {e}")))
    }
}

/// A failed call as Go's gRPC prints it (`rpc error: code = Unavailable desc = ...`).
fn rpc_error(status: &tonic::Status) -> Error {
    let mut message = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        message = format!("{message}: {e}");
        source = e.source();
    }
    format!("rpc error: code = {:?} desc = {message}", status.code())
}

/// The socket path of `unix:///path.sock` (upstream accepts only the unix scheme).
pub fn socket_path(endpoint: &str) -> Option<PathBuf> {
    let rest = endpoint.strip_prefix("unix://")?;
    (!rest.is_empty()).then(|| PathBuf::from(rest))
}
