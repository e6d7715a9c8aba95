//! One accepted connection, from TLS handshake to close: the protocol ALPN agreed decides
//! whether HTTP/1.1 or HTTP/2 serves it. Runs as its own task on the core that accepted it.

use std::rc::Rc;
use std::sync::Arc;

use monoio::net::TcpStream;

use super::tls::TlsStream;
use super::{HANDSHAKE_TIMEOUT, Handler, Peer, http1, http2};

/// Serves one connection until the client leaves, an error ends it, or a limit closes it.
/// Errors are the client's or the network's, so they end only this connection, silently.
pub(super) async fn serve<H: Handler>(
    tcp: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    handler: Rc<H>,
    lifecycle: crate::shutdown::Lifecycle,
) {
    let remote = tcp.peer_addr().ok();
    // Small writes (watch events, HTTP/2 frames) must leave at once, not wait for an ACK.
    let _ = tcp.set_nodelay(true);
    let stream = match monoio::time::timeout(HANDSHAKE_TIMEOUT, TlsStream::accept(tcp, tls)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) | Err(_) => return,
    };
    let peer = Rc::new(Peer {
        certificates: stream.peer_certificates(),
        remote,
        memo: std::cell::OnceCell::new(),
    });
    if stream.alpn() == Some(b"h2") {
        http2::serve(stream, peer, handler, lifecycle).await;
    } else {
        http1::serve(stream, peer, handler, lifecycle).await;
    }
}
