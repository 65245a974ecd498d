//! A request body (a blob upload's or a manifest's) that fails when no
//! byte arrives for a while (`http.bodyidletimeout`): a client that stalls
//! mid-upload would otherwise hold its connection, its upload's lock and a
//! write buffer forever. The error ends the request like a dropped
//! connection does: what an upload received is kept, so it can be resumed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

/// `inner`, ending with a `TimedOut` error after `idle` without data;
/// a zero `idle` never times out.
pub(crate) struct IdleLimited<S> {
    inner: S,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl<S> IdleLimited<S> {
    pub(crate) fn new(inner: S, idle: Duration) -> Self {
        IdleLimited {
            inner,
            idle,
            timer: (!idle.is_zero()).then(|| Box::pin(tokio::time::sleep(idle))),
            done: false,
        }
    }
}

impl<S> Stream for IdleLimited<S>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                if let Some(timer) = this.timer.as_mut() {
                    timer.as_mut().reset(Instant::now() + this.idle);
                }
                Poll::Ready(item)
            }
            Poll::Pending => match this.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    this.done = true;
                    Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no body data for {}s", this.idle.as_secs()),
                    ))))
                }
                _ => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_and_a_steady_one_does_not() {
        // Data every 5 s under a 10 s limit: all of it arrives.
        let (tx, rx) = futures::channel::mpsc::unbounded::<io::Result<Bytes>>();
        let feeder = tokio::spawn(async move {
            for i in 0..4u8 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let _ = tx.unbounded_send(Ok(Bytes::from(vec![i])));
            }
        });
        let got: Vec<_> = IdleLimited::new(rx, Duration::from_secs(10))
            .collect()
            .await;
        feeder.await.expect("feeder");
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(Result::is_ok));

        // One chunk, then silence: a TimedOut error, then the end.
        let (tx, rx) = futures::channel::mpsc::unbounded::<io::Result<Bytes>>();
        let _ = tx.unbounded_send(Ok(Bytes::from_static(b"x")));
        let mut body = IdleLimited::new(rx, Duration::from_secs(10));
        assert!(matches!(body.next().await, Some(Ok(_))));
        let err = body.next().await.expect("an item").expect_err("timed out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(body.next().await.is_none());
        drop(tx);
    }
}
