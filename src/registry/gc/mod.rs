//! Garbage collection: mark every blob a kept manifest needs, sweep the rest
//! from `blobs/`; with `delete_untagged`, also unlink manifests no tag keeps
//! (never the children of a kept index, never the referrers of a kept
//! manifest). The same [`run_once`] serves `berth garbage-collect` (offline,
//! no grace period) and the online worker (grace period, second mark pass,
//! in-process [`tracker::RecentDigests`]). See docs/gc.md for why online runs
//! are safe against concurrent pushes.
//!
//! Before marking, pull-through cache content is expired by its mirror's
//! `ttl` and `maxsize` (`expiry` chooses, `expire` unlinks).
//!
//! Also here: upload purging (`purge`) and the background workers (`worker`).

pub mod digests;
mod expire;
pub mod expiry;
pub mod mark;
pub mod purge;
pub mod refs;
pub mod repos;
mod run;
pub mod scan;
pub mod stats;
mod sweep;
pub mod tracker;
pub mod worker;

use std::time::Duration;

use crate::oci::digest::Digest;

use super::{Registry, RegistryResult};

/// How a collection runs.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    /// Also unlink manifests that no tag keeps (with what only they needed).
    pub delete_untagged: bool,
    /// Online runs: nothing written or linked more recently than this before
    /// the run started is removed, and a second mark pass runs before the
    /// sweep. Zero for offline runs (the registry is stopped or read-only).
    pub grace: Duration,
    /// Pull-through caches to expire by `ttl` and `maxsize` before marking
    /// ([`expiry::CachePolicy::from_config`]); empty: nothing expires.
    pub cache: Vec<expiry::CachePolicy>,
}

/// One removed (or, in a dry run, removable) blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// One unlinked (or, in a dry run, unlinkable) manifest revision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RemovedManifest {
    /// The repository it was linked in.
    pub repository: String,
    /// Its digest.
    pub digest: Digest,
}

/// What a run did: for logs, metrics, the CLI and tests.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Nothing was removed; the lists say what would have been.
    pub dry_run: bool,
    /// Repositories seen.
    pub repositories: usize,
    /// (repository, manifest) pairs kept.
    pub manifests_marked: usize,
    /// Distinct blobs marked (manifests, configs, layers).
    pub blobs_marked: usize,
    /// Blobs found in storage.
    pub blobs_scanned: usize,
    /// Manifest revisions unlinked (expired cache content included): the
    /// first [`REPORT_LIST_MAX`]; `manifests_removed_total` counts them all.
    pub manifests_removed: Vec<RemovedManifest>,
    /// Manifest revisions unlinked in all.
    pub manifests_removed_total: usize,
    /// How many of those were cached manifests expired by `ttl`/`maxsize`.
    pub manifests_expired: usize,
    /// Blobs removed: the first [`REPORT_LIST_MAX`] (a run can remove
    /// millions; [`GcEvent::BlobRemoved`] reports every one as it goes);
    /// `blobs_removed_total` counts them all.
    pub blobs_removed: Vec<RemovedBlob>,
    /// Blobs removed in all.
    pub blobs_removed_total: usize,
    /// Unreferenced blobs or manifests kept because they were written, linked
    /// or used within the grace period (online runs only).
    pub kept_recent: usize,
    /// Sum of the sizes of removed blobs.
    pub bytes_freed: u64,
    /// Wall time of the run.
    pub duration: Duration,
}

/// Most removed blobs and manifests a [`GcReport`] lists.
pub const REPORT_LIST_MAX: usize = 1000;

impl GcReport {
    /// Counts a removed blob (listed while under [`REPORT_LIST_MAX`]).
    pub fn push_blob(&mut self, b: RemovedBlob) {
        self.blobs_removed_total += 1;
        self.bytes_freed += b.size;
        if self.blobs_removed.len() < REPORT_LIST_MAX {
            self.blobs_removed.push(b);
        }
    }

    /// Counts an unlinked manifest (listed while under [`REPORT_LIST_MAX`]).
    pub fn push_manifest(&mut self, m: RemovedManifest) {
        self.manifests_removed_total += 1;
        if self.manifests_removed.len() < REPORT_LIST_MAX {
            self.manifests_removed.push(m);
        }
    }
}

/// Progress and removals as they happen (the CLI prints them).
#[derive(Debug)]
pub enum GcEvent<'a> {
    /// A phase advanced: `done` of `total` items (total 0 when unknown).
    Progress {
        /// What is being done.
        phase: &'static str,
        /// Items done.
        done: usize,
        /// Items in the phase.
        total: usize,
    },
    /// A manifest was unlinked (or would be, in a dry run).
    ManifestRemoved(&'a RemovedManifest),
    /// A cached manifest and its tags expired (or would, in a dry run).
    ManifestExpired {
        /// The cache repository and digest.
        manifest: &'a RemovedManifest,
        /// Why (ttl or maxsize).
        reason: &'static str,
    },
    /// A blob was removed (or would be, in a dry run).
    BlobRemoved(&'a RemovedBlob),
}

/// Receiver of [`GcEvent`]s.
pub type EventSink<'a> = &'a (dyn Fn(GcEvent<'_>) + Send + Sync);

/// Ignores events (workers and tests).
pub fn no_events(_: GcEvent<'_>) {}

/// Runs one collection over `registry`'s storage (see `run.rs` for the
/// order of its steps and the memory each holds).
pub async fn run_once(
    registry: &Registry,
    opts: &GcOptions,
    events: EventSink<'_>,
) -> RegistryResult<GcReport> {
    run::run(registry, opts, events).await
}

impl Registry {
    /// Makes the request path record the digests it uses, for `retention`
    /// (the online grace period); [`worker::spawn_gc`] calls this. Zero
    /// stops recording.
    pub async fn track_recent_digests(&self, retention: Duration) {
        self.recent.set_retention(retention).await;
    }
}
