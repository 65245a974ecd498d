//! Counters of the online collector and the upload purger, for `/metrics`:
//! what each run marked, swept, freed and how long it took.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::GcReport;

/// Totals since start and the figures of the last run.
#[derive(Default)]
pub struct GcStats {
    runs: AtomicU64,
    failures: AtomicU64,
    blobs_removed: AtomicU64,
    manifests_removed: AtomicU64,
    bytes_freed: AtomicU64,
    last_blobs_marked: AtomicU64,
    last_blobs_scanned: AtomicU64,
    last_kept_recent: AtomicU64,
    last_duration_micros: AtomicU64,
    uploads_purged: AtomicU64,
    /// When the last run finished (Unix seconds; 0: none yet).
    last_finished_unix: AtomicU64,
    last_blobs_removed: AtomicU64,
    last_manifests_removed: AtomicU64,
    last_bytes_freed: AtomicU64,
    last_dry_run: AtomicU64,
}

/// The last finished collection, as the web UI's status page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    /// When it finished.
    pub finished: std::time::SystemTime,
    /// Blobs it removed (would have removed, in a dry run).
    pub blobs_removed: u64,
    /// Manifest revisions it unlinked.
    pub manifests_removed: u64,
    /// Bytes of the blobs it removed.
    pub bytes_freed: u64,
    /// True for a dry run (nothing was removed).
    pub dry_run: bool,
    /// Runs and failures since start.
    pub runs: u64,
    /// Failed runs since start.
    pub failures: u64,
}

impl GcStats {
    /// Adds a finished collection.
    pub fn record(&self, r: &GcReport) {
        let rel = Ordering::Relaxed;
        self.runs.fetch_add(1, rel);
        if !r.dry_run {
            self.blobs_removed
                .fetch_add(r.blobs_removed_total as u64, rel);
            self.manifests_removed
                .fetch_add(r.manifests_removed_total as u64, rel);
            self.bytes_freed.fetch_add(r.bytes_freed, rel);
        }
        self.last_blobs_marked.store(r.blobs_marked as u64, rel);
        self.last_blobs_scanned.store(r.blobs_scanned as u64, rel);
        self.last_kept_recent.store(r.kept_recent as u64, rel);
        self.last_duration_micros
            .store(r.duration.as_micros() as u64, rel);
        self.last_blobs_removed
            .store(r.blobs_removed_total as u64, rel);
        self.last_manifests_removed
            .store(r.manifests_removed_total as u64, rel);
        self.last_bytes_freed.store(r.bytes_freed, rel);
        self.last_dry_run.store(u64::from(r.dry_run), rel);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs().max(1));
        self.last_finished_unix.store(now, rel);
    }

    /// The last finished run, `None` before the first.
    pub fn last_run(&self) -> Option<LastRun> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let at = get(&self.last_finished_unix);
        (at > 0).then(|| LastRun {
            finished: std::time::UNIX_EPOCH + std::time::Duration::from_secs(at),
            blobs_removed: get(&self.last_blobs_removed),
            manifests_removed: get(&self.last_manifests_removed),
            bytes_freed: get(&self.last_bytes_freed),
            dry_run: get(&self.last_dry_run) != 0,
            runs: get(&self.runs),
            failures: get(&self.failures),
        })
    }

    /// Counts a collection that failed.
    pub fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts purged uploads.
    pub fn record_purged(&self, n: u64) {
        self.uploads_purged.fetch_add(n, Ordering::Relaxed);
    }

    /// Appends the Prometheus text exposition of these counters.
    pub fn render(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, f64); 10] = [
            (
                "berth_gc_runs_total",
                "counter",
                "Online garbage collections finished.",
                get(&self.runs) as f64,
            ),
            (
                "berth_gc_failures_total",
                "counter",
                "Online garbage collections that failed.",
                get(&self.failures) as f64,
            ),
            (
                "berth_gc_blobs_removed_total",
                "counter",
                "Blobs removed by garbage collection.",
                get(&self.blobs_removed) as f64,
            ),
            (
                "berth_gc_manifests_removed_total",
                "counter",
                "Manifest revisions unlinked by garbage collection.",
                get(&self.manifests_removed) as f64,
            ),
            (
                "berth_gc_bytes_freed_total",
                "counter",
                "Bytes of blobs removed by garbage collection.",
                get(&self.bytes_freed) as f64,
            ),
            (
                "berth_gc_last_blobs_marked",
                "gauge",
                "Blobs marked in use by the last collection.",
                get(&self.last_blobs_marked) as f64,
            ),
            (
                "berth_gc_last_blobs_scanned",
                "gauge",
                "Blobs found in storage by the last collection.",
                get(&self.last_blobs_scanned) as f64,
            ),
            (
                "berth_gc_last_kept_recent",
                "gauge",
                "Unreferenced items kept by the grace period in the last collection.",
                get(&self.last_kept_recent) as f64,
            ),
            (
                "berth_gc_last_duration_seconds",
                "gauge",
                "Wall time of the last collection.",
                get(&self.last_duration_micros) as f64 / 1e6,
            ),
            (
                "berth_uploads_purged_total",
                "counter",
                "Abandoned uploads removed by upload purging.",
                get(&self.uploads_purged) as f64,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let s = GcStats::default();
        assert!(s.last_run().is_none());
        let report = GcReport {
            bytes_freed: 1234,
            blobs_marked: 7,
            duration: std::time::Duration::from_millis(1500),
            ..Default::default()
        };
        s.record(&report);
        s.record(&report);
        s.record_failure();
        s.record_purged(3);
        let last = s.last_run().expect("a run was recorded");
        assert_eq!((last.bytes_freed, last.runs, last.failures), (1234, 2, 1));
        let mut out = String::new();
        s.render(&mut out);
        assert!(out.contains("berth_gc_runs_total 2\n"), "{out}");
        assert!(out.contains("berth_gc_bytes_freed_total 2468\n"));
        assert!(out.contains("berth_gc_failures_total 1\n"));
        assert!(out.contains("berth_gc_last_blobs_marked 7\n"));
        assert!(out.contains("berth_gc_last_duration_seconds 1.5\n"));
        assert!(out.contains("berth_uploads_purged_total 3\n"));
        assert!(out.contains("# TYPE berth_gc_bytes_freed_total counter"));
    }
}
