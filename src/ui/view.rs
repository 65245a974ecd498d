//! One UI request's context: who is calling (session cookie, else browser
//! basic auth, else anonymous), what they may do, and how pages are sent
//! (layout, session cookie, no caching).

use std::time::SystemTime;

use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::html::{self, esc, Layout};
use super::session::{self, Session};
use crate::auth::authenticator::{AuthFailure, Identity};
use crate::auth::{Action, Credentials};
use crate::http::HttpState;

/// A UI request, once its caller is known.
pub(crate) struct View<'a> {
    pub st: &'a HttpState,
    /// Who is calling, for the policy.
    pub identity: Identity,
    /// The browser's session (a new anonymous one when it had none).
    pub session: Session,
    /// True when `session` is new and must be sent as a cookie.
    fresh: bool,
    /// True when the request came over TLS (directly or per a trusted proxy).
    pub tls: bool,
    /// The query string's pairs, decoded.
    query: Vec<(String, String)>,
    /// The `Host` the browser used (validated), for pull lines.
    pub host: Option<String>,
}

impl<'a> View<'a> {
    /// Identifies the caller. A valid session cookie wins; else an
    /// `Authorization` header (browser basic auth, or a bearer token) is
    /// checked as the API checks it; wrong credentials get the login page.
    pub async fn new(st: &'a HttpState, parts: &Parts) -> Result<View<'a>, Response> {
        let now = SystemTime::now();
        let cookies = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let stored = session::cookie_value(cookies)
            .and_then(|v| Session::decode(v, &st.ui.key, now))
            // A session outlives neither its user nor a switch to an auth
            // scheme without passwords.
            .filter(|s| match &s.user {
                Some(u) => st.auth.knows_user(u) == Some(true),
                None => true,
            });
        let tls = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim() == "https");
        let query = parts
            .uri
            .query()
            .map(|q| crate::http::form_pairs(q).take(32).collect())
            .unwrap_or_default();
        let host = request_host(st, parts);
        let (session, fresh) = match stored {
            Some(s) => (s, false),
            None => (Session::new(None, now), true),
        };
        let mut identity = match &session.user {
            Some(u) => Identity::User(u.clone()),
            None => Identity::Anonymous,
        };
        if session.user.is_none() {
            let creds = Credentials::from_header(
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
            );
            if creds != Credentials::None {
                match st.auth.authenticate(&creds, st.client(parts)).await {
                    Ok(id) => identity = id,
                    Err(e) => {
                        let v = View {
                            st,
                            identity,
                            session,
                            fresh,
                            tls,
                            query,
                            host,
                        };
                        return Err(v.auth_failed(&e));
                    }
                }
            }
        }
        Ok(View {
            st,
            identity,
            session,
            fresh,
            tls,
            query,
            host,
        })
    }

    fn auth_failed(&self, e: &AuthFailure) -> Response {
        match e {
            AuthFailure::RateLimited(_) => self.message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many failed or concurrent logins from this address; retry later.",
            ),
            _ => self.message(
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "The credentials your browser sent were refused. Log in again.",
            ),
        }
    }

    /// A query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The UI's root path (`{http.prefix}/ui`).
    pub fn base(&self) -> String {
        format!("{}/ui", self.st.prefix)
    }

    /// The signed-in user's name.
    pub fn user(&self) -> Option<&str> {
        self.identity.name()
    }

    /// True when the caller may pull `repo` (so may see it at all).
    pub fn can_pull(&self, repo: &str) -> bool {
        self.st.policy.is_open()
            || crate::http::auth::permissions(self.st, &self.identity, repo).contains(Action::Pull)
    }

    /// True when `repo` shows in the caller's repository list (the rule
    /// `_catalog` and `/v1/search` filter by).
    pub fn can_list(&self, repo: &str) -> bool {
        self.st.policy.is_open() || crate::http::auth::can_list(self.st, &self.identity, repo)
    }

    /// True when deletes are on, the registry is writable and the caller
    /// may delete in `repo`.
    pub fn can_delete(&self, repo: &str) -> bool {
        self.st.registry.options().delete_enabled
            && !self.st.config.storage.maintenance.readonly.enabled
            && (self.st.policy.is_open()
                || crate::http::auth::permissions(self.st, &self.identity, repo)
                    .contains(Action::Delete))
    }

    /// This session's CSRF token.
    pub fn csrf(&self) -> String {
        self.session.csrf_token(&self.st.ui.key)
    }

    /// A hidden form field with the CSRF token.
    pub fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            esc(&self.csrf())
        )
    }

    /// True when a login form makes sense (the scheme has passwords).
    pub fn can_login(&self) -> bool {
        self.st.auth.knows_user("").is_some()
    }

    /// A page: the layout around `body`, never cached, with the session
    /// cookie when the session is new.
    pub fn page(&self, status: StatusCode, title: &str, body: &str) -> Response {
        let csrf = self.csrf();
        let layout = Layout {
            title,
            base: &self.base(),
            user: self.user(),
            can_login: self.can_login(),
            csrf: &csrf,
            css_version: super::assets::version("ui.css"),
            js_version: super::assets::version("ui.js"),
        };
        let doc = html::page(&layout, body);
        let mut resp = (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            doc,
        )
            .into_response();
        if self.fresh {
            self.attach_cookie(&mut resp, &self.session);
        }
        self.mark_caller(&mut resp);
        resp
    }

    /// Names the caller on `resp` for the access log.
    pub fn mark_caller(&self, resp: &mut Response) {
        if let Some(name) = self.user() {
            resp.extensions_mut()
                .insert(crate::http::middleware::CallerName(name.to_string()));
        }
    }

    /// A page holding one message (errors, refusals).
    pub fn message(&self, status: StatusCode, title: &str, text: &str) -> Response {
        let kind = if status.is_success() { "info" } else { "error" };
        let back = format!(
            "<p><a href=\"{}/\">Back to the repositories</a></p>",
            esc(&self.base())
        );
        self.page(status, title, &(html::notice(kind, text) + &back))
    }

    /// Sets `session` as the browser's cookie on `resp`.
    pub fn attach_cookie(&self, resp: &mut Response, session: &Session) {
        let value = session::set_cookie(
            &session.encode(&self.st.ui.key),
            session::TTL.as_secs(),
            self.tls,
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// The host the browser used, for `docker pull HOST/NAME` lines: the
/// authority of `http.host` when configured, else the (trusted) forwarded
/// host or `Host`, each only when it is a valid authority.
fn request_host(st: &HttpState, parts: &Parts) -> Option<String> {
    let configured = &st.config.http.host;
    if !configured.is_empty() {
        let rest = configured
            .split_once("://")
            .map_or(configured.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or("");
        return crate::http::forwarded::valid_authority(authority).then(|| authority.to_string());
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|h| crate::http::forwarded::valid_authority(h))
            .map(str::to_string)
    };
    header("x-forwarded-host").or_else(|| header("host"))
}
