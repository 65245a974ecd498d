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
            R::Storage(e) => ApiError::internal(e),
        }
    }
}
