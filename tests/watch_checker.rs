//! The watch cache's correctness checker, black-box over the HTTP API of the real kapi binary.
//!
//! Concurrent writers create, update (PUT with the object's resourceVersion, or merge PATCH)
//! and delete ConfigMaps in three namespaces, and record every acknowledged write. kapi's
//! resourceVersions are store revisions (globally increasing integers), so the recorded writes
//! ordered by resourceVersion are the committed history (`History`). Meanwhile watchers start at
//! arbitrary points, from arbitrary resourceVersions (an earlier write's, a list's, "now",
//! "any", with initial events), cluster-wide or per namespace, with or without a label selector
//! and bookmarks, and paginated, exact-revision and not-older-than lists run. Everything a reader
//! sees must equal the history exactly: a watch sees every event of its scope after its start,
//! in order, once, with the right type and content; a list equals the state at its revision.
//!
//! A DELETE of a ConfigMap answers with a Status (as upstream does), not the object, so the
//! revision of a deletion is not acknowledged to the writer. The checker learns it from what
//! watchers see (a DELETED event of that key between the key's previous and next writes), checks
//! that every watcher that saw it agrees, that the revision is used by no other write and that
//! it lies between the writes acknowledged before the DELETE was sent and those sent after it
//! was acknowledged. A deletion no watcher saw keeps only those bounds.
//!
//! A write whose outcome is unknown (a connection error or a 5xx after it was sent: a kapi
//! killed mid-request, etcd down) is resolved by a consistent GET of its key once the server
//! answers again: each write carries a unique value and each key has one writer, so the GET
//! says whether it landed, and at which revision.
//!
//! A watch from "now" (resourceVersion unset) starts no earlier than the last write acknowledged
//! before it was sent, and delivers every write sent after its response headers arrived; a watch
//! with initial events sends exactly the state at its initial-events-end bookmark; bookmarks
//! never go back and never pass an undelivered event; after the last write (one sentinel per
//! namespace, which every watcher waits for) nothing more arrives; a GET of every key at the end
//! equals the final state. The problems found are reported grouped by kind, with the seed
//! (`WATCH_CHECKER_SEED` replays the writers' and watchers' choices, not the interleaving).
//!
//! Three runs: the embedded store; the embedded store across a `kill -9` and restart of kapi
//! (watch streams end, watchers resume from their last resourceVersion or get 410 Gone and
//! re-list); kapi on etcd across a kill and restart of etcd.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::etcd::Etcd;
use support::kapi::Kapi;

const NAMESPACES: [&str; 3] = ["wc-0", "wc-1", "wc-2"];
/// Label values: every write sets `grp` to one of them, so updates move objects in and out
/// of the selectors below.
const GROUPS: [&str; 3] = ["a", "b", "c"];
const WRITERS: usize = 4;
/// Keys per writer (a key has one writer; they spread over the namespaces).
const KEYS_PER_WRITER: usize = 12;
/// Write attempts per writer and run.
const OPS_PER_WRITER: usize = 100;
/// Watchers started while the writes go on (two more start before them).
const WATCHERS: usize = 20;
/// Lists run while the writes go on (at most).
const LISTS: usize = 40;
/// Page size of every paginated list.
const LIMIT: usize = 7;
/// The name of the last write of each namespace: every watcher waits for it.
const SENTINEL: &str = "zz-end";
/// How long a watcher goes on listening after the last write's event: nothing may come.
const LINGER: Duration = Duration::from_millis(300);
/// A run that has not finished by then fails (debug builds on 2 busy cores).
const RUN_DEADLINE: Duration = Duration::from_secs(150);

type Key = (String, String);

// ---------------------------------------------------------------------------------------------
// Scopes

#[derive(Clone, Copy, Debug)]
enum Sel {
    Eq(&'static str),
    Ne(&'static str),
}

/// What one watch or list covers: all namespaces or one, and perhaps a label selector.
#[derive(Clone, Copy, Debug)]
struct Scope {
    ns: Option<usize>,
    sel: Option<Sel>,
}

impl Scope {
    fn collection(&self) -> String {
        match self.ns {
            Some(i) => format!("/api/v1/namespaces/{}/configmaps", NAMESPACES[i]),
            None => "/api/v1/configmaps".to_string(),
        }
    }

    fn selector_query(&self) -> String {
        match self.sel {
            Some(Sel::Eq(v)) => format!("&labelSelector=grp%3D{v}"),
            Some(Sel::Ne(v)) => format!("&labelSelector=grp%21%3D{v}"),
            None => String::new(),
        }
    }

    fn has_ns(&self, ns: &str) -> bool {
        match self.ns {
            Some(i) => NAMESPACES[i] == ns,
            None => true,
        }
    }

    fn selects(&self, grp: &str) -> bool {
        match self.sel {
            Some(Sel::Eq(v)) => grp == v,
            Some(Sel::Ne(v)) => grp != v,
            None => true,
        }
    }

    fn random(rng: &mut Rng) -> Scope {
        let ns = rng.below(4).checked_sub(1);
        let sel = match rng.below(3) {
            0 => Some(Sel::Eq("a")),
            1 => Some(Sel::Ne("b")),
            _ => None,
        };
        Scope { ns, sel }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ns {
            Some(i) => write!(f, "ns {}", NAMESPACES[i])?,
            None => write!(f, "cluster")?,
        }
        match self.sel {
            Some(Sel::Eq(v)) => write!(f, " grp={v}"),
            Some(Sel::Ne(v)) => write!(f, " grp!={v}"),
            None => Ok(()),
        }
    }
}

/// A small deterministic generator (splitmix64): the test needs no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// What readers see

/// A ConfigMap as a reader saw it: the fields the checker compares.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    ns: String,
    name: String,
    rv: u64,
    value: String,
    grp: String,
}

impl Seen {
    fn from_json(obj: &Value) -> Option<Seen> {
        let meta = &obj["metadata"];
        Some(Seen {
            ns: meta["namespace"].as_str()?.to_string(),
            name: meta["name"].as_str()?.to_string(),
            rv: meta["resourceVersion"].as_str()?.parse().ok()?,
            value: obj["data"]["v"].as_str().unwrap_or("").to_string(),
            grp: meta["labels"]["grp"].as_str().unwrap_or("").to_string(),
        })
    }

    fn key(&self) -> Key {
        (self.ns.clone(), self.name.clone())
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} rv={} v={} grp={}",
            self.ns, self.name, self.rv, self.value, self.grp
        )
    }
}

fn is_ours(ns: &str) -> bool {
    NAMESPACES.contains(&ns)
}

// ---------------------------------------------------------------------------------------------
// The committed history

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteKind {
    Create,
    Update,
    Delete,
}

/// One acknowledged (or, after a GET, known to have landed) write.
#[derive(Clone, Debug)]
struct Write {
    key: Key,
    kind: WriteKind,
    /// The revision from the response; None for a deletion (the API does not return it).
    rv: Option<u64>,
    /// The object after the write; for a deletion, the object deleted.
    value: String,
    grp: String,
    /// Logical clock before the request was sent and after its outcome was known.
    sent: u64,
    acked: u64,
}

/// The revision of a history event: known, or (a deletion no watcher saw) only bounded:
/// strictly between `lo` and `hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rv {
    Known(u64),
    Between { lo: u64, hi: u64 },
}

impl fmt::Display for Rv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rv::Known(r) => write!(f, "{r}"),
            Rv::Between { lo, hi } => write!(f, "unobserved, in ({lo}, {hi})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Obj {
    value: String,
    grp: String,
    /// The revision of the write that made this version.
    rv: u64,
}

#[derive(Clone, Debug)]
struct HEvent {
    key: Key,
    rv: Rv,
    delete: bool,
    /// The object after the write; for a deletion, the object deleted.
    obj: Obj,
    prev: Option<Obj>,
    sent: u64,
}

