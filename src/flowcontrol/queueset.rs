//! One priority level's seats and queues: upstream's shuffle-sharded fair queuing. A request
//! either runs at once (seats free, nobody waiting), waits in one of its flow's queues, or is
//! rejected; released seats go to the queue whose head started earliest in virtual time.
//! Pure and synchronous (no clock, no locks): the dispatcher wraps it; tests drive it directly.

use std::collections::VecDeque;

/// The queuing part of a `Queue` limit response (`limited.limitResponse.queuing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queuing {
    pub queues: usize,
    pub hand_size: usize,
    pub queue_length_limit: usize,
}

/// Hard caps on a user's queuing numbers (upstream validates queues ≤ 10,000... but a level
/// allocates its queues up front, so a typo must not cost gigabytes).
pub const MAX_QUEUES: usize = 10_000;
/// Requests one queue may hold whatever the PLC says: each waiting request holds a
/// connection's request in memory, so bounded here too.
pub const MAX_QUEUE_LENGTH: usize = 10_000;

impl Queuing {
    /// The numbers as used: at least one queue, a hand no larger than the deck, every number
    /// bounded.
    pub fn bounded(self) -> Queuing {
        let queues = self.queues.clamp(1, MAX_QUEUES);
        Queuing {
            queues,
            hand_size: self.hand_size.clamp(1, queues),
            queue_length_limit: self.queue_length_limit.clamp(1, MAX_QUEUE_LENGTH),
        }
    }
}

/// Why a request was not admitted, with upstream's `reason` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Its queue held `queueLengthLimit` requests.
    QueueFull,
    /// A `Reject` level had no free seat.
    ConcurrencyLimit,
    /// It waited past its queue wait limit.
    TimeOut,
    /// The client went away while it waited.
    Cancelled,
}

impl RejectReason {
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::QueueFull => "queue-full",
            RejectReason::ConcurrencyLimit => "concurrency-limit",
            RejectReason::TimeOut => "time-out",
            RejectReason::Cancelled => "cancelled",
        }
    }
}

/// What happened to an arriving request.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// It holds `width` seats now (in `queue`, when the level queues).
    Execute {
        queue: Option<usize>,
    },
    /// It waits in `queue`; `dispatch` hands its payload back when its turn comes.
    Queued {
        queue: usize,
    },
    Rejected(RejectReason),
}

struct Waiting<T> {
    id: u64,
    width: u32,
    /// Virtual start time: requests are dispatched in this order across queues.
    start: u64,
    payload: T,
}

#[derive(Default)]
struct Queue<T> {
    waiting: VecDeque<Waiting<T>>,
    /// Seats of this queue's waiting requests, and of its executing ones: the hand's least
    /// loaded queue is chosen by their sum, as upstream.
    waiting_seats: u64,
    executing_seats: u64,
    /// Virtual finish time of the last request queued here.
    last_finish: u64,
}

/// A request dispatched from a queue: its payload (to wake its waiter) and where it ran.
#[derive(Debug, PartialEq, Eq)]
pub struct Dispatched<T> {
    pub id: u64,
    pub queue: usize,
    /// Seats it holds (what `release` must be given back).
    pub width: u32,
    pub payload: T,
}

pub struct QueueSet<T> {
    /// Seats this level may have executing at once (its concurrency limit).
    limit: u32,
    executing_seats: u32,
    executing_requests: u32,
    queuing: Option<Queuing>,
    queues: Vec<Queue<T>>,
    /// Queues the configuration asks for, applied when no request waits (queues are not
    /// reshuffled under waiting requests).
    wanted: Option<Queuing>,
    waiting_requests: usize,
    /// Seats the waiting requests will take (their part of the level's seat demand).
    waiting_seats: u64,
    /// The virtual clock: the start time of the request dispatched last.
    now: u64,
}

