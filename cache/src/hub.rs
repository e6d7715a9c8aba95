//! A core's watchers. The ingest puts every batch of events into each core's bounded inbox;
//! the core's dispatcher takes them in order and hands each event only to the watchers an
//! index says could match (a kubelet's watch is found by its node name, a namespace's watch
//! by its namespace), into each watcher's bounded queue. Nothing here is shared with other
//! threads but the inbox: watchers live and die on their core, with no locks.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use futures_util::task::AtomicWaker;

use crate::object::{CachedEvent, EventType, Obj};
use crate::resource::{HistoryCursor, Snapshot, TooOld};
use crate::{Cache, ResourceCache};

/// Batches a core's inbox holds before the ingest gives up on that core (it then closes the
/// core's watchers, whose clients resume from history, rather than wait).
pub const INBOX_CAPACITY: usize = 65_536;

/// Events a watcher may have queued before it is closed as too slow (its client resumes from
/// its last resourceVersion, or re-lists, as with upstream).
pub const WATCHER_QUEUE: usize = 1_024;

pub(crate) enum InboxItem {
    Events {
        events: Vec<Arc<CachedEvent>>,
        revision: i64,
    },
    Progress(i64),
    /// The cache re-listed at this revision; watches registered before `epoch` are closed.
    Reset {
        revision: i64,
        epoch: u64,
    },
}

/// One core's inbox: bounded, lock-free, the only thing the ingest shares with the core.
pub(crate) struct Inbox {
    queue: ArrayQueue<Arc<InboxItem>>,
    waker: AtomicWaker,
    /// Batches dropped because the queue was full.
    dropped: AtomicU64,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            queue: ArrayQueue::new(INBOX_CAPACITY),
            waker: AtomicWaker::new(),
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn push(&self, item: &Arc<InboxItem>) {
        if self.queue.push(item.clone()).is_err() {
            self.dropped.fetch_add(1, Ordering::Release);
        }
        self.waker.wake();
    }
}

/// Why a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Its queue filled: the client did not keep up.
    TooSlow,
    /// The cache re-listed the store (or this core fell behind the ingest): events may be
    /// missing, so the client must start again.
    Reset,
}

/// A test of object versions (a request's selectors).
pub type Predicate = Box<dyn Fn(&Obj) -> bool>;

/// Which events a watcher wants.
#[derive(Default)]
pub struct Filter {
    /// Only keys in this namespace (namespaced resources).
    pub namespace: Option<Bytes>,
    /// Only objects whose indexed field (a pod's spec.nodeName) has this value ("" for objects
    /// without it).
    pub index: Option<Box<str>>,
    /// Everything else the request selects on (labels, fields, name); None: everything.
    pub pred: Option<Predicate>,
}

impl Filter {
    fn passes(&self, rc: &ResourceCache, obj: &Obj) -> bool {
        if let Some(ns) = &self.namespace
            && rc.namespace_of(&obj.key) != &ns[..]
        {
            return false;
        }
        if let Some(ix) = &self.index
            && obj.attrs.index.as_deref().unwrap_or("") != &**ix
        {
            return false;
        }
        self.pred.as_ref().is_none_or(|p| p(obj))
    }
}

struct WatcherState {
    queue: VecDeque<(Arc<CachedEvent>, EventType)>,
    closed: Option<Closed>,
    waker: Option<Waker>,
}

struct Watcher {
    id: u64,
    /// The cache's reset epoch when it started.
    epoch: u64,
    resource: usize,
    filter: Filter,
    /// Live events are those after this revision (earlier ones come from history).
    from: i64,
    /// Counted in the cache's watcher count.
    registered: Cell<bool>,
    state: RefCell<WatcherState>,
}

