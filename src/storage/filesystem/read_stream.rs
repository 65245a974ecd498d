//! `read_stream` for the filesystem driver: reads a blob ahead in the
//! blocking pool, so that disk reads overlap socket writes, into buffers that
//! come back for reuse once their chunk has been sent.
//!
//! Each chunk is one `pread` in its own blocking-pool task; at most `AHEAD`
//! are in flight. A slow client therefore holds no thread while the socket
//! drains (a stream is only read as fast as it is polled), and a dropped
//! stream leaves at most `AHEAD` short tasks behind, which it aborts.
//!
//! Chunks are `Bytes` owning the read buffer: the HTTP layer writes them to
//! the socket as they are (no copy into a stream buffer), and when the last
//! reference is dropped the buffer goes back to the stream's spare list, so a
//! long read touches a handful of buffers instead of allocating and
//! page-faulting a fresh one per chunk.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// Size of one read. Measured on warm pulls (docs/performance.md, "Blob
/// pull"): 1 MiB costs twice the pool hand-offs and was slower or equal in
/// four comparisons, 4 MiB was slower in the one comparison made.
pub(super) const CHUNK: usize = 2 << 20;

/// Most reads in flight beyond the chunk being sent. A stream starts with
/// one, which keeps a socket-bound (slow) client fed; it goes to `AHEAD` the
/// first time the consumer has to wait for a read (disk or a late pool
/// thread is then the bottleneck). With what hyper holds (the chunk it
/// writes, and the next once less than ~400 KiB is left), a stream keeps at
/// most 3 chunks (6 MiB) alive, or 4 once reads have lagged.
const AHEAD: usize = 2;

/// The stream `FilesystemDriver::read_stream` returns.
pub(super) struct ReadAhead {
    file: Arc<File>,
    rt: Handle,
    /// A chunk read together with the open, served first.
    first: Option<Bytes>,
    /// Offset of the next read to start, and the end of the range.
    next: u64,
    end: u64,
    inflight: VecDeque<JoinHandle<io::Result<Bytes>>>,
    /// Reads to keep in flight: 1, or `AHEAD` once the consumer waited.
    depth: usize,
    spare_tx: mpsc::Sender<Vec<u8>>,
    spare_rx: mpsc::Receiver<Vec<u8>>,
    /// Set after an error: the stream ends.
    done: bool,
}

impl ReadAhead {
    /// Opens the stream over `[offset, offset + len)` of `file`; `first`,
    /// when given, was read from `offset` by the caller (in the same pool
    /// trip as the open) with a buffer from [`ReadAhead::spare_channel`].
    pub(super) fn new(
        file: File,
        rt: Handle,
        offset: u64,
        len: u64,
        first: Option<Bytes>,
        spare: (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>),
    ) -> Self {
        let first_len = first.as_ref().map_or(0, |b| b.len() as u64);
        let mut s = Self {
            file: Arc::new(file),
            rt,
            first,
            next: offset.saturating_add(first_len),
            end: offset.saturating_add(len),
            inflight: VecDeque::with_capacity(AHEAD),
            depth: 1,
            spare_tx: spare.0,
            spare_rx: spare.1,
            done: false,
        };
        s.fill();
        s
    }

    /// The channel that read buffers return through.
    pub(super) fn spare_channel() -> (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
        mpsc::channel()
    }

    /// Starts reads until `depth` are in flight or the range is covered.
    fn fill(&mut self) {
        while self.inflight.len() < self.depth && self.next < self.end {
            let want = chunk_len(self.end - self.next);
            let at = self.next;
            self.next += want as u64;
            let file = Arc::clone(&self.file);
            let buf = self
                .spare_rx
                .try_recv()
                .unwrap_or_else(|_| new_buffer(want));
            let home = self.spare_tx.clone();
            self.inflight.push_back(
                self.rt
                    .spawn_blocking(move || read_chunk(&file, buf, at, want, home)),
            );
        }
    }
}

