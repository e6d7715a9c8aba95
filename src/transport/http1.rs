//! HTTP/1.1 over one TLS stream: heads parsed with httparse, Content-Length and chunked request
//! bodies, keep-alive, and responses written whole or as a chunked stream flushed per chunk
//! (watches). Requests on a connection are served one after another. At shutdown an idle
//! connection closes, a busy one closes after its response, and a stream ends with its last
//! chunk.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use futures::future::{Either, select};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};

use super::Body;
use super::ends_cleanly;
use super::tls::TlsStream;
use super::{
    BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, Handler, IDLE_TIMEOUT, MAX_BODY_BYTES,
    MAX_HEADER_BYTES, Peer, Refusal, Request, RequestTarget, Response, WRITE_TIMEOUT,
};
use crate::shutdown::{Lifecycle, Phase};

/// Plaintext read per call: one TLS record's worth.
const READ_CHUNK: usize = 16 * 1024;
/// Header lines parsed per request (httparse needs a fixed array): far beyond any real client;
/// 431 past it.
const MAX_HEADER_COUNT: usize = 128;
/// After refusing a request, what the client still sends is read and dropped for up to this
/// long and this much before the connection closes: a client still writing its body would
/// otherwise meet a reset and never read the refusal.
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = MAX_BODY_BYTES + MAX_HEADER_BYTES;
/// Longest chunk-size line of a chunked body (size and extensions); 400 past it.
const MAX_CHUNK_LINE: usize = 1024;

/// Why a request is not served: answered with a short error and the connection closed, or the
/// client is gone (closed, timed out, network error) and there is no one to answer.
#[derive(Debug, PartialEq)]
enum Fault {
    Refuse(StatusCode, &'static str),
    Gone,
}

impl From<std::io::Error> for Fault {
    fn from(_: std::io::Error) -> Fault {
        Fault::Gone
    }
}

/// How the request body is delimited.
#[derive(Debug, PartialEq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
}

