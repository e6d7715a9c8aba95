//! Damaged input never panics or hangs the codec. For every kind in `testdata/roundtrip`, the
//! fixture's protobuf and JSON are truncated at (nearly) every length and corrupted by
//! deterministic pseudo-random bit flips, and fed to the decoders. Each call must return Ok or
//! Err; a decoder that returns Ok must have written valid JSON. Panics are caught, so one run
//! reports every fixture, case and offset that panicked.
//!
//! Reproducing a failure: each bit-flip case names its fixture, case seed and the flips it
//! made; `flip(&bytes, case_seed)` rebuilds the input. Cuts name the prefix length.
//!
//! Hang guard: per-fixture wall time is logged (`--nocapture` shows it), and a watchdog writes
//! to the real stderr (past the test harness's capture) when one case runs for more than
//! [`STUCK_AFTER`]. No timed assertion: the machine may be slow.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

mod common;

use kapi_codec::envelope::{Envelope, read_pb_event};
use kapi_codec::error::MAX_DEPTH;
use kapi_codec::json_read::Doc;
use kapi_codec::schema::MsgId;
use kapi_codec::to_json::{PbToJson, envelope_to_json};
use kapi_codec::to_pb::json_to_envelope;
use kapi_codec::wire::{Reader, WireValue, offset_in, put_bytes_field};
use kapi_codec::{ErrorKind, FieldValidation, Schema};

/// Base seed of every bit-flip case; printed with each failure.
const SEED: u64 = 0x6b61_7069_2026_f022;
/// Bit-flip cases per fixture and input form.
const FLIPS_PER_FIXTURE: u64 = 320;
/// Every prefix up to this length is tried; beyond it, a stride.
const EVERY_PREFIX_UP_TO: usize = 2048;
/// Cuts per input at least (when it is long enough to have that many).
const MIN_CUTS: usize = 500;
/// Nested cuts per fixture (see `cut_nested`).
const NESTED_CUTS: usize = 150;
/// The watchdog speaks up when one case has run this long.
const STUCK_AFTER: Duration = Duration::from_secs(10);
/// Failures listed in full before the rest are only counted.
const SHOW_FAILURES: usize = 40;

struct Fixture {
    name: String,
    api_version: String,
    kind: String,
    json: Vec<u8>,
    pb: Vec<u8>,
}

