//! The status page (`/ui/status`): version, storage, auth mode, deletes and
//! read-only mode, the repository index, the last garbage collection and
//! uptime. Each section is one function in [`SECTIONS`]; a part of berth
//! with figures of its own (the mirror, notifications) adds one line there.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{self, esc};
use super::view::View;
use crate::http::HttpState;

/// A section: its heading and label/value rows (values are plain text,
/// escaped when rendered). `None` hides it (e.g. a feature not configured).
pub type Section = Option<(&'static str, Vec<(&'static str, String)>)>;

/// The sections in page order. Add a `fn(&HttpState) -> Section` here to
/// show more (mirror and notification figures go here once they exist).
pub const SECTIONS: &[fn(&HttpState) -> Section] = &[server, storage, gc];

fn server(st: &HttpState) -> Section {
    let auth = match (
        st.auth.enabled(),
        st.auth.is_token(),
        st.auth.builtin().is_some(),
    ) {
        (false, _, _) => "none (anyone may pull and push, as access rules allow)",
        (true, false, _) => "htpasswd",
        (true, true, true) => "token (berth's built-in issuer)",
        (true, true, false) => "token (external issuer)",
    };
    let started = st.ui.started.elapsed();
    Some((
        "Server",
        vec![
            ("Version", format!("berth {}", env!("CARGO_PKG_VERSION"))),
            ("Auth", auth.to_string()),
            (
                "Access rules",
                if st.config.access.is_some() {
                    "configured".into()
                } else {
                    "none".into()
                },
            ),
            ("Uptime", html::uptime(started)),
        ],
    ))
}

fn storage(st: &HttpState) -> Section {
    let index = match st.registry.repo_index().size() {
        Some(n) => format!("{n} repositories"),
        None => "not built (listings walk storage)".into(),
    };
    Some((
        "Storage",
        vec![
            // The driver's own name (what serves, whatever the file said).
            ("Driver", st.registry.driver().name().to_string()),
            (
                "Deletes",
                yes_no(st.registry.options().delete_enabled, "enabled", "disabled"),
            ),
            (
                "Read-only",
                yes_no(st.config.storage.maintenance.readonly.enabled, "yes", "no"),
            ),
            ("Repository index", index),
        ],
    ))
}

fn gc(st: &HttpState) -> Section {
    let rows = match st.registry.gc_stats().last_run() {
        None => vec![("Last run", "none since start".to_string())],
        Some(r) => vec![
            (
                "Last run",
                format!(
                    "{}{}",
                    html::time(r.finished),
                    if r.dry_run { " (dry run)" } else { "" }
                ),
            ),
            ("Freed", html::size(r.bytes_freed)),
            ("Blobs removed", r.blobs_removed.to_string()),
            ("Manifests removed", r.manifests_removed.to_string()),
            ("Runs / failures", format!("{} / {}", r.runs, r.failures)),
        ],
    };
    Some(("Garbage collection", rows))
}

fn yes_no(b: bool, yes: &str, no: &str) -> String {
    if b { yes } else { no }.to_string()
}

/// `GET /ui/status`.
pub(super) async fn page(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let v = match View::new(&st, &parts).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if st.auth.enabled() && v.user().is_none() {
        return v.message(
            StatusCode::UNAUTHORIZED,
            "Status",
            "Log in to see the registry's status.",
        );
    }
    let mut body = String::new();
    for (title, rows) in SECTIONS.iter().filter_map(|s| s(&st)) {
        let _ = write!(body, "<h2>{}</h2>", esc(title));
        let rows: Vec<(&str, String)> = rows.into_iter().map(|(k, v)| (k, esc(&v))).collect();
        body.push_str(&html::facts(&rows));
    }
    v.page(StatusCode::OK, "Status", &body)
}
