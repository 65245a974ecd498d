//! Per-endpoint delivery counters: JSON at the debug listener's
//! `/debug/events` and Prometheus series on `/metrics`.

use serde::Serialize;

/// One endpoint's counters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointStatus {
    /// The endpoint's configured name.
    pub name: String,
    /// Its URL without credentials.
    pub url: String,
    /// True when undelivered events are journaled (survive restarts).
    pub durable: bool,
    /// Events delivered (2xx).
    pub sent: u64,
    /// Delivery attempts that failed.
    pub failed: u64,
    /// Attempts scheduled again after a failure.
    pub retried: u64,
    /// Events given up: bound reached, journal unwritable, or `maxattempts`.
    pub dropped: u64,
    /// Events waiting to be delivered.
    pub pending: u64,
    /// Why the latest failed attempt failed (status or transport error,
    /// never the URL); `None` until one fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Appends the `berth_notifications_*` series for `endpoints`.
pub fn render(endpoints: &[EndpointStatus], out: &mut String) {
    use std::fmt::Write as _;
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&EndpointStatus) -> u64,
    );
    let series: [Series; 5] = [
        (
            "sent_total",
            "counter",
            "Events delivered to the endpoint.",
            |s| s.sent,
        ),
        (
            "failed_total",
            "counter",
            "Delivery attempts that failed.",
            |s| s.failed,
        ),
        (
            "retried_total",
            "counter",
            "Delivery attempts scheduled again after a failure.",
            |s| s.retried,
        ),
        (
            "dropped_total",
            "counter",
            "Events given up (bound reached, journal unwritable, maxattempts).",
            |s| s.dropped,
        ),
        ("pending", "gauge", "Events waiting to be delivered.", |s| {
            s.pending
        }),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP berth_notifications_{name} {help}");
        let _ = writeln!(out, "# TYPE berth_notifications_{name} {kind}");
        for s in endpoints {
            let label = s
                .name
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(
                out,
                "berth_notifications_{name}{{endpoint=\"{label}\"}} {}",
                get(s)
            );
        }
    }
}
