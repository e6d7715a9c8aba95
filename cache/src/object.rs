//! One object version as the cache keeps it: the stored bytes, the attributes that indexes and
//! selectors need (read once, at ingest), and its other encodings, made lazily, once, and
//! shared by every reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwapOption;

use bytes::Bytes;

/// What selectors and indexes read of an object, extracted once when it is ingested.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attrs {
    /// metadata.labels, sorted by key.
    pub labels: Box<[(Box<str>, Box<str>)]>,
    /// The value of the resource's indexed field (a pod's `spec.nodeName`), if it has one.
    pub index: Option<Box<str>>,
    /// Where the resourceVersion goes in the stored bytes (protobuf kinds).
    pub splice: Option<kapi_codec::meta::RvSplice>,
}

impl Attrs {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }
}

/// Reads an object's attributes from its stored bytes (given by the server, which knows the
/// encodings).
pub type Extractor = Arc<dyn Fn(&[u8]) -> Attrs + Send + Sync>;

/// The extractor of a built-in kind stored as protobuf (`k8s\0` envelope of `api_version`
/// `kind`): labels from ObjectMeta and, with `index`, the value of that selectable field
/// (`spec.nodeName`).
pub fn pb_extractor(api_version: &str, kind: &str, index: Option<&str>) -> Option<Extractor> {
    use kapi_codec::Schema;
    use kapi_codec::envelope::Envelope;
    use kapi_codec::meta::{meta_from_pb, selectable_fields};
    let schema = Schema::get();
    let msg = schema.kind(api_version, kind)?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let index = match index {
        Some(label) => Some(
            selectable_fields(group, kind)
                .into_iter()
                .find(|p| p.label == label)?,
        ),
        None => None,
    };
    Some(Arc::new(move |value: &[u8]| {
        let Ok(env) = Envelope::parse(value) else {
            return Attrs::default();
        };
        let mut labels: Vec<(Box<str>, Box<str>)> = meta_from_pb(msg, env.raw, 0)
            .map(|m| {
                m.labels
                    .into_iter()
                    .map(|(k, v)| (Box::from(&*k), Box::from(&*v)))
                    .collect()
            })
            .unwrap_or_default();
        labels.sort();
        let index = index
            .as_ref()
            .and_then(|p| p.value(env.raw).ok())
            .filter(|v| !v.is_empty())
            .map(|v| Box::from(&*v));
        Attrs {
            labels: labels.into_boxed_slice(),
            index,
            splice: kapi_codec::meta::RvSplice::plan(msg, value),
        }
    }))
}

/// A shared cap on the bytes of lazily made encodings. Past it, an encoding is still made for
/// the request that needs it but not kept, so memory stays bounded whatever clients ask for.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    cap: usize,
}

impl Budget {
    pub fn new(cap: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            cap,
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    fn take(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur + n > self.cap {
                return false;
            }
            match self.used.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// An encoding kept for one view: `view` names what it encodes (the served group/version and
/// form, chosen by the server); a reader of another view makes its own, uncached.
#[derive(Debug)]
pub struct Kept {
    view: u32,
    bytes: Bytes,
    budget: Arc<Budget>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes.len());
    }
}

/// A lazily filled, budgeted encoding slot: the first reader of a view fills it; later readers
/// of that view share the bytes. The ingest empties it when nobody needs it any more (a
/// superseded version, an old event's frames), so history does not pin encodings.
#[derive(Default)]
pub struct Slot(ArcSwapOption<Kept>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({} bytes)", self.kept_len())
    }
}

impl Slot {
    /// The encoding of `view`: the kept one, or `make`'s, kept if the slot is free and the budget
    /// allows.
    pub fn get_or_make<E>(
        &self,
        view: u32,
        budget: &Arc<Budget>,
        make: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let taken = {
            let cur = self.0.load();
            if let Some(k) = &*cur {
                if k.view == view {
                    return Ok(k.bytes.clone());
                }
                true
            } else {
                false
            }
        };
        let bytes = make()?;
        if !taken && budget.take(bytes.len()) {
            let kept = Arc::new(Kept {
                view,
                bytes: bytes.clone(),
                budget: budget.clone(),
            });
            // Another reader may have filled it meanwhile: then ours is dropped (and returned
            // to the budget) and theirs is used next time.
            let _ = self.0.compare_and_swap(&None::<Arc<Kept>>, Some(kept));
        }
        Ok(bytes)
    }

