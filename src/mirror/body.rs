//! Response bodies from the upstream: a stall of longer than the idle
//! timeout between two chunks ends the stream with an error (a body that
//! never ends is cut off), and small bodies (manifests, token answers) are
//! read into memory only up to a bound.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::storage::ByteStream;

/// Wraps a body stream: once the consumer asks for the next chunk, it must
/// arrive within `idle`, else the stream yields a `TimedOut` error and
/// ends. The clock runs only while the consumer waits, so a consumer slowed
/// by its own client (backpressure) never trips it.
pub struct IdleTimeout {
    inner: ByteStream,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    /// The clock runs (set at the first `Pending` after a chunk).
    armed: bool,
    done: bool,
}

impl IdleTimeout {
    /// Wraps `inner`; the clock starts when the consumer first waits.
    pub fn new(inner: ByteStream, idle: Duration) -> IdleTimeout {
        IdleTimeout {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            armed: false,
            done: false,
        }
    }
}

impl Stream for IdleTimeout {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => {
                self.armed = false;
                if item.is_err() {
                    self.done = true;
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !self.armed {
                    let idle = self.idle;
                    self.sleep.as_mut().reset(Instant::now() + idle);
                    self.armed = true;
                }
                if self.sleep.as_mut().poll(cx).is_ready() {
                    self.done = true;
                    let secs = self.idle.as_secs_f64();
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("upstream body stalled for {secs}s"),
                    ))));
                }
                Poll::Pending
            }
        }
    }
}

/// Why a bounded read stopped.
#[derive(Debug)]
pub enum ReadError {
    /// More than the limit arrived.
    TooLarge(usize),
    /// The connection failed or stalled.
    Io(io::Error),
}

/// Reads a whole stream into memory, refusing more than `limit` bytes.
pub async fn read_bounded(
    mut stream: impl Stream<Item = io::Result<Bytes>> + Unpin,
    limit: usize,
) -> Result<Bytes, ReadError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Io)?;
        if buf.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stream_of(parts: Vec<io::Result<Bytes>>) -> ByteStream {
        Box::pin(futures::stream::iter(parts))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_ends_with_timed_out() {
        let inner: ByteStream = Box::pin(
            futures::stream::iter(vec![Ok(Bytes::from_static(b"ab"))])
                .chain(futures::stream::pending()),
        );
        let mut s = IdleTimeout::new(inner, Duration::from_secs(60));
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"ab"));
        let err = s.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_consumer_is_not_a_stalled_upstream() {
        let late = futures::stream::once(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Bytes::from_static(b"late"))
        });
        let inner: ByteStream =
            Box::pin(futures::stream::iter(vec![Ok(Bytes::from_static(b"a"))]).chain(late));
        let mut s = IdleTimeout::new(inner, Duration::from_secs(60));
        // The consumer dawdles for longer than the idle timeout.
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"a"));
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(
            s.next().await.unwrap().unwrap(),
            Bytes::from_static(b"late")
        );
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flowing_body_passes_through() {
        let s = IdleTimeout::new(
            stream_of(vec![
                Ok(Bytes::from_static(b"a")),
                Ok(Bytes::from_static(b"b")),
            ]),
            Duration::from_secs(1),
        );
        assert_eq!(
            read_bounded(s, 10).await.unwrap(),
            Bytes::from_static(b"ab")
        );
    }

    #[tokio::test]
    async fn bounded_reads_refuse_more_than_the_limit() {
        let s = stream_of(vec![
            Ok(Bytes::from(vec![0u8; 6])),
            Ok(Bytes::from(vec![0u8; 5])),
        ]);
        assert!(matches!(
            read_bounded(s, 10).await,
            Err(ReadError::TooLarge(10))
        ));
        let s = stream_of(vec![Ok(Bytes::from(vec![0u8; 10]))]);
        assert_eq!(read_bounded(s, 10).await.unwrap().len(), 10);
        let s = stream_of(vec![Err(io::Error::other("reset"))]);
        assert!(matches!(read_bounded(s, 10).await, Err(ReadError::Io(_))));
    }
}
