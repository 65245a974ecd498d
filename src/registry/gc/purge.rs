//! Upload purging (`storage.maintenance.uploadpurging`): upload sessions
//! older than `age` are abandoned and their directories removed, as
//! distribution's purger does. An upload's age comes from its `startedat`
//! file, else from the mtime of its data; a directory with neither is debris
//! (distribution treats a missing start time as the zero time, too).

use std::time::{Duration, Instant, SystemTime};

use crate::storage::StorageDriver;

use super::super::{Registry, RegistryResult};
use super::repos::RepoNames;
use super::scan::{list_or_empty, repo_key};

/// How a purge runs.
#[derive(Debug, Clone)]
pub struct PurgeOptions {
    /// Uploads started longer ago than this are removed.
    pub age: Duration,
    /// Only report what would be removed.
    pub dry_run: bool,
}

/// What a purge did.
#[derive(Debug, Clone, Default)]
pub struct PurgeReport {
    /// Upload directories seen.
    pub uploads_scanned: usize,
    /// Upload directories removed (or, in a dry run, removable), as keys.
    pub removed: Vec<String>,
    /// Wall time of the run.
    pub duration: Duration,
}

/// Parses `startedat` content (RFC 3339, as distribution and berth write it).
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// When the upload in `dir` started, if anything tells.
async fn started_at(driver: &dyn StorageDriver, dir: &str) -> RegistryResult<Option<SystemTime>> {
    match driver.get_content(&format!("{dir}/startedat")).await {
        Ok(c) => {
            if let Some(t) = std::str::from_utf8(&c).ok().and_then(parse_rfc3339) {
                return Ok(Some(t));
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    for file in ["data", "startedat"] {
        match driver.stat(&format!("{dir}/{file}")).await {
            Ok(info) if info.modified.is_some() => return Ok(info.modified),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Removes upload sessions older than `opts.age`.
pub async fn purge_uploads(
    registry: &Registry,
    opts: &PurgeOptions,
) -> RegistryResult<PurgeReport> {
    purge_uploads_at(registry, opts, SystemTime::now()).await
}

/// [`purge_uploads`] as if the time were `now`: tests set the cutoff
/// between two uploads' storage times instead of sleeping past a window.
#[doc(hidden)]
pub async fn purge_uploads_at(
    registry: &Registry,
    opts: &PurgeOptions,
    now: SystemTime,
) -> RegistryResult<PurgeReport> {
    let started = Instant::now();
    let driver = registry.driver.as_ref();
    let cutoff = now.checked_sub(opts.age).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = PurgeReport::default();
    // One repository's upload directories at a time (not every key of the
    // registry at once).
    let mut names = RepoNames::default();
    while let Some(name) = names.next(driver).await? {
        let uploads = list_or_empty(driver, &format!("{}/_uploads", repo_key(&name))).await?;
        for dir in uploads {
            report.uploads_scanned += 1;
            let old = started_at(driver, &dir).await?.is_none_or(|t| t < cutoff);
            if !old {
                continue;
            }
            if !opts.dry_run {
                match driver.delete(&dir).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            report.removed.push(dir);
        }
        tokio::task::yield_now().await;
    }
    report.duration = started.elapsed();
    tracing::info!(
        dry_run = opts.dry_run,
        uploads_scanned = report.uploads_scanned,
        uploads_removed = report.removed.len(),
        duration_ms = report.duration.as_millis() as u64,
        "upload purge finished"
    );
    Ok(report)
}
