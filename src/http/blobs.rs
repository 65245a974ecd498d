//! `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{HttpResult, Req};
use crate::error::{ApiError, ErrorCode};
use crate::events::RegistryEvent;
use crate::oci::digest::Digest;
use crate::oci::name::RepoName;
use crate::registry::pull_through::MirrorBlob;
use crate::registry::RegistryError;

/// Reports a served blob: registry:2 reports GET and HEAD alike as pulls.
fn pulled(req: Req<'_>, name: &RepoName, digest: &Digest, size: u64, head: bool) {
    super::events::emit(
        req,
        if head { "HEAD" } else { "GET" },
        RegistryEvent::BlobPulled {
            repository: name.to_string(),
            digest: digest.to_string(),
            size,
        },
    );
}

/// Serves a blob with `Docker-Content-Digest`, `ETag` and byte ranges
/// (200/206/304/307, 416 for unsatisfiable ranges, 404 BLOB_UNKNOWN).
pub(super) async fn get(req: Req<'_>, name: &RepoName, digest: &Digest, head: bool) -> HttpResult {
    let reg = &req.st.registry;
    let info = match reg.stat_blob(name, digest).await {
        Err(RegistryError::BlobUnknown(_)) if reg.is_mirrored(name) => {
            match reg.mirror_blob(name, digest, head).await? {
                MirrorBlob::Local(info) => info,
                other => {
                    // A pull like any other (registry:2's proxy emits one
                    // too); size 0 when the upstream sent no length.
                    let size = match &other {
                        MirrorBlob::HeadOnly { size } => *size,
                        MirrorBlob::Fetching { size, .. } => size.unwrap_or(0),
                        MirrorBlob::Local(info) => info.size,
                    };
                    pulled(req, name, digest, size, head);
                    return super::mirror::serve_blob(req, digest, other);
                }
            }
        }
        other => other?,
    };
    let etag = format!("\"{digest}\"");
    let digest_hdr = HeaderValue::from_str(&digest.to_string()).map_err(ApiError::internal)?;
    if req
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag)],
            [("docker-content-digest", digest_hdr)],
        )
            .into_response());
    }
    pulled(req, name, digest, info.size, head);
    if !head && !req.st.config.storage.redirect.disable {
        if let Some(url) = reg.blob_redirect_url(digest).await? {
            return Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, url)]).into_response());
        }
    }
    let (status, start, len) = match req.header("range") {
        None => (StatusCode::OK, 0, info.size),
        Some(r) => match parse_range(r, info.size) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
            None => {
                return Err(ApiError::new(ErrorCode::RangeInvalid)
                    .message("requested range not satisfiable")
                    .header(header::CONTENT_RANGE, content_range_unsatisfied(info.size)))
            }
        },
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header("docker-content-digest", digest_hdr)
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "max-age=31536000");
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", start + len - 1, info.size),
        );
    }
    let body = if head {
        Body::empty()
    } else {
        // The storage chunks become body frames as they are.
        Body::from_stream(reg.blob_stream(digest, start, len).await?)
    };
    builder.body(body).map_err(ApiError::internal)
}

pub(super) fn content_range_unsatisfied(size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes */{size}"))
        .unwrap_or(HeaderValue::from_static("bytes */0"))
}

/// Parses a single `bytes=` range against a size, returning inclusive
/// (start, end); `None` when malformed or unsatisfiable.
pub(super) fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let suffix: u64 = b.parse().ok()?;
        if suffix == 0 {
            return None;
        }
        return Some((size.saturating_sub(suffix), size - 1));
    }
    let start: u64 = a.parse().ok()?;
    if start >= size {
        return None;
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        b.parse::<u64>().ok()?.min(size - 1)
    };
    (end >= start).then_some((start, end))
}

/// Unlinks a blob from the repository (202), when deletes are enabled.
pub(super) async fn delete(req: Req<'_>, name: &RepoName, digest: &Digest) -> HttpResult {
    req.st.registry.delete_blob(name, digest).await?;
    super::events::emit(
        req,
        "DELETE",
        RegistryEvent::BlobDeleted {
            repository: name.to_string(),
            digest: digest.to_string(),
        },
    );
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        let table = [
            ("bytes=0-9", 100, Some((0, 9))),
            ("bytes=10-", 100, Some((10, 99))),
            ("bytes=-10", 100, Some((90, 99))),
            ("bytes=-200", 100, Some((0, 99))),
            ("bytes=90-200", 100, Some((90, 99))),
            ("bytes=99-99", 100, Some((99, 99))),
            ("bytes=100-", 100, None),
            ("bytes=5-4", 100, None),
            ("bytes=-0", 100, None),
            ("bytes=0-1,5-6", 100, None),
            ("items=0-1", 100, None),
            ("bytes=a-b", 100, None),
            ("bytes=0-0", 0, None),
        ];
        for (v, size, want) in table {
            assert_eq!(parse_range(v, size), want, "{v} of {size}");
        }
    }
}
