//! A watch's two ends: `WatchStream`, the bounded receiver a client reads, and `WatchSink`, the end
//! a backend holds. The sink never waits: a watcher whose buffer is full is ended with an error
//! (its caller re-lists), so one slow reader cannot hold up writes or other watchers.

use tokio::sync::mpsc;

use super::{Event, Revision, StoreError};

/// Items a watcher may leave unread before it is ended. kapi has one store watcher (the ingest),
/// which drains continuously: this absorbs its pauses (a large cache update, a busy core) of a
/// thousand group commits, each item being one commit's events.
pub const WATCH_BUFFER_ITEMS: usize = 1024;

#[derive(Debug)]
pub enum WatchItem {
    /// Events in revision order, each newer than every event delivered before.
    Events(Vec<Event>),
    /// Every event up to this revision has been delivered.
    Progress(Revision),
    /// The watch is over (fell behind, compacted, store failed); nothing follows.
    Error(StoreError),
}

/// The client's end of a watch. Dropping it cancels the watch.
#[derive(Debug)]
pub struct WatchStream {
    items: mpsc::Receiver<WatchItem>,
    /// Opens the events' values (`--encryption-provider-config`).
    encryption: Option<std::sync::Arc<super::encryption::Encryption>>,
}

impl WatchStream {
    /// The next item, or `None` once the watch has ended (after its `Error`, or when the store
    /// stopped).
    pub async fn next(&mut self) -> Option<WatchItem> {
        let mut item = self.items.recv().await?;
        if let (Some(e), WatchItem::Events(events)) = (&self.encryption, &mut item) {
            for event in events {
                match event {
                    Event::Put { kv, prev } => {
                        super::open_or_keep(e, kv).await;
                        if let Some(prev) = prev {
                            super::open_or_keep(e, prev).await;
                        }
                    }
                    Event::Delete { prev, .. } => {
                        if let Some(prev) = prev {
                            super::open_or_keep(e, prev).await;
                        }
                    }
                }
            }
        }
        Some(item)
    }

    /// The same stream with its values opened by `encryption`.
    pub(super) fn opened_by(
        mut self,
        encryption: std::sync::Arc<super::encryption::Encryption>,
    ) -> WatchStream {
        self.encryption = Some(encryption);
        self
    }

    /// The next item if one is there, without waiting: tests step the store by hand.
    #[cfg(test)]
    pub fn try_next(&mut self) -> Result<WatchItem, mpsc::error::TryRecvError> {
        self.items.try_recv()
    }
}

/// The backend's end of a watch. The last slot of the buffer is kept for the error that ends it,
/// so that ending is always delivered; the backend is the only sender, so checking for room and
/// then sending cannot race.
#[derive(Debug)]
pub struct WatchSink {
    items: mpsc::Sender<WatchItem>,
}

/// Why a send did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The buffer has no room but the last, reserved slot.
    Full,
    /// The client dropped its stream.
    Cancelled,
}

/// A watch's two ends with room for `capacity` items (at least 2: one for data, one for the end).
pub fn channel(capacity: usize) -> (WatchSink, WatchStream) {
    let (items, receiver) = mpsc::channel(capacity.max(2));
    (
        WatchSink { items },
        WatchStream {
            items: receiver,
            encryption: None,
        },
    )
}

impl WatchSink {
    pub fn send(&self, item: WatchItem) -> Result<(), Refused> {
        if self.items.is_closed() {
            return Err(Refused::Cancelled);
        }
        if self.items.capacity() <= 1 {
            return Err(Refused::Full);
        }
        self.items.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Full,
            mpsc::error::TrySendError::Closed(_) => Refused::Cancelled,
        })
    }

    /// Whether the reader has taken everything sent so far (the moment for a progress note).
    pub fn is_drained(&self) -> bool {
        self.items.capacity() == self.items.max_capacity()
    }

    /// Whether there is room for an item besides the reserved slot.
    pub fn has_room(&self) -> bool {
        !self.items.is_closed() && self.items.capacity() > 1
    }

    pub fn is_cancelled(&self) -> bool {
        self.items.is_closed()
    }

    /// Ends the watch with `error`, delivered after everything already sent.
    pub fn end(self, error: StoreError) {
        // Fails only if the reader is gone, when nobody needs the error.
        let _ = self.items.try_send(WatchItem::Error(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_buffer_refuses_data_but_still_delivers_the_end() {
        let (sink, mut stream) = channel(3);
        assert_eq!(sink.send(WatchItem::Progress(1)), Ok(()));
        assert_eq!(sink.send(WatchItem::Progress(2)), Ok(()));
        assert_eq!(sink.send(WatchItem::Progress(3)), Err(Refused::Full));
        sink.end(StoreError::Unavailable("watcher fell behind".into()));
        assert!(matches!(stream.next().await, Some(WatchItem::Progress(1))));
        assert!(matches!(stream.next().await, Some(WatchItem::Progress(2))));
        assert!(matches!(
            stream.next().await,
            Some(WatchItem::Error(StoreError::Unavailable(_)))
        ));
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn a_dropped_stream_cancels_the_sink() {
        let (sink, stream) = channel(4);
        drop(stream);
        assert!(sink.is_cancelled());
        assert_eq!(sink.send(WatchItem::Progress(1)), Err(Refused::Cancelled));
    }
}
