//! Logging in and out of the UI. With htpasswd (or berth's built-in token
//! issuer, against its users file) a form posts the password, checked by
//! the same authenticator and login throttle as the API's basic auth; a
//! success starts a new signed session. Logout ends it.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::delete::checked_form;
use super::html::{self, esc};
use super::session::{self, Session};
use super::view::View;
use crate::auth::authenticator::{AuthFailure, Identity};
use crate::auth::Credentials;
use crate::http::HttpState;

/// `GET /ui/login`.
pub(super) async fn form(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    match View::new(&st, &parts).await {
        Ok(v) => {
            let next = v.query("next").unwrap_or("").to_string();
            login_page(&v, StatusCode::OK, None, &next)
        }
        Err(resp) => resp,
    }
}

fn login_page(v: &View<'_>, status: StatusCode, error: Option<&str>, next: &str) -> Response {
    if !v.can_login() {
        let text = if v.st.auth.enabled() {
            "This registry's tokens come from an external server, so there is no login here: \
             the UI shows what anonymous users may pull."
        } else {
            "This registry has no authentication: there is nothing to log in to."
        };
        return v.message(StatusCode::NOT_FOUND, "Log in", text);
    }
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&html::notice("error", e));
    }
    if let Some(u) = v.user() {
        body.push_str(&html::notice("info", &format!("You are signed in as {u}.")));
    }
    body.push_str(&format!(
        "<form class=\"login\" method=\"post\" action=\"{}/login\">{}\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"username\">User name</label>\
         <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" class=\"primary\" id=\"login-submit\">Log in</button></form>",
        esc(&v.base()),
        v.csrf_field(),
        esc(next)
    ));
    v.page(status, "Log in", &body)
}

/// Where to go after logging in: a path inside the UI, else its root.
fn safe_next(base: &str, next: &str) -> String {
    let inside = next.starts_with(&format!("{base}/"))
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if inside {
        next.to_string()
    } else {
        format!("{base}/")
    }
}

/// `POST /ui/login`: checks the password, then a new session cookie and
/// back to `next`.
pub(super) async fn submit(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let v = match View::new(&st, &parts).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = match checked_form(&v, &parts, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let next = form.get("next").to_string();
    if !v.can_login() {
        return login_page(&v, StatusCode::NOT_FOUND, None, &next);
    }
    let user = form.get("username").to_string();
    let creds = Credentials::Basic {
        user: user.clone(),
        password: form.get("password").to_string(),
    };
    match st.auth.authenticate(&creds, st.client(&parts)).await {
        Ok(Identity::User(name)) => {
            tracing::info!(user = %name, "web UI: logged in");
            let fresh = Session::new(Some(name), SystemTime::now());
            let mut resp = super::redirect(&safe_next(&v.base(), &next));
            v.attach_cookie(&mut resp, &fresh);
            resp
        }
        Ok(_) | Err(AuthFailure::BadCredentials | AuthFailure::InvalidToken(_)) => {
            tracing::info!(user = %user, "web UI: login refused");
            login_page(
                &v,
                StatusCode::UNAUTHORIZED,
                Some("Wrong user name or password."),
                &next,
            )
        }
        Err(AuthFailure::RateLimited(_)) => login_page(
            &v,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed or concurrent logins from this address; retry later."),
            &next,
        ),
    }
}

/// `POST /ui/logout`: the session cookie is cleared.
pub(super) async fn logout(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let v = match View::new(&st, &parts).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if let Err(resp) = checked_form(&v, &parts, body).await {
        return resp;
    }
    let mut resp = super::redirect(&format!("{}/", v.base()));
    if let Ok(value) = session::set_cookie("", 0, v.tls).parse() {
        resp.headers_mut()
            .append(axum::http::header::SET_COOKIE, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_inside_the_ui() {
        assert_eq!(safe_next("/ui", "/ui/r/a"), "/ui/r/a");
        assert_eq!(safe_next("/p/ui", "/p/ui/status"), "/p/ui/status");
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/ui//evil",
            "/uix",
            "/ui/\\evil",
            "/other",
        ] {
            assert_eq!(safe_next("/ui", bad), "/ui/", "{bad}");
        }
    }
}
