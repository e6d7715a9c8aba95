//! Thread-per-core: one monoio runtime (io_uring, epoll where io_uring is missing) per core, each
//! with its own SO_REUSEPORT listener on the same address, so the kernel spreads connections
//! over the cores and a connection never leaves the core that accepted it. At shutdown each
//! core closes its listener, lets its connections end (see `shutdown::Phase`) and stops.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{Either, select};
use socket2::{Domain, Protocol, Socket, Type};

use super::{Handler, MAX_CONNECTIONS_PER_CORE, ServerConfig, connection};
use crate::shutdown::{CONNECTIONS_CLOSE_TIMEOUT, Lifecycle, Phase};

/// Pending connections the kernel queues per listener before refusing: a burst of reconnecting
/// kubelets fits.
const LISTEN_BACKLOG: i32 = 4096;
/// Pause after a failed accept (out of file descriptors, mostly), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Pause between looks at a stopping core's open connections.
const CLOSE_POLL: Duration = Duration::from_millis(10);

/// Runs the server until it has shut down; `factory` is called once on each core thread.
/// Binding errors are returned before any core starts; a core that fails (it cannot build its
/// runtime, say) ends `serve` with its error; `Ok` once every core has shut down.
pub fn serve<F, H>(cfg: ServerConfig, factory: F) -> io::Result<()>
where
    F: Fn() -> H + Send + Sync + 'static,
    H: Handler,
{
    let cores = cfg.cores.max(1);
    let addr = claim(cfg.bind)?;
    let listeners = (0..cores)
        .map(|_| reuseport_listener(addr))
        .collect::<io::Result<Vec<_>>>()?;
    let factory = Arc::new(factory);
    // Each core reports here when it stops; a core stops only on an error.
    let (stopped_tx, stopped_rx) = std::sync::mpsc::channel();
    for (core, listener) in listeners.into_iter().enumerate() {
        let factory = Arc::clone(&factory);
        let tls = Arc::clone(&cfg.tls);
        let lifecycle = cfg.lifecycle.clone();
        let stopped = stopped_tx.clone();
        std::thread::Builder::new()
            .name(format!("kapi-core-{core}"))
            .spawn(move || {
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    run_core(listener, tls, factory(), lifecycle)
                }))
                .unwrap_or_else(|_| Err(io::Error::other(format!("core {core} panicked"))));
                let _ = stopped.send(result);
            })?;
    }
    drop(stopped_tx);
    for _ in 0..cores {
        match stopped_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("every core stopped without a word")),
        }
    }
    Ok(())
}

/// Checks that no one listens on `addr` yet, and picks the port if it is 0. SO_REUSEPORT would
/// otherwise let this server silently share the port with another process of the same user,
/// each getting some of the connections: a plain bind fails instead, as upstream's does.
fn claim(addr: SocketAddr) -> io::Result<SocketAddr> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Still allows a port whose old connections linger in TIME_WAIT.
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())?;
    probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound address is not an IP socket address"))
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn run_core<H: Handler>(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: H,
    lifecycle: Lifecycle,
) -> io::Result<()> {
    let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    runtime.block_on(async move {
        let listener = monoio::net::TcpListener::from_std(listener)?;
        let handler = Rc::new(handler);
        let open = Rc::new(Cell::new(0usize));
        let mut stop_listening =
            std::pin::pin!(lifecycle.reached(lifecycle.stop_listening_phase()));
        loop {
            let accepted = std::pin::pin!(listener.accept());
            let accepted = match select(accepted, stop_listening.as_mut()).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(_) => break,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    monoio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            if open.get() >= MAX_CONNECTIONS_PER_CORE {
                drop(tcp);
                continue;
            }
            let slot = OpenConnection::new(&open);
            let serve = connection::serve(
                tcp,
                Arc::clone(&tls),
                Rc::clone(&handler),
                lifecycle.clone(),
            );
            monoio::spawn(async move {
                let _slot = slot;
                // A panic is a bug, but it must end only this connection, not the core: the
                // default hook has already printed it.
                let _ = AssertUnwindSafe(serve).catch_unwind().await;
            });
        }
        // No new connections; the open ones end on their own (idle ones now, the others once
        // their requests have drained and their streams were ended), within a bound.
        drop(listener);
        lifecycle.reached(Phase::EndingStreams).await;
        let deadline = Instant::now() + CONNECTIONS_CLOSE_TIMEOUT;
        while open.get() > 0 && Instant::now() < deadline {
            monoio::time::sleep(CLOSE_POLL).await;
        }
        Ok(())
    })
}

/// Counts a connection as open on its core for as long as it lives.
struct OpenConnection(Rc<Cell<usize>>);

impl OpenConnection {
    fn new(open: &Rc<Cell<usize>>) -> OpenConnection {
        open.set(open.get() + 1);
        OpenConnection(Rc::clone(open))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}
