//! Telling the rest of berth that the cache stored something fetched from
//! an upstream (notifications send it as a `fetch` event). The registry
//! layer knows nothing of events: it calls whatever listener the app set.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// What a fetch stored in the cache.
#[derive(Debug, Clone)]
pub enum CachedContent {
    /// A blob, verified and linked in the cache repository.
    Blob {
        /// The cache repository (`dockerhub/library/alpine`).
        repository: String,
        digest: String,
        size: u64,
        /// The upstream's URL, as configured.
        upstream: String,
    },
    /// A manifest, stored by digest (and tagged when `tag` is set).
    Manifest {
        repository: String,
        digest: String,
        media_type: String,
        /// The manifest's bytes (for references in events).
        body: Bytes,
        tag: Option<String>,
        upstream: String,
    },
}

/// Receives [`CachedContent`]; must not block (it runs inside fetches).
pub trait CacheListener: Send + Sync {
    /// Called once per stored blob or manifest.
    fn cached(&self, content: CachedContent);
}

/// The listener slot of a [`super::Mirrors`]: set once, at start.
#[derive(Default)]
pub(super) struct ListenerSlot(OnceLock<Arc<dyn CacheListener>>);

impl ListenerSlot {
    pub fn set(&self, listener: Arc<dyn CacheListener>) {
        let _ = self.0.set(listener);
    }

    pub fn notify(&self, content: CachedContent) {
        if let Some(l) = self.0.get() {
            l.cached(content);
        }
    }
}