#[derive(Debug)]
struct Head {
    method: Method,
    uri: RequestTarget,
    version: Version,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

struct Connection {
    io: TlsStream,
    /// Plaintext received and not yet parsed: the rest of a head, a body, pipelined requests.
    buf: BytesMut,
    /// Landing place for each read, copied into `buf` only once the read completes, so a read
    /// cancelled by a timeout leaves `buf` as it was.
    scratch: Box<[u8]>,
    lifecycle: Lifecycle,
}

pub(super) async fn serve<H: Handler>(
    io: TlsStream,
    peer: Rc<Peer>,
    handler: Rc<H>,
    lifecycle: Lifecycle,
) {
    let mut conn = Connection {
        io,
        buf: BytesMut::with_capacity(READ_CHUNK),
        scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        lifecycle,
    };
    loop {
        let read = if conn.buf.is_empty() {
            // Waiting for a next request that may never come: at shutdown, let the client go.
            let stopping = conn.lifecycle.clone();
            let stop = std::pin::pin!(stopping.reached(stopping.stop_listening_phase()));
            let read = match select(std::pin::pin!(conn.read_request()), stop).await {
                Either::Left((read, _)) => Some(read),
                Either::Right(_) => None,
            };
            match read {
                Some(read) => read,
                None => {
                    // Close gracefully: what the last response left in the socket's buffers
                    // still reaches the client, then the end of the stream.
                    conn.linger().await;
                    return;
                }
            }
        } else {
            conn.read_request().await
        };
        let (head, body) = match read {
            Ok(request) => request,
            Err(Fault::Gone) => return,
            Err(Fault::Refuse(status, text)) => {
                let response = handler.refuse(Refusal { status, text });
                if conn
                    .write_response(response, &Method::GET, Version::HTTP_11, false)
                    .await
                    .is_ok()
                {
                    conn.linger().await;
                }
                return;
            }
        };
        let (method, version, keep_alive) = (head.method.clone(), head.version, head.keep_alive);
        let request = Request {
            method: head.method,
            uri: head.uri,
            headers: head.headers,
            body,
            peer: Rc::clone(&peer),
            http2: false,
        };
        let response = handler.handle(request).await;
        // Once the server takes no new requests, this is the connection's last response.
        let keep_alive = keep_alive && conn.lifecycle.phase() < Phase::NotAcceptingNewRequests;
        match conn
            .write_response(response, &method, version, keep_alive)
            .await
        {
            Ok(true) => {}
            Ok(false) if conn.lifecycle.phase() >= Phase::NotAcceptingNewRequests => {
                conn.linger().await;
                return;
            }
            Ok(false) | Err(_) => return,
        }
    }
}

impl Connection {
    async fn read_request(&mut self) -> Result<(Head, Bytes), Fault> {
        let head = self.read_head().await?;
        if head.expect_continue && head.framing != Framing::Empty {
            self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let body =
            match monoio::time::timeout(BODY_READ_TIMEOUT, self.read_body(&head.framing)).await {
                Ok(body) => body?,
                Err(_) => {
                    return Err(Fault::Refuse(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body timed out\n",
                    ));
                }
            };
        Ok((head, body))
    }

    /// Waits `IDLE_TIMEOUT` for a request's first byte, then `HEADER_READ_TIMEOUT` for the rest
    /// of its head.
    async fn read_head(&mut self) -> Result<Head, Fault> {
        let mut started = (!self.buf.is_empty()).then(Instant::now);
        loop {
            if let Some(started) = started {
                if let Some((head, len)) = parse_head(&self.buf)? {
                    self.buf.advance(len);
                    return Ok(head);
                }
                if self.buf.len() > MAX_HEADER_BYTES {
                    return Err(Fault::Refuse(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "request header too large\n",
                    ));
                }
                let left = HEADER_READ_TIMEOUT.saturating_sub(started.elapsed());
                match monoio::time::timeout(left, self.fill()).await {
                    Ok(n) => n?,
                    Err(_) => return Err(Fault::Gone),
                };
            } else {
                match monoio::time::timeout(IDLE_TIMEOUT, self.fill()).await {
                    Ok(n) => n?,
                    Err(_) => return Err(Fault::Gone),
                };
                started = Some(Instant::now());
            }
        }
    }

    async fn read_body(&mut self, framing: &Framing) -> Result<Bytes, Fault> {
        match *framing {
            Framing::Empty => Ok(Bytes::new()),
            Framing::Length(len) => {
                self.buf.reserve(len.saturating_sub(self.buf.len()));
                while self.buf.len() < len {
                    self.fill().await?;
                }
                Ok(self.buf.split_to(len).freeze())
            }
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                let mut body = BytesMut::new();
                while !decoder.decode(&mut self.buf, &mut body)? {
                    self.fill().await?;
                }
                Ok(body.freeze())
            }
        }
    }

    /// Reads more plaintext into `buf`; the client closing is `Fault::Gone`.
    async fn fill(&mut self) -> Result<usize, Fault> {
        let n = self.io.read(&mut self.scratch).await?;
        if n == 0 {
            return Err(Fault::Gone);
        }
        self.buf.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    /// Resolves when the client closes or breaks the connection; reads (up to a head's worth)
    /// what it sends meanwhile into `buf`, for the next request.
    async fn closed(&mut self) {
        while self.buf.len() <= MAX_HEADER_BYTES {
            if self.fill().await.is_err() {
                return;
            }
        }
        futures::future::pending::<()>().await;
    }

    /// Ends our side of the connection, then drops what the client still sends, within
    /// `LINGER_TIMEOUT` and `LINGER_BYTES`.
    async fn linger(&mut self) {
        let drain = async {
            self.io.shutdown().await?;
            let mut drained = 0;
            while drained < LINGER_BYTES {
                match self.io.read(&mut self.scratch).await? {
                    0 => break,
                    n => drained += n,
                }
            }
            Ok::<(), std::io::Error>(())
        };
        let _ = monoio::time::timeout(LINGER_TIMEOUT, drain).await;
    }

    async fn write_all(&mut self, data: &[u8]) -> Result<(), Fault> {
        match monoio::time::timeout(WRITE_TIMEOUT, self.io.write_all(data)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Fault::Gone),
        }
    }

