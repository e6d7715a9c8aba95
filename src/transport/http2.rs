//! HTTP/2 over one TLS stream with the `h2` crate: the connection task drives the frames and
//! accepts streams; each request stream is served by its own task on the same core, and its
//! response body is sent as flow control allows. At shutdown the connection sends GOAWAY (no
//! new streams; the open ones finish) and each streamed body ends with END_STREAM.

use std::cell::Cell;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::{Either, select};
use futures::{FutureExt, StreamExt};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, StatusCode, header};

use super::ends_cleanly;
use super::tls::TlsStream;
use super::{
    BODY_READ_TIMEOUT, HANDSHAKE_TIMEOUT, Handler, IDLE_TIMEOUT, MAX_BODY_BYTES, MAX_H2_STREAMS,
    MAX_HEADER_BYTES, Peer, Refusal, Request, RequestTarget, Response,
};
use crate::shutdown::{Lifecycle, Phase};

/// Per-stream receive window: a request body of this much may be in flight before the client
/// waits for us to read it (Go's HTTP/2 server buffers 1 MiB per stream).
const STREAM_WINDOW: u32 = 1024 * 1024;
/// Connection-wide receive window: bounds what all streams together may have in flight.
const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
/// Response bytes queued per stream before its sender waits for the client to take them: large
/// enough that a streamed list keeps the connection busy while its next chunk is written (a
/// 20k-pod JSON list over h2: 0.64 s at 64 KiB, 0.26 s at 512 KiB, 0.21 s at 1 MiB). A watch
/// stream only fills it when its client stops reading, and the watch is then closed when its
/// queue in the cache fills.
const STREAM_SEND_BUFFER: usize = 1024 * 1024;
/// Largest piece of a response body sent as one DATA payload.
const MAX_DATA_CHUNK: usize = 16 * 1024;
/// The header list size the `h2` crate itself enforces: past it, h2 answers a bare 431 or
/// closes the connection. Set above `MAX_HEADER_BYTES` so that requests between the two get the
/// API's 431 `Status` from us, as on HTTP/1.1.
const H2_HEADER_LIST_LIMIT: u32 = 2 * MAX_HEADER_BYTES as u32;
/// After refusing a request, what the client still sends of its body is read and dropped for
/// up to this long and this much, as HTTP/1.1 lingers (see `refuse`).
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 2 * MAX_BODY_BYTES;
/// What HPACK counts per header field beyond its name and value (RFC 7541 §4.1).
const HEADER_FIELD_OVERHEAD: usize = 32;

pub(super) async fn serve<H: Handler>(
    io: TlsStream,
    peer: Rc<Peer>,
    handler: Rc<H>,
    lifecycle: Lifecycle,
) {
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_H2_STREAMS)
        .max_header_list_size(H2_HEADER_LIST_LIMIT)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(STREAM_SEND_BUFFER)
        .handshake::<_, Bytes>(io);
    let mut connection = match monoio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(_)) | Err(_) => return,
    };
    let activity = Rc::new(Activity {
        open_streams: Cell::new(0),
        last_stream_end: Cell::new(Instant::now()),
    });
    // `accept` also drives the connection's I/O for the streams already running: it returns
    // `None` only once the connection is closed. It is cancel-safe, so it can wake up now and
    // then to see whether the connection has gone idle.
    let mut stop = std::pin::pin!(lifecycle.reached(lifecycle.stop_listening_phase()));
    let mut going_away = false;
    loop {
        let accepted = {
            let accepted = std::pin::pin!(monoio::time::timeout(IDLE_TIMEOUT, connection.accept()));
            if going_away {
                Some(accepted.await)
            } else {
                match select(accepted, stop.as_mut()).await {
                    Either::Left((accepted, _)) => Some(accepted),
                    Either::Right(_) => None,
                }
            }
        };
        let Some(accepted) = accepted else {
            // Shutdown: GOAWAY; the open streams finish (or are ended) and `accept` returns
            // `None` once they have.
            connection.graceful_shutdown();
            going_away = true;
            continue;
        };
        let next = match accepted {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(_) => {
                if activity.open_streams.get() == 0
                    && activity.last_stream_end.get().elapsed() >= IDLE_TIMEOUT
                {
                    // GOAWAY: the client opens no more streams here, and the connection
                    // closes (`accept` returns `None`) once it has acknowledged.
                    connection.graceful_shutdown();
                }
                continue;
            }
        };
        let Ok((request, respond)) = next else { return };
        let stream = serve_stream(
            request,
            respond,
            Rc::clone(&peer),
            Rc::clone(&handler),
            lifecycle.clone(),
        );
        let open = OpenStream::new(&activity);
        monoio::spawn(async move {
            let _open = open;
            // A panic ends this stream (dropping it resets the stream), not the connection.
            let _ = AssertUnwindSafe(stream).catch_unwind().await;
        });
    }
}

