//! The seats shared by every core: one `Dispatcher` behind a `std::sync::Mutex`. Every core's
//! requests take and give back seats of the same priority levels, so the state cannot be
//! per-core; the critical sections are a few map and queue operations (no I/O, no await, no
//! allocation beyond a queue slot), far shorter than any wait an async lock would save, and a
//! std mutex works from any thread — a `Seat` is dropped on whatever core its request ran on.
//! A queued request waits on a oneshot channel (its waker may be on another core's runtime).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures::channel::oneshot;

use super::borrowing::{self, Bounds, Demand, DemandStats};
use super::config::PriorityLevel;
use super::metrics;
use super::queueset::{Arrival, QueueSet, RejectReason};

/// A waiting request's waker: the dispatcher sends () when the request holds its seats.
pub type Waker = oneshot::Sender<()>;

/// One priority level's seats and queues.
pub struct Level {
    pub queues: QueueSet<Waker>,
    /// Its share of the server's seats (NominalCL), and the range its current limit moves in
    /// by lending and borrowing: [nominal − lendable, nominal + borrowing limit].
    nominal: u32,
    min: u32,
    max: u32,
    /// Seat demand since the last adjustment, and what the past periods said.
    demand: Demand,
    stats: DemandStats,
    /// `apiserver_flowcontrol_current_executing_seats` and `_current_limit_seats`.
    seats: Option<prometheus::IntGauge>,
    current_limit: Option<prometheus::IntGauge>,
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

    /// Applies a configuration: the levels and their nominal limits; current limits are
    /// shared out again. Levels that are gone retire.
    pub fn configure(&self, levels: &[(PriorityLevel, u32)]) {
        let mut ls = self.lock();
        let now = Instant::now();
        for (pl, nominal) in levels {
            let Some(limited) = pl.limited else {
                continue;
            };
            let lendable =
                (f64::from(*nominal) * pl.lendable_percent as f64 / 100.0).round() as u32;
            let borrowing = match pl.borrowing_limit_percent {
                Some(p) => (f64::from(*nominal) * p as f64 / 100.0).round() as u32,
                None => u32::MAX / 2,
            };
            let (min, max) = (
                nominal.saturating_sub(lendable),
                nominal.saturating_add(borrowing),
            );
            let l = ls.by_name.entry(pl.name.clone()).or_insert_with(|| Level {
                queues: QueueSet::new(*nominal, limited.queuing),
                nominal: *nominal,
                min,
                max,
                demand: Demand::new(now),
                stats: DemandStats::default(),
                seats: metrics::get().map(|m| m.executing_seats.with_label_values(&[&pl.name])),
                current_limit: metrics::get()
                    .map(|m| m.current_limit_seats.with_label_values(&[&pl.name])),
                retired: false,
            });
            l.queues.reconfigure(l.queues.limit(), limited.queuing);
            (l.nominal, l.min, l.max, l.retired) = (*nominal, min, max, false);
            if let Some(m) = metrics::get() {
                m.nominal_limit_seats
                    .with_label_values(&[&pl.name])
                    .set(i64::from(*nominal));
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
        rebalance(&mut ls, None);
    }

    /// The periodic adjustment: each level's demand over the period just ended decides how
    /// many seats it lends or borrows for the next.
    pub fn adjust(&self) {
        let mut ls = self.lock();
        rebalance(&mut ls, Some(Instant::now()));
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
                observe(l);
                Admission::Run(Held {
                    level: level.to_string(),
                    width,
                    queue,
                })
            }
            Arrival::Queued { queue } => match rx.inspect(|_| observe(l)) {
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
    observe(l);
}

/// Records a change of the level's seats: its gauge and its demand.
fn observe(l: &mut Level) {
    if let Some(g) = &l.seats {
        g.set(i64::from(l.queues.executing_seats()));
    }
    l.demand.set(Instant::now(), l.queues.seat_demand() as f64);
}

/// Shares the server's seats (the sum of the nominal limits) out as current limits, in
/// proportion to each level's smoothed demand within its bounds (upstream's allocation). With
/// `period_end`, the demand integrated up to then is folded into each level's statistics first.
fn rebalance(ls: &mut Levels, period_end: Option<Instant>) {
    let mut names: Vec<&String> = ls.by_name.keys().collect();
    names.sort();
    let names: Vec<String> = names.into_iter().cloned().collect();
    let mut items = Vec::with_capacity(names.len());
    let mut required = 0.0;
    for name in &names {
        let Some(l) = ls.by_name.get_mut(name) else {
            continue;
        };
        if let Some(now) = period_end {
            l.demand.reset(now, &mut l.stats);
        }
        if l.retired {
            items.push(Bounds {
                lower: 0.0,
                upper: 0.0,
                target: 0.0,
            });
            continue;
        }
        required += f64::from(l.nominal);
        let lower = f64::from(l.min).max(f64::from(l.nominal).min(l.stats.high_watermark));
        items.push(Bounds {
            lower,
            upper: f64::from(l.max),
            target: lower.max(l.stats.smoothed),
        });
    }
    let allocs = borrowing::allocate(required, &items);
    for (name, alloc) in names.iter().zip(allocs) {
        let Some(l) = ls.by_name.get_mut(name) else {
            continue;
        };
        if l.retired {
            continue;
        }
        let limit = alloc.round().clamp(0.0, f64::from(u32::MAX)) as u32;
        l.queues.set_limit(limit);
        if let Some(g) = &l.current_limit {
            g.set(i64::from(limit));
        }
        let woken = l.queues.dispatch();
        wake(l, woken);
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
