//! Request figures: counts by route kind, method and status, latency per
//! route kind, bytes each way, uploads in flight. Labels come from fixed
//! tables (never a repository name), so the series count is bounded.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::Histogram;

/// What a request path asks for, by the API's route families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Base,
    Catalog,
    Tags,
    Manifest,
    Blob,
    Upload,
    Referrers,
    Search,
    Token,
    Health,
    Other,
}

/// Every route kind, in label order.
pub const ROUTES: [RouteKind; 11] = [
    RouteKind::Base,
    RouteKind::Catalog,
    RouteKind::Tags,
    RouteKind::Manifest,
    RouteKind::Blob,
    RouteKind::Upload,
    RouteKind::Referrers,
    RouteKind::Search,
    RouteKind::Token,
    RouteKind::Health,
    RouteKind::Other,
];

impl RouteKind {
    /// The route kind of `path` (without `http.prefix`), from its last
    /// segments only: no allocation, no parsing of the repository name.
    pub fn of(path: &str) -> RouteKind {
        match path {
            "/v2" | "/v2/" => return RouteKind::Base,
            "/v2/_catalog" => return RouteKind::Catalog,
            "/" | "/healthz" | "/_ping" | "/v1/_ping" => return RouteKind::Health,
            "/v1/search" => return RouteKind::Search,
            "/auth/token" => return RouteKind::Token,
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return RouteKind::Other;
        };
        let mut seg = rest.rsplit('/');
        let last = seg.next().unwrap_or("");
        let second = seg.next().unwrap_or("");
        let third = seg.next().unwrap_or("");
        match (third, second, last) {
            (_, "tags", "list") => RouteKind::Tags,
            (_, "manifests", _) => RouteKind::Manifest,
            (_, "blobs", "uploads") | ("blobs", "uploads", _) => RouteKind::Upload,
            (_, "blobs", _) => RouteKind::Blob,
            (_, "referrers", _) => RouteKind::Referrers,
            _ => RouteKind::Other,
        }
    }

    /// The `route` label value.
    pub fn label(self) -> &'static str {
        match self {
            RouteKind::Base => "base",
            RouteKind::Catalog => "catalog",
            RouteKind::Tags => "tags",
            RouteKind::Manifest => "manifest",
            RouteKind::Blob => "blob",
            RouteKind::Upload => "upload",
            RouteKind::Referrers => "referrers",
            RouteKind::Search => "search",
            RouteKind::Token => "token",
            RouteKind::Health => "health",
            RouteKind::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// `method` label values; anything else is `other`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "other",
];

/// The slot of a method in [`METHODS`].
pub fn method_index(m: &http::Method) -> usize {
    match *m {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::PUT => 2,
        http::Method::POST => 3,
        http::Method::PATCH => 4,
        http::Method::DELETE => 5,
        http::Method::OPTIONS => 6,
        _ => 7,
    }
}

/// Status codes with a `code` label of their own; others are counted under
/// their class (`1xx` … `5xx`).
const CODES: [u16; 24] = [
    200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 409, 412, 413, 415,
    416, 429, 500, 502, 503,
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const STATUS_SLOTS: usize = CODES.len() + CLASSES.len();

/// The slot of a status code: its own, or its class's.
fn status_index(code: u16) -> usize {
    match CODES.binary_search(&code) {
        Ok(i) => i,
        Err(_) => CODES.len() + usize::from((code / 100).clamp(1, 5) - 1),
    }
}

fn status_label(slot: usize) -> String {
    match CODES.get(slot) {
        Some(c) => c.to_string(),
        None => CLASSES
            .get(slot - CODES.len())
            .copied()
            .unwrap_or("other")
            .to_string(),
    }
}

/// Per-route figures.
#[derive(Default)]
struct RouteStats {
    /// `[method][status slot]`.
    requests: [[AtomicU64; STATUS_SLOTS]; METHODS.len()],
    latency: Histogram,
    received: AtomicU64,
    sent: AtomicU64,
}

/// The request figures of one process.
#[derive(Default)]
pub struct HttpMetrics {
    routes: [RouteStats; ROUTES.len()],
    uploads_in_flight: AtomicI64,
}

impl HttpMetrics {
    /// Counts a finished request (its response head written).
    pub fn record(&self, route: RouteKind, method: usize, status: u16, took: Duration) {
        let r = &self.routes[route.index()];
        if let Some(c) = r
            .requests
            .get(method)
            .and_then(|m| m.get(status_index(status)))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        r.latency.observe(took);
    }

    /// Adds request body bytes received on `route`.
    pub fn add_received(&self, route: RouteKind, n: u64) {
        self.routes[route.index()]
            .received
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Adds response body bytes sent on `route`.
    pub fn add_sent(&self, route: RouteKind, n: u64) {
        self.routes[route.index()]
            .sent
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an upload request as started; dropping the guard ends it.
    pub fn upload_started(&self) -> UploadGuard<'_> {
        self.uploads_in_flight.fetch_add(1, Ordering::Relaxed);
        UploadGuard(&self.uploads_in_flight)
    }

    /// Appends these figures in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP berth_http_requests_total HTTP requests answered, by route kind, method and status code (uncommon codes by class).\n\
             # TYPE berth_http_requests_total counter\n",
        );
        for kind in ROUTES {
            let r = &self.routes[kind.index()];
            for (m, by_status) in r.requests.iter().enumerate() {
                for (s, c) in by_status.iter().enumerate() {
                    let n = c.load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "berth_http_requests_total{{route=\"{}\",method=\"{}\",code=\"{}\"}} {n}",
                            kind.label(),
                            METHODS.get(m).copied().unwrap_or("other"),
                            status_label(s)
                        );
                    }
                }
            }
        }
        out.push_str(
            "# HELP berth_http_request_duration_seconds Time from request to response head, by route kind.\n\
             # TYPE berth_http_request_duration_seconds histogram\n",
        );
        for kind in ROUTES {
            let labels = format!("route=\"{}\"", kind.label());
            self.routes[kind.index()].latency.render(
                out,
                "berth_http_request_duration_seconds",
                &labels,
            );
        }
        for (name, help, pick) in [
            (
                "berth_http_request_body_bytes_total",
                "Request body bytes received, by route kind.",
                (|r: &RouteStats| r.received.load(Ordering::Relaxed)) as fn(&RouteStats) -> u64,
            ),
            (
                "berth_http_response_body_bytes_total",
                "Response body bytes sent (HEAD: none), by route kind.",
                |r: &RouteStats| r.sent.load(Ordering::Relaxed),
            ),
        ] {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
            for kind in ROUTES {
                let _ = writeln!(
                    out,
                    "{name}{{route=\"{}\"}} {}",
                    kind.label(),
                    pick(&self.routes[kind.index()])
                );
            }
        }
        let _ = write!(
            out,
            "# HELP berth_http_uploads_in_flight Upload requests (POST, PATCH, PUT) being served.\n\
             # TYPE berth_http_uploads_in_flight gauge\nberth_http_uploads_in_flight {}\n",
            self.uploads_in_flight.load(Ordering::Relaxed)
        );
    }
}