impl<T> QueueSet<T> {
    pub fn new(limit: u32, queuing: Option<Queuing>) -> QueueSet<T> {
        let mut qs = QueueSet {
            limit,
            executing_seats: 0,
            executing_requests: 0,
            queuing: None,
            queues: Vec::new(),
            wanted: None,
            waiting_requests: 0,
            waiting_seats: 0,
            now: 0,
        };
        qs.reconfigure(limit, queuing);
        qs
    }

    /// A new limit or queuing configuration; queues are rebuilt once none has waiting requests.
    pub fn reconfigure(&mut self, limit: u32, queuing: Option<Queuing>) {
        self.limit = limit;
        self.wanted = queuing.map(Queuing::bounded);
        self.apply_wanted();
    }

    fn apply_wanted(&mut self) {
        if self.waiting_requests > 0 {
            if let (Some(w), Some(q)) = (self.wanted, &mut self.queuing) {
                // Length limit and hand size change at once; the deck waits for empty queues.
                q.queue_length_limit = w.queue_length_limit;
                q.hand_size = w.hand_size.min(q.queues);
            }
            return;
        }
        if self.queuing.map(|q| q.queues) != self.wanted.map(|q| q.queues) {
            let n = self.wanted.map_or(0, |q| q.queues);
            self.queues = (0..n).map(|_| Queue::new()).collect();
        }
        self.queuing = self.wanted;
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn executing_seats(&self) -> u32 {
        self.executing_seats
    }

    /// Executing plus waiting seats: what the level would use if it could.
    pub fn seat_demand(&self) -> u64 {
        u64::from(self.executing_seats) + self.waiting_seats
    }

    /// A new current limit (borrowing), queues unchanged.
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }

    #[cfg(test)]
    pub fn executing_requests(&self) -> u32 {
        self.executing_requests
    }

    #[cfg(test)]
    pub fn waiting_requests(&self) -> usize {
        self.waiting_requests
    }

    pub fn is_idle(&self) -> bool {
        self.executing_requests == 0 && self.waiting_requests == 0
    }

    /// A request of flow `flow_hash` asking for `width` seats arrives. `payload` is made only
    /// if it has to wait (its waker), kept meanwhile and given back by `dispatch`.
    pub fn arrive(
        &mut self,
        id: u64,
        flow_hash: u64,
        width: u32,
        payload: impl FnOnce() -> T,
    ) -> Arrival {
        let width = self.clamp_width(width);
        let Some(queuing) = self.queuing else {
            if self.fits(width) {
                self.start_executing(width, None);
                return Arrival::Execute { queue: None };
            }
            return Arrival::Rejected(RejectReason::ConcurrencyLimit);
        };
        let queue = self.choose_queue(flow_hash, queuing.hand_size);
        if self.waiting_requests == 0 && self.fits(width) {
            self.start_executing(width, Some(queue));
            return Arrival::Execute { queue: Some(queue) };
        }
        let now = self.now;
        let q = &mut self.queues[queue];
        if q.waiting.len() >= queuing.queue_length_limit {
            return Arrival::Rejected(RejectReason::QueueFull);
        }
        let start = q.last_finish.max(now);
        q.last_finish = start + u64::from(width);
        q.waiting_seats += u64::from(width);
        self.waiting_seats += u64::from(width);
        q.waiting.push_back(Waiting {
            id,
            width,
            start,
            payload: payload(),
        });
        self.waiting_requests += 1;
        Arrival::Queued { queue }
    }

    /// A request wider than the whole level could never run: it takes the whole level.
    fn clamp_width(&self, width: u32) -> u32 {
        width.clamp(1, self.limit.max(1))
    }

    /// Whether `width` more seats fit; when nothing executes anything fits (as upstream: a
    /// level whose current limit is 0, or below a wide request, still makes progress).
    fn fits(&self, width: u32) -> bool {
        self.executing_seats == 0 || self.executing_seats + width <= self.limit
    }

    fn start_executing(&mut self, width: u32, queue: Option<usize>) {
        self.executing_seats += width;
        self.executing_requests += 1;
        if let Some(q) = queue.and_then(|q| self.queues.get_mut(q)) {
            q.executing_seats += u64::from(width);
        }
    }

