//! The shutdown sequence, on its own thread: waits for SIGTERM or SIGINT (signal-hook's
//! iterator: the handler only writes to a pipe, the thread does the work), then moves the
//! `Lifecycle` through its phases with upstream's timing. A second signal exits at once with
//! status 1, as upstream's signal handler does.

use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::{DRAIN_TIMEOUT, Lifecycle, PRE_SHUTDOWN_TIMEOUT, Phase};

/// How often the sequence looks at the counts it waits on (requests in flight, open watches).
const POLL: Duration = Duration::from_millis(20);

/// Installs the signal handlers and starts the thread that runs the sequence on the first
/// signal.
pub fn start(lifecycle: Lifecycle) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("kapi-shutdown".into())
        .spawn(move || {
            let mut signals = signals.forever();
            let Some(signal) = signals.next() else { return };
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            eprintln!("kapi: {name}: shutting down");
            let sequence = lifecycle.clone();
            if let Err(e) = std::thread::Builder::new()
                .name("kapi-shutdown-sequence".into())
                .spawn(move || run(&sequence))
            {
                eprintln!("kapi: cannot run the shutdown sequence ({e}); exiting");
                std::process::exit(1);
            }
            if signals.next().is_some() {
                eprintln!("kapi: second signal: exiting now");
                std::process::exit(1);
            }
        })?;
    Ok(())
}

fn run(lifecycle: &Lifecycle) {
    let options = lifecycle.options();
    lifecycle.advance(Phase::ShutdownInitiated);
    wait_until(PRE_SHUTDOWN_TIMEOUT, || lifecycle.holds() == 0);
    std::thread::sleep(options.delay);
    lifecycle.advance(Phase::NotAcceptingNewRequests);
    let drained = wait_until(DRAIN_TIMEOUT, || lifecycle.in_flight() == 0);
    if !drained {
        eprintln!(
            "kapi: shutdown: {} requests still in flight after {DRAIN_TIMEOUT:?}",
            lifecycle.in_flight()
        );
    }
    if !options.watch_grace.is_zero() {
        wait_until(options.watch_grace, || lifecycle.long_running() == 0);
    }
    lifecycle.advance(Phase::EndingStreams);
}

/// Waits for `done` up to `bound`; whether it came true.
fn wait_until(bound: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
