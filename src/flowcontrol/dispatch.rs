//! The seats shared by every core: one `Dispatcher` behind a `std::sync::Mutex`. Every core's
//! requests take and give back seats of the same priority levels, so the state cannot be
//! per-core; the critical sections are a few map and queue operations (no I/O, no await, no
//! allocation beyond a queue slot), far shorter than any wait an async lock would save, and a
//! std mutex works from any thread — a `Seat` is dropped on whatever core its request ran on.
//! A queued request waits on a oneshot channel (its waker may be on another core's runtime).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::oneshot;

use super::config::PriorityLevel;
use super::metrics;
use super::queueset::{Arrival, QueueSet, RejectReason};

/// A waiting request's waker: the dispatcher sends () when the request holds its seats.
pub type Waker = oneshot::Sender<()>;

/// One priority level's seats and queues.
pub struct Level {
    pub queues: QueueSet<Waker>,
    /// `apiserver_flowcontrol_current_executing_seats` of this level.
    seats: Option<prometheus::IntGauge>,
    /// Dropped from the configuration; kept until its last request is done.
    retired: bool,
}

#[derive(Default)]
pub struct Levels {
    by_name: HashMap<String, Level>,
    next_id: u64,
}

pub struct Dispatcher {
    levels: Mutex<Levels>,
}

/// Where a granted request holds its seats, to give them back.
#[derive(Debug, Clone)]
pub struct Held {
    pub level: String,
    pub width: u32,
    pub queue: Option<usize>,
}

/// What `arrive` decided.
pub enum Admission {
    Run(Held),
    Wait {
        id: u64,
        queue: usize,
        width: u32,
        rx: oneshot::Receiver<()>,
    },
    Reject(RejectReason),
}

impl Dispatcher {
    pub fn new() -> Dispatcher {
        Dispatcher {
            levels: Mutex::new(Levels::default()),
        }
    }

    /// The lock; a panic while it was held (a bug) leaves counters that are still usable.
    fn lock(&self) -> MutexGuard<'_, Levels> {
        self.levels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a configuration: the levels and their limits. Levels that are gone retire.
    pub fn configure(&self, levels: &[(PriorityLevel, u32)]) {
        let mut ls = self.lock();
        for (pl, limit) in levels {
            let Some(limited) = pl.limited else {
                continue;
            };
            match ls.by_name.get_mut(&pl.name) {
                Some(l) => {
                    l.queues.reconfigure(*limit, limited.queuing);
                    l.retired = false;
                    let woken = l.queues.dispatch();
                    wake(l, woken);
                }
                None => {
                    ls.by_name.insert(
                        pl.name.clone(),
                        Level {
                            queues: QueueSet::new(*limit, limited.queuing),
                            seats: metrics::get()
                                .map(|m| m.executing_seats.with_label_values(&[&pl.name])),
                            retired: false,
                        },
                    );
                }
            }
            if let Some(m) = metrics::get() {
                m.nominal_limit_seats
                    .with_label_values(&[&pl.name])
                    .set(i64::from(*limit));
            }
        }
        let names: Vec<String> = ls.by_name.keys().cloned().collect();
        for name in names {
            if !levels
                .iter()
                .any(|(pl, _)| pl.name == name && pl.limited.is_some())
            {
                if let Some(l) = ls.by_name.get_mut(&name) {
                    l.retired = true;
                }
                retire_if_idle(&mut ls, &name);
            }
        }
    }

