//! TLS over a monoio TCP stream: rustls driven by hand over completion-based socket I/O (each
//! read or write is an owned-buffer io_uring op). Serves HTTP/1.1 through its async methods and
//! HTTP/2 through tokio's poll traits, which `h2` needs.
//!
//! Why not monoio-rustls: its stream hides the rustls session (no peer certificates, so no client
//! identity) and is not safe to read and write concurrently, which HTTP/2 does. Here the read
//! and write sides are separate halves, each moved into its in-flight op, so an op survives the
//! cancellation of whatever polled it and nothing is aliased.

use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use rustls::ServerConnection;

/// Ciphertext read from the socket per op: two full TLS records (16 KiB each plus overhead).
const CIPHERTEXT_READ_BYTES: usize = 34 * 1024;
/// Plaintext rustls accepts before the socket must take some (rustls' default): a write past it
/// waits for the in-flight socket write, so a slow reader applies back-pressure.
const PLAINTEXT_SEND_LIMIT: usize = 64 * 1024;

type ReadOp = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>, OwnedReadHalf<TcpStream>)>>>;
type WriteOp =
    Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>, OwnedWriteHalf<TcpStream>)>>>;

/// A server-side TLS connection. Each side is in one of two states: idle (its half and buffer
/// in their slots) or in flight (both moved into the op).
pub(super) struct TlsStream {
    session: ServerConnection,
    reader: Option<OwnedReadHalf<TcpStream>>,
    /// Ciphertext from the socket; `[consumed..]` is not yet handed to rustls.
    ciphertext_in: Option<Vec<u8>>,
    consumed: usize,
    read_op: Option<ReadOp>,
    /// The socket returned end-of-file.
    eof: bool,
    writer: Option<OwnedWriteHalf<TcpStream>>,
    /// Ciphertext from rustls on its way to the socket; reused between writes.
    ciphertext_out: Option<Vec<u8>>,
    write_op: Option<WriteOp>,
    close_notify_sent: bool,
}

fn broken() -> io::Error {
    io::Error::other("tls stream used after a failed operation")
}

impl TlsStream {
    /// Runs the server side of the handshake. A rustls error is sent to the client as an alert
    /// before it is returned.
    pub(super) async fn accept(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<TlsStream> {
        let mut session = ServerConnection::new(config).map_err(io::Error::other)?;
        session.set_buffer_limit(Some(PLAINTEXT_SEND_LIMIT));
        let (reader, writer) = tcp.into_split();
        let mut stream = TlsStream {
            session,
            reader: Some(reader),
            ciphertext_in: Some(Vec::with_capacity(CIPHERTEXT_READ_BYTES)),
            consumed: 0,
            read_op: None,
            eof: false,
            writer: Some(writer),
            ciphertext_out: Some(Vec::new()),
            write_op: None,
            close_notify_sent: false,
        };
        while stream.session.is_handshaking() {
            stream.flush().await?;
            if !stream.session.is_handshaking() {
                break;
            }
            match poll_fn(|cx| stream.poll_receive(cx)).await {
                Ok(true) => {}
                Ok(false) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Err(e) => {
                    let _ = stream.flush().await;
                    return Err(e);
                }
            }
        }
        stream.flush().await?;
        Ok(stream)
    }

    /// The protocol agreed by ALPN (`h2`, `http/1.1`), if any.
    pub(super) fn alpn(&self) -> Option<&[u8]> {
        self.session.alpn_protocol()
    }

    /// The client's certificate chain, leaf first: rustls keeps only certificates that its
    /// verifier accepted, so this is a verified chain or nothing.
    pub(super) fn peer_certificates(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        self.session
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default()
    }

    /// Reads plaintext into `dst`; 0 is end of stream (close_notify or the socket closing).
    /// Cancel-safe: an in-flight socket read stays with the stream.
    pub(super) async fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_plain(cx, dst)).await
    }

    /// Writes all of `data` and sends it.
    pub(super) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = poll_fn(|cx| self.poll_write_plain(cx, data)).await?;
            data = &data[n..];
        }
        self.flush().await
    }

    /// Waits until everything written so far is on the socket.
    pub(super) async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_send(cx)).await
    }

    /// Sends close_notify and ends the TCP stream's write side; reading goes on.
    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut *self), cx)).await?;
        let writer = self.writer.as_mut().ok_or_else(broken)?;
        writer.shutdown().await
    }

    fn poll_read_plain(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match self.session.reader().read(dst) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the socket without close_notify: the end, as far as HTTP
                // framing is concerned (a truncated body is caught there).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(e)),
            }
            if !ready!(self.poll_receive(cx))? {
                return Poll::Ready(Ok(0));
            }
        }
    }

    /// Hands the next ciphertext to rustls, reading from the socket first if none is buffered.
    /// `Ok(false)` at the socket's end of file.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            if let Some(op) = self.read_op.as_mut() {
                let (result, buf, reader) = ready!(op.as_mut().poll(cx));
                self.read_op = None;
                self.ciphertext_in = Some(buf);
                self.reader = Some(reader);
                self.consumed = 0;
                if result? == 0 {
                    self.eof = true;
                }
            }
            let buf = self.ciphertext_in.as_ref().ok_or_else(broken)?;
            if self.consumed < buf.len() {
                let n = self.session.read_tls(&mut &buf[self.consumed..])?;
                if n == 0 {
                    // rustls took nothing: calling again would spin.
                    return Poll::Ready(Err(io::Error::other("rustls accepts no more input")));
                }
                self.consumed += n;
                self.session
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return Poll::Ready(Ok(true));
            }
            if self.eof {
                return Poll::Ready(Ok(false));
            }
            let mut buf = self.ciphertext_in.take().ok_or_else(broken)?;
            let mut reader = self.reader.take().ok_or_else(broken)?;
            buf.clear();
            self.read_op = Some(Box::pin(async move {
                let (result, buf) = reader.read(buf).await;
                (result, buf, reader)
            }));
        }
    }

    /// Gives rustls as much of `data` as it takes (at least one byte, waiting for the socket if
    /// its buffer is full) and starts sending it.
    fn poll_write_plain(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let n = self.session.writer().write(data)?;
            if n > 0 {
                // Start the socket write now; its completion is awaited by a later call.
                if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(n));
            }
            ready!(self.poll_send(cx))?;
        }
    }

    /// Drives socket writes until rustls has nothing left to send.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(op) = self.write_op.as_mut() {
                let (result, buf, writer) = ready!(op.as_mut().poll(cx));
                self.write_op = None;
                self.ciphertext_out = Some(buf);
                self.writer = Some(writer);
                result?;
            }
            if !self.session.wants_write() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = self.ciphertext_out.take().ok_or_else(broken)?;
            buf.clear();
            self.session.write_tls(&mut buf)?;
            let mut writer = self.writer.take().ok_or_else(broken)?;
            self.write_op = Some(Box::pin(async move {
                let (result, buf) = writer.write_all(buf).await;
                (result, buf, writer)
            }));
        }
    }
}

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = ready!(this.poll_read_plain(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_plain(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_sent {
            this.session.send_close_notify();
            this.close_notify_sent = true;
        }
        this.poll_send(cx)
    }
}
