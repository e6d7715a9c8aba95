//! Where kapi's outbound HTTP clients (admission webhooks, kubelets) run: a named thread with
//! a single-threaded tokio runtime, fed by a bounded queue of jobs, so that no call ever blocks
//! a serving core. Each job carries a oneshot sender for its answer.

use std::future::Future;

/// Starts the thread running `serve` over the queue's receiving end; gives the sending end.
/// A thread or runtime that cannot start leaves the queue unanswered (each job's answer
/// channel is dropped, which its caller sees as an error).
pub fn spawn<J, F, Fut>(name: &str, depth: usize, serve: F) -> tokio::sync::mpsc::Sender<J>
where
    J: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Receiver<J>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<J>(depth);
    let _ = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(serve(rx));
            }
        });
    tx
}
