//! A latency histogram with fixed buckets and atomic counts: recording is
//! a bucket search over a short constant table and three relaxed adds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (`+Inf` is implied): from a
/// cached manifest read (well under a millisecond) to a multi-GiB upload.
pub const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// [`BUCKETS`] in nanoseconds, for comparison without floating point.
const BOUNDS_NANOS: [u64; 18] = {
    let mut out = [0u64; 18];
    let mut i = 0;
    while i < 18 {
        out[i] = (BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    out
};

/// Durations observed: per-bucket counts (not cumulative; summed when
/// rendered), their total and how many.
#[derive(Default)]
pub struct Histogram {
    /// One slot per bucket plus the `+Inf` one.
    buckets: [AtomicU64; 19],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let slot = BOUNDS_NANOS.partition_point(|&b| b < nanos);
        if let Some(b) = self.buckets.get(slot) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of `name` with the
    /// given labels (`a="b",c="d"`, or empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, slot) in self.buckets.iter().enumerate() {
            cumulative += slot.load(Ordering::Relaxed);
            let _ = match BUCKETS.get(i) {
                Some(le) => writeln!(
                    out,
                    "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
                ),
                None => writeln!(
                    out,
                    "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
                ),
            };
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100)); // exactly the first bound
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(100)); // past the last bound
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "k=\"v\"");
        assert!(
            out.contains("x_seconds_bucket{k=\"v\",le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{k=\"v\",le=\"0.0025\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{k=\"v\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{k=\"v\",le=\"60\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{k=\"v\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{k=\"v\"} 3\n"), "{out}");
        assert_eq!(h.count(), 3);
    }
}
