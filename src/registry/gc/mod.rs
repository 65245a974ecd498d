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

mod expire;
pub mod expiry;
pub mod mark;
pub mod purge;
pub mod refs;
pub mod scan;
pub mod stats;
mod sweep;
pub mod tracker;
pub mod worker;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use crate::oci::digest::Digest;

use super::{Registry, RegistryResult};
use mark::{mark, RefCache};
use scan::Layout;

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
    /// Manifest revisions unlinked (expired cache content included).
    pub manifests_removed: Vec<RemovedManifest>,
    /// How many of those were cached manifests expired by `ttl`/`maxsize`.
    pub manifests_expired: usize,
    /// Blobs removed.
    pub blobs_removed: Vec<RemovedBlob>,
    /// Unreferenced blobs or manifests kept because they were written, linked
    /// or used within the grace period (online runs only).
    pub kept_recent: usize,
    /// Sum of the sizes of removed blobs.
    pub bytes_freed: u64,
    /// Wall time of the run.
    pub duration: Duration,
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

/// Runs one collection over `registry`'s storage.
pub async fn run_once(
    registry: &Registry,
    opts: &GcOptions,
    events: EventSink<'_>,
) -> RegistryResult<GcReport> {
    let started = Instant::now();
    let online = !opts.grace.is_zero();
    // Anything modified at or after `cutoff` is young and stays.
    let cutoff = SystemTime::now()
        .checked_sub(opts.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let driver = registry.driver.as_ref();
    registry.recent.prune().await;
    let mut cache = RefCache::default();

    events(GcEvent::Progress {
        phase: "marking",
        done: 0,
        total: 0,
    });
    let mut layout1 = Layout::scan(driver).await?;
    let mut early = GcReport::default();
    let expired = if opts.cache.is_empty() {
        HashSet::new()
    } else {
        let choices =
            expiry::select(driver, &layout1, &opts.cache, SystemTime::now(), &mut cache).await?;
        expire::apply(
            registry,
            &mut layout1,
            choices,
            opts,
            cutoff,
            events,
            &mut early,
        )
        .await?
    };
    let mut marks = mark(
        driver,
        &layout1,
        opts.delete_untagged,
        &HashSet::new(),
        &mut cache,
    )
    .await?;
    let blobs = scan::all_blobs(driver).await?;

    let layout = if online {
        // Untagged manifests linked or used recently stay, with what they
        // reach; then everything is marked again from a fresh listing, so
        // links and tags written during the first pass count too.
        let mut protected = HashSet::new();
        for (repo, digest) in &marks.untagged {
            let key = layout1
                .repos
                .get(repo)
                .and_then(|r| r.revisions.get(digest));
            let young = match key {
                Some(k) => sweep::is_young(driver, k, cutoff).await?,
                None => true,
            };
            if young || registry.recent.is_recent(digest).await {
                protected.insert((repo.clone(), digest.clone()));
            }
        }
        let mut layout2 = Layout::scan(driver).await?;
        if opts.dry_run {
            expire::prune(&mut layout2, &expired);
        }
        let second = mark(
            driver,
            &layout2,
            opts.delete_untagged,
            &protected,
            &mut cache,
        )
        .await?;
        marks.blobs.extend(second.blobs);
        marks.manifests_kept = second.manifests_kept;
        marks.untagged = marks
            .untagged
            .intersection(&second.untagged)
            .cloned()
            .collect();
        layout2
    } else {
        layout1
    };

    let mut report = GcReport {
        dry_run: opts.dry_run,
        repositories: layout.repos.len(),
        manifests_marked: marks.manifests_kept,
        blobs_marked: marks.blobs.len(),
        blobs_scanned: blobs.len(),
        manifests_removed: early.manifests_removed,
        manifests_expired: early.manifests_expired,
        kept_recent: early.kept_recent,
        ..GcReport::default()
    };
    let mut sweeper = sweep::Sweeper {
        registry,
        layout: &layout,
        opts,
        cutoff,
        events,
        cache: &mut cache,
        report: &mut report,
    };
    sweeper.manifests(&marks.untagged, &mut marks.blobs).await?;
    sweeper.blobs(&blobs, &marks.blobs).await?;
    if !opts.dry_run {
        // Repositories left without manifests leave listings now, not at
        // the next index refresh.
        let emptied: std::collections::BTreeSet<&str> = report
            .manifests_removed
            .iter()
            .map(|m| m.repository.as_str())
            .collect();
        for repo in emptied {
            if let Err(e) = registry.recheck_listed(repo).await {
                tracing::warn!(repository = repo, error = %e, "cannot recheck a repository for listings; the next index refresh will");
            }
        }
    }

    report.bytes_freed = report.blobs_removed.iter().map(|b| b.size).sum();
    report.duration = started.elapsed();
    tracing::info!(
        dry_run = report.dry_run,
        repositories = report.repositories,
        manifests_marked = report.manifests_marked,
        blobs_marked = report.blobs_marked,
        blobs_scanned = report.blobs_scanned,
        manifests_removed = report.manifests_removed.len(),
        manifests_expired = report.manifests_expired,
        blobs_removed = report.blobs_removed.len(),
        kept_recent = report.kept_recent,
        bytes_freed = report.bytes_freed,
        duration_ms = report.duration.as_millis() as u64,
        "garbage collection finished"
    );
    Ok(report)
}

impl Registry {
    /// Makes the request path record the digests it uses, for `retention`
    /// (the online grace period); [`worker::spawn_gc`] calls this. Zero
    /// stops recording.
    pub async fn track_recent_digests(&self, retention: Duration) {
        self.recent.set_retention(retention).await;
    }
}
