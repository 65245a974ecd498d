//! `fetch` events: the pull-through cache's notices of content it stored
//! from an upstream, sent to the same endpoints as every other event.
//! Marked by their action (`fetch`), so receivers that act on `push`
//! never mistake a cache fill for a push; `ignore.actions: [fetch]` drops
//! them.

use std::sync::Arc;

use super::{EventSink, ManifestTarget, RegistryEvent, RequestContext};
use crate::registry::pull_through::{CacheListener, CachedContent};

/// Turns [`CachedContent`] into events. No client request made the store
/// (the fetch outlives the request that started it, and serves others),
/// so the event's `request` and `actor` are empty but for the method;
/// URLs start with `http.host` when it is set.
pub struct FetchEvents {
    sink: Arc<dyn EventSink>,
    include_references: bool,
    base_url: String,
}

impl FetchEvents {
    /// Events into `sink`, URLs under `base_url` (`http.host`, or empty).
    pub fn new(sink: Arc<dyn EventSink>, base_url: &str) -> Self {
        FetchEvents {
            include_references: sink.wants_references(),
            sink,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }
}

impl CacheListener for FetchEvents {
    fn cached(&self, content: CachedContent) {
        if !self.sink.enabled() {
            return;
        }
        let ctx = RequestContext {
            method: "GET".into(),
            base_url: self.base_url.clone(),
            ..RequestContext::default()
        };
        let event = match content {
            CachedContent::Blob {
                repository,
                digest,
                size,
                upstream,
            } => {
                tracing::debug!(%repository, %digest, %upstream, "fetch event");
                RegistryEvent::BlobFetched {
                    repository,
                    digest,
                    size,
                }
            }
            CachedContent::Manifest {
                repository,
                digest,
                media_type,
                body,
                tag,
                upstream,
            } => {
                tracing::debug!(%repository, %digest, %upstream, "fetch event");
                RegistryEvent::ManifestFetched(ManifestTarget {
                    references: if self.include_references {
                        super::references(&media_type, &body)
                    } else {
                        Vec::new()
                    },
                    repository,
                    digest,
                    media_type,
                    size: body.len() as u64,
                    tag,
                })
            }
        };
        self.sink.record(&ctx, event);
    }
}
