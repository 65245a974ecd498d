//! The one mapping from registry errors to wire errors.

use crate::error::{ApiError, ErrorCode};
use crate::registry::RegistryError;

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as R;
        match e {
            R::BlobUnknown(d) => {
                ApiError::new(ErrorCode::BlobUnknown).detail(serde_json::json!({ "digest": d }))
            }
            R::UploadUnknown => ApiError::new(ErrorCode::BlobUploadUnknown),
            R::UploadInvalid(m) => ApiError::new(ErrorCode::BlobUploadInvalid)
                .message(m)
                .status(axum::http::StatusCode::BAD_REQUEST),
            R::DigestMismatch { expected, actual } => ApiError::new(ErrorCode::DigestInvalid)
                .detail(serde_json::json!({ "expected": expected, "actual": actual })),
            R::SizeInvalid(m) => ApiError::new(ErrorCode::SizeInvalid).detail(m),
            R::RangeInvalid { size } => {
                let end = size.saturating_sub(1);
                let mut err = ApiError::new(ErrorCode::RangeInvalid).detail(format!(
                    "upload is at {size} bytes; chunks must start there"
                ));
                if let Ok(v) = axum::http::HeaderValue::from_str(&format!("0-{end}")) {
                    err = err.header(axum::http::header::RANGE, v);
                }
                err
            }
            R::ManifestUnknown => ApiError::new(ErrorCode::ManifestUnknown),
            R::ManifestInvalid(m) => ApiError::new(ErrorCode::ManifestInvalid).detail(m),
            R::ManifestTooLarge { size, limit } => ApiError::new(ErrorCode::ManifestInvalid)
                .message(format!(
                    "manifest too large: {size} bytes, the limit is {limit}"
                ))
                .status(axum::http::StatusCode::PAYLOAD_TOO_LARGE),
            R::ManifestBlobUnknown(d) => ApiError::new(ErrorCode::ManifestBlobUnknown)
                .detail(serde_json::json!({ "digest": d })),
            R::NameUnknown => ApiError::new(ErrorCode::NameUnknown),
            R::TooManyUploadSessions { limit } => super::limits::too_many(
                format!(
                    "too many upload sessions open in this repository (limits.uploadsessionsperrepository: {limit}); finish or cancel one"
                ),
                super::limits::SESSIONS_RETRY_AFTER,
            ),
            R::Unsupported(m) => ApiError::new(ErrorCode::Unsupported).message(m),
            R::Storage(crate::storage::StorageError::Exhausted { cause, detail, .. }) => {
                exhausted(cause, &detail)
            }
            R::Denied(m) => ApiError::new(ErrorCode::Denied).message(m),
            R::ManifestUnavailable(m) => ApiError::new(ErrorCode::ManifestUnknown).message(m),
            R::BlobUnavailable(m) => ApiError::new(ErrorCode::Unavailable).message(m),
            R::TooManyRequests { retry_after } => {
                let mut err = ApiError::new(ErrorCode::TooManyRequests)
                    .message("too many upstream fetches at once; retry later");
                if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.to_string()) {
                    err = err.header(axum::http::header::RETRY_AFTER, v);
                }
                err
            }
            R::Storage(e) => ApiError::internal(e),
        }
    }
}

/// A storage resource ran out (or storage is not writable): logged, and the
/// client hears the cause in the message. A full disk is 507 Insufficient
/// Storage; no descriptors left, a read-only store or an object store that
/// kept failing is 503 with `Retry-After` (it may pass). registry:2 answers 500 `UNKNOWN` with the
/// raw error as detail; the code stays `UNKNOWN` so clients treat it alike.
fn exhausted(cause: crate::storage::Exhaustion, detail: &str) -> ApiError {
    use crate::storage::Exhaustion as X;
    use axum::http::{header, HeaderValue, StatusCode};
    tracing::error!(cause = %cause, error = %detail, "storage cannot take the request");
    // An object store's error names its endpoint, bucket and keys: those
    // stay in the log.
    let message = match cause {
        X::Unavailable => format!("{cause}: the object store kept failing"),
        _ => format!("{cause}: {detail}"),
    };
    let err = ApiError::new(ErrorCode::Unknown).message(message);
    match cause {
        X::Full => err.status(StatusCode::INSUFFICIENT_STORAGE),
        X::TooManyOpenFiles | X::NotWritable | X::Unavailable => err
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::RETRY_AFTER, HeaderValue::from_static("5")),
    }
}
