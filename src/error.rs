//! The wire errors: one table of distribution's error codes with their HTTP
//! statuses, and the `{"errors":[{"code","message","detail"}]}` envelope.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Every error code the registry sends, named as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    PaginationNumberInvalid,
    RangeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    Unavailable,
    Unknown,
}

impl ErrorCode {
    /// (code string, default message, HTTP status), following distribution's
    /// `registry/api/v2/errors.go` and `errcode/register.go`.
    pub fn describe(self) -> (&'static str, &'static str, StatusCode) {
        use ErrorCode::*;
        match self {
            BlobUnknown => (
                "BLOB_UNKNOWN",
                "blob unknown to registry",
                StatusCode::NOT_FOUND,
            ),
            BlobUploadInvalid => (
                "BLOB_UPLOAD_INVALID",
                "blob upload invalid",
                StatusCode::NOT_FOUND,
            ),
            BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown to registry",
                StatusCode::NOT_FOUND,
            ),
            DigestInvalid => (
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
                StatusCode::BAD_REQUEST,
            ),
            ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                "blob unknown to registry",
                StatusCode::BAD_REQUEST,
            ),
            ManifestInvalid => (
                "MANIFEST_INVALID",
                "manifest invalid",
                StatusCode::BAD_REQUEST,
            ),
            ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                StatusCode::NOT_FOUND,
            ),
            NameInvalid => (
                "NAME_INVALID",
                "invalid repository name",
                StatusCode::BAD_REQUEST,
            ),
            NameUnknown => (
                "NAME_UNKNOWN",
                "repository name not known to registry",
                StatusCode::NOT_FOUND,
            ),
            SizeInvalid => (
                "SIZE_INVALID",
                "provided length did not match content length",
                StatusCode::BAD_REQUEST,
            ),
            TagInvalid => (
                "TAG_INVALID",
                "manifest tag did not match URI",
                StatusCode::BAD_REQUEST,
            ),
            PaginationNumberInvalid => (
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
                StatusCode::BAD_REQUEST,
            ),
            RangeInvalid => (
                "RANGE_INVALID",
                "invalid content range",
                StatusCode::RANGE_NOT_SATISFIABLE,
            ),
            Unauthorized => (
                "UNAUTHORIZED",
                "authentication required",
                StatusCode::UNAUTHORIZED,
            ),
            Denied => (
                "DENIED",
                "requested access to the resource is denied",
                StatusCode::FORBIDDEN,
            ),
            Unsupported => (
                "UNSUPPORTED",
                "The operation is unsupported.",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            TooManyRequests => (
                "TOOMANYREQUESTS",
                "too many requests",
                StatusCode::TOO_MANY_REQUESTS,
            ),
            Unavailable => (
                "UNAVAILABLE",
                "service unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            Unknown => (
                "UNKNOWN",
                "unknown error",
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        }
    }
}

/// An error response: a code, a message, optional detail, an optional status
/// override (a few endpoints differ from the table) and extra headers.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    pub status: Option<StatusCode>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            message: code.describe().1.to_string(),
            detail: None,
            status: None,
            headers: Vec::new(),
        }
    }

    /// Replaces the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Attaches a detail value (distribution puts the offending name, digest
    /// or tag here).
    pub fn detail(mut self, detail: impl serde::Serialize) -> Self {
        self.detail = serde_json::to_value(detail).ok();
        self
    }

    /// Overrides the HTTP status for endpoints where distribution does.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds a response header (e.g. `Range` on a 416 for an upload).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// An internal error: logged once here, sent as UNKNOWN without detail.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        ApiError::new(ErrorCode::Unknown)
    }

    /// The HTTP status this error is sent with.
    pub fn http_status(&self) -> StatusCode {
        self.status.unwrap_or(self.code.describe().2)
    }

    /// The JSON envelope.
    pub fn body(&self) -> serde_json::Value {
        let mut e = serde_json::json!({
            "code": self.code.describe().0,
            "message": self.message,
        });
        if let Some(d) = &self.detail {
            e["detail"] = d.clone();
        }
        serde_json::json!({ "errors": [e] })
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::new(code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        let body = self.body().to_string();
        let mut resp = (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )],
            body,
        )
            .into_response();
        for (k, v) in self.headers {
            resp.headers_mut().append(k, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_matches_distribution() {
        use ErrorCode::*;
        let table = [
            (BlobUnknown, "BLOB_UNKNOWN", 404),
            (BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 404),
            (BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
            (DigestInvalid, "DIGEST_INVALID", 400),
            (ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
            (ManifestInvalid, "MANIFEST_INVALID", 400),
            (ManifestUnknown, "MANIFEST_UNKNOWN", 404),
            (NameInvalid, "NAME_INVALID", 400),
            (NameUnknown, "NAME_UNKNOWN", 404),
            (SizeInvalid, "SIZE_INVALID", 400),
            (TagInvalid, "TAG_INVALID", 400),
            (PaginationNumberInvalid, "PAGINATION_NUMBER_INVALID", 400),
            (RangeInvalid, "RANGE_INVALID", 416),
            (Unauthorized, "UNAUTHORIZED", 401),
            (Denied, "DENIED", 403),
            (Unsupported, "UNSUPPORTED", 405),
            (TooManyRequests, "TOOMANYREQUESTS", 429),
            (Unavailable, "UNAVAILABLE", 503),
            (Unknown, "UNKNOWN", 500),
        ];
        for (code, name, status) in table {
            let (n, _, s) = code.describe();
            assert_eq!((n, s.as_u16()), (name, status), "{code:?}");
        }
    }

    #[test]
    fn envelope() {
        let e = ApiError::new(ErrorCode::NameUnknown).detail(serde_json::json!({"name": "x"}));
        assert_eq!(
            e.body(),
            serde_json::json!({"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]})
        );
        assert_eq!(e.http_status(), StatusCode::NOT_FOUND);
    }
}
