//! The gRPC client under etcdv3client's typed calls: one lazily connected tonic channel per etcd
//! endpoint, and failover between them. Requests go to a preferred endpoint; one that cannot be
//! connected to is passed over for the next, and a call that never reached etcd (no connection)
//! is made again there, which is safe for writes too. A call that failed after it was sent is
//! not repeated: the caller gets `Unavailable` (tonic's own balancer would keep sending requests
//! to a dead endpoint).
//!
//! Without tonic's default 4 MiB limit on a received message: one etcd answer holds a whole list,
//! or a watch's replay of up to 1,000 revisions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use etcdv3client::grpc::GrpcService;
use etcdv3client::{ErrKind, Error};
use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::codec::{ProstCodec, Streaming};
use tonic::transport::Channel;

/// Largest message accepted from etcd: etcd's own client's default (`math.MaxInt32`).
const MAX_RECEIVED_MESSAGE: usize = i32::MAX as usize;

#[derive(Clone, Debug)]
pub struct EtcdGrpc {
    /// One channel per endpoint, in the order given.
    endpoints: Arc<[Grpc<Channel>]>,
    /// The endpoint calls go to first; moves on when it cannot be connected to.
    preferred: Arc<AtomicUsize>,
}

impl EtcdGrpc {
    /// `channels` must not be empty.
    pub fn new(channels: Vec<Channel>) -> EtcdGrpc {
        assert!(!channels.is_empty(), "etcd needs at least one endpoint");
        let endpoints = channels
            .into_iter()
            .map(|c| Grpc::new(c).max_decoding_message_size(MAX_RECEIVED_MESSAGE))
            .collect();
        EtcdGrpc {
            endpoints,
            preferred: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many endpoints there are: how often a caller that reopens a stream itself may retry.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The preferred endpoint, ready for a call, and its index.
    async fn pick(&self) -> Result<(usize, Grpc<Channel>), Error> {
        let index = self.preferred.load(Ordering::Relaxed) % self.endpoints.len();
        let mut grpc = self.endpoints[index].clone();
        grpc.ready()
            .await
            .map_err(|e| Error::new(ErrKind::ConnectFailed, e))?;
        Ok((index, grpc))
    }

    /// Runs `call` on the preferred endpoint; a call that never reached it is tried on the next
    /// one, each endpoint at most once.
    async fn with_failover<T, F, Fut>(&self, mut call: F) -> Result<T, Error>
    where
        F: FnMut(Grpc<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let mut attempts = self.endpoints.len();
        loop {
            attempts -= 1;
            let (index, grpc) = self.pick().await?;
            match self.outcome(index, call(grpc).await) {
                Err(e) if e.kind() == ErrKind::ConnectFailed && attempts > 0 => continue,
                outcome => return outcome,
            }
        }
    }

    /// The call's outcome. A call that never reached endpoint `index` moves the preference to the
    /// next endpoint (unless another call already did) and is `ConnectFailed`.
    fn outcome<T>(&self, index: usize, result: Result<T, tonic::Status>) -> Result<T, Error> {
        match result {
            Ok(response) => Ok(response),
            Err(status) if never_sent(&status) => {
                let next = (index + 1) % self.endpoints.len();
                let _ = self.preferred.compare_exchange(
                    index,
                    next,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                Err(Error::new(ErrKind::ConnectFailed, status))
            }
            Err(status) => Err(status.into()),
        }
    }
}

/// Whether the call failed before it reached etcd: no connection could be made (refused, timed
/// out, TLS handshake failed), so the request was never sent.
fn never_sent(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// A unary request's copy, for another endpoint.
fn copy<M: Clone>(request: &tonic::Request<M>) -> tonic::Request<M> {
    let mut copy = tonic::Request::new(request.get_ref().clone());
    *copy.metadata_mut() = request.metadata().clone();
    copy
}

impl GrpcService for EtcdGrpc {
    async fn unary<M, T>(
        &mut self,
        request: tonic::Request<M>,
        path: PathAndQuery,
    ) -> Result<tonic::Response<T>, Error>
    where
        M: prost::Message + Clone + Send + Sync + 'static,
        T: prost::Message + Default + Send + Sync + 'static,
    {
        self.with_failover(|mut grpc| {
            let (request, path) = (copy(&request), path.clone());
            async move { grpc.unary(request, path, ProstCodec::default()).await }
        })
        .await
    }

    async fn server_streaming<M, T>(
        &mut self,
        request: tonic::Request<M>,
        path: PathAndQuery,
    ) -> Result<tonic::Response<Streaming<T>>, Error>
    where
        M: prost::Message + Clone + Send + Sync + 'static,
        T: prost::Message + Default + Send + Sync + 'static,
    {
        self.with_failover(|mut grpc| {
            let (request, path) = (copy(&request), path.clone());
            async move {
                grpc.server_streaming(request, path, ProstCodec::default())
                    .await
            }
        })
        .await
    }

    /// Not repeated here (the request stream is consumed): a caller that gets `ConnectFailed`
    /// may open a new stream, which goes to the next endpoint.
    async fn client_streaming<S, M, T>(
        &mut self,
        request: tonic::Request<S>,
        path: PathAndQuery,
    ) -> Result<tonic::Response<T>, Error>
    where
        S: futures::Stream<Item = M> + Send + 'static,
        M: prost::Message + Clone + Send + Sync + 'static,
        T: prost::Message + Default + Send + Sync + 'static,
    {
        let (index, mut grpc) = self.pick().await?;
        let result = grpc
            .client_streaming(request, path, ProstCodec::default())
            .await;
        self.outcome(index, result)
    }

    /// As `client_streaming`: a caller that gets `ConnectFailed` may open a new stream.
    async fn streaming<S, M, T>(
        &mut self,
        request: tonic::Request<S>,
        path: PathAndQuery,
    ) -> Result<tonic::Response<Streaming<T>>, Error>
    where
        S: futures::Stream<Item = M> + Send + 'static,
        M: prost::Message + Clone + Send + Sync + 'static,
        T: prost::Message + Default + Send + Sync + 'static,
    {
        let (index, mut grpc) = self.pick().await?;
        let result = grpc.streaming(request, path, ProstCodec::default()).await;
        self.outcome(index, result)
    }
}