    /// Upstream's shuffle sharding: deal a hand of distinct queues from the flow's hash and
    /// take the least loaded (waiting plus executing seats; the first of equals).
    fn choose_queue(&self, flow_hash: u64, hand_size: usize) -> usize {
        let deck = self.queues.len();
        let mut best = 0;
        let mut best_load = u64::MAX;
        for card in deal(flow_hash, deck, hand_size) {
            let q = &self.queues[card];
            let load = q.waiting_seats + q.executing_seats;
            if load < best_load {
                best = card;
                best_load = load;
            }
        }
        best
    }

    /// Seats given back by a request that ran (`width` as `arrive` clamped it).
    pub fn release(&mut self, width: u32, queue: Option<usize>) {
        let width = self.clamp_width(width);
        self.executing_seats = self.executing_seats.saturating_sub(width);
        self.executing_requests = self.executing_requests.saturating_sub(1);
        if let Some(q) = queue.and_then(|q| self.queues.get_mut(q)) {
            q.executing_seats = q.executing_seats.saturating_sub(u64::from(width));
        }
    }

    /// The width `arrive` gave a request of `width` seats (what `release` must be given).
    pub fn width_of(&self, width: u32) -> u32 {
        self.clamp_width(width)
    }

    /// Starts waiting requests while their seats are free, earliest virtual start first; a
    /// head that does not fit stops dispatching (it is not overtaken, so wide requests are
    /// not starved).
    pub fn dispatch(&mut self) -> Vec<Dispatched<T>> {
        let mut out = Vec::new();
        while self.waiting_requests > 0 {
            let Some((qi, start, width)) = self
                .queues
                .iter()
                .enumerate()
                .filter_map(|(i, q)| q.waiting.front().map(|w| (i, w.start, w.width)))
                .min_by_key(|&(i, start, _)| (start, i))
            else {
                break;
            };
            if !self.fits(width) {
                break;
            }
            let q = &mut self.queues[qi];
            let Some(w) = q.waiting.pop_front() else {
                break;
            };
            q.waiting_seats = q.waiting_seats.saturating_sub(u64::from(width));
            self.waiting_seats = self.waiting_seats.saturating_sub(u64::from(width));
            self.waiting_requests -= 1;
            self.now = self.now.max(start);
            self.start_executing(width, Some(qi));
            out.push(Dispatched {
                id: w.id,
                queue: qi,
                width,
                payload: w.payload,
            });
        }
        if self.waiting_requests == 0 {
            self.apply_wanted();
        }
        out
    }

    /// Takes a waiting request out (it timed out or its client left); its payload, or None
    /// when it is no longer waiting (already dispatched).
    pub fn remove(&mut self, id: u64, queue: usize) -> Option<T> {
        let q = self.queues.get_mut(queue)?;
        let pos = q.waiting.iter().position(|w| w.id == id)?;
        let w = q.waiting.remove(pos)?;
        q.waiting_seats = q.waiting_seats.saturating_sub(u64::from(w.width));
        self.waiting_seats = self.waiting_seats.saturating_sub(u64::from(w.width));
        self.waiting_requests -= 1;
        if self.waiting_requests == 0 {
            self.apply_wanted();
        }
        Some(w.payload)
    }
}

impl<T> Queue<T> {
    fn new() -> Queue<T> {
        Queue {
            waiting: VecDeque::new(),
            waiting_seats: 0,
            executing_seats: 0,
            last_finish: 0,
        }
    }
}