    /// Writes the response; `Ok(true)` if the connection stays open for the next request.
    async fn write_response(
        &mut self,
        response: Response,
        method: &Method,
        version: Version,
        keep_alive: bool,
    ) -> Result<bool, Fault> {
        let status = response.status;
        let response = match response.body {
            Body::Tunnel(to_client, from_client) => {
                self.tunnel(status, &response.headers, to_client, from_client)
                    .await?;
                return Ok(false);
            }
            body => Response { body, ..response },
        };
        let has_body = !(status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED);
        let send_body = has_body && method != Method::HEAD;
        let mut head = status_line(status, &response.headers);
        let (mut chunks, observer) = match response.body.into_stream() {
            Err(body) => {
                if has_body {
                    head.extend_from_slice(
                        format!("content-length: {}\r\n", body.len()).as_bytes(),
                    );
                }
                finish_head(&mut head, keep_alive);
                if send_body && body.len() <= READ_CHUNK {
                    head.extend_from_slice(&body);
                    self.write_all(&head).await?;
                } else {
                    self.write_all(&head).await?;
                    if send_body {
                        self.write_all(&body).await?;
                    }
                }
                return Ok(keep_alive);
            }
            Ok(stream) => stream,
        };
        if !send_body {
            finish_head(&mut head, keep_alive);
            self.write_all(&head).await?;
            return Ok(keep_alive);
        }
        // An HTTP/1.0 client knows no chunked encoding: the body ends when the
        // connection does.
        let chunked = version == Version::HTTP_11;
        let keep_alive = keep_alive && chunked;
        if chunked {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        finish_head(&mut head, keep_alive);
        self.write_all(&head).await?;
        let mut frame = Vec::new();
        // At shutdown a watch ends cleanly (its last chunk), so the client re-watches
        // elsewhere instead of seeing a broken connection; any other stream still open then
        // (the drain gave up on it) is cut, so that it cannot pass for a complete body.
        let lifecycle = self.lifecycle.clone();
        let mut ending = std::pin::pin!(lifecycle.reached(Phase::EndingStreams));
        let mut keep_alive = keep_alive;
        loop {
            let next = {
                let closed = std::pin::pin!(self.closed());
                // The shutdown is looked at first: a busy stream always has a chunk ready.
                match select(ending.as_mut(), select(chunks.next(), closed)).await {
                    Either::Right((Either::Left((next, _)), _)) => next,
                    // The client left: dropping `chunks` tells the producer.
                    Either::Right((Either::Right(_), _)) => return Ok(false),
                    Either::Left(_) => {
                        if !ends_cleanly(observer.as_deref()) {
                            return Ok(false);
                        }
                        keep_alive = false;
                        None
                    }
                }
            };
            let Some(chunk) = next else { break };
            if let Some(observer) = &observer {
                observer.chunk(chunk.len());
            }
            if chunk.is_empty() {
                // An empty chunk would read as the end of the body.
                continue;
            }
            frame.clear();
            if chunked {
                frame.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                self.write_all(&frame).await?;
            } else {
                self.write_all(&chunk).await?;
            }
        }
        if chunked {
            self.write_all(b"0\r\n\r\n").await?;
        }
        Ok(keep_alive)
    }
}

impl Connection {
    /// An upgraded connection: the head, then bytes both ways until either side ends (what the
    /// client sent past its request head goes first). Reads are cancellation-safe (the TLS
    /// stream keeps its op), so the two directions are raced in one loop.
    async fn tunnel(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        mut to_client: futures::channel::mpsc::Receiver<Bytes>,
        mut from_client: futures::channel::mpsc::Sender<Bytes>,
    ) -> Result<(), Fault> {
        use futures::SinkExt;
        let mut head = status_line(status, headers);
        if status == StatusCode::SWITCHING_PROTOCOLS {
            head.extend_from_slice(b"connection: Upgrade\r\n");
        }
        head.extend_from_slice(b"\r\n");
        self.write_all(&head).await?;
        if !self.buf.is_empty() {
            let early = self.buf.split().freeze();
            let _ = from_client.send(early).await;
        }
        let mut client_open = true;
        loop {
            let step = if client_open {
                let read = std::pin::pin!(self.io.read(&mut self.scratch));
                match select(read, to_client.next()).await {
                    Either::Left((read, _)) => Either::Left(read),
                    Either::Right((chunk, _)) => Either::Right(chunk),
                }
            } else {
                Either::Right(to_client.next().await)
            };
            match step {
                Either::Left(Ok(n)) if n > 0 => {
                    let bytes = Bytes::copy_from_slice(&self.scratch[..n]);
                    if from_client.send(bytes).await.is_err() {
                        // The backend is gone; what it already sent still reaches the client.
                        client_open = false;
                    }
                }
                // The client finished sending (or broke): the backend hears the end, and
                // what it still sends is written.
                Either::Left(_) => {
                    client_open = false;
                    from_client.close_channel();
                }
                Either::Right(Some(chunk)) => self.write_all(&chunk).await?,
                Either::Right(None) => break,
            }
        }
        let _ = self.io.shutdown().await;
        Ok(())
    }
}

fn status_line(status: StatusCode, headers: &HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    let reason = status.canonical_reason().unwrap_or("");
    head.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    for (name, value) in headers {
        // Framing and connection management are the transport's.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head
}

fn finish_head(head: &mut Vec<u8>, keep_alive: bool) {
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
}

fn bad_request(text: &'static str) -> Fault {
    Fault::Refuse(StatusCode::BAD_REQUEST, text)
}

/// Parses a complete request head at the start of `buf`: the head and its length, or `None` if
/// more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Fault> {
    let too_large = Fault::Refuse(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request header too large\n",
    );
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADER_COUNT];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large),
        Err(_) => return Err(bad_request("malformed request\n")),
    };
    if len > MAX_HEADER_BYTES {
        return Err(too_large);
    }
    let method = parsed
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or_else(|| bad_request("malformed method\n"))?;
    let uri = parsed
        .path
        .and_then(RequestTarget::parse)
        .ok_or_else(|| bad_request("malformed request target\n"))?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| bad_request("malformed header name\n"))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| bad_request("malformed header value\n"))?;
        headers.append(name, value);
    }
    let framing = framing(&headers)?;
    let keep_alive = keep_alive(version, &headers);
    let expect_continue = match headers.get(header::EXPECT) {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"100-continue") => true,
        Some(_) => {
            return Err(Fault::Refuse(
                StatusCode::EXPECTATION_FAILED,
                "unsupported expectation\n",
            ));
        }
    };
    let head = Head {
        method,
        uri,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    };
    Ok(Some((head, len)))
}

