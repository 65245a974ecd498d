//! Manifest bytes by digest, kept in memory: content addressed, so a cached
//! entry can never be stale — a deleted manifest is refused earlier, when its
//! revision link is checked. Saves the blob read and the JSON parse of every
//! pull's manifest GET.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

use crate::oci::digest::Digest;

/// Bytes of manifests kept at most (the oldest entries go first).
pub const DEFAULT_CAPACITY: usize = 8 * 1024 * 1024;

/// A manifest's bytes and the media type they are served with.
#[derive(Clone)]
pub struct CachedManifest {
    pub media_type: String,
    pub body: Bytes,
}

/// A bounded first-in-first-out cache of manifests.
pub struct ManifestCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Digest, CachedManifest>,
    order: VecDeque<Digest>,
    bytes: usize,
}

impl Default for ManifestCache {
    fn default() -> Self {
        ManifestCache::new(DEFAULT_CAPACITY)
    }
}

impl ManifestCache {
    /// A cache holding at most `capacity` bytes of manifests.
    pub fn new(capacity: usize) -> Self {
        ManifestCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The manifest with this digest, if cached.
    pub fn get(&self, digest: &Digest) -> Option<CachedManifest> {
        self.inner.lock().ok()?.map.get(digest).cloned()
    }

    /// Remembers a manifest (ignored when larger than a quarter of the cache).
    pub fn put(&self, digest: &Digest, entry: CachedManifest) {
        let size = entry.body.len() + entry.media_type.len();
        if size > self.capacity / 4 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.map.contains_key(digest) {
            return;
        }
        while inner.bytes + size > self.capacity {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(e) = inner.map.remove(&old) {
                inner.bytes -= e.body.len() + e.media_type.len();
            }
        }
        inner.bytes += size;
        inner.order.push_back(digest.clone());
        inner.map.insert(digest.clone(), entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> CachedManifest {
        CachedManifest {
            media_type: "m".into(),
            body: Bytes::from(vec![0u8; n]),
        }
    }

    #[test]
    fn bounded_fifo() {
        let c = ManifestCache::new(400);
        let d: Vec<Digest> = (0..5u8).map(|i| Digest::sha256_of(&[i])).collect();
        for x in &d[..3] {
            c.put(x, entry(99));
        }
        assert!(d[..3].iter().all(|x| c.get(x).is_some()));
        c.put(&d[3], entry(99));
        c.put(&d[4], entry(99));
        assert!(c.get(&d[0]).is_none(), "oldest evicted");
        assert!(c.get(&d[4]).is_some());
        c.put(&Digest::sha256_of(b"big"), entry(200));
        assert!(
            c.get(&Digest::sha256_of(b"big")).is_none(),
            "too large to cache"
        );
    }
}
