//! Web UI: HTML pages for browsers, a sibling of the API under `http`. It
//! reads the registry layer (listings, manifests, referrers) and asks `auth`
//! exactly as the API does (same authenticator, same `access:` rules); it
//! never touches a storage driver. docs/ui.md describes the pages.

mod assets;
mod delete;
pub mod html;
mod login;
mod manifest;
pub mod paging;
mod repo;
mod repos;
mod route;
pub mod session;
mod status;
mod status_feeds;
mod view;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;

use crate::http::HttpState;

/// What the UI keeps for the life of the process.
pub struct UiState {
    /// Signs session cookies and CSRF tokens.
    pub key: session::SessionKey,
    /// For the status page's uptime.
    pub started: Instant,
}

impl UiState {
    /// The session key from `http.secret` (or a random one).
    pub fn new(config: &crate::config::Config) -> UiState {
        UiState {
            key: session::SessionKey::from_secret(&config.http.secret),
            started: Instant::now(),
        }
    }
}

/// The `Content-Security-Policy` of every UI response: only this origin's
/// script and style files, no inline code, no framing, forms post here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'; object-src 'none'";

/// The UI's routes (`/ui`, `/ui/...`), to merge into the API router when
/// `ui.enabled`; every answer carries the security headers.
pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/ui", get(to_root))
        .route("/ui/", get(repos::list))
        .route("/ui/r/{*rest}", get(repo::get_dispatch).post(delete::post))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/status", get(status::page))
        .route("/ui/assets/{file}", get(assets::serve))
        .route("/ui/{*rest}", any(not_found))
        .layer(axum::middleware::from_fn(security_headers))
}

/// True when the client asks for HTML (a browser): `GET /` then goes to the
/// UI; API clients and probes (no `Accept`, `*/*`, JSON) keep the API's
/// answer.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
        })
}

/// `GET /` from a browser: to the repository list.
pub fn home_redirect(st: &HttpState) -> Response {
    redirect(&format!("{}/ui/", st.prefix))
}

async fn to_root(axum::extract::State(st): axum::extract::State<Arc<HttpState>>) -> Response {
    home_redirect(&st)
}

/// 303 See Other to `location` (a path on this host).
pub(crate) fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn not_found(
    axum::extract::State(st): axum::extract::State<Arc<HttpState>>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    match view::View::new(&st, &parts).await {
        Ok(v) => v.message(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
        Err(resp) => resp,
    }
}

/// Adds the security headers to every UI response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut resp = next.run(request).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_told_apart_by_accept() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
            wants_html(&h)
        };
        assert!(with(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(with("TEXT/HTML"));
        assert!(!with("*/*"));
        assert!(!with("application/json"));
        assert!(!with("text/htmlx"));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
