//! Deleting a tag or a manifest from the UI, and the checks every
//! state-changing form passes: the session's CSRF token in a hidden field
//! and an `Origin` (or `Referer`) of this host. A form failing either gets
//! 403 and a message page.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;

use super::html::{esc, url_enc};
use super::repo::hidden;
use super::route::{parse_target, rest_of, Target};
use super::view::View;
use crate::http::HttpState;
use crate::oci::name::{Reference, RepoName};
use crate::registry::RegistryError;

/// Largest form body read.
const MAX_FORM: usize = 16 * 1024;

/// A form's fields, decoded.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    /// A field's value (empty when absent).
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Reads a urlencoded form body (bounded) and checks origin and CSRF
/// token; the refusal page otherwise.
pub(super) async fn checked_form(
    v: &View<'_>,
    parts: &Parts,
    body: axum::body::Body,
) -> Result<Form, Response> {
    let refuse = |why: &str| v.message(StatusCode::FORBIDDEN, "Form refused", why);
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return Err(refuse("The form was too large or could not be read."));
    };
    let text = String::from_utf8_lossy(&bytes);
    let form = Form(crate::http::form_pairs(&text).take(64).collect());
    if !same_origin(parts) {
        return Err(refuse(
            "The form did not come from this site (Origin/Referer check). Reload the page and try again.",
        ));
    }
    if !v.session.check_csrf(&v.st.ui.key, form.get("csrf")) {
        return Err(refuse(
            "The form's security token is missing or stale (CSRF check). Reload the page and try again.",
        ));
    }
    Ok(form)
}

/// True when the request's `Origin` (else `Referer`) names the host the
/// request was sent to. Neither present, or `Origin: null`: false.
pub(super) fn same_origin(parts: &Parts) -> bool {
    let get = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let host = get("x-forwarded-host")
        .and_then(|h| h.split(',').next())
        .or_else(|| get("host"))
        .map(str::trim);
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    let source = get("origin").or_else(|| get("referer"));
    let authority = source
        .and_then(|s| s.split_once("://"))
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// The delete button of a tag or manifest: a form posting the CSRF token,
/// confirmed in a dialog by the script (or on a page without it).
pub(super) fn form(v: &View<'_>, name: &RepoName, reference: &str, question: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}/r/{}/-/delete\" class=\"inline\" data-confirm=\"{}\">{}\
         <input type=\"hidden\" name=\"reference\" value=\"{}\">\
         <input type=\"hidden\" name=\"confirmed\" value=\"\">\
         <button type=\"submit\" class=\"danger\" aria-label=\"{}\">Delete</button></form>",
        esc(&v.base()),
        esc(&url_enc(name.as_str(), true)),
        esc(question),
        v.csrf_field(),
        esc(reference),
        esc(question)
    )
}

/// The confirmation page (`GET /ui/r/<name>/-/delete?reference=`, or a
/// delete form posted without the script's confirmation).
pub(super) fn confirm_page(v: &View<'_>, name: &RepoName, reference: Option<&str>) -> Response {
    let reference = reference.or(v.query("reference")).unwrap_or("");
    let Ok(parsed) = reference.parse::<Reference>() else {
        return v.message(
            StatusCode::BAD_REQUEST,
            "Delete",
            "Name a tag or a digest to delete.",
        );
    };
    if !v.can_delete(name.as_str()) {
        return refused(v);
    }
    let what = match &parsed {
        Reference::Tag(t) => format!("the tag {name}:{t} (the manifest it points at stays)"),
        Reference::Digest(d) => format!("the manifest {name}@{d} and every tag pointing at it"),
    };
    let body = format!(
        "<p>Delete {}?</p><form method=\"post\" action=\"{}/r/{}/-/delete\">{}\
         <input type=\"hidden\" name=\"reference\" value=\"{}\">\
         <input type=\"hidden\" name=\"confirmed\" value=\"yes\">\
         <button type=\"submit\" class=\"danger\" id=\"confirm-delete\">Delete</button> \
         <a href=\"{}/r/{}\">Cancel</a></form>",
        esc(&what),
        esc(&v.base()),
        esc(&url_enc(name.as_str(), true)),
        v.csrf_field(),
        esc(reference),
        esc(&v.base()),
        esc(&url_enc(name.as_str(), true)),
    );
    v.page(StatusCode::OK, "Confirm delete", &body)
}

fn refused(v: &View<'_>) -> Response {
    let why = if !v.st.registry.options().delete_enabled {
        "Deletes are disabled on this registry (storage.delete.enabled)."
    } else if v.st.config.storage.maintenance.readonly.enabled {
        "The registry is in read-only mode."
    } else {
        "You may not delete in this repository."
    };
    v.message(StatusCode::FORBIDDEN, "Delete refused", why)
}

/// `POST /ui/r/<name>/-/delete`: deletes the tag or manifest named by the
/// form, then back to the repository with a message.
pub(super) async fn post(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let v = match View::new(&st, &parts).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(Target::Delete(name)) =
        rest_of(parts.uri.path(), &st.prefix).and_then(|r| parse_target(&r))
    else {
        return v.message(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
    };
    let form = match checked_form(&v, &parts, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    if !v.can_pull(name.as_str()) {
        return hidden(&v);
    }
    let reference_text = form.get("reference");
    if form.get("confirmed") != "yes" {
        return confirm_page(&v, &name, Some(reference_text));
    }
    let Ok(reference) = reference_text.parse::<Reference>() else {
        return v.message(
            StatusCode::BAD_REQUEST,
            "Delete",
            "Name a tag or a digest to delete.",
        );
    };
    if !v.can_delete(name.as_str()) {
        return refused(&v);
    }
    let identity = v.identity.clone();
    let req = crate::http::Req {
        st: &st,
        uri: &parts.uri,
        headers: &parts.headers,
        identity: &identity,
        client: st.client(&parts),
        peer: crate::http::peer_socket(&parts.extensions),
    };
    // As the API's DELETE: notification endpoints hear of it.
    match crate::http::manifests::delete_notified(req, &name, &reference).await {
        Ok(()) => {
            tracing::info!(repository = %name, reference = %reference_text, user = v.user().unwrap_or("-"), "web UI: deleted");
            let what = match &reference {
                Reference::Tag(t) => format!("tag {t}"),
                Reference::Digest(d) => format!("manifest {d}"),
            };
            let mut resp = super::redirect(&format!(
                "{}/r/{}?deleted={}",
                v.base(),
                url_enc(name.as_str(), true),
                url_enc(&what, false)
            ));
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            v.mark_caller(&mut resp);
            resp
        }
        Err(e) => {
            let (status, text) = match &e {
                RegistryError::ManifestUnknown | RegistryError::NameUnknown => (
                    StatusCode::NOT_FOUND,
                    "Nothing to delete: no such tag or manifest (already deleted?).".to_string(),
                ),
                RegistryError::Unsupported(m) => (
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("The registry refused: {m}."),
                ),
                other => {
                    tracing::error!(repository = %name, error = %other, "web UI: delete failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "The delete failed (storage error; see the log).".to_string(),
                    )
                }
            };
            v.message(status, "Delete failed", &text)
        }
    }
}
