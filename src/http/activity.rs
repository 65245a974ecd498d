//! Whether a connection has a request in progress, and since when it has
//! had none: the idle timeout (`http.idletimeout`) closes connections that
//! sit idle (before their first request, between HTTP/1 keep-alive
//! requests, or with no open HTTP/2 stream), and the head limit counts only
//! bytes that arrive while no request is in progress.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// One connection's requests in progress.
#[derive(Debug)]
pub struct Activity {
    active: AtomicUsize,
    started: AtomicU64,
    idle_since: Mutex<Instant>,
}

impl Activity {
    /// A connection that just opened: idle from now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            active: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    /// Marks a request as started; it ends when the guard drops.
    pub fn start(self: &Arc<Self>) -> ActiveGuard {
        self.started.fetch_add(1, Ordering::AcqRel);
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard {
            activity: self.clone(),
        }
    }

    /// Requests in progress now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Requests started so far (a new value means a head was parsed).
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    /// When the last request ended (or the connection opened); `None`
    /// while a request is in progress.
    pub fn idle_since(&self) -> Option<Instant> {
        if self.active() > 0 {
            return None;
        }
        Some(
            *self
                .idle_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// A request in progress; dropping it ends the request.
#[derive(Debug)]
pub struct ActiveGuard {
    activity: Arc<Activity>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut since = self
            .activity
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *since = Instant::now();
        self.activity.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until
/// the body has been sent whole (or dropped).
pub struct GuardedBody<B> {
    inner: B,
    guard: Option<ActiveGuard>,
}

impl<B> GuardedBody<B> {
    /// `inner`, holding `guard` until its end.
    pub fn new(inner: B, guard: ActiveGuard) -> Self {
        GuardedBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
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
