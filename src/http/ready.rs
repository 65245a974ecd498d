//! Readiness (`/readyz`): whether this process should be sent new
//! requests. False from the moment shutdown starts (before the drain), so a
//! load balancer stops routing here while in-flight requests finish; false
//! too while storage does not answer or a `health:` check fails.
//! `/healthz` stays the liveness probe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::error::{ApiError, ErrorCode};

/// The shared "not draining" flag; cheap to clone, one per serving process.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// A flag that says ready (not draining).
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Marks the process as shutting down: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// `GET /readyz`: 200 `{"status":"ready"}` when the configuration is loaded
/// (it is, once this answers), storage answers, no `health:` check fails and
/// shutdown has not started; 503 `UNAVAILABLE` naming the reason otherwise.
/// Open to all, like `/healthz`.
pub(crate) async fn readyz(State(st): State<Arc<HttpState>>) -> Response {
    if st.readiness.is_draining() {
        return unavailable("shutting down");
    }
    if let Some(failed) = failing_checks(&st) {
        return failed;
    }
    if let Err(e) = st.registry.check_storage().await {
        tracing::warn!(error = %e, "readiness: storage unavailable");
        return unavailable("storage unavailable");
    }
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        r#"{"status":"ready"}"#,
    )
        .into_response()
}

/// 503 naming the failing `health:` checks, when any fails; shared by
/// `/healthz` and `/readyz`.
pub(crate) fn failing_checks(st: &HttpState) -> Option<Response> {
    let failing = st.health.failing();
    (!failing.is_empty()).then(|| {
        ApiError::new(ErrorCode::Unavailable)
            .message("health check failed")
            .detail(failing)
            .into_response()
    })
}

fn unavailable(why: &str) -> Response {
    ApiError::new(ErrorCode::Unavailable)
        .message(why)
        .into_response()
}
