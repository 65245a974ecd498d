//! Entry points for the fuzz targets (fuzz/fuzz_targets/) into the HTTP
//! edge's parsers, which stay private to the layer: each takes arbitrary
//! input, must never panic, and checks what the parser promises.

use axum::http::Method;

use super::endpoint::Endpoint;

/// The methods a fuzz input picks from (its first byte), plus one unknown.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW",
];

/// `Endpoint::parse` over (method, path, query) as a request line gives
/// them: byte 0 picks the method, the rest is `path[?query]`. Whatever it
/// accepts, the names it returns are valid and required_access/is_write
/// answer; the query decoder never panics.
pub fn endpoint(data: &[u8]) {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let Ok(method) = Method::from_bytes(METHODS[usize::from(m) % METHODS.len()].as_bytes()) else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    if let Ok(endpoint) = Endpoint::parse(&method, path) {
        let _ = endpoint.is_write();
        if let Some((name, _)) = endpoint.required_access() {
            let reparsed: Result<crate::oci::name::RepoName, _> = name.as_str().parse();
            assert!(
                reparsed.is_ok(),
                "an accepted name must parse again: {name}"
            );
        }
    }
    for (k, v) in super::form_pairs(query) {
        let _ = (k.len(), v.len());
    }
}

/// `Range: bytes=...` against a blob size (first 8 bytes, little endian):
/// an answer always lies inside the blob and is not empty.
pub fn range(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (size, rest) = data.split_at(8);
    let mut b = [0u8; 8];
    b.copy_from_slice(size);
    let size = u64::from_le_bytes(b);
    let value = String::from_utf8_lossy(rest);
    if let Some((start, end)) = super::blobs::parse_range(&value, size) {
        assert!(
            start <= end && end < size,
            "{value:?} of {size}: {start}-{end}"
        );
    }
}

/// `Content-Range` of a PATCH: never panics, and what it accepts reads
/// back the same when written as a client writes it.
pub fn content_range(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    if let Some(r) = super::uploads::parse_content_range(&value) {
        let again = super::uploads::parse_content_range(&format!("{}-{}", r.start, r.end));
        assert_eq!(again, Some(r), "{value:?}");
    }
}
