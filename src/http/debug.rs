//! The debug listener's routes (`http.debug.addr`), as registry:2 serves
//! them there: `/debug/health`, `/debug/vars`, berth's `/debug/events`
//! (notification delivery counters), and the Prometheus metrics
//! when `http.debug.prometheus.enabled`. Plain HTTP, no authentication:
//! bind it to a private address.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::HttpState;
use crate::config::PrometheusConfig;

/// The debug listener's router.
pub fn router(state: Arc<HttpState>) -> Router {
    let prometheus = &state.config.http.debug.prometheus;
    let mut app = Router::new()
        .route("/debug/health", get(health))
        .route("/debug/vars", get(vars))
        .route("/debug/events", get(events));
    if prometheus.enabled {
        app = app.route(&metrics_path(prometheus), get(super::metrics::metrics));
    }
    app.with_state(state)
}

/// `http.debug.prometheus.path` as a route (`/metrics` when empty).
pub(crate) fn metrics_path(prometheus: &PrometheusConfig) -> String {
    match prometheus.path.as_str() {
        "" => "/metrics".to_string(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    }
}

/// `GET /debug/health`: the failing checks as a JSON object (name → error),
/// 200 when it is empty, 503 otherwise: distribution's StatusHandler.
async fn health(State(st): State<Arc<HttpState>>) -> Response {
    let failing = st.health.failing();
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string(&failing).unwrap_or_else(|_| "{}".into());
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /debug/vars`: a small JSON of process facts, in the spirit of Go's
/// expvar page (which registry:2 serves here).
async fn vars(State(st): State<Arc<HttpState>>) -> Response {
    let body = serde_json::json!({
        "cmdline": std::env::args().collect::<Vec<_>>(),
        "berth": {
            "version": env!("CARGO_PKG_VERSION"),
            "healthy": st.health.is_healthy(),
        },
    });
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /debug/events`: per-notification-endpoint counters (sent, failed,
/// retried, dropped, pending) as `{"endpoints":[...]}`.
async fn events(State(st): State<Arc<HttpState>>) -> Response {
    let body = serde_json::json!({ "endpoints": st.events.status() });
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}
