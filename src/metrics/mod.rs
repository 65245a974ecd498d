//! Metrics: one registry of counters and histograms per serving process,
//! recorded by the HTTP middleware (requests) and the storage wrapper
//! (driver calls), rendered in Prometheus text format on `/metrics`. A leaf
//! module: it knows no layer, every layer may record into it. Recording is
//! a few relaxed atomic adds; labels come from fixed tables, so the number
//! of series is bounded.

pub mod histogram;
pub mod http;
pub mod process;
pub mod storage;

/// Every figure the request path and the storage wrapper record.
#[derive(Default)]
pub struct Metrics {
    /// Requests, latency, bytes, uploads in flight.
    pub http: http::HttpMetrics,
    /// Storage driver calls.
    pub storage: storage::StorageMetrics,
}

impl Metrics {
    /// Appends the request, storage and process figures.
    pub fn render(&self, out: &mut String) {
        self.http.render(out);
        self.storage.render(out);
        process::render(out);
    }
}