/// Every fixture, both of its wire forms read into memory.
fn fixtures() -> Vec<Fixture> {
    common::fixtures()
        .into_iter()
        .map(|f| Fixture {
            json: f.read("json"),
            pb: f.read("pb"),
            name: f.name,
            api_version: f.api_version,
            kind: f.kind,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Deterministic mutations.

/// xorshift64*: tiny, deterministic, good enough to pick offsets and bits.
struct Xorshift(u64);

impl Xorshift {
    fn new(seed: u64) -> Self {
        // A zero state would stay zero.
        Xorshift(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// FNV-1a, to give each fixture its own stream of cases.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The seed of case `i` of a fixture's input form (`"pb"`, `"json"`).
fn case_seed(name: &str, form: &str, i: u64) -> u64 {
    // splitmix64 finalizer over the mixed inputs.
    let mut z = SEED ^ fnv1a(name) ^ fnv1a(form).rotate_left(17) ^ i.wrapping_mul(0x9e37_79b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Applies the flips case `seed` makes to `data`: half the cases flip one bit, a quarter
/// flip 2–8 bits anywhere, a quarter flip 2–8 bits within one 8-byte window (a damaged
/// length or varint). Returns the input and the (offset, bit) pairs, for the report.
fn flip(data: &[u8], seed: u64) -> (Vec<u8>, Vec<(usize, u8)>) {
    let mut out = data.to_vec();
    let mut flips = Vec::new();
    if out.is_empty() {
        return (out, flips);
    }
    let mut rng = Xorshift::new(seed);
    let (count, window) = match rng.below(4) {
        0 | 1 => (1, None),
        2 => (2 + rng.below(7), None),
        _ => (2 + rng.below(7), Some(rng.below(out.len()))),
    };
    for _ in 0..count {
        let at = match window {
            None => rng.below(out.len()),
            Some(w) => (w + rng.below(8)).min(out.len() - 1),
        };
        let bit = rng.below(8) as u8;
        out[at] ^= 1 << bit;
        flips.push((at, bit));
    }
    (out, flips)
}

/// Whether `b` reads as a sequence of protobuf fields (then it is taken for a message).
fn looks_like_message(b: &[u8]) -> bool {
    let mut r = Reader::new(b, 0);
    while !r.at_end() {
        if r.field().is_err() {
            return false;
        }
    }
    !b.is_empty()
}

/// Writes message `buf` cut at byte `cut` the way a writer that stopped there would have
/// left it had it fixed up the lengths: the fields before the cut whole; the field the cut
/// falls in, if length-delimited and cut inside its payload, with the payload shortened
/// (recursively, when it looks like a message) and its length prefix rewritten; nothing
/// after it.
fn cut_nested(buf: &[u8], cut: usize, out: &mut Vec<u8>) {
    let mut r = Reader::new(buf, 0);
    while !r.at_end() {
        let start = r.offset();
        let Ok((number, value, _)) = r.field() else {
            return;
        };
        let end = r.offset();
        if end <= cut {
            out.extend_from_slice(&buf[start..end]);
            continue;
        }
        if let WireValue::Len(payload) = value {
            let payload_start = offset_in(buf, payload);
            if payload_start <= cut {
                let inner_cut = cut - payload_start;
                let mut inner = Vec::new();
                if looks_like_message(payload) {
                    cut_nested(payload, inner_cut, &mut inner);
                } else {
                    inner.extend_from_slice(&payload[..inner_cut]);
                }
                put_bytes_field(out, number, &inner);
            }
        }
        return;
    }
}

/// `k` offsets spread evenly over `0..len` (all of them when there are no more than `k`).
fn spread(len: usize, k: usize) -> impl Iterator<Item = usize> {
    let k = k.min(len);
    (0..k).map(move |i| i * len / k)
}

/// Prefix lengths to try on an input of `len` bytes: all of them up to
/// [`EVERY_PREFIX_UP_TO`], then a stride that still gives at least [`MIN_CUTS`] in all.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    let dense = len.min(EVERY_PREFIX_UP_TO);
    let rest = len - dense;
    let stride = if dense >= MIN_CUTS {
        // Long enough already: a few hundred more cuts spread over the tail.
        rest.div_ceil(MIN_CUTS).max(1)
    } else {
        1
    };
    (0..dense).chain((dense..len).step_by(stride))
}

// ---------------------------------------------------------------------------------------------
// Panic capture.

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics of guarded calls instead of printing
/// them, and leaves all other panics (the tests' own assertions) to the default hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let msg = info.to_string().replace('\n', " ");
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into Err(the panic's location and message).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    CAPTURING.with(|c| c.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    r.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "panicked (no message)".into())
    })
}

// ---------------------------------------------------------------------------------------------
// Hang guard and failure collection.

/// What a test is doing now, for the watchdog.
struct Progress {
    current: Mutex<String>,
    cases: AtomicU64,
    done: AtomicBool,
}

/// A watchdog thread that reports (past the harness's output capture) when no case has
/// finished for [`STUCK_AFTER`]; it stops when this is dropped.
struct Watchdog(Arc<Progress>);

impl Watchdog {
    fn start(test: &'static str) -> Watchdog {
        let p = Arc::new(Progress {
            current: Mutex::new(String::new()),
            cases: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let w = Arc::clone(&p);
        std::thread::spawn(move || {
            let mut last = (u64::MAX, Instant::now());
            while !w.done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let n = w.cases.load(Ordering::Relaxed);
                if n != last.0 {
                    last = (n, Instant::now());
                } else if last.1.elapsed() >= STUCK_AFTER {
                    let what = w.current.lock().map(|s| s.clone()).unwrap_or_default();
                    let _ = writeln!(
                        std::io::stderr(),
                        "{test}: no progress for {:?}; stuck in {what}",
                        last.1.elapsed()
                    );
                    last.1 = Instant::now();
                }
            }
        });
        Watchdog(p)
    }

    /// Names the case about to run (what the watchdog prints if it does not finish).
    fn case(&self, what: std::fmt::Arguments<'_>) {
        self.0.cases.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.0.current.lock() {
            c.clear();
            let _ = c.write_fmt(what);
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Relaxed);
    }
}

/// A test's results: its failures (what went wrong, grouped so that one bug is one line; the
/// case, in full), and per kind of case how many inputs the codec accepted and refused.
#[derive(Default)]
struct Run {
    failures: Vec<(String, String)>,
    outcomes: Vec<(&'static str, u64, u64)>,
}

impl Run {
    /// Records the result of one call (from the checks below); `case` names the input.
    fn record(
        &mut self,
        kind: &'static str,
        r: Result<bool, String>,
        case: impl FnOnce() -> String,
    ) {
        let i = match self.outcomes.iter().position(|o| o.0 == kind) {
            Some(i) => i,
            None => {
                self.outcomes.push((kind, 0, 0));
                self.outcomes.len() - 1
            }
        };
        match r {
            Ok(true) => self.outcomes[i].1 += 1,
            Ok(false) => self.outcomes[i].2 += 1,
            Err(what) => self.push(case(), what),
        }
    }

    fn push(&mut self, case: String, what: String) {
        // A panic's group is its location; other failures are grouped by what they say
        // before the first detail.
        let group = match what.split_once("panicked at ") {
            Some((head, loc)) => format!(
                "{head}panicked at {}",
                loc.split(' ').next().unwrap_or(loc).trim_end_matches(':')
            ),
            None => what.split(" (").next().unwrap_or(&what).to_string(),
        };
        self.failures.push((group, format!("{case} :: {what}")));
    }

    /// Logs the outcomes, and fails the test with the failures, if any.
    fn check(self, test: &str) {
        for (kind, ok, err) in &self.outcomes {
            println!("{test}: {kind}: {ok} accepted, {err} refused");
        }
        if self.failures.is_empty() {
            return;
        }
        let mut groups: Vec<(&str, usize, &str)> = Vec::new();
        for (g, f) in &self.failures {
            match groups.iter_mut().find(|(k, _, _)| k == g) {
                Some(e) => e.1 += 1,
                None => groups.push((g, 1, f)),
            }
        }
        let mut msg = format!(
            "{test}: {} failures (SEED = {SEED:#x}), {} distinct:\n",
            self.failures.len(),
            groups.len()
        );
        for (g, n, first) in &groups {
            let _ = writeln!(msg, "  {n:6} x {g}\n         first: {first}");
        }
        let _ = writeln!(
            msg,
            "first {} in full:",
            SHOW_FAILURES.min(self.failures.len())
        );
        for (_, f) in self.failures.iter().take(SHOW_FAILURES) {
            let _ = writeln!(msg, "  {f}");
        }
        panic!("{msg}");
    }
}

/// A short, printable excerpt of `out` around byte `at`.
fn excerpt(out: &[u8], at: usize) -> String {
    let from = at.saturating_sub(40).min(out.len());
    let to = (at + 40).min(out.len());
    format!("{:?}", String::from_utf8_lossy(&out[from..to]))
}

/// Checks that decoder output claimed to be JSON is JSON (RFC 8259: UTF-8 included); the
/// error names where it breaks. serde_json stops at 128 levels of nesting; deeper output is
/// checked for UTF-8 and then with the codec's own (iterative) parser.
fn check_json(out: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<serde_json::Value>(out) {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            if let Err(u) = std::str::from_utf8(out) {
                return Err(format!(
                    "Ok but invalid JSON (not UTF-8) near {}",
                    excerpt(out, u.valid_up_to())
                ));
            }
            Doc::parse(out)
                .map(|_| ())
                .map_err(|e| format!("Ok but invalid JSON ({e})"))
        }
        Err(e) => {
            // serde_json reports line/column; the output is compact, so column is the offset.
            let at = e.column().saturating_sub(1);
            Err(format!(
                "Ok but invalid JSON ({e}) near {}",
                excerpt(out, at)
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The decoders under test.

// Each returns whether the codec accepted the input, or what went wrong: a panic, or
// output that is not what it claims to be.

/// envelope_to_json on `input`.
fn pb_envelope(input: &[u8]) -> Result<bool, String> {
    let mut out = Vec::new();
    match guarded(|| envelope_to_json(input, &mut out)) {
        Err(panic) => Err(format!("envelope_to_json panicked: {panic}")),
        Ok(Ok(())) => check_json(&out)
            .map(|()| true)
            .map_err(|e| format!("envelope_to_json: {e}")),
        Ok(Err(_)) => Ok(false),
    }
}

/// PbToJson::message of the raw message `raw` (no envelope) as message `id`.
fn pb_message(id: MsgId, raw: &[u8], type_meta: (&str, &str)) -> Result<bool, String> {
    let mut out = Vec::new();
    let r = guarded(|| PbToJson::new(Schema::get()).message(id, raw, 0, Some(type_meta), &mut out));
    match r {
        Err(panic) => Err(format!("PbToJson::message panicked: {panic}")),
        Ok(Ok(())) => check_json(&out)
            .map(|()| true)
            .map_err(|e| format!("PbToJson::message: {e}")),
        Ok(Err(_)) => Ok(false),
    }
}

/// Envelope::parse and read_pb_event on `input` (and on `input` as a watch frame body).
fn pb_framing(input: &[u8]) -> Result<bool, String> {
    guarded(|| {
        let parsed = Envelope::parse(input).is_ok();
        let _ = read_pb_event(input);
        let mut frame = (input.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(input);
        let _ = read_pb_event(&frame);
        parsed
    })
    .map_err(|panic| format!("Envelope::parse/read_pb_event panicked: {panic}"))
}

/// json_to_envelope on `input`; when it succeeds, its protobuf must decode back without a
/// panic, to JSON, and (the codec wrote it) successfully.
fn json_encode(
    input: &[u8],
    expect: Option<(&str, &str)>,
    validation: FieldValidation,
) -> Result<bool, String> {
    let mut pb = Vec::new();
    match guarded(|| json_to_envelope(input, expect, validation, &mut pb)) {
        Err(panic) => Err(format!("json_to_envelope panicked: {panic}")),
        Ok(Err(_)) => Ok(false),
        Ok(Ok(_)) => {
            let mut out = Vec::new();
            match guarded(|| envelope_to_json(&pb, &mut out)) {
                Err(panic) => Err(format!(
                    "envelope_to_json of json_to_envelope's output panicked: {panic}"
                )),
                Ok(Ok(())) => check_json(&out)
                    .map(|()| true)
                    .map_err(|e| format!("envelope_to_json of json_to_envelope's output: {e}")),
                Ok(Err(e)) => Err(format!(
                    "json_to_envelope wrote protobuf that does not decode: {e}"
                )),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

fn log_times(test: &str, times: &mut [(String, Duration, u64)], total: Duration) {
    for (name, t, n) in times.iter() {
        println!("{test}: {name}: {n} cases in {t:?}");
    }
    times.sort_by_key(|t| std::cmp::Reverse(t.1));
    let slowest: Vec<String> = times
        .iter()
        .take(5)
        .map(|(name, t, _)| format!("{name} {t:?}"))
        .collect();
    println!(
        "{test}: {} fixtures in {total:?}; slowest: {}",
        times.len(),
        slowest.join(", ")
    );
}

#[test]
fn damaged_protobuf_never_panics() {
    install_hook();
    let progress = Watchdog::start("damaged_protobuf_never_panics");
    let schema = Schema::get();
    let mut run = Run::default();
    let mut times = Vec::new();
    let started = Instant::now();
    for f in fixtures() {
        let t = Instant::now();
        let mut n = 0u64;
        let id = schema
            .kind(&f.api_version, &f.kind)
            .unwrap_or_else(|| panic!("{}: no kind {}/{}", f.name, f.api_version, f.kind));
        let env = Envelope::parse(&f.pb).unwrap();
        let tm = (env.api_version, env.kind);

        // (a) Truncations, at every length: of the whole envelope (Envelope::parse sees the
        // body is short) and of the message inside it (the decoder sees its last top-level
        // field is short). Then "nested" cuts, where every message around the cut is
        // shortened with its length prefix, so the decoder reads the whole object and finds a
        // string, a nested message or a list cut off in the middle: each decodes most of the
        // object, so these are spread over the message rather than at every byte.
        for cut in 0..f.pb.len() {
            progress.case(format_args!("{} pb[..{cut}]", f.name));
            n += 1;
            let case = || format!("{} pb[..{cut}]", f.name);
            run.record("envelope cut", pb_envelope(&f.pb[..cut]), case);
            run.record("framing cut", pb_framing(&f.pb[..cut]), case);
        }
        for cut in 0..env.raw.len() {
            progress.case(format_args!("{} raw[..{cut}]", f.name));
            n += 1;
            run.record("message cut", pb_message(id, &env.raw[..cut], tm), || {
                format!("{} raw message[..{cut}]", f.name)
            });
        }
        for cut in spread(env.raw.len(), NESTED_CUTS) {
            progress.case(format_args!("{} nested cut at {cut}", f.name));
            n += 1;
            let mut input = Vec::new();
            cut_nested(env.raw, cut, &mut input);
            run.record("nested cut", pb_message(id, &input, tm), || {
                format!(
                    "{} nested cut at {cut} of the message (cut_nested(raw, {cut}))",
                    f.name
                )
            });
        }

        // (b) Bit flips of the enveloped protobuf.
        for i in 0..FLIPS_PER_FIXTURE {
            let seed = case_seed(&f.name, "pb", i);
            progress.case(format_args!("{} pb flip case {i} seed {seed:#x}", f.name));
            n += 1;
            let (input, flips) = flip(&f.pb, seed);
            let case = || {
                format!(
                    "{} pb flip case {i} (seed {seed:#x}, flips (offset, bit) {flips:?})",
                    f.name
                )
            };
            run.record("envelope bit flip", pb_envelope(&input), case);
            run.record("framing bit flip", pb_framing(&input), case);
        }
        times.push((f.name.clone(), t.elapsed(), n));
    }
    log_times("protobuf", &mut times, started.elapsed());
    run.check("damaged_protobuf_never_panics");
}

#[test]
fn damaged_json_never_panics() {
    install_hook();
    let progress = Watchdog::start("damaged_json_never_panics");
    let mut run = Run::default();
    let mut times = Vec::new();
    let started = Instant::now();
    for f in fixtures() {
        let t = Instant::now();
        let mut n = 0u64;
        let expect = (f.api_version.as_str(), f.kind.as_str());

        // (c) Truncations.
        for cut in cuts(f.json.len()) {
            progress.case(format_args!("{} json[..{cut}]", f.name));
            n += 1;
            let r = json_encode(&f.json[..cut], None, FieldValidation::Warn);
            run.record("json cut", r, || format!("{} json[..{cut}]", f.name));
        }

        // (b) Bit flips, under each validation mode, with and without an expected kind.
        for i in 0..FLIPS_PER_FIXTURE {
            let seed = case_seed(&f.name, "json", i);
            progress.case(format_args!("{} json flip case {i} seed {seed:#x}", f.name));
            n += 1;
            let (input, flips) = flip(&f.json, seed);
            let validation = [
                FieldValidation::Strict,
                FieldValidation::Warn,
                FieldValidation::Ignore,
            ][(seed % 3) as usize];
            let expect = if seed & 8 == 0 { Some(expect) } else { None };
            run.record("json bit flip", json_encode(&input, expect, validation), || {
                format!(
                    "{} json flip case {i} (seed {seed:#x}, flips (offset, bit) {flips:?}, expect {expect:?}, {validation:?})",
                    f.name
                )
            });
        }
        times.push((f.name.clone(), t.elapsed(), n));
    }
    log_times("json", &mut times, started.elapsed());
    run.check("damaged_json_never_panics");
}

// ---------------------------------------------------------------------------------------------
// Nesting: the decoders recurse per message level, bounded by MAX_DEPTH; at and past the limit
// they must neither overflow a thread's stack (which aborts the process) nor panic. Run on a
// thread with 2 MiB of stack, the default for spawned threads (and tokio's workers).

const SMALL_STACK: usize = 2 << 20;

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

const PROPS: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";

/// A JSONSchemaProps message nested `depth` times through `not` (field 28).
fn nested_props_pb(depth: usize) -> Vec<u8> {
    let schema = Schema::get();
    let props = schema.msg(schema.message_by_name(PROPS).unwrap());
    let not = props.fields[props.field_index_by_json("not").unwrap()].number;
    let mut body: Vec<u8> = Vec::new();
    for _ in 0..depth {
        let mut outer = Vec::with_capacity(body.len() + 8);
        kapi_codec::wire::put_bytes_field(&mut outer, not, &body);
        body = outer;
    }
    body
}

/// A CustomResourceDefinition whose schema nests `depth` levels through `not`.
fn nested_crd_json(depth: usize) -> Vec<u8> {
    let mut s = String::from(
        r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"a.b"},"spec":{"group":"b","names":{"plural":"a","kind":"A"},"scope":"Namespaced","versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":"#,
    );
    for _ in 0..depth {
        s.push_str(r#"{"type":"object","not":"#);
    }
    s.push_str("{}");
    for _ in 0..depth {
        s.push('}');
    }
    s.push_str("}}]}}");
    s.into_bytes()
}

#[test]
fn deep_protobuf_is_refused_without_overflowing_the_stack() {
    on_small_stack(|| {
        let schema = Schema::get();
        let id = schema.message_by_name(PROPS).unwrap();
        // Within the limit: decodes, to JSON.
        let ok = nested_props_pb(MAX_DEPTH - 8);
        let mut out = Vec::new();
        PbToJson::new(schema)
            .message(id, &ok, 0, None, &mut out)
            .unwrap();
        check_json(&out).unwrap();
        // Past it: an error, at any depth.
        for depth in [MAX_DEPTH + 2, 10 * MAX_DEPTH, 20_000] {
            let deep = nested_props_pb(depth);
            let mut out = Vec::new();
            let err = PbToJson::new(schema)
                .message(id, &deep, 0, None, &mut out)
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::TooDeep, "depth {depth}: {err}");
        }
    });
}

#[test]
fn deep_json_is_refused_without_overflowing_the_stack() {
    on_small_stack(|| {
        // Within the limit: encodes, and the protobuf decodes back.
        let mut pb = Vec::new();
        json_to_envelope(
            &nested_crd_json(MAX_DEPTH - 16),
            None,
            FieldValidation::Strict,
            &mut pb,
        )
        .unwrap();
        let mut out = Vec::new();
        envelope_to_json(&pb, &mut out).unwrap();
        check_json(&out).unwrap();
        // Past it: an error.
        for depth in [MAX_DEPTH + 2, 4_000] {
            let mut pb = Vec::new();
            let err = json_to_envelope(
                &nested_crd_json(depth),
                None,
                FieldValidation::Strict,
                &mut pb,
            )
            .unwrap_err();
            assert_eq!(err.kind, ErrorKind::TooDeep, "depth {depth}: {err}");
        }
        // Deep raw JSON (a RawExtension, copied as is): the parser and the compaction are
        // iterative, so it round-trips up to the parser's limit, and is refused past it.
        let watch_event = |depth: usize| {
            let mut s = String::from(r#"{"type":"ADDED","object":"#);
            s.push_str(&"[".repeat(depth));
            s.push_str(&"]".repeat(depth));
            s.push('}');
            s.into_bytes()
        };
        let mut pb = Vec::new();
        let expect = Some(("v1", "WatchEvent"));
        json_to_envelope(
            &watch_event(9_000),
            expect,
            FieldValidation::Strict,
            &mut pb,
        )
        .unwrap();
        let mut out = Vec::new();
        envelope_to_json(&pb, &mut out).unwrap();
        assert!(out.windows(9_000).any(|w| w.iter().all(|&b| b == b'[')));
        let err = json_to_envelope(&watch_event(20_000), expect, FieldValidation::Warn, &mut pb)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooDeep, "{err}");
    });
}