/// An empty buffer for a read of `want` bytes. Allocated here, on the
/// async side, not in the pool thread that fills it: each pool thread has
/// its own malloc arena, and 2 MiB blocks freed into many arenas stay in
/// the process (measured: RSS +10 MiB after a few pulls).
pub(super) fn new_buffer(want: usize) -> Vec<u8> {
    Vec::with_capacity(want)
}

/// Length of the next read when `left` bytes remain.
pub(super) fn chunk_len(left: u64) -> usize {
    usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK))
}

/// Reads exactly `want` bytes at `at` into `buf` (reused when it comes back
/// from a sent chunk) and wraps them as a chunk that returns `buf` to `home`
/// when dropped. A file shorter than that is an `UnexpectedEof` error: the
/// caller promised a length it got from `stat`, so the blob was truncated.
pub(super) fn read_chunk(
    file: &File,
    mut buf: Vec<u8>,
    at: u64,
    want: usize,
    home: mpsc::Sender<Vec<u8>>,
) -> io::Result<Bytes> {
    // Within the capacity `new_buffer` or an earlier chunk left: no
    // allocation here, only zeroing of a fresh buffer's first use.
    buf.resize(want, 0);
    let mut filled = 0;
    while filled < want {
        match file.read_at(&mut buf[filled..], at + filled as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "file ended at {} of {}",
                        at + filled as u64,
                        at + want as u64
                    ),
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bytes::from_owner(Recycled { buf, home }))
}

/// A read buffer owned by a `Bytes` chunk; dropping the last reference to
/// the chunk sends the buffer back to the stream that read it.
struct Recycled {
    buf: Vec<u8>,
    home: mpsc::Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        // Fails only when the stream is gone; the buffer is then freed.
        let _ = self.home.send(std::mem::take(&mut self.buf));
    }
}

impl Stream for ReadAhead {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        let Some(front) = self.inflight.front_mut() else {
            return Poll::Ready(None);
        };
        let res = match Pin::new(front).poll(cx) {
            Poll::Pending => {
                // The socket waits for the disk: read further ahead.
                if self.depth < AHEAD {
                    self.depth = AHEAD;
                    self.fill();
                }
                return Poll::Pending;
            }
            Poll::Ready(res) => res,
        };
        self.inflight.pop_front();
        match res {
            Ok(Ok(chunk)) => {
                self.fill();
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok(Err(e)) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Err(join) => {
                self.done = true;
                Poll::Ready(Some(Err(io::Error::other(join))))
            }
        }
    }
}