/// A hand of `hand_size` distinct cards from a deck of `deck`, drawn from `hash` as mixed-radix
/// digits (deck, deck-1, ...): the same flow always gets the same hand, and two flows rarely
/// share a whole hand.
pub fn deal(hash: u64, deck: usize, hand_size: usize) -> Vec<usize> {
    let hand_size = hand_size.min(deck);
    let mut hand: Vec<usize> = Vec::with_capacity(hand_size);
    let mut rest = hash;
    for i in 0..hand_size {
        let remaining = (deck - i) as u64;
        let mut card = (rest % remaining) as usize;
        rest /= remaining;
        // The card-th unused card: step over those already dealt (kept sorted).
        let mut sorted = hand.clone();
        sorted.sort_unstable();
        for taken in sorted {
            if taken <= card {
                card += 1;
            }
        }
        hand.push(card);
    }
    hand
}

/// FNV-1a over the flow's identity: its FlowSchema and distinguisher.
pub fn flow_hash(flow_schema: &str, distinguisher: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in flow_schema
        .bytes()
        .chain([0u8])
        .chain(distinguisher.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queuing(queues: usize, hand_size: usize, limit: usize) -> Option<Queuing> {
        Some(Queuing {
            queues,
            hand_size,
            queue_length_limit: limit,
        })
    }

    #[test]
    fn hands_are_distinct_cards_of_the_deck_and_stable() {
        for hash in [0u64, 1, 7, 12345, u64::MAX, flow_hash("fs", "alice")] {
            let hand = deal(hash, 64, 6);
            assert_eq!(hand.len(), 6);
            let mut sorted = hand.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 6, "{hand:?}");
            assert!(hand.iter().all(|&c| c < 64));
            assert_eq!(hand, deal(hash, 64, 6));
        }
        assert_eq!(deal(5, 3, 10).len(), 3);
        assert_ne!(flow_hash("fs", "alice"), flow_hash("fs", "bob"));
    }

    #[test]
    fn a_reject_level_runs_up_to_its_limit_then_rejects() {
        let mut qs: QueueSet<u8> = QueueSet::new(2, None);
        assert_eq!(qs.arrive(1, 1, 1, || 0), Arrival::Execute { queue: None });
        assert_eq!(qs.arrive(2, 1, 1, || 0), Arrival::Execute { queue: None });
        assert_eq!(
            qs.arrive(3, 1, 1, || 7),
            Arrival::Rejected(RejectReason::ConcurrencyLimit)
        );
        qs.release(1, None);
        assert_eq!(qs.arrive(4, 1, 1, || 0), Arrival::Execute { queue: None });
        assert_eq!(qs.executing_seats(), 2);
    }

    #[test]
    fn a_full_queue_rejects_and_released_seats_dispatch_in_order() {
        let mut qs: QueueSet<u64> = QueueSet::new(1, queuing(1, 1, 2));
        assert!(matches!(qs.arrive(1, 9, 1, || 1), Arrival::Execute { .. }));
        assert_eq!(qs.arrive(2, 9, 1, || 2), Arrival::Queued { queue: 0 });
        assert_eq!(qs.arrive(3, 9, 1, || 3), Arrival::Queued { queue: 0 });
        assert_eq!(
            qs.arrive(4, 9, 1, || 4),
            Arrival::Rejected(RejectReason::QueueFull)
        );
        assert!(qs.dispatch().is_empty(), "no seat is free");
        qs.release(1, Some(0));
        let d = qs.dispatch();
        assert_eq!(d.iter().map(|d| d.payload).collect::<Vec<_>>(), vec![2]);
        qs.release(1, Some(0));
        assert_eq!(qs.dispatch()[0].payload, 3);
        assert!(qs.dispatch().is_empty());
        assert_eq!(qs.waiting_requests(), 0);
    }

    #[test]
    fn a_quiet_flow_is_served_before_a_busy_flows_backlog() {
        // Two flows with one queue each (hand of 1 over 2 queues, hashes picked to differ).
        let mut qs: QueueSet<&str> = QueueSet::new(1, queuing(2, 1, 100));
        let busy = (0..).find(|h| deal(*h, 2, 1) == vec![0]).unwrap();
        let quiet = (0..).find(|h| deal(*h, 2, 1) == vec![1]).unwrap();
        assert!(matches!(
            qs.arrive(0, busy, 1, || "b0"),
            Arrival::Execute { .. }
        ));
        for i in 1..=5 {
            assert!(matches!(
                qs.arrive(i, busy, 1, || "b"),
                Arrival::Queued { .. }
            ));
        }
        assert_eq!(
            qs.arrive(10, quiet, 1, || "q"),
            Arrival::Queued { queue: 1 },
            "the quiet flow's own queue"
        );
        let mut order = Vec::new();
        for _ in 0..6 {
            qs.release(1, Some(0));
            for d in qs.dispatch() {
                order.push(d.payload);
            }
        }
        let quiet_at = order.iter().position(|p| *p == "q").unwrap();
        assert!(
            quiet_at <= 1,
            "the quiet flow waited behind the backlog: {order:?}"
        );
        assert_eq!(order.len(), 6);
    }

    #[test]
    fn the_least_loaded_queue_of_the_hand_is_chosen() {
        let mut qs: QueueSet<u8> = QueueSet::new(1, queuing(8, 8, 100));
        // With the whole deck in hand, successive waiting requests spread over queues.
        assert!(matches!(qs.arrive(0, 3, 1, || 0), Arrival::Execute { .. }));
        let mut used = Vec::new();
        for i in 1..=8 {
            if let Arrival::Queued { queue } = qs.arrive(i, 3, 1, || 0) {
                used.push(queue);
            }
        }
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 7, "{used:?}");
    }

    #[test]
    fn a_removed_waiter_is_gone_and_a_dispatched_one_cannot_be_removed() {
        let mut qs: QueueSet<u8> = QueueSet::new(1, queuing(4, 2, 10));
        assert!(matches!(qs.arrive(1, 5, 1, || 0), Arrival::Execute { .. }));
        let Arrival::Queued { queue: q2 } = qs.arrive(2, 5, 1, || 2) else {
            panic!("not queued")
        };
        let Arrival::Queued { queue: q3 } = qs.arrive(3, 5, 1, || 3) else {
            panic!("not queued")
        };
        assert_eq!(qs.remove(2, q2), Some(2));
        assert_eq!(qs.remove(2, q2), None);
        qs.release(1, None);
        assert_eq!(qs.dispatch()[0].payload, 3);
        assert_eq!(qs.remove(3, q3), None);
        assert_eq!(qs.executing_requests(), 1);
    }

    #[test]
    fn wide_requests_wait_for_enough_seats_and_are_not_overtaken() {
        let mut qs: QueueSet<u8> = QueueSet::new(4, queuing(1, 1, 10));
        assert!(matches!(qs.arrive(1, 0, 3, || 0), Arrival::Execute { .. }));
        assert!(matches!(qs.arrive(2, 0, 3, || 2), Arrival::Queued { .. }));
        assert!(matches!(qs.arrive(3, 0, 1, || 3), Arrival::Queued { .. }));
        assert!(qs.dispatch().is_empty(), "3 seats do not fit in the 1 free");
        qs.release(3, Some(0));
        let got: Vec<u8> = qs.dispatch().into_iter().map(|d| d.payload).collect();
        assert_eq!(got, vec![2, 3]);
        // Wider than the level: clamped to the whole level.
        assert_eq!(qs.width_of(100), 4);
    }

    #[test]
    fn queues_are_rebuilt_only_once_empty() {
        let mut qs: QueueSet<u8> = QueueSet::new(1, queuing(4, 2, 10));
        assert!(matches!(qs.arrive(1, 0, 1, || 0), Arrival::Execute { .. }));
        assert!(matches!(qs.arrive(2, 0, 1, || 2), Arrival::Queued { .. }));
        qs.reconfigure(1, queuing(16, 4, 10));
        assert_eq!(qs.queues.len(), 4);
        qs.release(1, None);
        assert_eq!(qs.dispatch().len(), 1);
        assert_eq!(qs.queues.len(), 16);
        qs.reconfigure(2, None);
        assert!(qs.queues.is_empty());
        assert_eq!(qs.limit(), 2);
    }
}
