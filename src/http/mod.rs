//! HTTP layer: parses requests, checks them, calls the registry layer and
//! writes responses. It never touches a storage driver directly.

pub mod access;
pub mod activity;
pub(crate) mod auth;
mod blobs;
mod body_idle;
pub mod client_ip;
pub mod conn_limit;
pub mod debug;
mod early;
pub mod endpoint;
mod errors;
mod events;
pub mod forwarded;
pub mod fuzz;
mod head_limit;
pub mod limits;
mod listing;
pub(crate) mod manifests;
mod metrics;
pub(crate) mod middleware;
mod mirror;
pub mod ready;
pub mod server;
mod token;
mod upload_pace;
mod uploads;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures::TryStreamExt;

use crate::auth::authenticator::{Authenticator, Identity};
use crate::auth::policy::Policy;
use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::registry::Registry;
use client_ip::ClientIp;
use endpoint::Endpoint;

/// What every handler shares.
pub struct HttpState {
    pub registry: Registry,
    pub config: Arc<Config>,
    /// Checks who is calling.
    pub auth: Authenticator,
    /// Decides what callers may do.
    pub policy: Policy,
    /// Who the client is behind trusted proxies.
    pub client_ip: ClientIp,
    /// The `health:` checks; while one fails every request answers 503.
    pub health: crate::health::Health,
    /// `http.prefix`, normalized (`""` or `/a/b`): every API route and
    /// generated URL starts with it.
    pub prefix: String,
    /// False once shutdown starts; `/readyz` reports it.
    pub readiness: ready::Readiness,
    /// Where notifications go (`NoEvents` without endpoints).
    pub events: Arc<dyn crate::events::EventSink>,
    /// The web UI's session key and start time.
    pub ui: crate::ui::UiState,
    /// `limits.uploads` / `limits.uploadsperclient`: upload requests in
    /// progress.
    pub uploads: Arc<limits::UploadLimiter>,
}

impl HttpState {
    /// The client's address (behind trusted proxies, the one they name).
    pub(crate) fn client(&self, parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
        self.client_ip
            .resolve(peer_addr(&parts.extensions), &parts.headers)
    }
}

/// Handler result: a response or a spec-format error.
pub type HttpResult = Result<Response, ApiError>;

/// The whole HTTP surface of the registry. The API (and metrics, when no
/// debug listener serves them) lives under `http.prefix`; `/`, `/healthz`,
/// `/readyz` and `/_ping` also answer at the root, for probes that bypass
/// the proxy.
pub fn router(state: Arc<HttpState>) -> Router {
    let prometheus = &state.config.http.debug.prometheus;
    let mut api = Router::new();
    // registry:2 serves metrics only on the debug listener; without one,
    // berth keeps serving them here (as it always did).
    if prometheus.enabled && state.config.http.debug.addr.is_empty() {
        api = api.route(&debug::metrics_path(prometheus), get(metrics::metrics));
    }
    let api = api
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .route("/v1/_ping", get(ping))
        .route("/_ping", get(ping))
        .route("/healthz", get(health))
        .route("/readyz", get(ready::readyz))
        .route("/v1/search", get(listing::search))
        .route("/auth/token", get(token::token).post(token::token));
    let api = if state.config.ui.enabled {
        api.merge(crate::ui::routes())
    } else {
        api
    };
    let app = if state.prefix.is_empty() {
        api.route("/", any(home))
    } else {
        Router::new()
            .nest(&state.prefix, api.route("/", any(home)))
            .route("/", any(home))
            .route("/_ping", get(ping))
            .route("/healthz", get(health))
            .route("/readyz", get(ready::readyz))
    };
    app.fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::health_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forwarded::sanitize,
        ))
        // Outermost: also records metrics, so every answer counts
        // (health gate, fallback, errors).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::common_headers,
        ))
        .with_state(state)
}

/// `/` (any method): 200 with no body, as registry:2 answers liveness and
/// readiness probes (the Helm chart's); a browser's `GET` (one asking for
/// `text/html`) goes to the web UI when `ui.enabled`.
async fn home(State(st): State<Arc<HttpState>>, method: Method, headers: HeaderMap) -> Response {
    if st.config.ui.enabled && method == Method::GET && crate::ui::wants_html(&headers) {
        return crate::ui::home_redirect(&st);
    }
    (
        [(axum::http::header::CACHE_CONTROL, "no-cache")],
        Body::empty(),
    )
        .into_response()
}