impl Drop for ReadAhead {
    /// Reads not started yet are cancelled; a running `pread` finishes and
    /// its buffer is freed.
    fn drop(&mut self) {
        for h in &self.inflight {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::time::{Duration, Instant};

    use futures::StreamExt;

    use super::*;
    use crate::storage::filesystem::FilesystemDriver;
    use crate::storage::StorageDriver;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// True while this process has `path` open.
    fn is_open(path: &Path) -> bool {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .any(|target| target == path)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_mib_byte_exact_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let d = FilesystemDriver::new(dir.path());
        let content = pattern(5 * CHUNK + 123);
        d.put_content("/b/data", Bytes::from(content.clone()))
            .await
            .unwrap();
        for (offset, len) in [(0, content.len()), (CHUNK - 1, 2 * CHUNK + 2), (77, 0)] {
            let mut s = d
                .read_stream("/b/data", offset as u64, len as u64)
                .await
                .unwrap();
            let mut got = Vec::new();
            while let Some(chunk) = s.next().await {
                let chunk = chunk.unwrap();
                assert!(!chunk.is_empty() && chunk.len() <= CHUNK);
                got.extend_from_slice(&chunk);
            }
            assert!(got == content[offset..offset + len], "{offset}+{len}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_stream_closes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = FilesystemDriver::new(dir.path());
        let content = pattern(8 * CHUNK);
        d.put_content("/b/data", Bytes::from(content.clone()))
            .await
            .unwrap();
        let path = dir.path().join("b/data").canonicalize().unwrap();
        let mut s = d
            .read_stream("/b/data", 0, content.len() as u64)
            .await
            .unwrap();
        let first = s.next().await.unwrap().unwrap();
        assert_eq!(first, content[..CHUNK]);
        assert!(is_open(&path));
        drop(s);
        drop(first);
        // Read-ahead tasks hold the file; all of them must end.
        let start = Instant::now();
        while is_open(&path) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "file still open after the stream was dropped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncated_file_ends_in_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = FilesystemDriver::new(dir.path());
        let content = pattern(6 * CHUNK);
        d.put_content("/b/data", Bytes::from(content.clone()))
            .await
            .unwrap();
        let mut s = d
            .read_stream("/b/data", 0, content.len() as u64)
            .await
            .unwrap();
        let mut got = s.next().await.unwrap().unwrap().to_vec();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("b/data"))
            .unwrap()
            .set_len(2 * CHUNK as u64 + 10)
            .unwrap();
        let err = loop {
            match s.next().await {
                Some(Ok(chunk)) => got.extend_from_slice(&chunk),
                Some(Err(e)) => break e,
                None => panic!("stream ended cleanly after {} bytes", got.len()),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(got.len() < content.len());
        assert!(got == content[..got.len()]);
        assert!(s.next().await.is_none(), "nothing after the error");
    }

    /// A stream over `chunks` chunks of a fresh file, built directly so the
    /// test controls the blocking pool it reads in.
    fn stream_over(dir: &Path, chunks: usize) -> (ReadAhead, Vec<u8>) {
        let content = pattern(chunks * CHUNK);
        let path = dir.join("f");
        std::fs::write(&path, &content).unwrap();
        let file = File::open(&path).unwrap();
        let len = content.len() as u64;
        let s = ReadAhead::new(
            file,
            Handle::current(),
            0,
            len,
            None,
            ReadAhead::spare_channel(),
        );
        (s, content)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_consumer_keeps_one_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, content) = stream_over(dir.path(), 5);
        let mut got = Vec::new();
        loop {
            // A consumer slower than the disk: every read is done before it
            // asks for the next chunk, so it never waits.
            let start = Instant::now();
            while !s.inflight.iter().all(|h| h.is_finished()) {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "read never ended"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let Some(chunk) = s.next().await else { break };
            got.extend_from_slice(&chunk.unwrap());
            assert_eq!(s.depth, 1);
            assert!(
                s.inflight.len() <= 1,
                "{} reads in flight",
                s.inflight.len()
            );
        }
        assert!(got == content);
    }

    #[test]
    fn consumer_waiting_on_a_read_reads_further_ahead() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            // The one pool thread is busy, so the first read cannot run.
            let (release, blocked) = mpsc::channel::<()>();
            let blocker = tokio::task::spawn_blocking(move || blocked.recv());
            let (mut s, content) = stream_over(dir.path(), 4);
            assert_eq!((s.depth, s.inflight.len()), (1, 1));
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut s).poll_next(&mut cx).is_pending());
            assert_eq!((s.depth, s.inflight.len()), (AHEAD, AHEAD));
            release.send(()).unwrap();
            blocker.await.unwrap().unwrap();
            let mut got = Vec::new();
            while let Some(chunk) = s.next().await {
                got.extend_from_slice(&chunk.unwrap());
                assert!(s.inflight.len() <= AHEAD);
            }
            assert!(got == content);
        });
    }

    #[test]
    fn sent_chunk_returns_its_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, pattern(1000)).unwrap();
        let file = File::open(&path).unwrap();
        let (tx, rx) = ReadAhead::spare_channel();
        let chunk = read_chunk(&file, Vec::new(), 10, 100, tx).unwrap();
        assert_eq!(chunk, pattern(1000)[10..110]);
        let ptr = chunk.as_ptr();
        let part = chunk.slice(5..);
        drop(chunk);
        assert!(rx.try_recv().is_err(), "still referenced by a slice");
        drop(part);
        let buf = rx.try_recv().unwrap();
        assert_eq!(buf.as_ptr(), ptr);
        // A reused buffer is overwritten, never shows old bytes.
        let (tx, _rx) = ReadAhead::spare_channel();
        let again = read_chunk(&file, buf, 500, 50, tx).unwrap();
        assert_eq!(again, pattern(1000)[500..550]);
    }
}
