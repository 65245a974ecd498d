//! Headers every response carries (request id included), the access log
//! ([`access`]), request metrics and the health gate.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{access, HttpState};

/// The authenticated caller of a request, set by the dispatcher so the access
/// log says who pushed or pulled what.
#[derive(Clone)]
pub struct CallerName(pub String);

/// Adds `Docker-Distribution-API-Version`, `X-Request-Id` and the
/// configured `http.headers`, writes one access-log line per request (when
/// its body has been sent) unless disabled, and records the request's
/// metrics when enabled (`super::metrics`).
pub async fn common_headers(
    State(st): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let (mut req, recording) = super::metrics::start(&st, req);
    let request_id = access::request_id(req.headers());
    req.headers_mut()
        .insert(access::REQUEST_ID, request_id.clone());
    let log = !st.config.log.accesslog.disabled;
    let pending = log.then(|| {
        let client = st
            .client_ip
            .resolve(super::peer_addr(req.extensions()), req.headers());
        (
            req.method().clone(),
            req.uri().path().to_string(),
            client.map(|c| c.to_string()).unwrap_or_default(),
        )
    });
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
    let id = request_id.to_str().unwrap_or_default().to_string();
    h.insert(access::REQUEST_ID, request_id);
    let Some((method, route, client)) = pending else {
        return resp;
    };
    let ext = resp.extensions();
    let record = access::AccessRecord {
        started,
        method,
        route,
        repository: ext
            .get::<access::RepoLabel>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        status: resp.status().as_u16(),
        user: ext
            .get::<CallerName>()
            .map(|c| c.0.clone())
            .unwrap_or_default(),
        client,
        request_id: id,
    };
    resp.map(|body| Body::new(access::LoggedBody::new(body, record)))
}

/// While a `health:` check fails, every request answers 503 UNAVAILABLE, as
/// registry:2's health handler does, except `/healthz` and `/readyz`, which
/// report the failing checks themselves.
pub async fn health_gate(State(st): State<Arc<HttpState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let bare = path.strip_prefix(st.prefix.as_str()).unwrap_or(path);
    let probe = |p: &str| path == p || bare == p;
    let healthz = probe("/healthz") || probe("/readyz");
    if st.health.is_empty() || healthz || st.health.is_healthy() {
        return next.run(req).await;
    }
    crate::error::ApiError::new(crate::error::ErrorCode::Unavailable)
        .message("service unavailable")
        .detail("health check failed: please see /debug/health")
        .into_response()
}