/// `GET /v2/`: tells clients this is a V2 registry.
async fn base(method: Method) -> HttpResult {
    Endpoint::parse(&method, "")?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response())
}

/// `GET /v1/_ping` and `/_ping`: liveness for the old API and load balancers.
async fn ping() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (
                axum::http::HeaderName::from_static("x-docker-registry-standalone"),
                "true",
            ),
        ],
        "{}",
    )
        .into_response()
}

/// `GET /healthz`: 200 while storage answers and no `health:` check fails,
/// 503 otherwise (with the failing checks as detail); open to all, for load
/// balancers and orchestrators.
async fn health(State(st): State<Arc<HttpState>>) -> Response {
    if let Some(failed) = ready::failing_checks(&st) {
        return failed;
    }
    match st.registry.check_storage().await {
        Ok(()) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ok"}"#,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: storage unavailable");
            ApiError::new(ErrorCode::Unavailable)
                .message("storage unavailable")
                .into_response()
        }
    }
}

async fn fallback() -> Response {
    ApiError::new(ErrorCode::Unsupported)
        .message("unknown API endpoint")
        .status(StatusCode::NOT_FOUND)
        .into_response()
}

/// One handler for everything under `/v2/<...>`: parse, authenticate,
/// authorize, dispatch. The caller's name and the repository ride on the
/// response for the access log.
async fn dispatch(State(st): State<Arc<HttpState>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let client = st.client(&parts);
    let mut identity = Identity::Anonymous;
    let mut repo = None;
    let result = handle(&st, &parts, body, client, &mut identity, &mut repo).await;
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    if let Some(name) = identity.name() {
        resp.extensions_mut()
            .insert(middleware::CallerName(name.to_string()));
    }
    if let Some(repo) = repo {
        resp.extensions_mut().insert(access::RepoLabel(repo));
    }
    resp
}

async fn handle(
    st: &HttpState,
    parts: &axum::http::request::Parts,
    body: Body,
    client: Option<std::net::IpAddr>,
    identity: &mut Identity,
    repo: &mut Option<String>,
) -> HttpResult {
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let path = match uri.path().strip_prefix("/v2") {
        Some(rest) => rest.strip_prefix('/').unwrap_or(rest),
        None => return Err(ApiError::new(ErrorCode::Unsupported).status(StatusCode::NOT_FOUND)),
    };
    if method == Method::OPTIONS {
        return preflight(path);
    }
    let mut endpoint = Endpoint::parse(method, path)?;
    mirror::apply_ns(st, uri, &mut endpoint);
    *repo = endpoint
        .required_access()
        .map(|(name, _)| name.as_str().to_string());
    let anonymous = Identity::Anonymous;
    let pre = Req {
        st,
        uri,
        headers,
        identity: &anonymous,
        client,
        peer: peer_socket(&parts.extensions),
    };
    *identity = auth::identify(pre, client).await?;
    let req = Req {
        st,
        uri,
        headers,
        identity,
        client,
        peer: peer_socket(&parts.extensions),
    };
    auth::authorize(req, &endpoint)?;
    mirror::check_write(st, &endpoint)?;
    if endpoint.is_write() && st.config.storage.maintenance.readonly.enabled {
        return Err(ApiError::new(ErrorCode::Unsupported)
            .message("the registry is in read-only mode: writes are disabled"));
    }
    // Held until the handler returns, which is after the body is read.
    // `GET /v2/` (version checks, load balancers' health checks) does not
    // make an address present for upload pacing.
    let _present = (!matches!(endpoint, Endpoint::Base)).then(|| st.uploads.pacer.enter(client));
    let (body, _upload_slot) = match endpoint {
        Endpoint::StartUpload { .. }
        | Endpoint::PatchUpload { .. }
        | Endpoint::PutUpload { .. } => {
            let slot = match st.uploads.acquire(client) {
                Ok(slot) => slot,
                Err(e) => {
                    st.uploads.pacer.refused(client).await;
                    return Err(e);
                }
            };
            (st.uploads.pacer.pace(client, body), Some(slot))
        }
        _ => (body, None),
    };
    use Endpoint::*;
    match endpoint {
        Base => base(method.clone()).await,
        Catalog => listing::catalog(req).await,
        TagsList { name } => listing::tags(req, &name).await,
        Referrers { name, digest } => listing::referrers(req, &name, &digest).await,
        GetManifest {
            name,
            reference,
            head,
        } => manifests::get(req, &name, &reference, head).await,
        PutManifest { name, reference } => manifests::put(req, &name, &reference, body).await,
        DeleteManifest { name, reference } => manifests::delete(req, &name, &reference).await,
        GetBlob { name, digest, head } => blobs::get(req, &name, &digest, head).await,
        DeleteBlob { name, digest } => blobs::delete(req, &name, &digest).await,
        StartUpload { name } => uploads::start(req, &name, body).await,
        GetUpload { name, id } => uploads::status(req, &name, &id).await,
        PatchUpload { name, id } => uploads::patch(req, &name, &id, body).await,
        PutUpload { name, id } => uploads::put(req, &name, &id, body).await,
        DeleteUpload { name, id } => uploads::cancel(req, &name, &id).await,
    }
}

