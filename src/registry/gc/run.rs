//! The order of one collection, and what each step holds in memory.
//!
//! 1. Expire pull-through cache content (only the mirrors' repositories are
//!    scanned, `expiry`).
//! 2. Mark, one repository at a time ([`RepoNames`]): its manifest links are
//!    read, marked into one [`DigestSet`] (32 bytes per live sha256 blob)
//!    and dropped. Offline, untagged manifests are unlinked right there.
//! 3. Offline: list the blobs one `blobs/<alg>/<xx>/` prefix at a time and
//!    delete the unmarked ones as they come.
//! 4. Online, in rounds of at most [`CANDIDATES_MAX`] unmarked blobs (one
//!    round unless the registry holds more garbage than that): list prefixes
//!    into the round's candidates; mark every repository again (the second
//!    pass of docs/gc.md, which also unlinks untagged manifests in the
//!    first round and notes the candidates with a young layer or revision
//!    link); delete the candidates neither pass marked.
//!
//! So memory is the marks, at most one round of candidates, and one
//! repository's manifest links (or one directory listing) at a time, plus
//! the parsed-manifest cache (`mark::RefCache`, byte-bounded). The run
//! yields after every repository and logs its progress every
//! [`PROGRESS_EVERY`].

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use crate::oci::digest::Digest;
use crate::storage::StorageDriver;

use super::super::{Registry, RegistryResult};
use super::digests::DigestSet;
use super::expire;
use super::expiry;
use super::mark::{mark_repo, RefCache};
use super::repos::RepoNames;
use super::scan::{blob_prefixes, blobs_under, layer_links, Layout, RepoLinks};
use super::sweep::{is_young, Sweeper};
use super::{EventSink, GcEvent, GcOptions, GcReport};

/// Most unmarked blobs one online round considers (4 MiB of candidates).
pub const CANDIDATES_MAX: usize = 1 << 17;

/// Blobs stat-ed and deleted together (under one hold of the tracker lock).
pub const SWEEP_BATCH: usize = 32;

/// How often a run logs how far it got.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Progress events for the CLI and a periodic log line for servers.
struct Progress<'a> {
    events: EventSink<'a>,
    started: Instant,
    last_log: Instant,
    repos: usize,
}

impl<'a> Progress<'a> {
    fn new(events: EventSink<'a>) -> Self {
        let now = Instant::now();
        Progress {
            events,
            started: now,
            last_log: now,
            repos: 0,
        }
    }

    fn tick(&mut self, phase: &'static str, done: usize, total: usize, report: &GcReport) {
        (self.events)(GcEvent::Progress { phase, done, total });
        if self.last_log.elapsed() >= PROGRESS_EVERY {
            self.last_log = Instant::now();
            tracing::info!(
                phase,
                done,
                total,
                repositories_marked = self.repos,
                blobs_scanned = report.blobs_scanned,
                blobs_removed = report.blobs_removed_total,
                manifests_removed = report.manifests_removed_total,
                elapsed_s = self.started.elapsed().as_secs(),
                "garbage collection in progress"
            );
        }
    }
}

/// Drops the revisions a dry run expired (a real run unlinked them).
fn prune_expired(name: &str, links: &mut RepoLinks, expired: &HashSet<(String, Digest)>) {
    if expired.is_empty() {
        return;
    }
    links
        .revisions
        .retain(|d, _| !expired.contains(&(name.to_string(), d.clone())));
}

/// Marked in `a` or in `b`.
fn union_len(a: &DigestSet, b: &DigestSet) -> usize {
    a.len() + b.iter().filter(|d| !a.contains(d)).count()
}

