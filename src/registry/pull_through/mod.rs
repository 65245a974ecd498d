//! Pull-through cache, registry side: which names are mirrored and from
//! where ([`Mirrors`], `routing`), manifests and tags fetched on a miss and
//! revalidated on an interval (`manifests`), blobs streamed to clients
//! while they are fetched once (`fetch`, `blobs`), and the records the
//! garbage collector reads (`records`). Upstreams are reached only through
//! the [`Upstream`] trait; cached content is ordinary storage content in
//! distribution's layout, so listings, deletes and GC need nothing special.

mod blobs;
mod cached;
mod fetch;
mod manifests;
mod receive;
mod records;
pub(super) mod routing;
mod spool;
mod spool_file;
mod task;
#[cfg(test)]
mod test_fake;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_local;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use blobs::{MirrorBlob, MirrorBlobStream};
pub use cached::{CacheListener, CachedContent};
pub use manifests::ServedManifest;
pub use records::LAST_PULLED_FILE;
pub use routing::{Mode, WriteKind};

use crate::mirror::Upstream;

/// One upstream as the registry layer sees it.
pub struct MirrorEntry {
    /// The first name component routing here (`dockerhub`); empty in
    /// `proxy` mode, where every name maps 1:1.
    pub prefix: String,
    /// The upstream's URL, for messages (no credentials in it).
    pub remote: String,
    /// Docker Hub: one-component upstream names get `library/`.
    pub docker_hub: bool,
    /// `?ns=` hosts (lowercase) that map to this entry.
    pub hosts: Vec<String>,
    /// How long a checked tag is served without asking upstream again.
    pub tag_revalidate: Duration,
    /// The client of the upstream.
    pub upstream: Arc<dyn Upstream>,
    /// Counters for `/metrics`.
    pub stats: MirrorStats,
}

/// Per-mirror counters (hits, misses, upstream errors, bytes fetched).
#[derive(Debug, Default)]
pub struct MirrorStats {
    /// Manifests and blobs served from the cache without an upstream fetch.
    pub hits: AtomicU64,
    /// Manifests and blobs fetched from the upstream.
    pub misses: AtomicU64,
    /// Upstream calls that failed (unavailable, denied, invalid, bad digest).
    pub upstream_errors: AtomicU64,
    /// Blob and manifest bytes received from the upstream.
    pub bytes_fetched: AtomicU64,
}

impl MirrorStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Picks one counter out of [`MirrorStats`].
type Counter = fn(&MirrorStats) -> &AtomicU64;

/// Limits of the blob fetches ([`crate::config::mirror::MirrorFetchConfig`]).
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// Fetches running at once; more misses get 429.
    pub max_concurrent: usize,
    /// Where spool files are created (and at once unlinked) when storage
    /// has no local files; on the filesystem driver the spool is the
    /// upload data file in storage instead.
    pub spool_dir: PathBuf,
    /// An upstream body silent this long is cut off.
    pub idle_timeout: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_concurrent: crate::config::mirror::DEFAULT_MAX_CONCURRENT_FETCHES,
            spool_dir: std::env::temp_dir(),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Every configured upstream and the shared in-memory state of the cache
/// (tag checks, running fetches). One per registry.
pub struct Mirrors {
    mode: Mode,
    fetches: Arc<fetch::Fetches>,
    tag_checks: records::TagChecks,
    pulled: records::PullRecords,
    /// One upstream manifest request per `name@reference` at a time.
    in_flight: records::KeyLocks,
    /// Who hears of content stored from upstreams (notifications).
    listener: cached::ListenerSlot,
}

impl Mirrors {
    /// The cache over `mode`'s upstreams.
    pub fn new(mode: Mode, limits: FetchLimits) -> Self {
        Mirrors {
            mode,
            fetches: Arc::new(fetch::Fetches::new(limits)),
            tag_checks: records::TagChecks::default(),
            pulled: records::PullRecords::default(),
            in_flight: records::KeyLocks::default(),
            listener: cached::ListenerSlot::default(),
        }
    }

    /// Sets who hears of each blob and manifest the cache stores from an
    /// upstream (once; later calls are ignored).
    pub fn set_listener(&self, listener: std::sync::Arc<dyn CacheListener>) {
        self.listener.set(listener);
    }

    /// Appends each mirror's counters in Prometheus text format, labelled
    /// by prefix (`proxy` in proxy mode); one series per configured entry.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let series: [(&str, &str, Counter); 4] = [
            (
                "berth_mirror_hits_total",
                "Manifests and blobs served from the pull-through cache.",
                |s| &s.hits,
            ),
            (
                "berth_mirror_misses_total",
                "Manifests and blobs fetched from an upstream.",
                |s| &s.misses,
            ),
            (
                "berth_mirror_upstream_errors_total",
                "Upstream calls that failed or sent bad bytes.",
                |s| &s.upstream_errors,
            ),
            (
                "berth_mirror_bytes_fetched_total",
                "Bytes received from upstreams.",
                |s| &s.bytes_fetched,
            ),
        ];
        for (name, help, get) in series {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
            for e in self.entries() {
                let label = if e.prefix.is_empty() {
                    "proxy"
                } else {
                    e.prefix.as_str()
                };
                let _ = writeln!(
                    out,
                    "{name}{{mirror=\"{label}\"}} {}",
                    get(&e.stats).load(Ordering::Relaxed)
                );
            }
        }
    }

    /// The upstreams, for metrics and `config check`.
    pub fn entries(&self) -> Vec<&Arc<MirrorEntry>> {
        match &self.mode {
            Mode::Proxy(e) => vec![e],
            Mode::Prefixes(v) => v.iter().collect(),
        }
    }
}
