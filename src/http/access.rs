//! The access log and request ids: one `berth::access` line per request,
//! written when the response body has been sent (or dropped), with the
//! bytes actually sent; and `X-Request-Id`, taken from the client when it
//! is a sane token, else generated, returned on every response.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

/// The request id header (accepted and returned).
pub const REQUEST_ID: &str = "x-request-id";

/// Longest client-supplied request id kept; longer ones are replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// The repository a request addressed, set by the dispatcher on the
/// response for the access log.
#[derive(Clone, Debug)]
pub struct RepoLabel(pub String);

/// The client's `X-Request-Id` when it is 1 to [`MAX_REQUEST_ID`] characters
/// of `[A-Za-z0-9._-]` (safe in logs and headers), else a new UUID v4.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(REQUEST_ID) {
        let b = v.as_bytes();
        let sane = !b.is_empty()
            && b.len() <= MAX_REQUEST_ID
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if sane {
            return v.clone();
        }
    }
    // A v4 UUID from the thread-local generator: no system call per request.
    let id = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string();
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Everything an access line says except the bytes, known when the
/// handler returns.
#[derive(Debug)]
pub struct AccessRecord {
    /// When the request reached the router.
    pub started: Instant,
    /// HTTP method.
    pub method: axum::http::Method,
    /// The path (never the query, which may carry state tokens).
    pub route: String,
    /// The repository, when the path names one.
    pub repository: String,
    /// Response status.
    pub status: u16,
    /// The authenticated caller, or empty.
    pub user: String,
    /// The client's address (behind trusted proxies, the one they name).
    pub client: String,
    /// The request id returned in `X-Request-Id`.
    pub request_id: String,
}

impl AccessRecord {
    fn write(&self, bytes: u64, complete: bool) {
        let elapsed = self.started.elapsed();
        tracing::info!(
            target: "berth::access",
            method = %self.method,
            route = self.route.as_str(),
            repository = self.repository.as_str(),
            status = self.status,
            bytes,
            complete,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            user = self.user.as_str(),
            client = self.client.as_str(),
            request_id = self.request_id.as_str(),
        );
    }
}

/// A response body that counts the bytes it yields and writes the access
/// line when it ends or is dropped (a client that went away mid-body:
/// `complete=false`).
pub struct LoggedBody {
    inner: Body,
    bytes: u64,
    ended: bool,
    record: Option<AccessRecord>,
}

impl LoggedBody {
    /// `inner`, logging `record` at its end.
    pub fn new(inner: Body, record: AccessRecord) -> LoggedBody {
        LoggedBody {
            inner,
            bytes: 0,
            ended: false,
            record: Some(record),
        }
    }

    fn finish(&mut self) {
        if let Some(record) = self.record.take() {
            record.write(self.bytes, self.ended);
        }
    }
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => {
                self.ended = true;
                self.finish();
            }
            Poll::Ready(Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // A body hyper never polled (empty, HEAD) ends here, sent whole.
        let head = self
            .record
            .as_ref()
            .is_some_and(|r| r.method == axum::http::Method::HEAD);
        if head || self.inner.is_end_stream() {
            self.ended = true;
        }
        self.finish();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sane_request_ids_are_kept_and_others_replaced() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123_x.Y"));
        assert_eq!(request_id(&h), "abc-123_x.Y");
        let long = "a".repeat(MAX_REQUEST_ID);
        h.insert(REQUEST_ID, HeaderValue::from_str(&long).unwrap());
        assert_eq!(request_id(&h), long.as_str());
        for bad in [
            "a".repeat(MAX_REQUEST_ID + 1),
            "has space".into(),
            "semi;colon".into(),
            "".into(),
            "x\"y".into(),
        ] {
            h.insert(REQUEST_ID, HeaderValue::from_str(&bad).unwrap());
            let got = request_id(&h);
            assert_ne!(got, bad.as_str());
            assert!(uuid::Uuid::parse_str(got.to_str().unwrap()).is_ok());
        }
        h.clear();
        let a = request_id(&h);
        let parsed = uuid::Uuid::parse_str(a.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(a, request_id(&h));
    }
}
