//! What token authenticators remember about tokens they checked (a verified signature's
//! claims, a webhook's answer, a mapped user): SHA-256 of the token (and whatever else the
//! answer depends on) → the answer, for a while. Bounded: past `capacity` entries the expired
//! go, then all (each is checked again on next use). Shared by every core behind a mutex held
//! only for a map lookup or insert.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TokenCache<V> {
    entries: Mutex<HashMap<[u8; 32], (Instant, V)>>,
    capacity: usize,
    ttl: Duration,
}

impl<V: Clone> TokenCache<V> {
    pub fn new(capacity: usize, ttl: Duration) -> TokenCache<V> {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    /// The key of `parts` (the token first).
    pub fn key(parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                ctx.update(b"\0");
            }
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (at, v) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    pub fn put(&self, key: [u8; 32], value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let cache = TokenCache::new(2, Duration::from_secs(3600));
        let k = |s: &str| TokenCache::<u8>::key(&[s.as_bytes()]);
        cache.put(k("a"), 1);
        cache.put(k("b"), 2);
        assert_eq!(cache.get(&k("a")), Some(1));
        cache.put(k("c"), 3);
        assert!(cache.entries.lock().unwrap().len() <= 2);
        assert_eq!(cache.get(&k("c")), Some(3));
        assert_ne!(
            TokenCache::<u8>::key(&[b"ab", b"c"]),
            TokenCache::<u8>::key(&[b"a", b"bc"])
        );
        let none = TokenCache::new(2, Duration::ZERO);
        none.put(k("a"), 1);
        assert_eq!(none.get(&k("a")), None);
    }
}
