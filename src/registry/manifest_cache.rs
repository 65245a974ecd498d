//! Manifest bytes by digest, kept in memory: content addressed, so a cached
//! entry can never be stale — a deleted manifest is refused earlier, when its
//! revision link is checked. Saves the blob read and the JSON parse of every
//! pull's manifest GET.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

use crate::oci::digest::Digest;

/// Heap bytes the cache holds at most, entries' bookkeeping included (the
/// oldest entries go first). What it holds stays resident after a load, so
/// it counts toward the soak's "RSS after the load" bound
/// (docs/reliability.md#soak).
pub const DEFAULT_CAPACITY: usize = 4 * 1024 * 1024;

/// Heap an entry takes beside its body and media type: the digest twice
/// (map key and FIFO order, each a struct and a 64-byte hex string), the
/// map slot, the `Bytes` and `String` headers and the allocator's chunk
/// overheads. Counting only the bodies let a cache of small manifests
/// hold half as much again as its capacity.
const ENTRY_OVERHEAD: usize = 2 * (std::mem::size_of::<Digest>() + 64 + 16)
    + std::mem::size_of::<(Digest, CachedManifest)>()
    + 3 * 16
    + 32;

/// What an entry costs against the capacity.
fn cost(entry: &CachedManifest) -> usize {
    entry.body.len() + entry.media_type.len() + ENTRY_OVERHEAD
}

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
    /// A cache holding at most about `capacity` bytes of heap.
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
        let size = cost(&entry);
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
                inner.bytes -= cost(&e);
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
        // Room for four entries of 99 bytes and their bookkeeping.
        let c = ManifestCache::new(4 * cost(&entry(99)) + 10);
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
