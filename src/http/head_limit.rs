//! The bound on an HTTP/1 request head (`http.maxheaderbytes`). hyper's
//! only bound is its read buffer (`max_buf_size`), which berth raises to
//! 2 MiB for upload throughput (see `server::READ_BUF_MAX`): a client
//! could otherwise make every connection hold 2 MiB of unfinished head
//! before authenticating. This wrapper around the connection's socket
//! counts the bytes that arrive while no request is in progress (from the
//! end of one response to the next parsed head); past the bound it answers
//! `431` itself and ends the connection. While a request is in progress
//! (its body streaming in) reads pass straight through, so uploads keep
//! the large buffer. HTTP/2 connections (ALPN `h2` or the h2c preface) are
//! not counted: HTTP/2 bounds its header list itself.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::Activity;

/// What a client whose head is too large gets before the connection ends.
const REFUSAL: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
    content-type: text/plain\r\ncontent-length: 32\r\nconnection: close\r\n\r\n\
    request header fields too large\n";

/// The HTTP/2 connection preface (h2c with prior knowledge).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most bytes read and dropped after the refusal, so closing does not
/// reset the connection before the client reads the answer.
const DISCARD_MAX: usize = 1 << 20;

enum State {
    /// Counting head bytes.
    Counting,
    /// Writing [`REFUSAL`]; so much of it written.
    Refusing(usize),
    /// Refusal sent; reading and dropping what the client still sends.
    Discarding(usize),
    /// Reads end (EOF), writes are dropped.
    Done,
    /// Not counting (HTTP/2, or no bound).
    Off,
}

/// A socket whose request heads are bounded; see the module doc.
pub struct HeadLimited<T> {
    inner: T,
    activity: Arc<Activity>,
    max: usize,
    state: State,
    /// Bytes of [`H2_PREFACE`] matched so far; `None` once decided.
    preface: Option<usize>,
    last_started: u64,
    head_bytes: usize,
    /// No write since the last completed flush.
    flushed: bool,
}

impl<T> HeadLimited<T> {
    /// `inner` with heads bounded to `max` bytes (no bound when zero or
    /// when `h2` says the connection speaks HTTP/2).
    pub fn new(inner: T, activity: Arc<Activity>, max: usize, h2: bool) -> Self {
        HeadLimited {
            inner,
            activity,
            max,
            state: if max == 0 || h2 {
                State::Off
            } else {
                State::Counting
            },
            preface: Some(0),
            last_started: 0,
            head_bytes: 0,
            flushed: true,
        }
    }

    /// Watches the connection's first bytes for the h2c preface.
    fn check_preface(&mut self, data: &[u8]) {
        let Some(matched) = self.preface else { return };
        let want = &H2_PREFACE[matched..];
        let n = data.len().min(want.len());
        if data[..n] != want[..n] {
            self.preface = None;
        } else if matched + n == H2_PREFACE.len() {
            self.preface = None;
            self.state = State::Off;
        } else {
            self.preface = Some(matched + n);
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> HeadLimited<T> {
    fn poll_counted(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.activity.active() > 0 {
            self.head_bytes = 0;
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let started = self.activity.started();
        if started != self.last_started {
            self.last_started = started;
            self.head_bytes = 0;
        }
        // A read may bring the head and the start of the body: the head is
        // over the bound only when hyper asks for more with none left.
        let allowance = self.max.saturating_sub(self.head_bytes);
        if allowance == 0 {
            tracing::info!(
                "request head over http.maxheaderbytes ({} bytes); answered 431",
                self.max
            );
            self.state = if self.flushed {
                State::Refusing(0)
            } else {
                State::Done
            };
            return Poll::Ready(Ok(()));
        }
        let room = buf.remaining().min(allowance);
        let slice = buf.initialize_unfilled_to(room);
        let mut sub = ReadBuf::new(slice);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut sub))?;
        let n = sub.filled().len();
        if self.preface.is_some() {
            let data = sub.filled().to_vec();
            self.check_preface(&data);
        }
        self.head_bytes += n;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadLimited<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Off => return Pin::new(&mut this.inner).poll_read(cx, buf),
                State::Done => return Poll::Ready(Ok(())),
                State::Counting => {
                    ready!(this.poll_counted(cx, buf))?;
                    if matches!(this.state, State::Counting | State::Off) {
                        return Poll::Ready(Ok(()));
                    }
                }
                State::Refusing(written) if written < REFUSAL.len() => {
                    match ready!(Pin::new(&mut this.inner).poll_write(cx, &REFUSAL[written..])) {
                        Ok(n) if n > 0 => this.state = State::Refusing(written + n),
                        _ => this.state = State::Done,
                    }
                }
                State::Refusing(_) => {
                    let _ = ready!(Pin::new(&mut this.inner).poll_flush(cx));
                    let _ = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
                    this.state = State::Discarding(0);
                }
                State::Discarding(seen) => {
                    let mut scratch = [0u8; 8192];
                    let mut sink = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut sink)) {
                        Ok(()) if !sink.filled().is_empty() && seen < DISCARD_MAX => {
                            this.state = State::Discarding(seen + sink.filled().len());
                        }
                        _ => this.state = State::Done,
                    }
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HeadLimited<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.state {
            State::Counting | State::Off => {
                this.flushed = false;
                Pin::new(&mut this.inner).poll_write(cx, data)
            }
            _ => Poll::Ready(Ok(data.len())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.state {
            State::Counting | State::Off => {
                this.flushed = false;
                Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
            }
            _ => Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.state {
            State::Counting | State::Off => {
                let flushed = ready!(Pin::new(&mut this.inner).poll_flush(cx));
                this.flushed = flushed.is_ok();
                Poll::Ready(flushed)
            }
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.state {
            State::Counting | State::Off => Pin::new(&mut this.inner).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}