/// What the connection knows of its streams, to close it once idle for `IDLE_TIMEOUT` (as
/// upstream does): a connection with a watch open is never idle.
struct Activity {
    open_streams: Cell<usize>,
    last_stream_end: Cell<Instant>,
}

/// Counts a stream as open for as long as its task lives.
struct OpenStream(Rc<Activity>);

impl OpenStream {
    fn new(activity: &Rc<Activity>) -> OpenStream {
        activity.open_streams.set(activity.open_streams.get() + 1);
        OpenStream(Rc::clone(activity))
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.set(self.0.open_streams.get() - 1);
        self.0.last_stream_end.set(Instant::now());
    }
}

async fn serve_stream<H: Handler>(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    peer: Rc<Peer>,
    handler: Rc<H>,
    lifecycle: Lifecycle,
) {
    let (parts, mut body) = request.into_parts();
    if header_list_size(&parts) > MAX_HEADER_BYTES {
        let refusal = Refusal {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            text: "request header too large\n",
        };
        refuse(&mut respond, &mut body, handler.refuse(refusal), &lifecycle).await;
        return;
    }
    let read = monoio::time::timeout(BODY_READ_TIMEOUT, read_body(&parts.headers, &mut body));
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(Some(refusal))) => {
            refuse(&mut respond, &mut body, handler.refuse(refusal), &lifecycle).await;
            return;
        }
        Ok(Err(None)) => return,
        Err(_) => {
            let refusal = Refusal {
                status: StatusCode::REQUEST_TIMEOUT,
                text: "request body timed out\n",
            };
            refuse(&mut respond, &mut body, handler.refuse(refusal), &lifecycle).await;
            return;
        }
    };
    let head_only = parts.method == http::Method::HEAD;
    let request = Request {
        method: parts.method,
        uri: RequestTarget::parse(parts.uri.path_and_query().map_or("/", |p| p.as_str()))
            .unwrap_or_else(RequestTarget::root),
        headers: parts.headers,
        body,
        peer,
        http2: true,
    };
    let response = handler.handle(request).await;
    let _ = send_response(&mut respond, response, head_only, &lifecycle).await;
}

