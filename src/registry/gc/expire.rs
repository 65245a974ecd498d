//! Unlinks the cached manifests `expiry::select` chose (revision, the tags
//! pointing at it, its tag history entries and referrer links), before the
//! mark phase, so the blobs only they used are swept in the same run. Online
//! runs keep a manifest whose link is younger than the grace period or that a
//! request used recently (the in-process tracker, same lock as the sweep).
//! Dry runs delete nothing and only drop the choices from the in-memory
//! layout, so the mark phase sees what a real run would.

use std::collections::HashSet;
use std::time::SystemTime;

use crate::oci::digest::Digest;
use crate::storage::paths::parse_link;

use super::super::{Registry, RegistryResult};
use super::expiry::Choice;
use super::scan::Layout;
use super::sweep::{delete_quietly, is_young};
use super::{EventSink, GcEvent, GcOptions, GcReport, RemovedManifest};

/// Expires `choices` in storage (unless a dry run) and in `layout`;
/// returns the (repository, digest) pairs expired.
pub(super) async fn apply(
    registry: &Registry,
    layout: &mut Layout,
    choices: Vec<Choice>,
    opts: &GcOptions,
    cutoff: SystemTime,
    events: EventSink<'_>,
    report: &mut GcReport,
) -> RegistryResult<HashSet<(String, Digest)>> {
    let driver = registry.driver.as_ref();
    let online = !opts.grace.is_zero();
    let mut done = HashSet::new();
    for ((repo, digest), reason) in choices {
        let Some(links) = layout.repos.get(&repo) else {
            continue;
        };
        let Some(link) = links.revisions.get(&digest) else {
            continue;
        };
        if online && is_young(driver, link, cutoff).await? {
            report.kept_recent += 1;
            continue;
        }
        if !opts.dry_run {
            let dir = link.trim_end_matches("/link").to_string();
            let deleted = registry
                .recent
                .delete_unless_recent(&digest, delete_quietly(driver, &dir))
                .await;
            match deleted {
                None => {
                    report.kept_recent += 1;
                    continue;
                }
                Some(r) => r?,
            }
            for (tag, key) in &links.tags {
                let current = match driver.get_content(key).await {
                    Ok(c) => parse_link(&c),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e.into()),
                };
                if current.as_ref() == Some(&digest) {
                    let tag_dir = key.trim_end_matches("/current/link");
                    tracing::debug!(repository = %repo, tag = %tag, "expired tag");
                    delete_quietly(driver, tag_dir).await?;
                }
            }
            for (_, d, dir) in &links.tag_index {
                if d == &digest {
                    delete_quietly(driver, dir).await?;
                }
            }
            for (_, referrer, dir) in &links.referrers {
                if referrer == &digest {
                    delete_quietly(driver, dir).await?;
                }
            }
        }
        let removed = RemovedManifest {
            repository: repo.clone(),
            digest: digest.clone(),
        };
        (events)(GcEvent::ManifestExpired {
            manifest: &removed,
            reason: reason.describe(),
        });
        report.manifests_expired += 1;
        report.push_manifest(removed);
        done.insert((repo, digest));
    }
    prune(layout, &done);
    Ok(done)
}

/// Drops expired revisions from `layout` (tags are only followed to linked
/// revisions, so they need no change).
pub(super) fn prune(layout: &mut Layout, expired: &HashSet<(String, Digest)>) {
    for (repo, digest) in expired {
        if let Some(links) = layout.repos.get_mut(repo) {
            links.revisions.remove(digest);
        }
    }
}
