//! `/v2/<name>/blobs/uploads/...`: monolithic, chunked and mounted uploads.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::endpoint::parse_digest;
use super::{body_stream, HttpResult, Req};
use crate::auth::Action;
use crate::error::{ApiError, ErrorCode};
use crate::events::RegistryEvent;
use crate::oci::digest::Digest;
use crate::oci::name::{RepoName, UploadId};
use crate::registry::{BlobInfo, ByteRange, UploadStatus};

/// `POST`: `?mount=&from=` links an existing blob (201) or falls back to a
/// new session; `?digest=` takes the whole blob in the body (201); otherwise
/// opens a session (202).
pub(super) async fn start(req: Req<'_>, name: &RepoName, body: Body) -> HttpResult {
    let reg = &req.st.registry;
    if let Some(mount) = req.query("mount") {
        let digest = parse_digest(&mount)?;
        // Mounting reads the source: without pull on it, no mount (a normal
        // session starts instead, so nothing leaks across repositories).
        let from = req
            .query("from")
            .and_then(|f| f.parse::<RepoName>().ok())
            .filter(|f| {
                super::auth::permissions(req.st, req.identity, f.as_str()).contains(Action::Pull)
                    || req.st.policy.is_open()
            });
        if let Some(from) = from {
            if let Some(info) = reg.mount_blob(name, &from, &digest).await? {
                super::events::emit(
                    req,
                    "POST",
                    RegistryEvent::BlobMounted {
                        repository: name.to_string(),
                        from: from.to_string(),
                        digest: info.digest.to_string(),
                        size: info.size,
                    },
                );
                return Ok(created(req, name, &info));
            }
        }
    } else if let Some(digest) = req.query("digest") {
        let digest = parse_digest(&digest)?;
        let info = reg
            .put_blob(
                name,
                &digest,
                body_stream(body, req.st.config.http.bodyidletimeout),
            )
            .await?;
        pushed(req, "POST", name, &info);
        return Ok(created(req, name, &info));
    }
    let status = reg.start_upload(name).await?;
    Ok(upload_response(req, name, &status, StatusCode::ACCEPTED))
}

/// `GET`: where the upload stands (204 with `Range`).
pub(super) async fn status(req: Req<'_>, name: &RepoName, id: &UploadId) -> HttpResult {
    let status = req.st.registry.upload_status(name, id).await?;
    Ok(upload_response(req, name, &status, StatusCode::NO_CONTENT))
}

/// `PATCH`: appends a chunk; with `Content-Range` it must continue exactly
/// where the upload stands (else 416).
pub(super) async fn patch(req: Req<'_>, name: &RepoName, id: &UploadId, body: Body) -> HttpResult {
    let range = match req.header("content-range") {
        None => None,
        Some(v) => Some(parse_content_range(v).ok_or_else(|| {
            ApiError::new(ErrorCode::RangeInvalid).detail(format!("malformed Content-Range {v:?}"))
        })?),
    };
    let status = req
        .st
        .registry
        .append_upload(
            name,
            id,
            range,
            req.header("content-length").and_then(|v| v.parse().ok()),
            body_stream(body, req.st.config.http.bodyidletimeout),
        )
        .await?;
    Ok(upload_response(req, name, &status, StatusCode::ACCEPTED))
}

/// `PUT ?digest=`: appends the optional last chunk, verifies, publishes (201).
pub(super) async fn put(req: Req<'_>, name: &RepoName, id: &UploadId, body: Body) -> HttpResult {
    let digest: Digest = match req.query("digest") {
        Some(d) => parse_digest(&d)?,
        None => {
            return Err(ApiError::new(ErrorCode::DigestInvalid).message("digest parameter missing"))
        }
    };
    let info = req
        .st
        .registry
        .complete_upload(
            name,
            id,
            &digest,
            Some(body_stream(body, req.st.config.http.bodyidletimeout)),
        )
        .await?;
    pushed(req, "PUT", name, &info);
    Ok(created(req, name, &info))
}

/// Reports a completed upload.
fn pushed(req: Req<'_>, method: &str, name: &RepoName, info: &BlobInfo) {
    super::events::emit(
        req,
        method,
        RegistryEvent::BlobPushed {
            repository: name.to_string(),
            digest: info.digest.to_string(),
            size: info.size,
        },
    );
}

/// `DELETE`: abandons the upload (204).
pub(super) async fn cancel(req: Req<'_>, name: &RepoName, id: &UploadId) -> HttpResult {
    req.st.registry.cancel_upload(name, id).await?;
    Ok((StatusCode::NO_CONTENT, [(header::CONTENT_LENGTH, "0")]).into_response())
}

/// 201 for a blob now in the repository.
fn created(req: Req<'_>, name: &RepoName, info: &BlobInfo) -> Response {
    let location = req.location(&format!("/v2/{name}/blobs/{}", info.digest));
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CONTENT_LENGTH, "0".to_string()),
            (
                header::HeaderName::from_static("docker-content-digest"),
                info.digest.to_string(),
            ),
        ],
    )
        .into_response()
}

/// The session headers: `Location`, `Range`, `Docker-Upload-UUID`.
fn upload_response(
    req: Req<'_>,
    name: &RepoName,
    status: &UploadStatus,
    code: StatusCode,
) -> Response {
    let location = req.location(&format!("/v2/{name}/blobs/uploads/{}", status.id));
    (
        code,
        [
            (header::LOCATION, location),
            (
                header::RANGE,
                format!("0-{}", status.size.saturating_sub(1)),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                status.id.to_string(),
            ),
        ],
    )
        .into_response()
}

/// Parses `<start>-<end>` (also tolerating a `bytes ` prefix and `/<total>`).
pub(super) fn parse_content_range(v: &str) -> Option<ByteRange> {
    let v = v.trim();
    let v = v
        .strip_prefix("bytes ")
        .or_else(|| v.strip_prefix("bytes="))
        .unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let start = a.trim().parse().ok()?;
    let end = b.trim().parse().ok()?;
    Some(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        let r = |s, e| Some(ByteRange { start: s, end: e });
        assert_eq!(parse_content_range("0-99"), r(0, 99));
        assert_eq!(parse_content_range("bytes 100-199/1000"), r(100, 199));
        assert_eq!(parse_content_range("bytes=5-6"), r(5, 6));
        assert_eq!(parse_content_range("abc"), None);
        assert_eq!(parse_content_range("-5"), None);
        assert_eq!(parse_content_range("1-"), None);
    }
}
