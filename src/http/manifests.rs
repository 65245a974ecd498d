//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use super::{HttpResult, Req};
use crate::error::{ApiError, ErrorCode};
use crate::oci::name::{Reference, RepoName};

const DIGEST_HEADER: HeaderName = HeaderName::from_static("docker-content-digest");

/// Serves the stored bytes verbatim with their media type (200/304/404).
pub(super) async fn get(
    req: Req<'_>,
    name: &RepoName,
    reference: &Reference,
    head: bool,
) -> HttpResult {
    let m = req.st.registry.get_manifest(name, reference).await?;
    let etag = format!("\"{}\"", m.digest);
    if req
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (DIGEST_HEADER, m.digest.to_string())],
        )
            .into_response());
    }
    let len = m.body.len();
    let body = if head {
        Body::empty()
    } else {
        Body::from(m.body)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, m.media_type)
        .header(header::CONTENT_LENGTH, len)
        .header(DIGEST_HEADER, m.digest.to_string())
        .header(header::ETAG, etag)
        .body(body)
        .map_err(ApiError::internal)
}

/// Stores a manifest (201 with `Location`, `Docker-Content-Digest`, and
/// `OCI-Subject` when it has a subject). Bodies over `limits.manifestsize`
/// (4 MiB by default) get 413.
pub(super) async fn put(
    req: Req<'_>,
    name: &RepoName,
    reference: &Reference,
    body: Body,
) -> HttpResult {
    let limit = req.st.config.limits.manifestsize;
    let too_large = || {
        ApiError::new(ErrorCode::ManifestInvalid)
            .message(format!(
                "manifest too large: the limit is {limit} bytes (limits.manifestsize)"
            ))
            .status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    if req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    // The same stall limit as blob bodies (`http.bodyidletimeout`).
    let body = Body::from_stream(super::body_stream(body, req.st.config.http.bodyidletimeout));
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(ApiError::new(ErrorCode::ManifestInvalid)
                .message(format!("reading manifest body: {e}")))
        }
    };
    let content_type = req.header("content-type");
    let result = req
        .st
        .registry
        .put_manifest(name, reference, content_type, bytes)
        .await?;
    let location = req.location(&format!("/v2/{name}/manifests/{}", result.digest));
    let mut resp = (
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CONTENT_LENGTH, "0".to_string()),
            (DIGEST_HEADER, result.digest.to_string()),
        ],
    )
        .into_response();
    if let Some(subject) = result.subject {
        if let Ok(v) = subject.to_string().parse() {
            resp.headers_mut()
                .insert(HeaderName::from_static("oci-subject"), v);
        }
    }
    Ok(resp)
}

/// Deletes by digest (manifest and its tags) or by tag (untag), 202.
pub(super) async fn delete(req: Req<'_>, name: &RepoName, reference: &Reference) -> HttpResult {
    req.st.registry.delete_manifest(name, reference).await?;
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}