/// RFC 9112 §6.3: chunked if Transfer-Encoding says so (nothing else is supported), else
/// Content-Length, else no body. Both at once is refused: it is how requests are smuggled.
fn framing(headers: &HeaderMap) -> Result<Framing, Fault> {
    let too_large = Fault::Refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    if let Some(te) = headers.get(header::TRANSFER_ENCODING) {
        if headers.contains_key(header::CONTENT_LENGTH)
            || headers.get_all(header::TRANSFER_ENCODING).iter().count() > 1
        {
            return Err(bad_request("ambiguous request body framing\n"));
        }
        if !te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") {
            return Err(Fault::Refuse(
                StatusCode::NOT_IMPLEMENTED,
                "unsupported transfer-encoding\n",
            ));
        }
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let parsed = std::str::from_utf8(value.as_bytes())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad_request("malformed content-length\n"))?;
        if length.is_some_and(|l| l != parsed) {
            return Err(bad_request("conflicting content-length\n"));
        }
        length = Some(parsed);
    }
    match length {
        None | Some(0) => Ok(Framing::Empty),
        Some(len) if len > MAX_BODY_BYTES as u64 => Err(too_large),
        Some(len) => Ok(Framing::Length(len as usize)),
    }
}

fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &str| {
        headers.get_all(header::CONNECTION).iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    match version {
        Version::HTTP_10 => has("keep-alive"),
        _ => !has("close"),
    }
}

/// Decodes a chunked body (RFC 9112 §7.1) incrementally, as its bytes arrive. Chunk extensions
/// and trailers are read and dropped.
#[derive(Default)]
struct ChunkedDecoder {
    state: ChunkState,
    trailer_bytes: usize,
}

#[derive(Default, Clone, Copy)]
enum ChunkState {
    #[default]
    Size,
    Data(usize),
    DataEnd,
    Trailers,
    Done,
}

