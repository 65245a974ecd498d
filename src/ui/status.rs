//! The status page (`/ui/status`): version, storage, auth mode, deletes and
//! read-only mode, the repository index, the last garbage collection and
//! uptime; each mirror and each notification endpoint (`status_feeds`).
//! Each kind of section is one function in [`SECTIONS`].

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{self, esc};
use super::view::View;
use crate::http::HttpState;

/// A section: its heading and label/value rows (all plain text, escaped
/// when rendered).
pub struct Section {
    /// The heading (may name a configured entry, so it is escaped too).
    pub title: String,
    /// Label and value rows.
    pub rows: Vec<(&'static str, String)>,
}

impl Section {
    fn new(title: impl Into<String>, rows: Vec<(&'static str, String)>) -> Vec<Section> {
        vec![Section {
            title: title.into(),
            rows,
        }]
    }
}

/// The sections in page order. A function returns no section for a
/// feature that is not configured, one per entry for lists (mirrors,
/// notification endpoints).
pub const SECTIONS: &[fn(&HttpState) -> Vec<Section>] = &[
    server,
    storage,
    gc,
    super::status_feeds::mirrors,
    super::status_feeds::notifications,
];

fn server(st: &HttpState) -> Vec<Section> {
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
    Section::new(
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
    )
}

fn storage(st: &HttpState) -> Vec<Section> {
    let index = match st.registry.repo_index().size() {
        Some(n) => format!("{n} repositories"),
        None => "not built (listings walk storage)".into(),
    };
    Section::new(
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
    )
}

fn gc(st: &HttpState) -> Vec<Section> {
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
    Section::new("Garbage collection", rows)
}

pub(super) fn yes_no(b: bool, yes: &str, no: &str) -> String {
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
    for Section { title, rows } in SECTIONS.iter().flat_map(|s| s(&st)) {
        let _ = write!(body, "<h2>{}</h2>", esc(&title));
        let rows: Vec<(&str, String)> = rows.into_iter().map(|(k, v)| (k, esc(&v))).collect();
        body.push_str(&html::facts(&rows));
    }
    v.page(StatusCode::OK, "Status", &body)
}
