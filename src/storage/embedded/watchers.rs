//! The embedded store's watchers, kept by state as in etcd's watchable store: `synced` ones are
//! caught up and get each group commit's events as it lands; `unsynced` ones started in the past
//! and are fed from the event history, a chunk at a time as their buffer has room, until caught up.

use bytes::Bytes;

use super::mvcc::Mvcc;
use crate::storage::watch::{self, Refused, WatchSink, WatchStream};
use crate::storage::{Event, Revision, StoreError, WatchItem};

#[derive(Debug)]
struct Watcher {
    prefix: Bytes,
    /// The oldest revision it has not been sent (nor skipped, for other prefixes).
    next: Revision,
    sink: WatchSink,
}

impl Watcher {
    fn wants(&self, event: &Event) -> bool {
        event.revision() >= self.next && event.key().starts_with(&self.prefix)
    }
}

#[derive(Debug, Default)]
pub struct Watchers {
    synced: Vec<Watcher>,
    unsynced: Vec<Watcher>,
}

/// What becomes of a watcher after a pass over it.
enum Fate {
    Stays,
    /// Caught up: from unsynced to synced.
    Synced,
    /// Ended with this error (or silently, if the client already dropped its stream).
    Ends(StoreError),
    Cancelled,
}

impl From<Refused> for Fate {
    fn from(refused: Refused) -> Fate {
        match refused {
            Refused::Full => Fate::Ends(StoreError::Unavailable("watcher fell behind".into())),
            Refused::Cancelled => Fate::Cancelled,
        }
    }
}

/// Applies `pass` to each watcher of `list`, taking out those that leave it; returns those that
/// caught up.
fn sweep(list: &mut Vec<Watcher>, mut pass: impl FnMut(&mut Watcher) -> Fate) -> Vec<Watcher> {
    let mut synced = Vec::new();
    let mut i = 0;
    while i < list.len() {
        match pass(&mut list[i]) {
            Fate::Stays => i += 1,
            Fate::Synced => synced.push(list.swap_remove(i)),
            Fate::Ends(error) => list.swap_remove(i).sink.end(error),
            Fate::Cancelled => drop(list.swap_remove(i)),
        }
    }
    synced
}

impl Watchers {
    /// Starts a watch of `prefix` after revision `after` (0 = from the next write on).
    pub fn add(
        &mut self,
        prefix: Bytes,
        after: Revision,
        mvcc: &Mvcc,
        buffer_items: usize,
        chunk_events: usize,
    ) -> Result<WatchStream, StoreError> {
        if after < 0 {
            return Err(StoreError::Internal(format!("negative revision {after}")));
        }
        if after != 0 && !mvcc.has_events_after(after) {
            return Err(StoreError::Compacted {
                compact_revision: mvcc.compacted(),
            });
        }
        let (sink, stream) = watch::channel(buffer_items);
        let next = if after == 0 {
            mvcc.revision() + 1
        } else {
            after + 1
        };
        let watcher = Watcher { prefix, next, sink };
        if next > mvcc.revision() {
            // Caught up already, or waiting for a future revision (events before it are skipped).
            self.synced.push(watcher);
        } else {
            self.unsynced.push(watcher);
            self.catch_up(mvcc, chunk_events);
        }
        Ok(stream)
    }

    /// Hands a group commit's events (every revision newer than what synced watchers were sent)
    /// to each synced watcher. One without room is ended: the writer never waits for a reader.
    pub fn publish(&mut self, events: &[Event]) {
        let Some(last) = events.last().map(Event::revision) else {
            return;
        };
        sweep(&mut self.synced, |w| {
            let mine: Vec<Event> = events.iter().filter(|e| w.wants(e)).cloned().collect();
            w.next = w.next.max(last + 1);
            if mine.is_empty() {
                return Fate::Stays;
            }
            match w.sink.send(WatchItem::Events(mine)) {
                Ok(()) => Fate::Stays,
                Err(refused) => refused.into(),
            }
        });
    }

    /// Feeds unsynced watchers from history while their buffers have room; moves the caught-up
    /// ones to `synced`. One whose history was compacted away is ended with `Compacted`.
    pub fn catch_up(&mut self, mvcc: &Mvcc, chunk_events: usize) {
        let caught_up = sweep(&mut self.unsynced, |w| {
            loop {
                if w.sink.is_cancelled() {
                    return Fate::Cancelled;
                }
                if !mvcc.has_events_after(w.next - 1) {
                    return Fate::Ends(StoreError::Compacted {
                        compact_revision: mvcc.compacted(),
                    });
                }
                if w.next > mvcc.revision() {
                    return Fate::Synced;
                }
                if !w.sink.has_room() {
                    return Fate::Stays;
                }
                // Scan a bounded stretch of history, so a prefix with few events costs no more
                // per pass than one with many.
                let mut chunk = Vec::new();
                for (scanned, event) in mvcc.events_from(w.next).enumerate() {
                    w.next = event.revision() + 1;
                    if event.key().starts_with(&w.prefix) {
                        chunk.push(event.clone());
                    }
                    if chunk.len() >= chunk_events || scanned + 1 >= chunk_events * 16 {
                        break;
                    }
                }
                if !chunk.is_empty()
                    && let Err(refused) = w.sink.send(WatchItem::Events(chunk))
                {
                    return refused.into();
                }
            }
        });
        self.synced.extend(caught_up);
    }

    /// Tells each synced watcher that has read everything that it has seen up to `revision`.
    /// Busy watchers learn the revision from their events; unsynced ones are not there yet.
    pub fn progress(&mut self, revision: Revision) {
        sweep(&mut self.synced, |w| {
            if w.sink.is_cancelled() {
                return Fate::Cancelled;
            }
            if w.sink.is_drained() {
                // A drained buffer has room: only a cancel refuses this, and is seen next pass.
                let _ = w.sink.send(WatchItem::Progress(revision));
            }
            Fate::Stays
        });
    }

    /// Ends every watch with `error` (the store failed).
    pub fn end_all(&mut self, error: &StoreError) {
        for w in self.synced.drain(..).chain(self.unsynced.drain(..)) {
            w.sink.end(error.clone());
        }
    }
}
