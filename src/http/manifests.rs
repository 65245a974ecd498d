//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use super::{HttpResult, Req};
use crate::error::{ApiError, ErrorCode};
use crate::events::RegistryEvent;
use crate::oci::name::{Reference, RepoName};

const DIGEST_HEADER: HeaderName = HeaderName::from_static("docker-content-digest");

/// Serves the stored bytes verbatim with their media type (200/304/404).
pub(super) async fn get(
    req: Req<'_>,
    name: &RepoName,
    reference: &Reference,
    head: bool,
) -> HttpResult {
    let m = req
        .st
        .registry
        .serve_manifest(name, reference, head)
        .await?;
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
    let len = m.size;
    if super::events::enabled(req) {
        let target = super::events::manifest_target(
            req,
            name,
            reference,
            &m.digest,
            &m.media_type,
            &m.body,
            m.size,
        );
        let method = if head { "HEAD" } else { "GET" };
        super::events::emit(req, method, RegistryEvent::ManifestPulled(target));
    }
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
    let kept = super::events::enabled(req).then(|| bytes.clone());
    let result = req
        .st
        .registry
        .put_manifest(name, reference, content_type, bytes)
        .await?;
    if let Some(body) = kept {
        let media_type = crate::oci::manifest::parse(content_type, &body)
            .map(|p| p.media_type)
            .unwrap_or_default();
        let target = super::events::manifest_target(
            req,
            name,
            reference,
            &result.digest,
            &media_type,
            &body,
            body.len() as u64,
        );
        super::events::emit(req, "PUT", RegistryEvent::ManifestPushed(target));
    }
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
    delete_notified(req, name, reference).await?;
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}

/// Deletes a manifest or tag and reports it to the notification endpoints
/// (the manifest, then each tag that went with it, as registry:2 does):
/// the API's DELETE and the web UI's delete form both come through here.
pub(crate) async fn delete_notified(
    req: Req<'_>,
    name: &RepoName,
    reference: &Reference,
) -> Result<(), crate::registry::RegistryError> {
    // The tags going with a manifest, for their events (as registry:2
    // reports each untag); looked up only when someone listens.
    let tags = match reference {
        Reference::Digest(d)
            if super::events::enabled(req) && req.st.config.storage.delete.enabled =>
        {
            tags_of(req, name, d).await
        }
        _ => Vec::new(),
    };
    req.st.registry.delete_manifest(name, reference).await?;
    let repository = name.to_string();
    match reference {
        Reference::Tag(tag) => super::events::emit(
            req,
            "DELETE",
            RegistryEvent::TagDeleted {
                repository,
                tag: tag.to_string(),
            },
        ),
        Reference::Digest(d) => {
            super::events::emit(
                req,
                "DELETE",
                RegistryEvent::ManifestDeleted {
                    repository: repository.clone(),
                    digest: d.to_string(),
                },
            );
            for tag in tags {
                super::events::emit(
                    req,
                    "DELETE",
                    RegistryEvent::TagDeleted {
                        repository: repository.clone(),
                        tag,
                    },
                );
            }
        }
    }
    Ok(())
}

/// The tags of `name` currently pointing at `digest` (none on errors).
async fn tags_of(
    req: Req<'_>,
    name: &RepoName,
    digest: &crate::oci::digest::Digest,
) -> Vec<String> {
    let reg = &req.st.registry;
    let Ok(page) = reg.list_tags(name, None, None).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for tag in page.items {
        let Ok(t) = tag.parse() else { continue };
        if reg.resolve(name, &Reference::Tag(t)).await.ok().as_ref() == Some(digest) {
            out.push(tag);
        }
    }
    out
}
