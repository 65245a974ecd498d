//! The UI's static files, compiled into the binary: one stylesheet and one
//! small script, served with strong ETags (a hash of their content) and
//! long caching, since pages link them by that hash.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;

/// (name, content type, content).
const FILES: [(&str, &str, &str); 2] = [
    (
        "ui.css",
        "text/css; charset=utf-8",
        include_str!("assets/ui.css"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/ui.js"),
    ),
];

/// The content hashes, computed once.
fn hashes() -> &'static [String; 2] {
    static H: OnceLock<[String; 2]> = OnceLock::new();
    H.get_or_init(|| {
        FILES.map(|(_, _, body)| hex::encode(&sha2::Sha256::digest(body.as_bytes())[..8]))
    })
}

/// The content hash of an asset (for `?v=` in links); empty if unknown.
pub fn version(name: &str) -> &'static str {
    FILES
        .iter()
        .position(|(n, _, _)| *n == name)
        .map_or("", |i| hashes()[i].as_str())
}

/// `GET /ui/assets/<file>`: the file, or 304 when `If-None-Match` names
/// its ETag, or 404.
pub(super) async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let (_, content_type, body) = FILES[i];
    let etag = format!("\"{}\"", hashes()[i]);
    let cache = "public, max-age=86400";
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag.as_str()),
                (header::CACHE_CONTROL, cache),
            ],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, etag.as_str()),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}
