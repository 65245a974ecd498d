//! Early responses: an answer (401, 403, 400, 404, 405...) sent before the
//! request body was read. HTTP/2 then ends the stream with
//! `RST_STREAM(NO_ERROR)` after the response (hyper's h2, as Go's server);
//! a client still sending its body when the reset arrives fails the request
//! (curl 7.88 exits 92 without showing the response) even though the answer
//! came. Over HTTP/1 the unread body sits in front of the next request, so
//! the connection cannot be reused and a client that already sent the next
//! request on it sees `EOF`.
//!
//! So every response whose request body was not read to its end waits
//! until the rest of a small body (up to [`DRAIN_MAX`], within
//! [`DRAIN_TIME`]) is read and discarded: the client has finished sending
//! before it sees the answer, and the stream or connection stays clean. A
//! larger or slower body is not waited for: HTTP/2 resets the stream after
//! the response as Go's server does, HTTP/1 answers `Connection: close`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{header, HeaderValue, Request, Version};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;

/// Most bytes of an unread request body read and discarded before an early
/// response: HTTP/2's default stream window (hyper's and Go's), i.e. what
/// a client may have in flight before it sees the answer anyway.
pub const DRAIN_MAX: u64 = 1 << 20;

/// Longest wait for the rest of an unread body before answering anyway.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// A request body that, when dropped before its end, hands what is left
/// back to [`settle`].
pub struct Tracked {
    inner: Option<Incoming>,
    back: Option<oneshot::Sender<Incoming>>,
}

/// Receives a request body dropped unread.
pub struct Unread(oneshot::Receiver<Incoming>);

/// Wraps `req`'s body so [`settle`] can find out whether it was read.
pub fn track(req: Request<Incoming>) -> (Request<Tracked>, Unread) {
    let (tx, rx) = oneshot::channel();
    let req = req.map(|body| Tracked {
        inner: Some(body),
        back: Some(tx),
    });
    (req, Unread(rx))
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let (Some(body), Some(back)) = (self.inner.take(), self.back.take()) {
            if !body.is_end_stream() {
                let _ = back.send(body);
            }
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// Called with the response to a request whose body was wrapped by
/// [`track`]: when the handler left the body unread, reads and discards the
/// rest if it is small, or (HTTP/1) marks the connection to close.
pub async fn settle(
    mut resp: Response,
    mut unread: Unread,
    version: Version,
    expects_continue: bool,
) -> Response {
    let Ok(body) = unread.0.try_recv() else {
        // Read to its end, or still held by the handler.
        return resp;
    };
    let drained = !expects_continue && drain(body, DRAIN_MAX, DRAIN_TIME).await;
    if !drained && version < Version::HTTP_2 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Reads `body` to its end and discards it; false when it holds more than
/// `max` bytes, fails, or does not end within `time`.
async fn drain(mut body: Incoming, max: u64, time: Duration) -> bool {
    if body.size_hint().lower() > max {
        return false;
    }
    let read = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > max {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(time, read).await.unwrap_or(false)
}