/// An event a watcher of some scope must see.
#[derive(Clone, Debug)]
struct Expect {
    ty: &'static str,
    key: Key,
    rv: Rv,
    value: String,
    grp: String,
    /// When the write that made it was sent (logical clock).
    sent: u64,
}

impl Expect {
    /// The same event: type, object and revision.
    fn same_event(&self, ty: &str, s: &Seen) -> bool {
        self.ty == ty && self.key.0 == s.ns && self.key.1 == s.name && self.rv == Rv::Known(s.rv)
    }

    /// The same event with the same object content.
    fn matches(&self, ty: &str, s: &Seen) -> bool {
        self.same_event(ty, s) && self.value == s.value && self.grp == s.grp
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{} rv={} v={} grp={}",
            self.ty, self.key.0, self.key.1, self.rv, self.value, self.grp
        )
    }
}

/// What a list at some revision must hold for one key.
#[derive(Clone, Debug, PartialEq)]
enum Slot {
    Is(Obj),
    /// A deletion no watcher saw may lie before or after the revision: present as this, or
    /// absent.
    Either(Obj),
}

struct History {
    /// In revision order.
    events: Vec<HEvent>,
    /// (acked clock, revision) of every write whose revision is known.
    acked: Vec<(u64, u64)>,
    writes: usize,
    deletions: usize,
    deletions_seen: usize,
}

impl History {
    /// Builds the history from the recorded writes and the (key, revision) of every DELETED
    /// event watchers saw; the second value lists the inconsistencies found on the way.
    fn new(writes: &[Write], deleted_seen: &[(Key, u64)]) -> (History, Vec<String>) {
        let mut problems = Vec::new();
        let mut by_key: BTreeMap<&Key, Vec<&Write>> = BTreeMap::new();
        for w in writes {
            by_key.entry(&w.key).or_default().push(w);
        }
        for seq in by_key.values_mut() {
            seq.sort_by_key(|w| w.acked);
        }
        // Acknowledged revisions: unique, and in real-time order (a write sent after another
        // was acknowledged has a higher revision).
        let mut known: Vec<&Write> = writes.iter().filter(|w| w.rv.is_some()).collect();
        known.sort_by_key(|w| w.rv);
        let mut rv_owner: HashMap<u64, &Key> = HashMap::new();
        for w in &known {
            let rv = w.rv.unwrap_or(0);
            if let Some(other) = rv_owner.insert(rv, &w.key) {
                problems.push(format!(
                    "[history] two acknowledged writes share resourceVersion {rv}: \
                     {other:?} and {:?}",
                    w.key
                ));
            }
        }
        for (i, a) in known.iter().enumerate() {
            for b in &known[..i] {
                // b.rv < a.rv: a must not have been acknowledged before b was sent.
                if b.sent > a.acked {
                    problems.push(format!(
                        "[history] real-time order: {:?} rv {:?} was acknowledged before {:?} \
                         was sent, which got the lower rv {:?}",
                        a.key, a.rv, b.key, b.rv
                    ));
                }
            }
        }
        let lo_rt = |sent: u64| {
            known
                .iter()
                .filter(|w| w.acked < sent)
                .filter_map(|w| w.rv)
                .max()
                .unwrap_or(0)
        };
        let hi_rt = |acked: u64| {
            known
                .iter()
                .filter(|w| w.sent > acked)
                .filter_map(|w| w.rv)
                .min()
                .unwrap_or(u64::MAX)
        };
        // Deletions: attribute each observed DELETED revision to the deletion of its key
        // between the key's neighbouring writes.
        let mut seen_by_key: HashMap<&Key, HashSet<u64>> = HashMap::new();
        for (k, rv) in deleted_seen {
            seen_by_key.entry(k).or_default().insert(*rv);
        }
        let mut used_by_deletion: HashMap<u64, Key> = HashMap::new();
        let mut events = Vec::new();
        let (mut deletions, mut deletions_seen) = (0, 0);
        for (key, seq) in &by_key {
            let key_rvs: HashSet<u64> = seq.iter().filter_map(|w| w.rv).collect();
            let mut prev: Option<Obj> = None;
            let mut prev_rv = 0;
            for (i, w) in seq.iter().enumerate() {
                match (w.kind, w.rv) {
                    (WriteKind::Delete, _) => {
                        deletions += 1;
                        let Some(deleted) = prev.take() else {
                            problems
                                .push(format!("[history] {key:?}: a deletion of an absent object"));
                            continue;
                        };
                        let hi_key = seq[i + 1..].iter().find_map(|n| n.rv).unwrap_or(u64::MAX);
                        let lo = prev_rv.max(lo_rt(w.sent));
                        let hi = hi_key.min(hi_rt(w.acked));
                        let mut cands: Vec<u64> = seen_by_key
                            .get(key)
                            .into_iter()
                            .flatten()
                            .copied()
                            .filter(|r| !key_rvs.contains(r) && *r > prev_rv && *r < hi_key)
                            .collect();
                        cands.sort_unstable();
                        if cands.len() > 1 {
                            problems.push(format!(
                                "[history] watchers disagree on the revision of the \
                                 deletion of {key:?} \
                                 (after rv {prev_rv}): {cands:?}"
                            ));
                        }
                        let rv = match cands.first() {
                            Some(&d) => {
                                deletions_seen += 1;
                                if d <= lo || d >= hi {
                                    problems.push(format!(
                                        "[history] the deletion of {key:?} was seen at rv \
                                         {d}, outside \
                                         ({lo}, {hi}): the writes acknowledged before its DELETE \
                                         was sent and those sent after it was acknowledged"
                                    ));
                                }
                                if let Some(owner) = rv_owner.get(&d) {
                                    problems.push(format!(
                                        "[history] the deletion of {key:?} was seen at rv {d}, the \
                                         revision of a write of {owner:?}"
                                    ));
                                }
                                if let Some(other) = used_by_deletion.insert(d, (*key).clone()) {
                                    problems.push(format!(
                                        "[history] the deletions of {key:?} and {other:?} were \
                                         both seen \
                                         at rv {d}"
                                    ));
                                }
                                Rv::Known(d)
                            }
                            None => Rv::Between { lo, hi },
                        };
                        events.push(HEvent {
                            key: (*key).clone(),
                            rv,
                            delete: true,
                            obj: deleted,
                            prev: None,
                            sent: w.sent,
                        });
                    }
                    (_, Some(rv)) => {
                        if rv <= prev_rv {
                            problems.push(format!(
                                "[history] {key:?}: rv {rv} of a later write is not above {prev_rv}"
                            ));
                        }
                        let created = w.kind == WriteKind::Create;
                        if created != prev.is_none() {
                            problems.push(format!(
                                "[history] {key:?}: a {:?} at rv {rv} while the object {}",
                                w.kind,
                                if prev.is_none() {
                                    "was absent"
                                } else {
                                    "existed"
                                }
                            ));
                        }
                        let obj = Obj {
                            value: w.value.clone(),
                            grp: w.grp.clone(),
                            rv,
                        };
                        events.push(HEvent {
                            key: (*key).clone(),
                            rv: Rv::Known(rv),
                            delete: false,
                            obj: obj.clone(),
                            prev: prev.replace(obj),
                            sent: w.sent,
                        });
                        prev_rv = rv;
                    }
                    (_, None) => problems.push(format!("[history] {key:?}: a write without rv")),
                }
            }
        }
        // Revision order; a deletion nobody saw goes just before its upper bound.
        events.sort_by_key(|e| match e.rv {
            Rv::Known(r) => r.saturating_mul(2),
            Rv::Between { hi, .. } => hi.saturating_mul(2).saturating_sub(1),
        });
        let mut acked: Vec<(u64, u64)> = writes
            .iter()
            .filter_map(|w| Some((w.acked, w.rv?)))
            .collect();
        acked.extend(
            writes
                .iter()
                .filter(|w| w.kind == WriteKind::Delete)
                .filter_map(|w| {
                    let rv = events.iter().find_map(|e| match e.rv {
                        Rv::Known(r) if e.delete && e.key == w.key && e.sent == w.sent => Some(r),
                        _ => None,
                    })?;
                    Some((w.acked, rv))
                }),
        );
        let history = History {
            events,
            acked,
            writes: writes.len(),
            deletions,
            deletions_seen,
        };
        (history, problems)
    }