impl ChunkedDecoder {
    /// Moves what it can from `input` to `body`; `Ok(true)` once the last chunk and trailers
    /// are read (anything after them stays in `input`: the next request).
    fn decode(&mut self, input: &mut BytesMut, body: &mut BytesMut) -> Result<bool, Fault> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(end) = find_crlf(input) else {
                        if input.len() > MAX_CHUNK_LINE {
                            return Err(bad_request("malformed chunked body\n"));
                        }
                        return Ok(false);
                    };
                    if end > MAX_CHUNK_LINE {
                        return Err(bad_request("malformed chunked body\n"));
                    }
                    let size = parse_chunk_size(&input[..end])?;
                    input.advance(end + 2);
                    if size == 0 {
                        self.state = ChunkState::Trailers;
                    } else if size > MAX_BODY_BYTES - body.len() {
                        return Err(Fault::Refuse(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "request body too large\n",
                        ));
                    } else {
                        body.reserve(size);
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let n = left.min(input.len());
                    body.extend_from_slice(&input[..n]);
                    input.advance(n);
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    if input.len() < 2 {
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(bad_request("malformed chunked body\n"));
                    }
                    input.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(end) = find_crlf(input) else {
                        if self.trailer_bytes + input.len() > MAX_HEADER_BYTES {
                            return Err(Fault::Refuse(
                                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                                "request trailers too large\n",
                            ));
                        }
                        return Ok(false);
                    };
                    input.advance(end + 2);
                    self.trailer_bytes += end + 2;
                    if end == 0 {
                        self.state = ChunkState::Done;
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

fn find_crlf(input: &[u8]) -> Option<usize> {
    input.windows(2).position(|w| w == b"\r\n")
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, Fault> {
    let size = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    // 15 hex digits is already far past any body we accept; more could overflow.
    if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad_request("malformed chunked body\n"));
    }
    std::str::from_utf8(size)
        .ok()
        .and_then(|s| usize::from_str_radix(s, 16).ok())
        .ok_or_else(|| bad_request("malformed chunked body\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(pieces: &[&[u8]]) -> Result<(Bytes, BytesMut), Fault> {
        let mut decoder = ChunkedDecoder::default();
        let mut input = BytesMut::new();
        let mut body = BytesMut::new();
        for (i, piece) in pieces.iter().enumerate() {
            input.extend_from_slice(piece);
            if decoder.decode(&mut input, &mut body)? {
                for rest in &pieces[i + 1..] {
                    input.extend_from_slice(rest);
                }
                return Ok((body.freeze(), input));
            }
        }
        Err(Fault::Gone)
    }

    #[test]
    fn chunked_body_decodes_across_any_split_and_leaves_the_next_request() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET /";
        for split in 0..wire.len() {
            let (body, rest) = decode_all(&[&wire[..split], &wire[split..]]).unwrap();
            assert_eq!(&body[..], b"hello world");
            assert_eq!(&rest[..], b"GET /");
        }
    }

    #[test]
    fn chunked_body_with_bad_framing_is_refused() {
        for wire in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"\r\n",
        ] {
            assert!(matches!(
                decode_all(&[wire]),
                Err(Fault::Refuse(StatusCode::BAD_REQUEST, _))
            ));
        }
    }

    #[test]
    fn chunked_body_past_the_limit_is_refused_before_it_is_read() {
        let wire = format!("{:x}\r\n", MAX_BODY_BYTES + 1);
        let result = decode_all(&[wire.as_bytes()]);
        assert!(matches!(
            result,
            Err(Fault::Refuse(StatusCode::PAYLOAD_TOO_LARGE, _))
        ));
    }

    #[test]
    fn content_length_and_transfer_encoding_together_are_refused() {
        let wire = b"POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(matches!(
            parse_head(wire),
            Err(Fault::Refuse(StatusCode::BAD_REQUEST, _))
        ));
    }

    #[test]
    fn head_is_parsed_with_keep_alive_rules() {
        let (head, len) = parse_head(b"GET /api?x=1 HTTP/1.0\r\nhost: a\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(len, 34);
        assert_eq!(head.uri.as_str(), "/api?x=1");
        assert!(!head.keep_alive);
        let (head, _) = parse_head(b"GET http://a/b HTTP/1.1\r\nconnection: x, Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.uri.as_str(), "/b");
        assert!(!head.keep_alive);
        assert!(
            parse_head(b"GET / HTTP/1.1\r\nhost: a\r\n")
                .unwrap()
                .is_none()
        );
    }
}
