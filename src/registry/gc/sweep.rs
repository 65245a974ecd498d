//! Sweep phase: unlink the manifests the mark phase let go, then delete the
//! unmarked blobs. Online runs skip anything young (by `stat` mtime, against
//! the run's cutoff) and check-and-delete each digest under the in-process
//! tracker's lock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use crate::oci::digest::Digest;
use crate::storage::paths::StoragePath;
use crate::storage::StorageDriver;

use super::super::{Registry, RegistryResult};
use super::mark::{mark_closure, RefCache};
use super::scan::Layout;
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
async fn delete_quietly(driver: &dyn StorageDriver, key: &str) -> RegistryResult<()> {
    match driver.delete(key).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// State of one sweep.
pub struct Sweeper<'a> {
    pub registry: &'a Registry,
    pub layout: &'a Layout,
    pub opts: &'a GcOptions,
    pub cutoff: SystemTime,
    pub events: EventSink<'a>,
    pub cache: &'a mut RefCache,
    pub report: &'a mut GcReport,
}

impl Sweeper<'_> {
    fn online(&self) -> bool {
        !self.opts.grace.is_zero()
    }

    /// Unlinks untagged manifest revisions (their tag history entries and
    /// referrer links go too). One used during the run is kept, and so is
    /// everything it reaches.
    pub async fn manifests(
        &mut self,
        untagged: &BTreeSet<(String, Digest)>,
        marked: &mut HashSet<Digest>,
    ) -> RegistryResult<()> {
        let driver = self.registry.driver.as_ref();
        for (repo, digest) in untagged {
            let Some(links) = self.layout.repos.get(repo) else {
                continue;
            };
            let Some(link) = links.revisions.get(digest) else {
                continue;
            };
            let removed = RemovedManifest {
                repository: repo.clone(),
                digest: digest.clone(),
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
                        mark_closure(driver, digest, self.cache, marked).await?;
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
            (self.events)(GcEvent::ManifestRemoved(&removed));
            self.report.manifests_removed.push(removed);
        }
        Ok(())
    }

    /// Deletes every blob of `blobs` that is not marked (and, online, not
    /// young, not linked recently, not used during the run).
    pub async fn blobs(
        &mut self,
        blobs: &[(Digest, String)],
        marked: &HashSet<Digest>,
    ) -> RegistryResult<()> {
        let driver = self.registry.driver.as_ref();
        let layout = self.layout;
        let links = if self.online() {
            links_by_digest(layout)
        } else {
            HashMap::new()
        };
        let total = blobs.len();
        for (i, (digest, key)) in blobs.iter().enumerate() {
            if i % 64 == 0 || i + 1 == total {
                (self.events)(GcEvent::Progress {
                    phase: "sweeping blobs",
                    done: i + 1,
                    total,
                });
            }
            if marked.contains(digest) {
                continue;
            }
            let info = match driver.stat(key).await {
                Ok(info) => info,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            if self.online() && self.is_recent(digest, &info, &links).await? {
                self.report.kept_recent += 1;
                continue;
            }
            let removed = RemovedBlob {
                digest: digest.clone(),
                size: info.size,
            };
            if !self.opts.dry_run {
                let dir = StoragePath::BlobDir { digest }.to_key();
                let done = self
                    .registry
                    .recent
                    .delete_unless_recent(digest, delete_quietly(driver, &dir))
                    .await;
                match done {
                    None => {
                        self.report.kept_recent += 1;
                        continue;
                    }
                    Some(r) => r?,
                }
            }
            (self.events)(GcEvent::BlobRemoved(&removed));
            self.report.blobs_removed.push(removed);
        }
        Ok(())
    }

    /// Data written, or a layer/revision link to it written, at or after the
    /// cutoff.
    async fn is_recent(
        &self,
        digest: &Digest,
        info: &crate::storage::FileInfo,
        links: &HashMap<&Digest, Vec<&String>>,
    ) -> RegistryResult<bool> {
        if info.modified.is_none_or(|m| m >= self.cutoff) {
            return Ok(true);
        }
        for key in links.get(digest).into_iter().flatten() {
            if is_young(self.registry.driver.as_ref(), key, self.cutoff).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Every layer and revision link in every repository, by digest.
fn links_by_digest(layout: &Layout) -> HashMap<&Digest, Vec<&String>> {
    let mut out: HashMap<&Digest, Vec<&String>> = HashMap::new();
    for repo in layout.repos.values() {
        for (d, k) in repo.layers.iter().chain(repo.revisions.iter()) {
            out.entry(d).or_default().push(k);
        }
    }
    out
}
