//! The pull-through cache at the HTTP edge: containerd's `?ns=<host>`
//! rewritten to the mirror's local cache name (before authorization, so
//! access rules on `<prefix>/**` govern it), writes a mirror refuses, and
//! blob responses streamed from a running upstream fetch.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::Response;

use super::blobs::{content_range_unsatisfied, parse_range};
use super::endpoint::Endpoint;
use super::{form_pairs, HttpResult, HttpState, Req};
use crate::error::{ApiError, ErrorCode};
use crate::oci::digest::Digest;
use crate::registry::pull_through::{MirrorBlob, WriteKind};

/// Rewrites the endpoint's name to `<prefix>/<name>` when the query has
/// `ns=<host>` and a mirror entry lists that host.
pub(super) fn apply_ns(st: &HttpState, uri: &Uri, endpoint: &mut Endpoint) {
    let Some(host) = uri
        .query()
        .and_then(|q| form_pairs(q).find(|(k, _)| k == "ns").map(|(_, v)| v))
    else {
        return;
    };
    if let Some(name) = endpoint.name_mut() {
        if let Some(local) = st.registry.mirror_ns_name(&host, name) {
            *name = local;
        }
    }
}

/// Refuses pushes into mirrored prefixes (403 DENIED) and, in `proxy`
/// mode, every push and delete (405 UNSUPPORTED, as registry:2).
pub(super) fn check_write(st: &HttpState, endpoint: &Endpoint) -> Result<(), ApiError> {
    let (name, kind) = match endpoint {
        Endpoint::PutManifest { name, .. } | Endpoint::StartUpload { name } => {
            (name, WriteKind::Push)
        }
        Endpoint::DeleteManifest { name, .. } | Endpoint::DeleteBlob { name, .. } => {
            (name, WriteKind::Delete)
        }
        _ => return Ok(()),
    };
    Ok(st.registry.check_mirror_write(name, kind)?)
}

/// A blob answered from the upstream: its `HEAD`, or the bytes of a
/// running fetch (whole, or a range when the size is known).
pub(super) fn serve_blob(req: Req<'_>, digest: &Digest, blob: MirrorBlob) -> HttpResult {
    let digest_hdr = HeaderValue::from_str(&digest.to_string()).map_err(ApiError::internal)?;
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("docker-content-digest", digest_hdr)
        .header(header::ETAG, format!("\"{digest}\""));
    let (size, stream) = match blob {
        MirrorBlob::HeadOnly { size } => {
            return builder
                .status(StatusCode::OK)
                .header(header::CONTENT_LENGTH, size)
                .body(Body::empty())
                .map_err(ApiError::internal)
        }
        MirrorBlob::Fetching { size, stream } => (size, stream),
        MirrorBlob::Local(_) => {
            return Err(ApiError::internal("a local blob reached the mirror path"))
        }
    };
    let Some(size) = size else {
        // No Content-Length upstream: the whole blob, chunked.
        return builder
            .status(StatusCode::OK)
            .body(Body::from_stream(stream.stream(0, None)))
            .map_err(ApiError::internal);
    };
    let builder = builder.header(header::ACCEPT_RANGES, "bytes");
    let (status, start, len) = match req.header("range") {
        None => (StatusCode::OK, 0, size),
        Some(r) => match parse_range(r, size) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
            None => {
                return Err(ApiError::new(ErrorCode::RangeInvalid)
                    .message("requested range not satisfiable")
                    .header(header::CONTENT_RANGE, content_range_unsatisfied(size)))
            }
        },
    };
    let mut builder = builder.status(status).header(header::CONTENT_LENGTH, len);
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    builder
        .body(Body::from_stream(stream.stream(start, Some(len))))
        .map_err(ApiError::internal)
}
