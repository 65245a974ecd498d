//! Sweep phase: unlink the manifests the mark phase let go, delete unmarked
//! blobs. Online runs skip anything young (by `stat` mtime, against the
//! run's cutoff) and check-and-delete each digest under the in-process
//! tracker's lock.

use std::time::SystemTime;

use crate::oci::digest::Digest;
use crate::storage::paths::StoragePath;
use crate::storage::StorageDriver;

use super::super::{Registry, RegistryResult};
use super::digests::DigestSet;
use super::mark::{mark_closure, RefCache};
use super::scan::RepoLinks;
use super::{EventSink, GcEvent, GcOptions, GcReport, RemovedBlob, RemovedManifest};

/// True when the object at `key` was modified at or after `cutoff`, or its
/// age is unknown. A missing object is not young (nothing to protect).
pub async fn is_young(
    driver: &dyn StorageDriver,
    key: &str,
    cutoff: SystemTime,
) -> RegistryResult<bool> {
    match driver.stat(key).await {
        Ok(info) => Ok(info.modified.is_none_or(|m| m >= cutoff)),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a key, treating "already gone" as done.
pub(super) async fn delete_quietly(driver: &dyn StorageDriver, key: &str) -> RegistryResult<()> {
    match driver.delete(key).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// State of one sweep.
pub struct Sweeper<'a> {
    pub registry: &'a Registry,
    pub opts: &'a GcOptions,
    pub cutoff: SystemTime,
    pub events: EventSink<'a>,
    pub report: &'a mut GcReport,
}

impl Sweeper<'_> {
    fn online(&self) -> bool {
        !self.opts.grace.is_zero()
    }

    /// Unlinks the revisions `untagged` of repository `name` (their tag
    /// history entries and referrer links go too). One used during the run
    /// is kept, with everything it reaches marked into `marked`; those are
    /// returned.
    pub async fn manifests(
        &mut self,
        name: &str,
        links: &RepoLinks,
        untagged: &[Digest],
        cache: &mut RefCache,
        marked: &mut DigestSet,
    ) -> RegistryResult<Vec<Digest>> {
        let driver = self.registry.driver.as_ref();
        let mut kept = Vec::new();
        for digest in untagged {
            let Some(link) = links.revisions.get(digest) else {
                continue;
            };
            if !self.opts.dry_run {
                let dir = link.trim_end_matches("/link");
                let done = self
                    .registry
                    .recent
                    .delete_unless_recent(digest, delete_quietly(driver, dir))
                    .await;
                match done {
                    None => {
                        self.report.kept_recent += 1;
                        mark_closure(driver, digest, cache, marked).await?;
                        kept.push(digest.clone());
                        continue;
                    }
                    Some(r) => r?,
                }
                for (_, d, dir) in &links.tag_index {
                    if d == digest {
                        delete_quietly(driver, dir).await?;
                    }
                }
                for (_, referrer, dir) in &links.referrers {
                    if referrer == digest {
                        delete_quietly(driver, dir).await?;
                    }
                }
            }
            let removed = RemovedManifest {
                repository: name.to_string(),
                digest: digest.clone(),
            };
            (self.events)(GcEvent::ManifestRemoved(&removed));
            self.report.push_manifest(removed);
        }
        Ok(kept)
    }

    /// Deletes the unmarked blobs of `batch` (digest, has a young link
    /// found by the caller), except, online, those whose data is young or
    /// that a request used during the run. Stats and deletes of a batch run
    /// concurrently, the deletes under one hold of the tracker's lock.
    pub async fn blobs(&mut self, batch: &[(Digest, bool)]) -> RegistryResult<()> {
        let driver = self.registry.driver.as_ref();
        let stats = futures::future::join_all(batch.iter().map(|(digest, _)| async move {
            match driver
                .stat(&StoragePath::BlobData { digest }.to_key())
                .await
            {
                Ok(info) => Ok(Some(info)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        }))
        .await;
        let mut doomed: Vec<RemovedBlob> = Vec::new();
        for ((digest, young_link), info) in batch.iter().zip(stats) {
            let Some(info) = info? else {
                continue;
            };
            if self.online() && (*young_link || info.modified.is_none_or(|m| m >= self.cutoff)) {
                self.report.kept_recent += 1;
                continue;
            }
            doomed.push(RemovedBlob {
                digest: digest.clone(),
                size: info.size,
            });
        }
        let done: Vec<Option<RegistryResult<()>>> = if self.opts.dry_run {
            doomed.iter().map(|_| Some(Ok(()))).collect()
        } else {
            let digests: Vec<Digest> = doomed.iter().map(|b| b.digest.clone()).collect();
            self.registry
                .recent
                .delete_many_unless_recent(&digests, |digest| {
                    let dir = StoragePath::BlobDir { digest }.to_key();
                    async move { delete_quietly(driver, &dir).await }
                })
                .await
        };
        for (removed, done) in doomed.into_iter().zip(done) {
            match done {
                None => self.report.kept_recent += 1,
                Some(r) => {
                    r?;
                    (self.events)(GcEvent::BlobRemoved(&removed));
                    self.report.push_blob(removed);
                }
            }
        }
        Ok(())
    }
}
