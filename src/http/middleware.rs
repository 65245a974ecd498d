//! Headers every response carries, the access log and request metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::HttpState;

/// The authenticated caller of a request, set by the dispatcher so the access
/// log says who pushed or pulled what.
#[derive(Clone)]
pub struct CallerName(pub String);

/// Adds `Docker-Distribution-API-Version` and the configured `http.headers`,
/// writes one access-log line per request unless disabled, and records the
/// request's metrics when enabled (`super::metrics`).
pub async fn common_headers(
    State(st): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let (req, recording) = super::metrics::start(&st, req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let log = !st.config.log.accesslog.disabled;
    let client = log
        .then(|| {
            st.client_ip
                .resolve(super::peer_addr(req.extensions()), req.headers())
        })
        .flatten();
    let mut resp = next.run(req).await;
    if let Some(r) = recording {
        resp = r.finish(resp, started);
    }
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
    for (name, values) in &st.config.http.headers {
        let Ok(name) = HeaderName::try_from(name.as_str()) else {
            continue;
        };
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(name.clone(), v);
            }
        }
    }
    if log {
        let user = resp
            .extensions()
            .get::<CallerName>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        tracing::info!(
            target: "berth::access",
            %method,
            path,
            user,
            client = client.map(|c| c.to_string()).unwrap_or_default(),
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
        );
    }
    resp
}

/// While a `health:` check fails, every request answers 503 UNAVAILABLE, as
/// registry:2's health handler does, except `/healthz`, which reports the
/// failing checks itself.
pub async fn health_gate(State(st): State<Arc<HttpState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let healthz = path == "/healthz" || path.strip_prefix(st.prefix.as_str()) == Some("/healthz");
    if st.health.is_empty() || healthz || st.health.is_healthy() {
        return next.run(req).await;
    }
    crate::error::ApiError::new(crate::error::ErrorCode::Unavailable)
        .message("service unavailable")
        .detail("health check failed: please see /debug/health")
        .into_response()
}