impl Watcher {
    fn close(&self, why: Closed) {
        let mut s = self.state.borrow_mut();
        if s.closed.is_none() {
            s.closed = Some(why);
        }
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    fn offer(&self, rc: &ResourceCache, ev: &Arc<CachedEvent>) {
        if ev.revision <= self.from {
            return;
        }
        let Some(ty) = ev.type_for(|o| self.filter.passes(rc, o)) else {
            return;
        };
        let mut s = self.state.borrow_mut();
        if s.closed.is_some() {
            return;
        }
        if s.queue.len() >= WATCHER_QUEUE {
            s.closed = Some(Closed::TooSlow);
            s.queue.clear();
        } else {
            s.queue.push_back((ev.clone(), ty));
        }
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// A resource's watchers on one core, by the most selective index each can use.
#[derive(Default)]
struct Watchers {
    all: Vec<Rc<Watcher>>,
    by_namespace: HashMap<Bytes, Vec<Rc<Watcher>>>,
    by_index: HashMap<Box<str>, Vec<Rc<Watcher>>>,
}

impl Watchers {
    fn bucket(&mut self, f: &Filter) -> &mut Vec<Rc<Watcher>> {
        if let Some(ix) = &f.index {
            self.by_index.entry(ix.clone()).or_default()
        } else if let Some(ns) = &f.namespace {
            self.by_namespace.entry(ns.clone()).or_default()
        } else {
            &mut self.all
        }
    }

    fn remove(&mut self, w: &Watcher) {
        let bucket = self.bucket(&w.filter);
        bucket.retain(|x| x.id != w.id);
        let empty = bucket.is_empty();
        if empty {
            if let Some(ix) = &w.filter.index {
                self.by_index.remove(ix);
            } else if let Some(ns) = &w.filter.namespace {
                self.by_namespace.remove(ns);
            }
        }
    }

    fn len(&self) -> usize {
        self.all.len()
            + self.by_namespace.values().map(Vec::len).sum::<usize>()
            + self.by_index.values().map(Vec::len).sum::<usize>()
    }

    fn each(&self, mut f: impl FnMut(&Rc<Watcher>)) {
        self.all.iter().for_each(&mut f);
        self.by_namespace.values().flatten().for_each(&mut f);
        self.by_index.values().flatten().for_each(&mut f);
    }

    fn dispatch(&self, rc: &ResourceCache, ev: &Arc<CachedEvent>) {
        for w in &self.all {
            w.offer(rc, ev);
        }
        if !self.by_namespace.is_empty() {
            let ns = rc.namespace_of(&ev.obj.key);
            if let Some(ws) = self.by_namespace.get(ns) {
                for w in ws {
                    w.offer(rc, ev);
                }
            }
        }
        if !self.by_index.is_empty() {
            // An object without the field is indexed under "" (the scheduler watches pods
            // with `spec.nodeName=`).
            let now = ev.obj.attrs.index.as_deref().unwrap_or("");
            let before = ev
                .prev
                .as_ref()
                .map(|p| p.attrs.index.as_deref().unwrap_or(""));
            for ix in [Some(now), before.filter(|b| *b != now)]
                .into_iter()
                .flatten()
            {
                if let Some(ws) = self.by_index.get(ix) {
                    for w in ws {
                        w.offer(rc, ev);
                    }
                }
            }
        }
    }
}

struct HubState {
    next_id: u64,
    watchers: HashMap<usize, Watchers>,
    waiters: Vec<(i64, Waker)>,
}

/// One core's share of the cache: its watchers and its readers waiting for a revision.
pub struct Hub {
    cache: Arc<Cache>,
    inbox: Arc<Inbox>,
    /// The revision of the last batch this core has handed out.
    dispatched: Cell<i64>,
    seen_dropped: Cell<u64>,
    state: RefCell<HubState>,
}

impl Hub {
    pub(crate) fn new(cache: Arc<Cache>, inbox: Arc<Inbox>, revision: i64) -> Hub {
        Hub {
            cache,
            inbox,
            dispatched: Cell::new(revision),
            seen_dropped: Cell::new(0),
            state: RefCell::new(HubState {
                next_id: 0,
                watchers: HashMap::new(),
                waiters: Vec::new(),
            }),
        }
    }

    /// The dispatcher: runs for as long as the core does. Spawn it on the core's executor.
    pub fn run(self: Rc<Self>) -> impl Future<Output = ()> {
        std::future::poll_fn(move |cx| {
            self.inbox.waker.register(cx.waker());
            self.drain();
            Poll::Pending
        })
    }

    /// Whether this hub is one of `cache`'s.
    pub fn belongs_to(&self, cache: &Arc<Cache>) -> bool {
        Arc::ptr_eq(&self.cache, cache)
    }

    /// Handles everything in the inbox now (the dispatcher does this when woken).
    pub fn pump(&self) {
        self.drain();
    }

    fn drain(&self) {
        while let Some(item) = self.inbox.queue.pop() {
            self.check_dropped();
            match &*item {
                InboxItem::Events { events, revision } => {
                    let state = self.state.borrow();
                    if !state.watchers.is_empty() {
                        for ev in events {
                            if let Some(ws) = state.watchers.get(&ev.resource) {
                                ws.dispatch(&self.cache.resource_at(ev.resource), ev);
                            }
                        }
                    }
                    drop(state);
                    self.advance(*revision);
                }
                InboxItem::Progress(rev) => self.advance(*rev),
                InboxItem::Reset { revision, epoch } => {
                    self.close_older(*epoch);
                    self.advance(*revision);
                }
            }
        }
        self.check_dropped();
    }

    fn advance(&self, rev: i64) {
        if rev <= self.dispatched.get() {
            return;
        }
        self.dispatched.set(rev);
        let mut state = self.state.borrow_mut();
        state.waiters.retain(|(want, w)| {
            if *want <= rev {
                w.wake_by_ref();
                false
            } else {
                true
            }
        });
    }

    /// If the ingest dropped a batch for this core, every watcher here may have missed
    /// events: close them all (their clients resume from history).
    fn check_dropped(&self) {
        let d = self.inbox.dropped.load(Ordering::Acquire);
        if d != self.seen_dropped.get() {
            self.seen_dropped.set(d);
            self.close_all(Closed::Reset);
            self.advance(self.cache.revision());
        }
    }

    fn close_all(&self, why: Closed) {
        let mut state = self.state.borrow_mut();
        for ws in state.watchers.values() {
            ws.each(|w| w.close(why));
        }
        state.watchers.clear();
    }

    /// Closes the watches registered before the cache's reset to `epoch` (later ones started
    /// from the new state).
    fn close_older(&self, epoch: u64) {
        let mut old = Vec::new();
        for ws in self.state.borrow().watchers.values() {
            ws.each(|w| {
                if w.epoch < epoch {
                    old.push(w.clone());
                }
            });
        }
        for w in old {
            w.close(Closed::Reset);
            self.unregister(&w);
        }
    }

    /// The revision this core has dispatched: every event up to it has reached its watchers'
    /// queues (a bookmark at it is safe for a watcher whose queue is empty).
    pub fn dispatched(&self) -> i64 {
        self.dispatched.get()
    }

    /// Readers waiting on this core for a revision.
    pub fn waiter_count(&self) -> usize {
        self.state.borrow().waiters.len()
    }

    /// Watchers registered on this core.
    pub fn watcher_count(&self) -> usize {
        self.state
            .borrow()
            .watchers
            .values()
            .map(Watchers::len)
            .sum()
    }

    /// Waits until this core has seen the cache reach `revision`.
    pub fn wait_for(self: &Rc<Self>, revision: i64) -> WaitFor {
        WaitFor {
            hub: self.clone(),
            revision,
            waker: None,
        }
    }

    /// Starts a watch of `resource` for events after `after` (None: from now), with `filter`.
    /// Returns the watch and the revision it starts from. Events up to the current snapshot
    /// come from history, later ones from the dispatcher, with nothing lost or repeated
    /// between the two.
    pub fn watch(
        self: &Rc<Self>,
        resource: usize,
        after: Option<i64>,
        filter: Filter,
    ) -> Result<(Watch, i64), TooOld> {
        self.check_dropped();
        let rc = self.cache.resource_at(resource);
        let epoch = self.cache.epoch();
        let g = self.cache.revision();
        let snap = rc.snapshot();
        let now = g.max(snap.revision);
        let start = after.unwrap_or(now);
        let replay = if start < snap.revision {
            Some(snap.events_after(start)?)
        } else {
            None
        };
        let mut state = self.state.borrow_mut();
        state.next_id += 1;
        let w = Rc::new(Watcher {
            id: state.next_id,
            epoch,
            resource,
            filter,
            from: now.max(start),
            registered: Cell::new(true),
            state: RefCell::new(WatcherState {
                queue: VecDeque::new(),
                closed: None,
                waker: None,
            }),
        });
        state
            .watchers
            .entry(resource)
            .or_default()
            .bucket(&w.filter)
            .push(w.clone());
        self.cache.watchers.fetch_add(1, Ordering::Relaxed);
        Ok((
            Watch {
                hub: self.clone(),
                watcher: w,
                replay,
                snapshot: Some(snap),
            },
            start,
        ))
    }

    fn unregister(&self, w: &Watcher) {
        if w.registered.replace(false) {
            self.cache.watchers.fetch_sub(1, Ordering::Relaxed);
        }
        let mut state = self.state.borrow_mut();
        if let Some(ws) = state.watchers.get_mut(&w.resource) {
            ws.remove(w);
            if ws.len() == 0 {
                state.watchers.remove(&w.resource);
            }
        }
    }
}

/// The future of `Hub::wait_for`. Dropped before the revision is reached (a timed-out
/// read), it takes its waker back out of the hub's list.
pub struct WaitFor {
    hub: Rc<Hub>,
    revision: i64,
    waker: Option<Waker>,
}

impl WaitFor {
    fn unregister(&mut self) {
        if let Some(mine) = self.waker.take() {
            let rev = self.revision;
            self.hub
                .state
                .borrow_mut()
                .waiters
                .retain(|(r, w)| !(*r == rev && w.will_wake(&mine)));
        }
    }
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl Future for WaitFor {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The snapshots are what readers read: once the cache's revision has reached ours,
        // they hold every change up to it.
        if self.hub.cache.revision() >= self.revision {
            return Poll::Ready(());
        }
        self.hub.drain();
        if self.hub.dispatched() >= self.revision || self.hub.cache.revision() >= self.revision {
            return Poll::Ready(());
        }
        // Replace our old waker, if any (cheap: waiters are few and short-lived).
        self.unregister();
        let rev = self.revision;
        self.hub
            .state
            .borrow_mut()
            .waiters
            .push((rev, cx.waker().clone()));
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// What a watch yields.
pub enum Next {
    Event(Arc<CachedEvent>, EventType),
    Closed(Closed),
}

/// One watcher: history first, then live events. Dropping it unregisters it.
pub struct Watch {
    hub: Rc<Hub>,
    watcher: Rc<Watcher>,
    replay: Option<HistoryCursor>,
    snapshot: Option<Arc<Snapshot>>,
}

impl Watch {
    /// The next event, without waiting: None if there is none now.
    pub fn try_next(&mut self) -> Option<Next> {
        if let Some(cursor) = &mut self.replay {
            let rc = self.hub.cache.resource_at(self.watcher.resource);
            for ev in cursor.by_ref() {
                if let Some(ty) = ev.type_for(|o| self.watcher.filter.passes(&rc, o)) {
                    return Some(Next::Event(ev, ty));
                }
            }
            self.replay = None;
        }
        let mut s = self.watcher.state.borrow_mut();
        if let Some((ev, ty)) = s.queue.pop_front() {
            return Some(Next::Event(ev, ty));
        }
        s.closed.map(Next::Closed)
    }

    /// The next event, waiting for one.
    pub fn next_event(&mut self) -> NextEvent<'_> {
        NextEvent { watch: self }
    }

    /// A revision a bookmark may carry now: the core's dispatched revision when nothing is
    /// pending for this watcher, else None.
    pub fn bookmark_revision(&self) -> Option<i64> {
        if self.replay.is_some() || !self.watcher.state.borrow().queue.is_empty() {
            return None;
        }
        Some(self.hub.dispatched().max(self.watcher.from))
    }

    /// The state the watch started from (for initial events), once; the watch does not keep
    /// it, so it pins no memory after.
    pub fn take_snapshot(&mut self) -> Option<Arc<Snapshot>> {
        self.snapshot.take()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.hub.unregister(&self.watcher);
    }
}

/// The future of `Watch::next`.
pub struct NextEvent<'a> {
    watch: &'a mut Watch,
}

impl Future for NextEvent<'_> {
    type Output = Next;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Next> {
        if let Some(n) = self.watch.try_next() {
            return Poll::Ready(n);
        }
        self.watch.watcher.state.borrow_mut().waker = Some(cx.waker().clone());
        // An event may have arrived in the inbox without the dispatcher having run.
        self.watch.hub.drain();
        match self.watch.try_next() {
            Some(n) => Poll::Ready(n),
            None => Poll::Pending,
        }
    }
}
