//! `/metrics` and the request recording that feeds it (run by the
//! outermost middleware): one place that counts every request by route
//! kind, method and status, times it, and counts body bytes each way. On the manifest GET hot path this costs a clock read,
//! a path match and a few relaxed atomic adds: the request body is empty
//! and the response body has a known size, so neither is wrapped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use http_body::Frame;

use super::HttpState;
use crate::metrics::http::{method_index, RouteKind, UploadGuard};
use crate::metrics::Metrics;

/// One request being measured: what [`start`] learnt of it, until
/// [`Recording::finish`] sees its response.
pub(super) struct Recording<'a> {
    metrics: &'a Arc<Metrics>,
    route: RouteKind,
    method: usize,
    head: bool,
    /// Held while an upload request is served.
    _upload: Option<UploadGuard<'a>>,
}

/// Starts measuring `req` when `http.debug.prometheus.enabled` (else
/// `None`, and `req` untouched); a body of unknown length is wrapped to
/// count its frames. Called by the outermost middleware
/// ([`super::middleware::common_headers`]), which already reads the clock
/// and the method for the access log: no layer of its own.
pub(super) fn start(st: &HttpState, req: Request) -> (Request, Option<Recording<'_>>) {
    if !st.config.http.debug.prometheus.enabled {
        return (req, None);
    }
    let metrics = st.registry.metrics();
    let path = req.uri().path();
    let route = RouteKind::of(path.strip_prefix(st.prefix.as_str()).unwrap_or(path));
    let method = req.method();
    let upload = (route == RouteKind::Upload
        && matches!(*method, Method::POST | Method::PATCH | Method::PUT))
    .then(|| metrics.http.upload_started());
    let rec = Recording {
        metrics,
        route,
        method: method_index(method),
        head: method == Method::HEAD,
        _upload: upload,
    };
    let req = match req.body().size_hint().exact() {
        Some(0) => req,
        Some(n) => {
            metrics.http.add_received(route, n);
            req
        }
        // Chunked uploads: count the frames as they arrive.
        None => req.map(|b| Body::new(Counting::new(b, metrics.clone(), route, Way::Received))),
    };
    (req, Some(rec))
}

impl Recording<'_> {
    /// Counts the response (status, time since `started`, body bytes);
    /// a body of unknown length is wrapped to count its frames.
    pub(super) fn finish(self, resp: Response, started: Instant) -> Response {
        let m = &self.metrics.http;
        m.record(
            self.route,
            self.method,
            resp.status().as_u16(),
            started.elapsed(),
        );
        if self.head {
            return resp;
        }
        match resp.body().size_hint().exact() {
            Some(n) => {
                m.add_sent(self.route, n);
                resp
            }
            None => {
                let (metrics, route) = (self.metrics.clone(), self.route);
                resp.map(|b| Body::new(Counting::new(b, metrics, route, Way::Sent)))
            }
        }
    }
}

/// Which byte counter a [`Counting`] body feeds.
#[derive(Clone, Copy)]
enum Way {
    Received,
    Sent,
}

/// A body that adds the size of each data frame passing through to a
/// byte counter: what really crossed the wire, even when cut short.
struct Counting {
    inner: Body,
    metrics: Arc<Metrics>,
    route: RouteKind,
    way: Way,
}

impl Counting {
    fn new(inner: Body, metrics: Arc<Metrics>, route: RouteKind, way: Way) -> Self {
        Counting {
            inner,
            metrics,
            route,
            way,
        }
    }
}

impl HttpBody for Counting {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let n = data.len() as u64;
                match self.way {
                    Way::Received => self.metrics.http.add_received(self.route, n),
                    Way::Sent => self.metrics.http.add_sent(self.route, n),
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Prometheus text exposition (when `http.debug.prometheus.enabled`):
/// requests, storage calls, online GC and upload purging, logins, the
/// repository index and the process. docs/metrics.md lists every series.
pub(crate) async fn metrics(State(st): State<Arc<HttpState>>) -> Response {
    use std::fmt::Write as _;
    let mut out = format!(
        "# HELP berth_build_info berth's version.\n# TYPE berth_build_info gauge\nberth_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    st.registry.metrics().render(&mut out);
    st.registry.gc_stats().render(&mut out);
    st.auth.render_metrics(&mut out);
    if let Some(mirrors) = st.registry.mirrors() {
        mirrors.render_metrics(&mut out);
    }
    st.events.render_metrics(&mut out);
    let index = st.registry.repo_index().size();
    let _ = write!(
        out,
        "# HELP berth_repository_index_ready Whether listings are served from the in-memory repository index.\n\
         # TYPE berth_repository_index_ready gauge\nberth_repository_index_ready {}\n\
         # HELP berth_repository_index_repositories Repository names in the in-memory index (0 until built).\n\
         # TYPE berth_repository_index_repositories gauge\nberth_repository_index_repositories {}\n",
        u8::from(index.is_some()),
        index.unwrap_or(0)
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