    /// The kept encoding of `view`, if there is one.
    pub fn get(&self, view: u32) -> Option<Bytes> {
        self.0
            .load()
            .as_ref()
            .filter(|k| k.view == view)
            .map(|k| k.bytes.clone())
    }

    /// Lets go of the kept encoding.
    pub fn clear(&self) {
        if self.0.load().is_some() {
            self.0.store(None);
        }
    }

    /// Bytes kept in this slot.
    pub fn kept_len(&self) -> usize {
        self.0.load().as_ref().map_or(0, |k| k.bytes.len())
    }
}

/// One version of one object.
#[derive(Debug)]
pub struct Obj {
    pub key: Bytes,
    /// The stored bytes (protobuf with the `k8s\0` envelope, or JSON for custom resources).
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub attrs: Attrs,
    /// The served JSON of this version (as a list item: no apiVersion/kind), made lazily.
    pub json: Slot,
    /// The served protobuf message, when serving needs more than the stored bytes (another
    /// version than the stored one), made lazily.
    pub wire: Slot,
}

impl Obj {
    /// Lets go of kept encodings (the version was superseded: only readers of old snapshots
    /// could still want them, and they can make them again).
    pub fn release(&self) {
        self.json.clear();
        self.wire.clear();
    }

    pub fn new(
        key: Bytes,
        value: Bytes,
        create_revision: i64,
        mod_revision: i64,
        attrs: Attrs,
    ) -> Obj {
        Obj {
            key,
            value,
            create_revision,
            mod_revision,
            attrs,
            json: Slot::default(),
            wire: Slot::default(),
        }
    }

    /// Memory this version holds: its bytes, its kept encodings and its attributes.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Obj>()
            + self.key.len()
            + self.value.len()
            + self.json.kept_len()
            + self.wire.kept_len()
            + self
                .attrs
                .labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 32)
                .sum::<usize>()
            + self.attrs.index.as_ref().map_or(0, |s| s.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// The type a watcher sees for an event, after its filter (a change that moves an object out
/// of a watcher's selector is a DELETED for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as kept in the history and fanned out to watchers.
#[derive(Debug)]
pub struct CachedEvent {
    pub kind: EventKind,
    pub revision: i64,
    /// The new version (Put) or the last version before deletion (Delete).
    pub obj: Arc<Obj>,
    /// The version this change replaced (None when the key was created).
    pub prev: Option<Arc<Obj>>,
    /// Index of the resource this event belongs to.
    pub resource: usize,
    /// When the cache took it (history is kept for a time window).
    pub at: std::time::Instant,
    /// The event's frames for the natural event type, one per encoding form: made once by the
    /// first watcher that sends it, shared by all the others.
    pub frames: [Slot; 2],
}

impl CachedEvent {
    /// The event type for a watcher whose filter is `passes`, or None if it sees nothing.
    pub fn type_for(&self, passes: impl Fn(&Obj) -> bool) -> Option<EventType> {
        let now = passes(&self.obj);
        match self.kind {
            EventKind::Delete => now.then_some(EventType::Deleted),
            EventKind::Put => {
                let before = self.prev.as_deref().is_some_and(&passes);
                match (before, now) {
                    (true, true) => Some(EventType::Modified),
                    (false, true) => Some(EventType::Added),
                    (true, false) => Some(EventType::Deleted),
                    (false, false) => None,
                }
            }
        }
    }

    /// The type every unfiltered watcher sees.
    pub fn natural_type(&self) -> EventType {
        match (self.kind, &self.prev) {
            (EventKind::Delete, _) => EventType::Deleted,
            (EventKind::Put, None) => EventType::Added,
            (EventKind::Put, Some(_)) => EventType::Modified,
        }
    }

    /// Bytes this event holds beyond the versions the current state holds.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<CachedEvent>() + self.frames.iter().map(Slot::kept_len).sum::<usize>()
    }
}
