//! The null server: a trivial HTTP/2 (h2c) server that answers any request with one small fixed
//! object and any `watch=1` request with an endless stream of events. Run against it, kapi-load
//! measures its own ceiling — the requests/s and watch events/s one core of it sustains — so a
//! real run can warn when it nears that ceiling and the numbers stop describing the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};

use crate::client::{Api, Call, Target};
use crate::metrics::{AckBook, Recorder, Scope};
use crate::watch::watch;

/// kapi-load's ceiling on one core, measured with `kapi-load null-server` on the development
/// machine (2 vCPUs shared with other work; the null server on the other core; small events).
/// Release: 49k–69k requests/s, 810k–885k events/s; debug: about 4.7k and 125k. The lower end is
/// kept. Runs warn at 70 % (see loadtest/README.md).
#[cfg(not(debug_assertions))]
pub const CEILING_REQUESTS_PER_CORE: f64 = 49_000.0;
#[cfg(not(debug_assertions))]
pub const CEILING_EVENTS_PER_CORE: f64 = 810_000.0;
#[cfg(debug_assertions)]
pub const CEILING_REQUESTS_PER_CORE: f64 = 4_500.0;
#[cfg(debug_assertions)]
pub const CEILING_EVENTS_PER_CORE: f64 = 120_000.0;

/// Events one watch streams before the server ends it, so even a forgotten watch is bounded.
const MAX_EVENTS_PER_WATCH: u64 = 100_000_000;
/// Events per DATA frame the null server writes.
const EVENTS_PER_FRAME: usize = 16;
/// Connections the self-benchmark opens, and requests in flight on each.
const BENCH_CONNECTIONS: usize = 4;
const BENCH_IN_FLIGHT: usize = 16;
const BENCH_WATCHERS: usize = 8;
pub const BENCH_PHASE: Duration = Duration::from_secs(5);

const OBJECT: &[u8] = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"null","namespace":"default","resourceVersion":"1"},"data":{"k":"v"}}"#;
const EVENT: &[u8] = b"{\"type\":\"MODIFIED\",\"object\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"null\",\"namespace\":\"default\",\"resourceVersion\":\"2\"},\"data\":{\"k\":\"v\"}}}\n";

/// Serves until `deadline`.
pub async fn serve(listener: TcpListener, deadline: Instant) {
    loop {
        let Ok(Ok((sock, _))) = tokio::time::timeout_at(deadline.into(), listener.accept()).await
        else {
            return;
        };
        tokio::spawn(connection(sock, deadline));
    }
}

async fn connection(sock: TcpStream, deadline: Instant) {
    let _ = sock.set_nodelay(true);
    let Ok(mut conn) = h2::server::handshake(sock).await else {
        return;
    };
    while let Ok(Some(Ok((req, respond)))) =
        tokio::time::timeout_at(deadline.into(), conn.accept()).await
    {
        let watching = req.uri().query().is_some_and(|q| q.contains("watch=1"));
        tokio::spawn(answer(respond, watching, deadline));
    }
}

async fn answer(mut respond: h2::server::SendResponse<Bytes>, watching: bool, deadline: Instant) {
    let Ok(resp) = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(())
    else {
        return;
    };
    let Ok(mut send) = respond.send_response(resp, false) else {
        return;
    };
    if !watching {
        let _ = send.send_data(Bytes::from_static(OBJECT), true);
        return;
    }
    // Several events per DATA frame, as a busy server writes them.
    let event = Bytes::from(EVENT.repeat(EVENTS_PER_FRAME));
    for _ in 0..MAX_EVENTS_PER_WATCH / EVENTS_PER_FRAME as u64 {
        if Instant::now() >= deadline {
            break;
        }
        send.reserve_capacity(event.len());
        let cap = futures::future::poll_fn(|cx| send.poll_capacity(cx)).await;
        if !matches!(cap, Some(Ok(n)) if n > 0) || send.send_data(event.clone(), false).is_err() {
            return;
        }
        // Let the connection task write what was queued.
        tokio::task::yield_now().await;
    }
    let _ = send.send_data(Bytes::new(), true);
}

/// The self-benchmark: a null server on its own thread, kapi-load's client on one core.
/// Returns (requests/s, watch events/s).
pub fn bench(phase: Duration) -> Result<(f64, f64), String> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let addr = std_listener.local_addr().map_err(|e| e.to_string())?;
    let server_deadline = Instant::now() + phase * 2 + Duration::from_secs(5);
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async move {
                if let Ok(l) = TcpListener::from_std(std_listener) {
                    serve(l, server_deadline).await;
                }
            });
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(async move {
        let target = Target::from_server(&format!("http://{addr}"));
        // Requests: BENCH_CONNECTIONS connections × BENCH_IN_FLIGHT concurrent GETs.
        let rec = Arc::new(Recorder::new(phase));
        let deadline = Instant::now() + phase;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..BENCH_CONNECTIONS {
            let api = Api::new(&target, rec.clone())?;
            for _ in 0..BENCH_IN_FLIGHT {
                let api = api.clone();
                tasks.spawn(async move {
                    // Bounded by the deadline; the count bound only guards a clock gone wrong.
                    for _ in 0..100_000_000u64 {
                        if Instant::now() >= deadline {
                            break;
                        }
                        api.call(Call::new(
                            "GET",
                            "configmaps",
                            Scope::Resource,
                            "/api/v1/namespaces/default/configmaps/null",
                        ))
                        .await;
                    }
                });
            }
        }
        while tasks.join_next().await.is_some() {}
        let requests =
            rec.requests.load(std::sync::atomic::Ordering::Relaxed) as f64 / phase.as_secs_f64();
        // Watch events: BENCH_WATCHERS watches, each on its own connection.
        let rec = Arc::new(Recorder::new(phase));
        let acks = Arc::new(AckBook::default());
        let deadline = Instant::now() + phase;
        for _ in 0..BENCH_WATCHERS {
            let api = Api::new(&target, rec.clone())?;
            let acks = acks.clone();
            tasks.spawn(async move {
                let mut rv = String::new();
                let _ = watch(
                    &api,
                    "null",
                    "/api/v1/configmaps",
                    "configmaps",
                    Scope::Cluster,
                    deadline,
                    &acks,
                    &mut rv,
                    |_| true,
                )
                .await;
            });
        }
        while tasks.join_next().await.is_some() {}
        let events =
            rec.events.load(std::sync::atomic::Ordering::Relaxed) as f64 / phase.as_secs_f64();
        Ok::<_, String>((requests, events))
    });
    let _ = server.join();
    result
}
