//! Large CPU-bound request work — decoding, patching, validating and encoding objects of
//! `OFFLOAD_MIN_BYTES` or more — runs on a small bounded pool of worker threads, so that a
//! core keeps serving its other connections (health checks, small requests) meanwhile. The
//! write handlers call `run`; the result comes back to the core over a oneshot channel
//! (monoio's `sync` feature wakes the waiting task from the worker thread).
//!
//! Why a pool and not slices that yield: serde_json's parser and serializer and the protobuf
//! transcoder run to completion; slicing them would mean rewriting them as resumable state
//! machines. A pool costs one thread hand-off (tens of µs) per large request, nothing for small
//! ones, which stay inline below the threshold. Streamed reads (JSON and protobuf lists of 256
//! items or more, watches) need neither: they copy pre-encoded bytes in 1 MiB chunks through
//! bounded channels whose waits are yield points. Lists written whole (YAML, Table,
//! metadata-only) still encode on the core.
//!
//! A full queue answers 429 with `Retry-After` at once rather than waiting: each queued job
//! holds its request's body and object (megabytes), and a client told to come back is cheaper
//! than an unbounded line of them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use futures::channel::oneshot;

use serde_json::Value;

use super::status::Status;

/// Work below this many input bytes stays on the core: the hand-off would cost more than the
/// work (a 64 KiB object decodes and encodes in well under a millisecond).
pub const OFFLOAD_MIN_BYTES: usize = 64 * 1024;

/// Worker threads: the cores run the monoio runtimes; two workers let two large requests
/// progress in parallel without taking every CPU from the cores' own requests.
pub const WORKERS: usize = 2;

/// Jobs waiting for a worker: each holds up to a 3 MiB body and its decoded object (about
/// 10 MiB in all), so the queue bounds that memory at about 160 MiB.
pub const QUEUE_DEPTH: usize = 16;

/// The workers' nice value: the cores' threads (nice 0) win the CPU whenever both are
/// runnable (CFS gives nice 10 about a tenth of nice 0's share), so large work fills idle
/// time instead of delaying the cores' event loops on a machine with few CPUs.
const WORKER_NICE: libc::c_int = 10;

/// Seconds a client refused for a full queue is told to wait.
const RETRY_AFTER_SECONDS: i32 = 1;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    queue: SyncSender<Job>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (queue, jobs) = sync_channel::<Job>(QUEUE_DEPTH);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..WORKERS {
            let jobs = Arc::clone(&jobs);
            // A worker that cannot be started leaves the queue to the others; with none the
            // jobs' senders are dropped and `run` reports an internal error, per request.
            let _ = std::thread::Builder::new()
                .name(format!("kapi-work-{i}"))
                .spawn(move || work(&jobs));
        }
        Pool { queue }
    })
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    // SAFETY: gettid and setpriority have no memory effects; on Linux PRIO_PROCESS with a
    // thread id changes that thread only. Failing leaves the worker at the default priority.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WORKER_NICE);
    }
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        // A panicking job drops its result sender (the request gets a 500); the worker lives on.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

/// About how many bytes `v` takes as compact JSON, counted up to `limit` (then `limit`): the
/// size `run` is given for a decoded object. Strings count their bytes, numbers their digits,
/// escapes nothing: an estimate for a threshold, a tenth of serializing the object (which a
/// create would pay on every request).
pub fn json_size(v: &Value, limit: usize) -> usize {
    fn walk(v: &Value, left: &mut usize) {
        let n = match v {
            Value::Null => 4,
            Value::Bool(_) => 5,
            Value::Number(_) => 8,
            Value::String(s) => s.len() + 2,
            Value::Array(a) => {
                *left = left.saturating_sub(a.len() + 2);
                for x in a {
                    if *left == 0 {
                        return;
                    }
                    walk(x, left);
                }
                0
            }
            Value::Object(o) => {
                *left = left.saturating_sub(o.len() + 2);
                for (k, x) in o {
                    if *left == 0 {
                        return;
                    }
                    *left = left.saturating_sub(k.len() + 3);
                    walk(x, left);
                }
                0
            }
        };
        *left = left.saturating_sub(n);
    }
    let mut left = limit;
    walk(v, &mut left);
    limit - left
}

/// Runs `job` inline when `size` (the bytes it works on) is below `OFFLOAD_MIN_BYTES`,
/// otherwise on the worker pool; 429 when the pool's queue is full.
pub async fn run<T, F>(size: usize, job: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if size < OFFLOAD_MIN_BYTES {
        return Ok(job());
    }
    let (tx, rx) = oneshot::channel();
    let boxed: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    match pool().queue.try_send(boxed) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(busy()),
        Err(TrySendError::Disconnected(_)) => {
            return Err(Status::internal("the worker pool is not running"));
        }
    }
    rx.await
        .map_err(|_| Status::internal("the request's work failed on a worker thread"))
}

/// Upstream's 429 (`NewTooManyRequestsError`), with a Retry-After.
fn busy() -> Status {
    let mut s = Status::new(
        429,
        "TooManyRequests",
        "Too many requests: the server is busy with large requests, please try again later",
    );
    s.retry_after_seconds = Some(RETRY_AFTER_SECONDS);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_size_is_close_to_the_serialized_length_and_stops_at_the_limit() {
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}]}], "hostNetwork": false}});
        let exact = serde_json::to_vec(&pod).unwrap().len();
        let est = json_size(&pod, usize::MAX / 2);
        assert!(
            est * 10 >= exact * 9 && est * 10 <= exact * 11,
            "{est} vs {exact}"
        );
        assert_eq!(json_size(&pod, 40), 40);
        let big = serde_json::json!({"data": "x".repeat(100_000)});
        assert_eq!(json_size(&big, OFFLOAD_MIN_BYTES), OFFLOAD_MIN_BYTES);
    }

    #[test]
    fn small_work_runs_inline_and_large_work_on_a_worker() {
        let here = std::thread::current().id();
        let small = futures::executor::block_on(run(10, move || std::thread::current().id()));
        assert_eq!(small.unwrap(), here);
        let large = futures::executor::block_on(run(OFFLOAD_MIN_BYTES, || {
            std::thread::current().name().map(str::to_string)
        }));
        assert!(large.unwrap().unwrap().starts_with("kapi-work-"));
    }

    #[test]
    fn a_panicking_job_is_an_internal_error_and_the_pool_lives_on() {
        let r: Result<(), Status> =
            futures::executor::block_on(run(OFFLOAD_MIN_BYTES, || panic!("boom")));
        assert_eq!(r.unwrap_err().code, 500);
        let ok = futures::executor::block_on(run(OFFLOAD_MIN_BYTES, || 7));
        assert_eq!(ok.unwrap(), 7);
    }
}