/// An upload request in flight; ends it when dropped (also on cancel).
pub struct UploadGuard<'a>(&'a AtomicI64);

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_kinds_from_paths() {
        use RouteKind::*;
        for (path, kind) in [
            ("/v2/", Base),
            ("/v2", Base),
            ("/v2/_catalog", Catalog),
            ("/v2/a/b/tags/list", Tags),
            ("/v2/a/manifests/latest", Manifest),
            ("/v2/manifests/manifests/sha256:ab", Manifest),
            ("/v2/a/blobs/sha256:ab", Blob),
            ("/v2/a/blobs/uploads/", Upload),
            ("/v2/a/blobs/uploads", Upload),
            ("/v2/a/blobs/uploads/0b7f-uuid", Upload),
            ("/v2/blobs/uploads/blobs/sha256:ab", Blob),
            ("/v2/a/referrers/sha256:ab", Referrers),
            ("/v1/search", Search),
            ("/auth/token", Token),
            ("/healthz", Health),
            ("/v1/_ping", Health),
            ("/", Health),
            ("/metrics", Other),
            ("/v2/a/nothing", Other),
        ] {
            assert_eq!(RouteKind::of(path), kind, "{path}");
        }
    }

    #[test]
    fn uncommon_codes_count_by_class() {
        assert_eq!(status_label(status_index(404)), "404");
        assert_eq!(status_label(status_index(418)), "4xx");
        assert_eq!(status_label(status_index(599)), "5xx");
        assert_eq!(status_label(status_index(100)), "1xx");
        assert_eq!(status_label(status_index(42)), "1xx");
    }

    #[test]
    fn upload_gauge_follows_guards() {
        let m = HttpMetrics::default();
        let g = m.upload_started();
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("berth_http_uploads_in_flight 1\n"));
        drop(g);
        out.clear();
        m.record(RouteKind::Manifest, 0, 200, Duration::from_millis(1));
        m.render(&mut out);
        assert!(out.contains("berth_http_uploads_in_flight 0\n"));
        assert!(out.contains(
            "berth_http_requests_total{route=\"manifest\",method=\"GET\",code=\"200\"} 1\n"
        ));
    }
}
