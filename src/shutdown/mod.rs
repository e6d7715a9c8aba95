//! Graceful shutdown, as upstream's genericapiserver: on SIGTERM or SIGINT `/readyz` fails at
//! once, the server keeps serving for `--shutdown-delay-duration`, then stops taking new
//! connections, drains the requests in flight, ends every open watch with a clean end of stream
//! and exits 0. `Lifecycle` is the state every core observes; `sequence` drives it.
//!
//! The phase lives in a `tokio::sync::watch` channel: reading it is a lock-free load on the
//! request path, and waiting for a phase works from any executor (monoio's cores wake across
//! threads with its `sync` feature), so each core's accept loop, each HTTP/2 connection and
//! each streamed body can wait for its own step without polling.

pub(crate) mod duration;
mod sequence;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use duration::parse_duration;
pub use sequence::start;

/// Where the server is in its life; each phase includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Running,
    /// A signal arrived: `/readyz` fails (its `shutdown` check), everything else is served.
    ShutdownInitiated,
    /// `--shutdown-delay-duration` has passed: no new requests. Without
    /// `--shutdown-send-retry-after` the listeners close and connections close once idle
    /// (HTTP/2: GOAWAY); with it, new requests get 429 with `Retry-After` until drained.
    NotAcceptingNewRequests,
    /// Requests in flight have drained (bounded): every open stream ends cleanly, the
    /// listeners close, and each core exits once its connections have.
    EndingStreams,
}

/// The shutdown flags, as kube-apiserver's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `--shutdown-delay-duration`: how long `/readyz` fails before requests are refused.
    pub delay: Duration,
    /// `--shutdown-send-retry-after`: answer 429 instead of closing the listener while draining.
    pub send_retry_after: bool,
    /// `--shutdown-watch-termination-grace-period`: how long open watches may end on their own
    /// before they are ended.
    pub watch_grace: Duration,
}

/// Upstream's request timeout (`--request-timeout`, 60 s): how long requests in flight may
/// take to drain before the server stops waiting for them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a core waits for its connections to close once their streams were ended: a client
/// that neither reads nor closes does not hold the process.
pub const CONNECTIONS_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for its holds (the endpoints update of a leaving apiserver): a
/// storage that does not answer does not keep the process.
pub const PRE_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared lifecycle: cheap to clone, one per process.
#[derive(Clone)]
pub struct Lifecycle(Arc<Shared>);

struct Shared {
    phase: tokio::sync::watch::Sender<Phase>,
    options: Options,
    /// Requests in flight that are not long-running (what the drain waits for).
    in_flight: AtomicUsize,
    /// Open long-running requests (watches).
    long_running: AtomicUsize,
    /// Work that must finish once shutdown begins, before requests are refused (upstream's
    /// pre-shutdown hooks: the apiserver leaving the `kubernetes` endpoints).
    holds: AtomicUsize,
}

impl Lifecycle {
    pub fn new(options: Options) -> Lifecycle {
        let (phase, _) = tokio::sync::watch::channel(Phase::Running);
        Lifecycle(Arc::new(Shared {
            phase,
            options,
            in_flight: AtomicUsize::new(0),
            long_running: AtomicUsize::new(0),
            holds: AtomicUsize::new(0),
        }))
    }

    pub fn phase(&self) -> Phase {
        *self.0.phase.borrow()
    }

    pub fn options(&self) -> Options {
        self.0.options
    }

    /// Moves to `phase` (never back).
    pub fn advance(&self, phase: Phase) {
        self.0.phase.send_if_modified(|p| {
            let later = phase > *p;
            if later {
                *p = phase;
            }
            later
        });
    }

    /// Resolves once the server has reached `phase`.
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.0.phase.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail while we hold it.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }

    /// The phase at which listeners close and idle connections are let go.
    pub fn stop_listening_phase(&self) -> Phase {
        if self.0.options.send_retry_after {
            Phase::EndingStreams
        } else {
            Phase::NotAcceptingNewRequests
        }
    }

    /// Whether a request for `path` is answered 429 (`--shutdown-send-retry-after` while
    /// draining). Health checks, `/version` and `/metrics` are exempt, as upstream's.
    pub fn refuses(&self, path: &str, user_agent: Option<&str>) -> bool {
        const EXEMPT: &[&str] = &["/readyz", "/livez", "/healthz", "/version", "/metrics"];
        self.0.options.send_retry_after
            && self.phase() >= Phase::NotAcceptingNewRequests
            && !EXEMPT.iter().any(|p| path.starts_with(p))
            && !user_agent.is_some_and(|ua| ua.starts_with("kube-apiserver/"))
    }

    /// Counts a request as in flight (or open, for a long-running one) while the guard lives.
    pub fn request(&self, long_running: bool) -> InFlight {
        let counter = if long_running {
            &self.0.long_running
        } else {
            &self.0.in_flight
        };
        counter.fetch_add(1, Ordering::AcqRel);
        InFlight {
            lifecycle: self.clone(),
            long_running,
        }
    }

    /// Holds the shutdown sequence at its start (bounded by `PRE_SHUTDOWN_TIMEOUT`) until the
    /// guard is dropped.
    pub fn hold(&self) -> Hold {
        self.0.holds.fetch_add(1, Ordering::AcqRel);
        Hold(self.clone())
    }

    fn holds(&self) -> usize {
        self.0.holds.load(Ordering::Acquire)
    }

    fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::Acquire)
    }

    fn long_running(&self) -> usize {
        self.0.long_running.load(Ordering::Acquire)
    }
}

/// Work the shutdown sequence waits for (`Lifecycle::hold`).
pub struct Hold(Lifecycle);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.0.holds.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One request counted by the drain.
pub struct InFlight {
    lifecycle: Lifecycle,
    long_running: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let shared = &self.lifecycle.0;
        let counter = if self.long_running {
            &shared.long_running
        } else {
            &shared.in_flight
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward() {
        let l = Lifecycle::new(Options::default());
        l.advance(Phase::NotAcceptingNewRequests);
        l.advance(Phase::ShutdownInitiated);
        assert_eq!(l.phase(), Phase::NotAcceptingNewRequests);
    }

    #[test]
    fn retry_after_refuses_all_but_health_and_metrics_once_not_accepting() {
        let l = Lifecycle::new(Options {
            send_retry_after: true,
            ..Options::default()
        });
        assert!(!l.refuses("/api/v1/pods", None));
        l.advance(Phase::NotAcceptingNewRequests);
        assert!(l.refuses("/api/v1/pods", None));
        assert!(!l.refuses("/readyz", None));
        assert!(!l.refuses("/metrics", None));
        let without = Lifecycle::new(Options::default());
        without.advance(Phase::NotAcceptingNewRequests);
        assert!(!without.refuses("/api/v1/pods", None));
    }

    #[test]
    fn in_flight_guards_count_until_dropped() {
        let l = Lifecycle::new(Options::default());
        let a = l.request(false);
        let w = l.request(true);
        assert_eq!((l.in_flight(), l.long_running()), (1, 1));
        drop(a);
        drop(w);
        assert_eq!((l.in_flight(), l.long_running()), (0, 0));
    }
}