    /// A request of `flow_hash` asks for `width` seats of `level`.
    pub fn arrive(&self, level: &str, flow_hash: u64, width: u32) -> Admission {
        let mut ls = self.lock();
        ls.next_id += 1;
        let id = ls.next_id;
        let Some(l) = ls.by_name.get_mut(level) else {
            // The level went away between classification and here (a reconfiguration):
            // run it unlimited rather than fail a request the configuration never refused.
            return Admission::Run(Held {
                level: String::new(),
                width: 0,
                queue: None,
            });
        };
        let width = l.queues.width_of(width);
        let mut rx = None;
        let waker = || {
            let (tx, r) = oneshot::channel();
            rx = Some(r);
            tx
        };
        match l.queues.arrive(id, flow_hash, width, waker) {
            Arrival::Execute { queue } => {
                seats_gauge(l);
                Admission::Run(Held {
                    level: level.to_string(),
                    width,
                    queue,
                })
            }
            Arrival::Queued { queue } => match rx {
                Some(rx) => Admission::Wait {
                    id,
                    queue,
                    width,
                    rx,
                },
                // Queued without a waker cannot happen (arrive makes one to queue).
                None => Admission::Reject(RejectReason::TimeOut),
            },
            Arrival::Rejected(reason) => Admission::Reject(reason),
        }
    }

    /// A waiting request gives up (timed out, or its client left). True when it was still
    /// waiting; false when it had been dispatched meanwhile (it holds its seats then).
    pub fn withdraw(&self, level: &str, id: u64, queue: usize) -> bool {
        let mut ls = self.lock();
        let Some(l) = ls.by_name.get_mut(level) else {
            return true;
        };
        let removed = l.queues.remove(id, queue).is_some();
        if removed {
            // A head that blocked others may be gone.
            let woken = l.queues.dispatch();
            wake(l, woken);
            retire_if_idle(&mut ls, level);
        }
        removed
    }

    /// Seats given back by a request that ran.
    pub fn release(&self, held: &Held) {
        if held.level.is_empty() {
            return;
        }
        let mut ls = self.lock();
        let Some(l) = ls.by_name.get_mut(&held.level) else {
            return;
        };
        l.queues.release(held.width, held.queue);
        let woken = l.queues.dispatch();
        wake(l, woken);
        retire_if_idle(&mut ls, &held.level);
    }
}

/// Wakes dispatched waiters; one whose receiver is gone (its client left just now) gives its
/// seats straight back, which may dispatch others.
fn wake(l: &mut Level, mut woken: Vec<super::queueset::Dispatched<Waker>>) {
    while !woken.is_empty() {
        let mut again = false;
        for d in woken.drain(..) {
            if d.payload.send(()).is_err() {
                l.queues.release(d.width, Some(d.queue));
                again = true;
            }
        }
        if again {
            woken = l.queues.dispatch();
        }
    }
    seats_gauge(l);
}

fn seats_gauge(l: &Level) {
    if let Some(g) = &l.seats {
        g.set(i64::from(l.queues.executing_seats()));
    }
}

fn retire_if_idle(ls: &mut Levels, name: &str) {
    if ls
        .by_name
        .get(name)
        .is_some_and(|l| l.retired && l.queues.is_idle())
    {
        ls.by_name.remove(name);
    }
}

/// Seats of a request that had to wait: given back if the request is dropped before it
/// knows it was dispatched.
pub struct Waiting {
    pub dispatcher: Arc<Dispatcher>,
    pub level: String,
    pub flow_schema: String,
    pub id: u64,
    pub queue: usize,
    pub width: u32,
    pub rx: oneshot::Receiver<()>,
    pub meters: Option<Arc<metrics::FlowMeters>>,
    /// Set once the outcome is known (granted or rejected); until then Drop cleans up.
    pub settled: bool,
}

impl Waiting {
    pub fn held(&self) -> Held {
        Held {
            level: self.level.clone(),
            width: self.width,
            queue: Some(self.queue),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // The client left while waiting: out of the queue, or (dispatched meanwhile) the
        // seats back.
        if !self.dispatcher.withdraw(&self.level, self.id, self.queue)
            && let Ok(Some(())) = self.rx.try_recv()
        {
            self.dispatcher.release(&self.held());
        }
        if let Some(m) = &self.meters {
            m.inqueue.dec();
        }
        if let Some(m) = metrics::get() {
            m.rejected
                .with_label_values(&[
                    &self.level,
                    &self.flow_schema,
                    RejectReason::Cancelled.label(),
                ])
                .inc();
        }
    }
}