    /// The highest revision of a write acknowledged before the logical time `clock`: a
    /// consistent read that starts after `clock` is at least there.
    fn rv_acked_before(&self, clock: u64) -> u64 {
        self.acked
            .iter()
            .filter(|(a, _)| *a < clock)
            .map(|(_, rv)| *rv)
            .max()
            .unwrap_or(0)
    }

    /// The objects of `scope` at revision `at`.
    fn state_at(&self, at: u64, scope: Scope) -> BTreeMap<Key, Slot> {
        let mut state: BTreeMap<Key, Slot> = BTreeMap::new();
        for e in &self.events {
            match (e.delete, e.rv) {
                (false, Rv::Known(r)) if r <= at => {
                    state.insert(e.key.clone(), Slot::Is(e.obj.clone()));
                }
                (true, Rv::Known(d)) if d <= at => {
                    state.remove(&e.key);
                }
                (true, Rv::Between { lo, hi }) => {
                    if hi <= at.saturating_add(1) {
                        state.remove(&e.key);
                    } else if lo < at {
                        state.insert(e.key.clone(), Slot::Either(e.obj.clone()));
                    }
                }
                _ => {}
            }
        }
        state.retain(|k, slot| {
            let (Slot::Is(o) | Slot::Either(o)) = slot;
            scope.has_ns(&k.0) && scope.selects(&o.grp)
        });
        state
    }

    /// The events a watcher of `scope` that started at revision `after` must see, in order
    /// (upstream's rules: an update into the selector is ADDED, out of it DELETED with the
    /// previous object at the update's revision).
    fn events_after(&self, after: u64, scope: Scope) -> Vec<Expect> {
        let mut out = Vec::new();
        for e in &self.events {
            let later = match e.rv {
                Rv::Known(r) => r > after,
                Rv::Between { lo, .. } => lo >= after,
            };
            if !later || !scope.has_ns(&e.key.0) {
                continue;
            }
            let now = !e.delete && scope.selects(&e.obj.grp);
            let before = if e.delete {
                scope.selects(&e.obj.grp)
            } else {
                e.prev.as_ref().is_some_and(|p| scope.selects(&p.grp))
            };
            let (ty, shown) = match (now, before) {
                (true, false) => ("ADDED", &e.obj),
                (true, true) => ("MODIFIED", &e.obj),
                (false, true) if e.delete => ("DELETED", &e.obj),
                (false, true) => match &e.prev {
                    Some(p) => ("DELETED", p),
                    None => continue,
                },
                (false, false) => continue,
            };
            out.push(Expect {
                ty,
                key: e.key.clone(),
                rv: e.rv,
                value: shown.value.clone(),
                grp: shown.grp.clone(),
                sent: e.sent,
            });
        }
        out
    }
}