/// `OPTIONS` on an API path: 200 with `Allow` naming the methods the path
/// takes, before and without authentication, so browsers' CORS preflights
/// (which never carry credentials) pass; the CORS headers themselves are
/// the configured `http.headers`, added to every response. A path no
/// method takes answers as a GET would (404/400).
fn preflight(path: &str) -> HttpResult {
    const METHODS: [Method; 6] = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
    ];
    let allowed: Vec<&str> = METHODS
        .iter()
        .filter(|m| Endpoint::parse(m, path).is_ok())
        .map(Method::as_str)
        .collect();
    if allowed.is_empty() {
        Endpoint::parse(&Method::GET, path)?;
    }
    let mut allow = allowed.join(", ");
    if !allow.is_empty() {
        allow.push_str(", OPTIONS");
    }
    Ok(([(axum::http::header::ALLOW, allow)], Body::empty()).into_response())
}

/// The peer address, when the server recorded it.
pub(crate) fn peer_addr(ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The connection's remote address and port, when the server recorded it.
pub(crate) fn peer_socket(ext: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

/// The parts of a request handlers read besides the endpoint itself.
#[derive(Clone, Copy)]
pub(crate) struct Req<'a> {
    pub st: &'a HttpState,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// Who is calling (anonymous until authenticated).
    pub identity: &'a Identity,
    /// The client's address (behind trusted proxies, the one they name).
    pub client: Option<std::net::IpAddr>,
    /// The connection's remote address and port.
    pub peer: Option<std::net::SocketAddr>,
}

impl Req<'_> {
    /// A query parameter, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.uri.query()?;
        form_pairs(q).find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A header as a string, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL clients should use for `path` (an absolute path such as
    /// `/v2/x/blobs/uploads/<id>`, without `http.prefix`, which is added
    /// here): absolute from `http.host`, or from the request's
    /// forwarded/Host headers, or relative when configured (or when no
    /// header names a valid host). Forwarded headers reach here only from
    /// trusted proxies ([`forwarded::sanitize`]); each host value is used
    /// only when it is a valid authority ([`forwarded::valid_authority`]),
    /// else the next one is tried.
    pub fn location(&self, path: &str) -> String {
        let prefixed = format!("{}{path}", self.st.prefix);
        let path = prefixed.as_str();
        let http = &self.st.config.http;
        if http.relativeurls {
            return path.to_string();
        }
        if !http.host.is_empty() {
            return format!("{}{}", http.host.trim_end_matches('/'), path);
        }
        let forwarded = self
            .header("x-forwarded-host")
            .and_then(|h| h.split(',').next())
            .map(str::trim)
            .filter(|h| forwarded::valid_authority(h));
        let host = forwarded.or_else(|| {
            self.header("host")
                .map(str::trim)
                .filter(|h| forwarded::valid_authority(h))
        });
        match host {
            Some(h) => {
                let proto = self
                    .header("x-forwarded-proto")
                    .and_then(|p| p.split(',').next())
                    .map(str::trim)
                    .filter(|p| *p == "https" || *p == "http")
                    .unwrap_or("http");
                format!("{proto}://{h}{path}")
            }
            _ => path.to_string(),
        }
    }
}

/// Decodes `a=b&c=d` query strings.
pub(crate) fn form_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request body as the registry layer's byte stream, failing after
/// `idle` without data (`http.bodyidletimeout`; zero: never).
pub(crate) fn body_stream(
    body: Body,
    idle: std::time::Duration,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Unpin {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    body_idle::IdleLimited::new(stream, idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let pairs: Vec<_> =
            form_pairs("digest=sha256%3Aabc&n=10&x&last=a%2Fb+c&bad=%zz%4").collect();
        assert_eq!(
            pairs,
            vec![
                ("digest".into(), "sha256:abc".into()),
                ("n".into(), "10".into()),
                ("x".into(), "".into()),
                ("last".into(), "a/b c".into()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }
}