/// See the module doc.
pub(super) async fn run(
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
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..GcReport::default()
    };
    let mut progress = Progress::new(events);
    progress.tick("marking", 0, 0, &report);

    let expired = if opts.cache.is_empty() {
        HashSet::new()
    } else {
        let mut layout =
            Layout::scan_where(driver, |n| opts.cache.iter().any(|p| p.covers(n))).await?;
        let choices =
            expiry::select(driver, &layout, &opts.cache, SystemTime::now(), &mut cache).await?;
        let done = expire::apply(
            registry,
            &mut layout,
            choices,
            opts,
            cutoff,
            events,
            &mut report,
        )
        .await?;
        if opts.dry_run {
            done
        } else {
            HashSet::new()
        }
    };

    // Pass 1. Online, untagged revisions that are young or were used
    // recently are protected: roots of every later pass.
    let mut marks1 = DigestSet::default();
    let mut untagged1: HashSet<(String, Digest)> = HashSet::new();
    let mut protected: HashSet<(String, Digest)> = HashSet::new();
    let mut names = RepoNames::default();
    while let Some(name) = names.next(driver).await? {
        let mut links = RepoLinks::scan(driver, &name).await?;
        prune_expired(&name, &mut links, &expired);
        let m = mark_repo(
            driver,
            &name,
            &links,
            opts.delete_untagged,
            &HashSet::new(),
            &mut cache,
            &mut marks1,
        )
        .await?;
        if online {
            for d in m.untagged {
                let young = match links.revisions.get(&d) {
                    Some(k) => is_young(driver, k, cutoff).await?,
                    None => true,
                };
                if young || registry.recent.is_recent(&d).await {
                    protected.insert((name.clone(), d));
                } else {
                    untagged1.insert((name.clone(), d));
                }
            }
        } else {
            report.repositories += 1;
            report.manifests_marked += m.kept;
            let mut sweeper = sweeper(registry, opts, cutoff, events, &mut report);
            sweeper
                .manifests(&name, &links, &m.untagged, &mut cache, &mut marks1)
                .await?;
        }
        progress.repos += 1;
        progress.tick("marking", progress.repos, 0, &report);
        tokio::task::yield_now().await;
    }

    let prefixes = blob_prefixes(driver).await?;
    if !online {
        report.blobs_marked = marks1.len();
        for (i, prefix) in prefixes.iter().enumerate() {
            let listed = blobs_under(driver, prefix).await?;
            report.blobs_scanned += listed.len();
            let unmarked: Vec<(Digest, bool)> = listed
                .into_iter()
                .filter(|d| !marks1.contains(d))
                .map(|d| (d, false))
                .collect();
            for batch in unmarked.chunks(SWEEP_BATCH) {
                let mut sweeper = sweeper(registry, opts, cutoff, events, &mut report);
                sweeper.blobs(batch).await?;
            }
            progress.tick("sweeping blobs", i + 1, prefixes.len(), &report);
            tokio::task::yield_now().await;
        }
    } else {
        let mut next = 0;
        let mut first = true;
        while first || next < prefixes.len() {
            let mut candidates = DigestSet::default();
            while next < prefixes.len() && candidates.len() < CANDIDATES_MAX {
                for d in blobs_under(driver, &prefixes[next]).await? {
                    report.blobs_scanned += 1;
                    if !marks1.contains(&d) {
                        candidates.insert(&d);
                    }
                }
                next += 1;
                progress.tick("listing blobs", next, prefixes.len(), &report);
            }
            if !first && candidates.is_empty() {
                continue;
            }
            let (marks2, young) = second_pass(
                registry,
                opts,
                cutoff,
                events,
                Pass2 {
                    first,
                    candidates: &candidates,
                    untagged1: &untagged1,
                    expired: &expired,
                    protected: &mut protected,
                    cache: &mut cache,
                    progress: &mut progress,
                },
                &mut report,
            )
            .await?;
            if first {
                report.blobs_marked = union_len(&marks1, &marks2);
            }
            first = false;
            let total = candidates.len();
            let mut batch = Vec::with_capacity(SWEEP_BATCH);
            let mut all = candidates.iter().filter(|d| !marks2.contains(d)).peekable();
            let mut done = 0;
            while all.peek().is_some() {
                batch.clear();
                batch.extend(all.by_ref().take(SWEEP_BATCH).map(|d| {
                    let y = young.contains(&d);
                    (d, y)
                }));
                done += batch.len();
                let mut sweeper = sweeper(registry, opts, cutoff, events, &mut report);
                sweeper.blobs(&batch).await?;
                progress.tick("sweeping blobs", done, total, &report);
                tokio::task::yield_now().await;
            }
        }
    }
    drop(marks1);

    if !opts.dry_run {
        // Repositories left without manifests leave listings now, not at
        // the next index refresh.
        let emptied: std::collections::BTreeSet<String> = report
            .manifests_removed
            .iter()
            .map(|m| m.repository.clone())
            .collect();
        for repo in emptied {
            if let Err(e) = registry.recheck_listed(&repo).await {
                tracing::warn!(repository = repo, error = %e, "cannot recheck a repository for listings; the next index refresh will");
            }
        }
    }

    report.duration = started.elapsed();
    tracing::info!(
        dry_run = report.dry_run,
        repositories = report.repositories,
        manifests_marked = report.manifests_marked,
        blobs_marked = report.blobs_marked,
        blobs_scanned = report.blobs_scanned,
        manifests_removed = report.manifests_removed_total,
        manifests_expired = report.manifests_expired,
        blobs_removed = report.blobs_removed_total,
        kept_recent = report.kept_recent,
        bytes_freed = report.bytes_freed,
        duration_ms = report.duration.as_millis() as u64,
        "garbage collection finished"
    );
    Ok(report)
}

