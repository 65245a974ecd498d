//! Background workers for `berth serve`: online garbage collection and upload
//! purging, each an interval loop around `run_once` that stops when the
//! shutdown channel flips. Not started in read-only mode (the caller checks).

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::super::Registry;
use super::purge::{purge_uploads, PurgeOptions};
use super::{no_events, run_once, GcOptions};

/// Waits `period`, or returns false early when shutdown is signalled.
async fn wait(period: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(period) => true,
        _ = shutdown.changed() => !*shutdown.borrow(),
    }
}

/// Starts the online collector: enables the request-path tracker with the
/// grace period, then runs a collection every `interval` (the first one
/// after one interval, so a restart loop does not hammer storage).
pub fn spawn_gc(
    registry: Registry,
    interval: Duration,
    opts: GcOptions,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        registry.track_recent_digests(opts.grace).await;
        tracing::info!(
            interval_s = interval.as_secs_f64(),
            grace_s = opts.grace.as_secs_f64(),
            delete_untagged = opts.delete_untagged,
            dry_run = opts.dry_run,
            "online garbage collection enabled"
        );
        while wait(interval, &mut shutdown).await {
            // Shutdown abandons a run between two storage calls: every single
            // delete is of something unreferenced, so stopping anywhere is safe.
            tokio::select! {
                r = run_once(&registry, &opts, &no_events) => match r {
                    Ok(report) => registry.gc_stats().record(&report),
                    Err(e) => {
                        registry.gc_stats().record_failure();
                        tracing::error!(error = %e, "garbage collection failed; retrying next interval");
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
    })
}

/// Starts the upload purger: a first purge soon after start (as distribution
/// does, after a short delay), then one every `interval`.
pub fn spawn_purge(
    registry: Registry,
    interval: Duration,
    opts: PurgeOptions,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut period = interval.min(Duration::from_secs(60));
        while wait(period, &mut shutdown).await {
            tokio::select! {
                r = purge_uploads(&registry, &opts) => match r {
                    Ok(report) if !opts.dry_run => registry.gc_stats().record_purged(report.removed.len() as u64),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "upload purge failed; retrying next interval"),
                },
                _ = shutdown.changed() => break,
            }
            period = interval;
        }
    })
}