/// Answers a refused request while the client may still be sending its body: the response goes
/// first; what the client still sends is then read and dropped (within `LINGER_TIMEOUT` and
/// `LINGER_BYTES`), so that a client that reads its response only once its body is sent (hyper,
/// curl) sees the refusal rather than a reset stream; past those bounds the stream is reset
/// with NO_ERROR (RFC 9113 §8.1).
async fn refuse(
    respond: &mut SendResponse<Bytes>,
    body: &mut RecvStream,
    response: Response,
    lifecycle: &Lifecycle,
) {
    if send_response(respond, response, false, lifecycle)
        .await
        .is_err()
    {
        return;
    }
    let drain = async {
        let mut drained = 0;
        while let Some(Ok(data)) = body.data().await {
            drained += data.len();
            let _ = body.flow_control().release_capacity(data.len());
            if drained > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = monoio::time::timeout(LINGER_TIMEOUT, drain).await;
    if !body.is_end_stream() {
        respond.send_reset(h2::Reason::NO_ERROR);
    }
}

/// The size of a request's header list as HPACK counts it (RFC 7541 §4.1), pseudo-headers
/// included: what `MAX_HEADER_BYTES` bounds.
fn header_list_size(parts: &http::request::Parts) -> usize {
    let pseudo = parts.method.as_str().len()
        + parts.uri.path_and_query().map_or(0, |p| p.as_str().len())
        + parts.uri.authority().map_or(0, |a| a.as_str().len())
        + 4 * HEADER_FIELD_OVERHEAD;
    parts.headers.iter().fold(pseudo, |n, (name, value)| {
        n + name.as_str().len() + value.len() + HEADER_FIELD_OVERHEAD
    })
}

/// Connection-specific headers are forbidden in HTTP/2 (RFC 9113 §8.2.2).
fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Reads the whole request body, up to `MAX_BODY_BYTES`. `Err(Some(refusal))` refuses the
/// request; `Err(None)` means the stream broke.
async fn read_body(headers: &HeaderMap, body: &mut RecvStream) -> Result<Bytes, Option<Refusal>> {
    let too_large = Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        text: "request body too large\n",
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(Some(too_large));
    }
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let mut collected = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(data) = body.data().await {
        let data = data.map_err(|_| None)?;
        // Reading it into `collected` frees the window for more.
        let _ = body.flow_control().release_capacity(data.len());
        if collected.len() + data.len() > MAX_BODY_BYTES {
            return Err(Some(too_large));
        }
        if collected.is_empty() && body.is_end_stream() {
            return Ok(data);
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected.freeze())
}

async fn send_response(
    respond: &mut SendResponse<Bytes>,
    response: Response,
    head_only: bool,
    lifecycle: &Lifecycle,
) -> Result<(), h2::Error> {
    let status = response.status;
    let mut head = http::Response::new(());
    *head.status_mut() = status;
    *head.headers_mut() = response.headers;
    strip_connection_headers(head.headers_mut());
    // No content may follow these statuses or a HEAD request (RFC 9110 §6.4.1); a HEAD response
    // keeps the length a GET would have. Dropping a stream's receiver tells its producer.
    let bodyless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let (mut chunks, observer) = match response.body.into_stream() {
        Err(body) if bodyless || head_only || body.is_empty() => {
            if !bodyless {
                head.headers_mut()
                    .insert(header::CONTENT_LENGTH, body.len().into());
            }
            respond.send_response(head, true)?;
            return Ok(());
        }
        Err(body) => {
            head.headers_mut()
                .insert(header::CONTENT_LENGTH, body.len().into());
            let mut send = respond.send_response(head, false)?;
            return send_data(&mut send, body, true).await;
        }
        Ok(_) if bodyless || head_only => {
            respond.send_response(head, true)?;
            return Ok(());
        }
        Ok(stream) => stream,
    };
    head.headers_mut().remove(header::CONTENT_LENGTH);
    let mut send = respond.send_response(head, false)?;
    // At shutdown a watch ends cleanly (END_STREAM), so the client re-watches elsewhere
    // instead of seeing a reset; any other stream still open then (the drain gave up on it)
    // is reset, so that it cannot pass for a complete body.
    let mut ending = std::pin::pin!(lifecycle.reached(Phase::EndingStreams));
    loop {
        let reset = poll_fn(|cx| send.poll_reset(cx));
        // The shutdown is looked at first: a busy stream always has a chunk ready.
        match select(
            ending.as_mut(),
            select(chunks.next(), std::pin::pin!(reset)),
        )
        .await
        {
            Either::Right((Either::Left((Some(chunk), _)), _)) => {
                if let Some(observer) = &observer {
                    observer.chunk(chunk.len());
                }
                send_data(&mut send, chunk, false).await?
            }
            Either::Right((Either::Left((None, _)), _)) => {
                return send.send_data(Bytes::new(), true);
            }
            Either::Left(_) => {
                if ends_cleanly(observer.as_deref()) {
                    return send.send_data(Bytes::new(), true);
                }
                send.send_reset(h2::Reason::CANCEL);
                return Ok(());
            }
            // The client reset the stream: dropping `chunks` tells the producer.
            Either::Right((Either::Right(_), _)) => return Ok(()),
        }
    }
}

/// Sends `data` as the peer's flow-control window allows, waiting for capacity as needed; with
/// `end`, its last piece ends the stream.
async fn send_data(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    while !data.is_empty() {
        send.reserve_capacity(data.len().min(MAX_DATA_CHUNK));
        let capacity = match poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(capacity) => capacity?,
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        if capacity == 0 {
            continue;
        }
        let piece = data.split_to(capacity.min(data.len()));
        send.send_data(piece, end && data.is_empty())?;
    }
    Ok(())
}