/// Compares what a list (or a watch's initial events) returned with the state; the
/// differences, if any. `ordered`: items must come in key order.
fn diff_state(want: &BTreeMap<Key, Slot>, got: &[Seen], ordered: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: HashSet<Key> = HashSet::new();
    for (i, s) in got.iter().enumerate() {
        if ordered && i > 0 {
            let (a, b) = (&got[i - 1], s);
            if format!("{}/{}", a.ns, a.name) >= format!("{}/{}", b.ns, b.name) {
                out.push(format!("items out of key order: {a} then {b}"));
            }
        }
        let key = s.key();
        if !seen.insert(key.clone()) {
            out.push(format!("duplicate item {s}"));
            continue;
        }
        match want.get(&key) {
            Some(Slot::Is(o) | Slot::Either(o))
                if o.value == s.value && o.grp == s.grp && o.rv == s.rv => {}
            Some(Slot::Is(o) | Slot::Either(o)) => out.push(format!(
                "item {s}, expected rv={} v={} grp={}",
                o.rv, o.value, o.grp
            )),
            None => out.push(format!("unexpected item {s}")),
        }
    }
    for (k, slot) in want {
        if let Slot::Is(o) = slot
            && !seen.contains(k)
        {
            out.push(format!(
                "missing item {}/{} rv={} v={} grp={}",
                k.0, k.1, o.rv, o.value, o.grp
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    fn new(data_dir: &Path, port: u16, http1_only: bool, timeout: Option<Duration>) -> Http {
        let alpn: &[&[u8]] = if http1_only {
            &[b"http/1.1"]
        } else {
            &[b"h2", b"http/1.1"]
        };
        let tls = support::kapi::admin_tls(data_dir, alpn);
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .tls_backend_preconfigured(tls);
        if http1_only {
            builder = builder.http1_only();
        }
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        Http {
            client: builder.build().unwrap(),
            base: format!("https://127.0.0.1:{port}"),
        }
    }

    /// One request with a JSON answer: (status, body or Null), or the transport error.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Value)>,
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Accept", "application/json");
        if let Some((ctype, b)) = body {
            req = req
                .header("Content-Type", ctype)
                .body(serde_json::to_vec(&b).unwrap());
        }
        let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| format!("{e:?}"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state of a run

#[derive(Default)]
struct Stats {
    uncertain: AtomicUsize,
    uncertain_landed: AtomicUsize,
    failed_writes: AtomicUsize,
    stale_conflicts: AtomicUsize,
    resumes: AtomicUsize,
    gone: AtomicUsize,
    relists: AtomicUsize,
    stream_ends: AtomicUsize,
    watch_errors: AtomicUsize,
    list_gone: AtomicUsize,
    list_errors: AtomicUsize,
    foreign: AtomicUsize,
}

struct Ctx {
    http: Http,
    watch_h2: Http,
    watch_h1: Http,
    /// Logical clock: read before a request is sent, ticked once its outcome is known, so that
    /// `a.acked < b.sent` means a was committed before b was sent.
    clock: AtomicU64,
    writes: Mutex<Vec<Write>>,
    acked_writes: AtomicUsize,
    lists: Mutex<Vec<ListRecord>>,
    problems: Mutex<Vec<String>>,
    writing: AtomicBool,
    watchers_ready: AtomicUsize,
    /// The sentinel revision of each namespace, once written: watchers stop there.
    stop: tokio::sync::watch::Sender<Option<[u64; 3]>>,
    deadline: Instant,
    stats: Stats,
}

impl Ctx {
    fn now(&self) -> u64 {
        self.clock.load(SeqCst)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, SeqCst)
    }

    fn problem(&self, msg: String) {
        self.problems.lock().unwrap().push(msg);
    }

    fn known_rvs(&self) -> Vec<u64> {
        self.writes
            .lock()
            .unwrap()
            .iter()
            .filter_map(|w| w.rv)
            .collect()
    }

    fn past_deadline(&self) -> bool {
        Instant::now() > self.deadline
    }
}

fn stop_rv(scope: Scope, stops: &[u64; 3]) -> u64 {
    match scope.ns {
        Some(i) => stops[i],
        None => stops.iter().copied().max().unwrap_or(0),
    }
}

// ---------------------------------------------------------------------------------------------
// Writers

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Create,
    Put,
    Patch,
    /// A PUT with an outdated resourceVersion: must be a 409 and change nothing.
    StalePut,
    Delete {
        precondition: bool,
    },
}

enum Outcome {
    Applied(Option<u64>),
    NotApplied,
    Unknown,
}

/// Performs one write on a key this task owns (`cur` is its current object) and records it
/// if it landed.
async fn apply(ctx: &Ctx, key: &Key, cur: &mut Option<Obj>, op: Op, value: &str, grp: &str) {
    let (ns, name) = key;
    let item = format!("/api/v1/namespaces/{ns}/configmaps/{name}");
    let cur_rv = cur.as_ref().map(|o| o.rv).unwrap_or(0);
    let object = |rv: Option<u64>| {
        let mut meta = json!({"name": name, "namespace": ns, "labels": {"grp": grp}});
        if let Some(rv) = rv {
            meta["resourceVersion"] = json!(rv.to_string());
        }
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}})
    };
    const JSON: &str = "application/json";
    let (method, path, body) = match op {
        Op::Create => (
            Method::POST,
            format!("/api/v1/namespaces/{ns}/configmaps"),
            Some((JSON, object(None))),
        ),
        Op::Put => (
            Method::PUT,
            item.clone(),
            Some((JSON, object(Some(cur_rv)))),
        ),
        Op::StalePut => (
            Method::PUT,
            item.clone(),
            Some((JSON, object(Some(cur_rv - 1)))),
        ),
        Op::Patch => (
            Method::PATCH,
            item.clone(),
            Some((
                "application/merge-patch+json",
                json!({"metadata": {"labels": {"grp": grp}}, "data": {"v": value}}),
            )),
        ),
        Op::Delete { precondition } => (
            Method::DELETE,
            item.clone(),
            precondition.then(|| {
                (
                    JSON,
                    json!({"kind": "DeleteOptions", "apiVersion": "v1",
                           "preconditions": {"resourceVersion": cur_rv.to_string()}}),
                )
            }),
        ),
    };
    let delete = matches!(op, Op::Delete { .. });
    let sent = ctx.now();
    let answer = ctx.http.call(method.clone(), &path, body).await;
    let outcome = match answer {
        Ok((code, body)) if (200..300).contains(&code) => {
            if op == Op::StalePut {
                ctx.problem(format!(
                    "[write] PUT {item} with the outdated resourceVersion {} was accepted ({code})",
                    cur_rv - 1
                ));
            }
            if delete {
                Outcome::Applied(None)
            } else {
                match Seen::from_json(&body) {
                    Some(s) if s.value == value && s.grp == grp && &s.key() == key => {
                        Outcome::Applied(Some(s.rv))
                    }
                    _ => {
                        ctx.problem(format!("[write] {method} {path}: {code} with body {body}"));
                        Outcome::Unknown
                    }
                }
            }
        }
        Ok((409, _)) if op == Op::StalePut => {
            ctx.stats.stale_conflicts.fetch_add(1, SeqCst);
            Outcome::NotApplied
        }
        Ok((code, _)) if code >= 500 || code == 429 => Outcome::Unknown,
        Ok((code, body)) => {
            ctx.problem(format!(
                "[write] {method} {path} ({op:?}) on an object this writer owns \
                 (current rv {cur_rv}): unexpected {code} {body}"
            ));
            Outcome::Unknown
        }
        Err(_) => Outcome::Unknown,
    };
    let outcome = match outcome {
        Outcome::Unknown => {
            ctx.stats.uncertain.fetch_add(1, SeqCst);
            let o = resolve(ctx, key, cur, value, delete).await;
            match o {
                Outcome::Applied(_) => ctx.stats.uncertain_landed.fetch_add(1, SeqCst),
                _ => ctx.stats.failed_writes.fetch_add(1, SeqCst),
            };
            o
        }
        o => o,
    };
    if let Outcome::Applied(rv) = outcome {
        let acked = ctx.tick();
        let (kind, value, grp) = match (op, cur.as_ref()) {
            (Op::Delete { .. }, Some(o)) => (WriteKind::Delete, o.value.clone(), o.grp.clone()),
            (Op::Create, _) => (WriteKind::Create, value.to_string(), grp.to_string()),
            _ => (WriteKind::Update, value.to_string(), grp.to_string()),
        };
        ctx.writes.lock().unwrap().push(Write {
            key: key.clone(),
            kind,
            rv,
            value: value.clone(),
            grp: grp.clone(),
            sent,
            acked,
        });
        ctx.acked_writes.fetch_add(1, SeqCst);
        *cur = match (kind, rv) {
            (WriteKind::Delete, _) => None,
            (_, Some(rv)) => Some(Obj { value, grp, rv }),
            (_, None) => unreachable!("a non-delete write always has an rv"),
        };
    }
}

/// Whether a write whose answer was lost landed: a consistent GET once the server answers
/// (twice, half a second apart, when it says no).
async fn resolve(ctx: &Ctx, key: &Key, cur: &Option<Obj>, value: &str, delete: bool) -> Outcome {
    let item = format!("/api/v1/namespaces/{}/configmaps/{}", key.0, key.1);
    let mut confirmations = 0;
    loop {
        if ctx.past_deadline() {
            ctx.problem(format!(
                "[write] could not learn the outcome of a write of {key:?}: no answer"
            ));
            return Outcome::NotApplied;
        }
        let got = match ctx.http.call(Method::GET, &item, None).await {
            Ok((200, body)) => Seen::from_json(&body),
            Ok((404, _)) => None,
            _ => {
                tokio::time::sleep(Duration::from_millis(150)).await;
                continue;
            }
        };
        let landed = match (&got, delete) {
            (None, true) => true,
            (Some(s), false) if s.value == value => true,
            (None, false) if cur.is_none() => false,
            (Some(s), _)
                if cur
                    .as_ref()
                    .is_some_and(|c| c.value == s.value && c.rv == s.rv) =>
            {
                false
            }
            _ => {
                ctx.problem(format!(
                    "[write] after a write of {key:?} with an unknown outcome, GET shows {got:?}, \
                     neither the write ({value}, delete: {delete}) nor the previous {cur:?}"
                ));
                return Outcome::NotApplied;
            }
        };
        if landed {
            return Outcome::Applied(got.map(|s| s.rv));
        }
        confirmations += 1;
        if confirmations == 2 {
            return Outcome::NotApplied;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn writer(ctx: Arc<Ctx>, w: usize, seed: u64) {
    let mut rng = Rng(seed);
    let keys: Vec<Key> = (0..KEYS_PER_WRITER)
        .map(|i| {
            (
                NAMESPACES[(i + w) % NAMESPACES.len()].to_string(),
                format!("w{w}-k{i:02}"),
            )
        })
        .collect();
    let mut cur: Vec<Option<Obj>> = vec![None; keys.len()];
    for n in 0..OPS_PER_WRITER {
        if ctx.past_deadline() {
            ctx.problem(format!(
                "[liveness] writer {w} ran out of time after {n} writes"
            ));
            return;
        }
        let k = rng.below(keys.len());
        let value = format!("w{w}-{n}");
        let grp = GROUPS[rng.below(GROUPS.len())];
        let op = match cur[k] {
            None => Op::Create,
            Some(_) => match rng.below(100) {
                0..25 => Op::Delete {
                    precondition: rng.below(2) == 0,
                },
                25..30 => Op::StalePut,
                30..65 => Op::Put,
                _ => Op::Patch,
            },
        };
        apply(&ctx, &keys[k], &mut cur[k], op, &value, grp).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Lists

#[derive(Clone, Copy, Debug)]
enum ListKind {
    /// resourceVersion unset: at least every write acknowledged before `sent`.
    Consistent {
        sent: u64,
    },
    Exact(u64),
    NotOlderThan(u64),
    /// resourceVersion=0: any revision.
    Any,
}

#[derive(Clone, Debug)]
struct ListRecord {
    who: String,
    scope: Scope,
    kind: ListKind,
    rv: u64,
    items: Vec<Seen>,
    pages: usize,
}

enum ListError {
    Gone,
    Transient(String),
}

/// A paginated list (LIMIT items a page, following `continue`); every page must report the
/// first page's resourceVersion.
async fn list_pages(
    ctx: &Ctx,
    who: &str,
    scope: Scope,
    kind: ListKind,
) -> Result<ListRecord, ListError> {
    let start = match kind {
        ListKind::Consistent { .. } => String::new(),
        ListKind::Exact(rv) => format!("&resourceVersion={rv}&resourceVersionMatch=Exact"),
        ListKind::NotOlderThan(rv) => {
            format!("&resourceVersion={rv}&resourceVersionMatch=NotOlderThan")
        }
        ListKind::Any => "&resourceVersion=0".to_string(),
    };
    let base = format!(
        "{}?limit={LIMIT}{}",
        scope.collection(),
        scope.selector_query()
    );
    let mut path = format!("{base}{start}");
    let mut record = ListRecord {
        who: who.to_string(),
        scope,
        kind,
        rv: 0,
        items: Vec::new(),
        pages: 0,
    };
    loop {
        let (code, body) = ctx
            .http
            .call(Method::GET, &path, None)
            .await
            .map_err(ListError::Transient)?;
        if code == 410 {
            return Err(ListError::Gone);
        }
        if code != 200 {
            return Err(ListError::Transient(format!("{code} {body}")));
        }
        let rv: u64 = body["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if record.pages == 0 {
            record.rv = rv;
        } else if rv != record.rv {
            ctx.problem(format!(
                "[list] {who}: page {} of a list of {scope} reports rv {rv}, the first page {}",
                record.pages + 1,
                record.rv
            ));
        }
        record.pages += 1;
        for item in body["items"].as_array().into_iter().flatten() {
            match Seen::from_json(item) {
                Some(s) if is_ours(&s.ns) => record.items.push(s),
                Some(_) => {
                    ctx.stats.foreign.fetch_add(1, SeqCst);
                }
                None => ctx.problem(format!("[list] {who}: unreadable list item {item}")),
            }
        }
        match body["metadata"]["continue"].as_str() {
            Some(token) if !token.is_empty() => {
                path = format!("{base}&continue={token}");
            }
            _ => return Ok(record),
        }
    }
}

async fn lister(ctx: Arc<Ctx>, seed: u64) {
    let mut rng = Rng(seed);
    let mut n = 0;
    while ctx.writing.load(SeqCst) && n < LISTS {
        let scope = Scope::random(&mut rng);
        let rvs = ctx.known_rvs();
        let kind = match n % 4 {
            0 => ListKind::Consistent { sent: ctx.now() },
            1 if !rvs.is_empty() => ListKind::Exact(rvs[rng.below(rvs.len())]),
            2 if !rvs.is_empty() => ListKind::NotOlderThan(rvs.iter().copied().max().unwrap()),
            _ => ListKind::Any,
        };
        n += 1;
        match list_pages(&ctx, &format!("list {n}"), scope, kind).await {
            Ok(r) => ctx.lists.lock().unwrap().push(r),
            Err(ListError::Gone) => {
                ctx.stats.list_gone.fetch_add(1, SeqCst);
            }
            Err(ListError::Transient(e)) => {
                eprintln!("list {n} of {scope} ({kind:?}) failed: {e}");
                ctx.stats.list_errors.fetch_add(1, SeqCst);
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Watchers

#[derive(Clone, Copy, Debug)]
enum StartKind {
    /// From the resourceVersion of an earlier write.
    FromRv(u64),
    /// From a paginated list's resourceVersion.
    FromList,
    /// resourceVersion unset, sendInitialEvents=false: from "now".
    Now,
    /// resourceVersion=0, sendInitialEvents=false: from any revision.
    Any,
    /// sendInitialEvents=true: the state, the initial-events-end bookmark, then events.
    Initial,
}

#[derive(Clone, Copy, Debug)]
struct WatcherSpec {
    id: usize,
    scope: Scope,
    start: StartKind,
    bookmarks: bool,
    http1: bool,
}

impl fmt::Display for WatcherSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "watcher {} ({}, {:?}{}{})",
            self.id,
            self.scope,
            self.start,
            if self.bookmarks { ", bookmarks" } else { "" },
            if self.http1 { ", http/1.1" } else { ", h2" }
        )
    }
}

#[derive(Clone, Copy, Debug)]
enum SegStart {
    Exact(u64),
    /// From an unknown revision: at least every write acknowledged before `sent` (if
    /// Some; "any" has no bound) and at most those sent after `established` (the response
    /// headers arrived).
    Now {
        sent: Option<u64>,
        established: u64,
    },
    Initial {
        sent: u64,
    },
}

#[derive(Clone, Debug)]
enum Item {
    Event(String, Seen),
    Bookmark(u64),
    InitialEnd(u64),
}

#[derive(Clone, Debug, PartialEq)]
enum SegEnd {
    /// Reached the sentinel of its scope.
    Stopped,
    Eof,
    Broken,
    Gone,
    Error(String),
    Deadline,
}

#[derive(Clone, Debug)]
struct Segment {
    start: SegStart,
    items: Vec<Item>,
    end: SegEnd,
    /// It saw the last event of its scope: it must hold every event after its start.
    reached_end: bool,
}

struct WatcherLog {
    spec: WatcherSpec,
    segments: Vec<Segment>,
}

enum Frame {
    Event(String, Seen),
    Bookmark(u64, bool),
    Error(i64, String),
    Foreign,
}

fn parse_frame(line: &[u8]) -> Result<Frame, String> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(line)))?;
    let ty = v["type"].as_str().unwrap_or("");
    let obj = &v["object"];
    match ty {
        "ADDED" | "MODIFIED" | "DELETED" => match Seen::from_json(obj) {
            Some(s) if is_ours(&s.ns) => Ok(Frame::Event(ty.to_string(), s)),
            Some(_) => Ok(Frame::Foreign),
            None => Err(format!("unreadable event {v}")),
        },
        "BOOKMARK" => {
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bookmark without rv: {v}"))?;
            let end = obj["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true";
            Ok(Frame::Bookmark(rv, end))
        }
        "ERROR" => Ok(Frame::Error(
            obj["code"].as_i64().unwrap_or(0),
            obj["message"].as_str().unwrap_or("").to_string(),
        )),
        _ => Err(format!("unknown watch frame {v}")),
    }
}

/// What the watcher does next: watch from a revision, or list and then watch.
#[derive(Clone, Copy)]
enum Next {
    Start(StartKind),
    Exact(u64),
    Relist,
}

async fn watcher(ctx: Arc<Ctx>, spec: WatcherSpec) -> WatcherLog {
    let http = if spec.http1 {
        &ctx.watch_h1
    } else {
        &ctx.watch_h2
    };
    let who = spec.to_string();
    let scope = spec.scope;
    let mut log = WatcherLog {
        spec,
        segments: Vec::new(),
    };
    let mut stop = ctx.stop.subscribe();
    let mut next = Next::Start(spec.start);
    // The highest revision this watcher knows it has seen everything up to.
    let mut progress: Option<u64> = None;
    let mut ready = false;
    let reached = |progress: Option<u64>, stop: &Option<[u64; 3]>| match (progress, stop) {
        (Some(p), Some(s)) => p >= stop_rv(scope, s),
        _ => false,
    };
    'outer: loop {
        if ctx.past_deadline() {
            ctx.problem(format!(
                "[liveness] {who}: did not reach the end of the history in time"
            ));
            break;
        }
        if reached(progress, &stop.borrow()) {
            break;
        }
        if let Next::Start(StartKind::FromList) | Next::Relist = next {
            match list_pages(&ctx, &who, scope, ListKind::Consistent { sent: ctx.now() }).await {
                Ok(r) => {
                    progress = Some(r.rv);
                    next = Next::Exact(r.rv);
                    ctx.lists.lock().unwrap().push(r);
                    continue;
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let (query, mut start) = match next {
            Next::Exact(rv) | Next::Start(StartKind::FromRv(rv)) => {
                (format!("&resourceVersion={rv}"), SegStart::Exact(rv))
            }
            Next::Start(StartKind::Now) => (
                "&sendInitialEvents=false&resourceVersionMatch=NotOlderThan".to_string(),
                SegStart::Now {
                    sent: Some(ctx.now()),
                    established: 0,
                },
            ),
            Next::Start(StartKind::Any) => (
                "&resourceVersion=0&sendInitialEvents=false&resourceVersionMatch=NotOlderThan"
                    .to_string(),
                SegStart::Now {
                    sent: None,
                    established: 0,
                },
            ),
            Next::Start(StartKind::Initial) => (
                "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan".to_string(),
                SegStart::Initial { sent: ctx.now() },
            ),
            Next::Start(StartKind::FromList) | Next::Relist => unreachable!(),
        };
        let bookmarks = spec.bookmarks || matches!(start, SegStart::Initial { .. });
        let url = format!(
            "{}{}?watch=1&timeoutSeconds=120{}{}{query}",
            http.base,
            scope.collection(),
            scope.selector_query(),
            if bookmarks {
                "&allowWatchBookmarks=true"
            } else {
                ""
            }
        );
        let resp = http
            .client
            .get(&url)
            .header("Accept", "application/json")
            .send()
            .await;
        let mut resp = match resp {
            Ok(r) if r.status().as_u16() == 200 => r,
            Ok(r) if r.status().as_u16() == 410 => {
                ctx.stats.gone.fetch_add(1, SeqCst);
                next = Next::Relist;
                ctx.stats.relists.fetch_add(1, SeqCst);
                continue;
            }
            _ => {
                // Down (restart) or not ready (its store is down): try again.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let established = ctx.tick();
        if let SegStart::Now { sent, .. } = start {
            start = SegStart::Now { sent, established };
        }
        if !ready {
            ready = true;
            ctx.watchers_ready.fetch_add(1, SeqCst);
        }
        if let SegStart::Exact(rv) = start {
            progress = Some(progress.unwrap_or(0).max(rv));
        }
        let mut seg = Segment {
            start,
            items: Vec::new(),
            end: SegEnd::Eof,
            reached_end: false,
        };
        let mut buf: Vec<u8> = Vec::new();
        let mut until = tokio::time::Instant::from_std(ctx.deadline);
        loop {
            if !seg.reached_end && reached(progress, &stop.borrow()) {
                // Past the last write: listen a little longer, as anything more is an error.
                seg.reached_end = true;
                until = tokio::time::Instant::now() + LINGER;
            }
            let chunk = tokio::select! {
                c = resp.chunk() => c,
                _ = stop.changed(), if !seg.reached_end => continue,
                _ = tokio::time::sleep_until(until) => {
                    if seg.reached_end {
                        seg.end = SegEnd::Stopped;
                        log.segments.push(seg);
                        break 'outer;
                    }
                    seg.end = SegEnd::Deadline;
                    break;
                }
            };
            let bytes = match chunk {
                Ok(Some(b)) => b,
                Ok(None) => {
                    seg.end = SegEnd::Eof;
                    break;
                }
                Err(_) => {
                    seg.end = SegEnd::Broken;
                    break;
                }
            };
            buf.extend_from_slice(&bytes);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                match parse_frame(&line) {
                    Ok(Frame::Event(ty, s)) => {
                        progress = Some(progress.unwrap_or(0).max(s.rv));
                        seg.items.push(Item::Event(ty, s));
                    }
                    Ok(Frame::Bookmark(rv, end)) => {
                        if end {
                            seg.items.push(Item::InitialEnd(rv));
                        } else {
                            seg.items.push(Item::Bookmark(rv));
                        }
                        progress = Some(progress.unwrap_or(0).max(rv));
                    }
                    Ok(Frame::Foreign) => {
                        ctx.stats.foreign.fetch_add(1, SeqCst);
                    }
                    Ok(Frame::Error(410, _)) => {
                        seg.end = SegEnd::Gone;
                        break;
                    }
                    Ok(Frame::Error(code, msg)) => {
                        seg.end = SegEnd::Error(format!("{code} {msg}"));
                        break;
                    }
                    Err(e) => {
                        ctx.problem(format!("[watch frame] {who}: {e}"));
                        seg.end = SegEnd::Error(e);
                        break;
                    }
                }
            }
            if seg.end != SegEnd::Eof {
                break;
            }
        }
        let end = seg.end.clone();
        let unknown_start = matches!(seg.start, SegStart::Now { .. })
            && !seg.items.iter().any(|i| matches!(i, Item::Event(..)));
        let initial_unfinished = matches!(seg.start, SegStart::Initial { .. })
            && !seg.items.iter().any(|i| matches!(i, Item::InitialEnd(_)));
        log.segments.push(seg);
        match end {
            SegEnd::Deadline => {
                ctx.problem(format!(
                    "[liveness] {who}: did not reach the end of the history in time"
                ));
                break;
            }
            SegEnd::Gone => {
                ctx.stats.gone.fetch_add(1, SeqCst);
                ctx.stats.relists.fetch_add(1, SeqCst);
                next = Next::Relist;
            }
            _ => {
                if let SegEnd::Error(_) = end {
                    ctx.stats.watch_errors.fetch_add(1, SeqCst);
                } else {
                    ctx.stats.stream_ends.fetch_add(1, SeqCst);
                }
                match progress {
                    Some(rv) if !unknown_start && !initial_unfinished => {
                        ctx.stats.resumes.fetch_add(1, SeqCst);
                        next = Next::Exact(rv);
                    }
                    _ => {
                        ctx.stats.relists.fetch_add(1, SeqCst);
                        next = Next::Relist;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    if !ready {
        ctx.watchers_ready.fetch_add(1, SeqCst);
    }
    log
}

// ---------------------------------------------------------------------------------------------
// Checking

#[derive(Default)]
struct Report {
    problems: Vec<String>,
    events: usize,
    lists: usize,
    pages: usize,
    segments: usize,
}

fn check_watcher(h: &History, log: &WatcherLog, r: &mut Report) {
    let scope = log.spec.scope;
    for (si, seg) in log.segments.iter().enumerate() {
        r.segments += 1;
        let who = format!(
            "{} segment {si} ({:?}, ended {:?})",
            log.spec, seg.start, seg.end
        );
        let mut items = &seg.items[..];
        let (expected, floor): (Vec<Expect>, u64) = match seg.start {
            SegStart::Exact(s) => (h.events_after(s, scope), s),
            SegStart::Initial { sent } => {
                let Some(pos) = items.iter().position(|i| matches!(i, Item::InitialEnd(_))) else {
                    if seg.reached_end {
                        r.problems.push(format!(
                            "[watch initial] {who}: no initial-events-end bookmark"
                        ));
                    }
                    continue;
                };
                let Item::InitialEnd(at) = items[pos] else {
                    unreachable!()
                };
                let lower = h.rv_acked_before(sent);
                if at < lower {
                    r.problems.push(format!(
                        "[watch start] {who}: initial events at rv {at}, older than \
                         the write acknowledged \
                         before the watch was sent (rv {lower})"
                    ));
                }
                let mut initial = Vec::new();
                for it in &items[..pos] {
                    match it {
                        Item::Event(ty, s) if ty == "ADDED" => initial.push(s.clone()),
                        other => r.problems.push(format!(
                            "[watch initial] {who}: {other:?} among the initial events"
                        )),
                    }
                }
                initial.sort();
                r.events += initial.len();
                for d in diff_state(&h.state_at(at, scope), &initial, false) {
                    r.problems.push(format!(
                        "[watch initial] {who}: initial events vs the state at rv {at}: {d}"
                    ));
                }
                items = &items[pos + 1..];
                (h.events_after(at, scope), at)
            }
            SegStart::Now { sent, established } => {
                let lower = sent.map(|c| h.rv_acked_before(c)).unwrap_or(0);
                let cands = h.events_after(lower, scope);
                let first = items.iter().find_map(|i| match i {
                    Item::Event(ty, s) => Some((ty, s)),
                    _ => None,
                });
                let i = match first {
                    Some((ty, s)) => match cands.iter().position(|c| c.rv == Rv::Known(s.rv)) {
                        Some(i) => i,
                        None => {
                            r.problems.push(format!(
                                "[watch start] {who}: the first event {ty} {s} is no \
                                 event of the history \
                                 after rv {lower} (the last write acknowledged before the watch \
                                 was sent)"
                            ));
                            continue;
                        }
                    },
                    None => cands
                        .iter()
                        .position(|c| c.sent > established)
                        .unwrap_or(cands.len()),
                };
                if let Some(missed) = cands[..i].iter().find(|c| c.sent > established) {
                    r.problems.push(format!(
                        "[watch start] {who}: {missed}, written after the watch \
                         was established, was not \
                         delivered"
                    ));
                }
                (cands[i..].to_vec(), 0)
            }
        };
        let mut n = 0;
        let mut last_event = floor;
        let mut last_bookmark = floor;
        let mut failed = false;
        for it in items {
            match it {
                Item::Event(ty, s) => {
                    match expected.get(n) {
                        Some(x) if x.matches(ty, s) => {}
                        // The right event with the wrong object: reported, and the stream's
                        // order is still checked past it.
                        Some(x) if x.same_event(ty, s) => r.problems.push(format!(
                            "[watch content] {who}: event {n}: expected {x}, got {ty} {s}"
                        )),
                        Some(x) => {
                            let context: Vec<String> = expected
                                [n.saturating_sub(2)..(n + 3).min(expected.len())]
                                .iter()
                                .map(|e| e.to_string())
                                .collect();
                            r.problems.push(format!(
                                "[watch order] {who}: event {n}: expected {x}, got {ty} {s} \
                                 (expected around it: {context:?})"
                            ));
                            failed = true;
                        }
                        None => {
                            r.problems.push(format!(
                                "[watch order] {who}: event {n}: {ty} {s}, beyond the history \
                                 ({} events)",
                                expected.len()
                            ));
                            failed = true;
                        }
                    }
                    if failed {
                        break;
                    }
                    n += 1;
                    last_event = s.rv;
                }
                Item::Bookmark(b) | Item::InitialEnd(b) => {
                    if *b < last_event || *b < last_bookmark {
                        r.problems.push(format!(
                            "[bookmark] {who}: bookmark rv {b} goes back (after \
                             event rv {last_event}, \
                             bookmark rv {last_bookmark})"
                        ));
                    }
                    if let Some(x) = expected.get(n)
                        && matches!(x.rv, Rv::Known(rv) if rv <= *b)
                    {
                        r.problems.push(format!(
                            "[bookmark] {who}: bookmark rv {b} before {x} was delivered"
                        ));
                    }
                    last_bookmark = *b;
                }
            }
        }
        r.events += n;
        if !failed && seg.reached_end && n < expected.len() {
            let missing: Vec<String> = expected[n..]
                .iter()
                .take(5)
                .map(|e| e.to_string())
                .collect();
            r.problems.push(format!(
                "[watch missing] {who}: {} events missing at the end, first: {missing:?}",
                expected.len() - n
            ));
        }
    }
}

fn check_list(h: &History, l: &ListRecord, r: &mut Report) {
    r.lists += 1;
    r.pages += l.pages;
    let who = format!(
        "{}: list of {} ({:?}) at rv {}",
        l.who, l.scope, l.kind, l.rv
    );
    match l.kind {
        ListKind::Consistent { sent } => {
            let lower = h.rv_acked_before(sent);
            if l.rv < lower {
                r.problems.push(format!(
                    "[list] {who}: older than the write acknowledged before it was sent \
                     (rv {lower})"
                ));
            }
        }
        ListKind::Exact(rv) if l.rv != rv => {
            r.problems.push(format!("[list] {who}: not the exact rv"))
        }
        ListKind::NotOlderThan(rv) if l.rv < rv => {
            r.problems.push(format!("[list] {who}: older than asked"))
        }
        _ => {}
    }
    for d in diff_state(&h.state_at(l.rv, l.scope), &l.items, true) {
        r.problems.push(format!("[list] {who}: {d}"));
    }
}

// ---------------------------------------------------------------------------------------------
// A run

#[derive(Clone, Copy, PartialEq, Debug)]
enum Disruption {
    None,
    KapiRestart,
    EtcdRestart,
}

fn watcher_spec(id: usize, rng: &mut Rng, rvs: &[u64]) -> WatcherSpec {
    let start = match id % 5 {
        0 if !rvs.is_empty() => StartKind::FromRv(rvs[rng.below(rvs.len())]),
        0 | 1 => StartKind::FromList,
        2 => StartKind::Now,
        3 => StartKind::Any,
        _ => StartKind::Initial,
    };
    let scope = match (id / 5) % 4 {
        0 => Scope {
            ns: None,
            sel: None,
        },
        1 => Scope {
            ns: Some(id % NAMESPACES.len()),
            sel: None,
        },
        2 => Scope {
            ns: None,
            sel: Some(Sel::Eq("a")),
        },
        _ => Scope {
            ns: Some(id % NAMESPACES.len()),
            sel: Some(Sel::Ne("b")),
        },
    };
    WatcherSpec {
        id,
        scope,
        start,
        bookmarks: id.is_multiple_of(2),
        http1: id.is_multiple_of(3),
    }
}

async fn run(name: &str, kapi: &mut Kapi, mut etcd: Option<&mut Etcd>, disruption: Disruption) {
    let began = Instant::now();
    let seed = std::env::var("WATCH_CHECKER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut rng = Rng(seed);
    let (stop, _) = tokio::sync::watch::channel(None);
    let ctx = Arc::new(Ctx {
        http: Http::new(
            &kapi.data_dir,
            kapi.port,
            false,
            Some(Duration::from_secs(20)),
        ),
        watch_h2: Http::new(&kapi.data_dir, kapi.port, false, None),
        watch_h1: Http::new(&kapi.data_dir, kapi.port, true, None),
        clock: AtomicU64::new(1),
        writes: Mutex::new(Vec::new()),
        acked_writes: AtomicUsize::new(0),
        lists: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
        writing: AtomicBool::new(true),
        watchers_ready: AtomicUsize::new(0),
        stop,
        deadline: began + RUN_DEADLINE,
        stats: Stats::default(),
    });
    let mut ns_rv = 0;
    for ns in NAMESPACES {
        let (code, body) = ctx
            .http
            .call(
                Method::POST,
                "/api/v1/namespaces",
                Some(("application/json", json!({"metadata": {"name": ns}}))),
            )
            .await
            .unwrap();
        assert_eq!(code, 201, "creating namespace {ns}: {body}");
        ns_rv = body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    }

    // Two cluster-wide watchers from before the first write: between them they see every
    // deletion (unless a restart takes them away).
    let mut watchers = Vec::new();
    for spec in [
        WatcherSpec {
            id: 100,
            scope: Scope {
                ns: None,
                sel: None,
            },
            start: StartKind::FromRv(ns_rv),
            bookmarks: true,
            http1: false,
        },
        WatcherSpec {
            id: 101,
            scope: Scope {
                ns: None,
                sel: None,
            },
            start: StartKind::FromList,
            bookmarks: false,
            http1: true,
        },
    ] {
        watchers.push(tokio::spawn(watcher(ctx.clone(), spec)));
    }
    while ctx.watchers_ready.load(SeqCst) < watchers.len() && !ctx.past_deadline() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(ctx.clone(), w, rng.next())))
        .collect();
    let lister_task = tokio::spawn(lister(ctx.clone(), rng.next()));

    // Watchers start as the writes progress; the disruption comes half-way.
    let total = WRITERS * OPS_PER_WRITER * 3 / 4; // roughly the writes that land
    let mut disrupted = disruption == Disruption::None;
    let mut spawned = 0;
    let mut disrupted_after = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        let acked = ctx.acked_writes.load(SeqCst);
        if spawned < WATCHERS && acked >= (spawned + 1) * total / (WATCHERS + 2) {
            let spec = watcher_spec(spawned, &mut rng, &ctx.known_rvs());
            watchers.push(tokio::spawn(watcher(ctx.clone(), spec)));
            spawned += 1;
            continue;
        }
        if !disrupted && acked >= total / 2 {
            disrupted = true;
            disrupted_after = acked;
            match disruption {
                Disruption::KapiRestart => tokio::task::block_in_place(|| kapi.kill_and_restart()),
                Disruption::EtcdRestart => {
                    let etcd = etcd.as_deref_mut().expect("an etcd to restart");
                    tokio::task::block_in_place(|| {
                        etcd.kill();
                        std::thread::sleep(Duration::from_millis(1500));
                        etcd.start_again();
                    })
                }
                Disruption::None => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(disrupted, "the writes ended before the {disruption:?}");
    ctx.writing.store(false, SeqCst);
    lister_task.await.unwrap();
    // Any watchers not started yet start now, before the end.
    while spawned < WATCHERS {
        let spec = watcher_spec(spawned, &mut rng, &ctx.known_rvs());
        watchers.push(tokio::spawn(watcher(ctx.clone(), spec)));
        spawned += 1;
    }
    while ctx.watchers_ready.load(SeqCst) < watchers.len() && !ctx.past_deadline() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The sentinels: the last write of each namespace, in every scope; watchers stop there.
    let mut stops = [0u64; 3];
    for (i, ns) in NAMESPACES.iter().enumerate() {
        let key = (ns.to_string(), SENTINEL.to_string());
        let mut cur = None;
        apply(&ctx, &key, &mut cur, Op::Create, "end", "a").await;
        stops[i] = cur
            .as_ref()
            .map(|o| o.rv)
            .expect("the sentinel was written");
    }
    ctx.stop.send_replace(Some(stops));
    let mut logs = Vec::new();
    for w in watchers {
        logs.push(w.await.unwrap());
    }

    // The end state: one consistent list, and a GET of every key ever written.
    let mut gets: Vec<(Key, Option<Seen>)> = Vec::new();
    match list_pages(
        &ctx,
        "final",
        Scope {
            ns: None,
            sel: None,
        },
        ListKind::Consistent { sent: ctx.now() },
    )
    .await
    {
        Ok(l) => ctx.lists.lock().unwrap().push(l),
        Err(_) => ctx.problem("[final state] the final list failed".to_string()),
    }
    let keys: Vec<Key> = {
        let writes = ctx.writes.lock().unwrap();
        let set: std::collections::BTreeSet<Key> = writes.iter().map(|w| w.key.clone()).collect();
        set.into_iter().collect()
    };
    for key in keys {
        let path = format!("/api/v1/namespaces/{}/configmaps/{}", key.0, key.1);
        match ctx.http.call(Method::GET, &path, None).await {
            Ok((200, body)) => gets.push((key, Seen::from_json(&body))),
            Ok((404, _)) => gets.push((key, None)),
            other => ctx.problem(format!("[final state] GET {path}: {other:?}")),
        }
    }

    // The model, then every observation against it.
    let writes = ctx.writes.lock().unwrap().clone();
    let deleted_seen: Vec<(Key, u64)> = logs
        .iter()
        .flat_map(|l| &l.segments)
        .flat_map(|s| &s.items)
        .filter_map(|i| match i {
            Item::Event(ty, s) if ty == "DELETED" => Some((s.key(), s.rv)),
            _ => None,
        })
        .collect();
    let (history, mut problems) = History::new(&writes, &deleted_seen);
    problems.extend(ctx.problems.lock().unwrap().iter().cloned());
    let mut report = Report {
        problems,
        ..Report::default()
    };
    for log in &logs {
        check_watcher(&history, log, &mut report);
    }
    for l in ctx.lists.lock().unwrap().iter() {
        check_list(&history, l, &mut report);
    }
    let end = history.state_at(
        u64::MAX,
        Scope {
            ns: None,
            sel: None,
        },
    );
    for (key, got) in &gets {
        let want = match end.get(key) {
            Some(Slot::Is(o)) => Some(o),
            _ => None,
        };
        let same = match (want, got) {
            (Some(o), Some(s)) => o.value == s.value && o.grp == s.grp && o.rv == s.rv,
            (None, None) => true,
            _ => false,
        };
        if !same {
            report.problems.push(format!(
                "[final state] final GET of {key:?}: expected {want:?}, got {got:?}"
            ));
        }
    }

    let s = &ctx.stats;
    let n = |a: &AtomicUsize| a.load(SeqCst);
    println!(
        "watch checker [{name}] seed {seed}, {:.1}s: {} writes ({} creates/updates, {} \
         deletions of which {} seen by watchers; {} with an unknown outcome: {} had landed, {} \
         had not; {} stale PUTs refused with 409), {disruption:?}{}; {} watchers, {} watch \
         segments, {} events checked, {} resumes from the last rv, {} 410 Gone, {} re-lists, {} \
         stream ends, {} ERROR events; {} lists checked ({} pages; {} lists got 410, {} failed); \
         {} events and items outside the test namespaces ignored; {} problems",
        began.elapsed().as_secs_f64(),
        history.writes,
        history.writes - history.deletions,
        history.deletions,
        history.deletions_seen,
        n(&s.uncertain),
        n(&s.uncertain_landed),
        n(&s.failed_writes),
        n(&s.stale_conflicts),
        if disruption == Disruption::None {
            String::new()
        } else {
            format!(" after {disrupted_after} writes")
        },
        logs.len(),
        report.segments,
        report.events,
        n(&s.resumes),
        n(&s.gone),
        n(&s.relists),
        n(&s.stream_ends),
        n(&s.watch_errors),
        report.lists,
        report.pages,
        n(&s.list_gone),
        n(&s.list_errors),
        n(&s.foreign),
        report.problems.len(),
    );
    if !report.problems.is_empty() {
        // Grouped by kind ("[watch order] ..."), a few of each.
        let mut kinds: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
        for p in &report.problems {
            let kind = p
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .map_or("other", |(k, _)| k);
            kinds.entry(kind).or_default().push(p);
        }
        let mut text = String::new();
        for (kind, list) in &kinds {
            text.push_str(&format!("{kind}: {} problems, e.g.\n", list.len()));
            for p in list.iter().take(6) {
                text.push_str(&format!("- {p}\n"));
            }
        }
        panic!(
            "watch checker [{name}]: {} problems (seed {seed}):\n{text}",
            report.problems.len()
        );
    }
    assert!(report.events > 0 && report.lists > 0, "nothing was checked");
    if disruption == Disruption::KapiRestart {
        // A kill -9 ends every watch stream: the resume path was exercised.
        assert!(
            n(&s.stream_ends) > 0,
            "no watch stream ended at the kapi restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_lists_match_the_history_on_the_embedded_store() {
    let mut kapi = Kapi::start(&[], &[]);
    run("embedded", &mut kapi, None, Disruption::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_lists_match_the_history_across_a_kapi_restart() {
    let mut kapi = Kapi::start(&[], &[]);
    run("kapi restart", &mut kapi, None, Disruption::KapiRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_lists_match_the_history_on_etcd_across_an_etcd_restart() {
    let mut etcd = Etcd::start();
    let mut kapi = Kapi::start(&["--etcd-servers", &etcd.endpoint], &[]);
    run(
        "etcd restart",
        &mut kapi,
        Some(&mut etcd),
        Disruption::EtcdRestart,
    )
    .await;
}