fn sweeper<'a>(
    registry: &'a Registry,
    opts: &'a GcOptions,
    cutoff: SystemTime,
    events: EventSink<'a>,
    report: &'a mut GcReport,
) -> Sweeper<'a> {
    Sweeper {
        registry,
        opts,
        cutoff,
        events,
        report,
    }
}

/// What the second pass of an online round works with.
struct Pass2<'a, 'e> {
    /// The first round unlinks untagged manifests.
    first: bool,
    candidates: &'a DigestSet,
    untagged1: &'a HashSet<(String, Digest)>,
    expired: &'a HashSet<(String, Digest)>,
    protected: &'a mut HashSet<(String, Digest)>,
    cache: &'a mut RefCache,
    progress: &'a mut Progress<'e>,
}

/// Marks every repository again; returns the marks and the candidates with
/// a young layer or revision link.
async fn second_pass(
    registry: &Registry,
    opts: &GcOptions,
    cutoff: SystemTime,
    events: EventSink<'_>,
    p: Pass2<'_, '_>,
    report: &mut GcReport,
) -> RegistryResult<(DigestSet, DigestSet)> {
    let driver: &dyn StorageDriver = registry.driver.as_ref();
    let mut marks = DigestSet::default();
    let mut young = DigestSet::default();
    let mut names = RepoNames::default();
    let mut done = 0;
    while let Some(name) = names.next(driver).await? {
        let mut links = RepoLinks::scan(driver, &name).await?;
        prune_expired(&name, &mut links, p.expired);
        let m = mark_repo(
            driver,
            &name,
            &links,
            opts.delete_untagged,
            p.protected,
            p.cache,
            &mut marks,
        )
        .await?;
        if p.first {
            report.repositories += 1;
            report.manifests_marked += m.kept;
            let gone: Vec<Digest> = m
                .untagged
                .into_iter()
                .filter(|d| p.untagged1.contains(&(name.clone(), d.clone())))
                .collect();
            let mut sweeper = sweeper(registry, opts, cutoff, events, report);
            let kept = sweeper
                .manifests(&name, &links, &gone, p.cache, &mut marks)
                .await?;
            for d in kept {
                p.protected.insert((name.clone(), d));
            }
        }
        // Links to candidates: their mtimes, a batch at a time.
        let mut to_stat: Vec<(Digest, String)> = links
            .revisions
            .iter()
            .filter(|(d, _)| p.candidates.contains(d))
            .map(|(d, k)| (d.clone(), k.clone()))
            .collect();
        drop(links);
        to_stat.extend(
            layer_links(driver, &name)
                .await?
                .into_iter()
                .filter(|(d, _)| p.candidates.contains(d)),
        );
        for batch in to_stat.chunks(SWEEP_BATCH) {
            let ages = futures::future::join_all(
                batch
                    .iter()
                    .filter(|(d, _)| !young.contains(d))
                    .map(|(d, key)| async move { (d, is_young(driver, key, cutoff).await) }),
            )
            .await;
            for (d, age) in ages {
                if age? {
                    young.insert(d);
                }
            }
        }
        done += 1;
        p.progress.tick("marking again", done, 0, report);
        tokio::task::yield_now().await;
    }
    Ok((marks, young))
}
