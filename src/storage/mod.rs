//! Storage layer: bytes at keys. Nothing here knows about manifests, tags or HTTP;
//! the registry layer above gives keys their meaning (see `paths`).
//!
//! Keys are absolute, `/`-separated paths such as
//! `/docker/registry/v2/blobs/sha256/ab/abcd.../data`, matching distribution's
//! storage driver contract so that its data can be served in place.

mod deferred;
mod exhausted;
pub mod filesystem;
pub mod memory;
pub mod metered;
pub mod object_store;
pub mod paths;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::ReaderStream;

pub use deferred::{apply_one_by_one, DeferredWrite};
pub use exhausted::Exhaustion;

/// A boxed byte stream returned by [`StorageDriver::reader`].
pub type BoxReader = Pin<Box<dyn AsyncRead + Send + Unpin>>;

/// Chunks of an object, returned by [`StorageDriver::read_stream`]: each
/// chunk can become a response body frame as it is, with no copy into
/// another buffer.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Chunk size of the default [`StorageDriver::read_stream`]: large enough
/// that a multi-GiB object costs few reads and wake-ups.
const DEFAULT_STREAM_CHUNK: usize = 1 << 20;

/// Errors every driver reports in the same terms, so the registry layer can map
/// "not there" to the right API error whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Nothing is stored at this key (or, for `list`, under it).
    #[error("path not found: {0}")]
    NotFound(String),
    /// The key breaks the key grammar (`^(/[A-Za-z0-9._-]+)+$`).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A read or append asked for an offset past the end of the object.
    #[error("invalid offset {offset} for path {path}")]
    InvalidOffset { path: String, offset: u64 },
    /// The backend is out of a resource or cannot be written (see
    /// [`Exhaustion`]); the client is told the cause.
    #[error("{driver}: {cause}: {detail}")]
    Exhausted {
        driver: &'static str,
        cause: Exhaustion,
        detail: String,
    },
    /// Anything else the backend reported (I/O, network, permissions).
    #[error("{driver}: {detail}")]
    Backend {
        driver: &'static str,
        detail: String,
    },
}

impl StorageError {
    /// Wraps a backend-specific error, keeping the driver name for the logs.
    pub fn backend(driver: &'static str, err: impl std::fmt::Display) -> Self {
        StorageError::Backend {
            driver,
            detail: err.to_string(),
        }
    }

    /// An I/O error of `driver`: [`StorageError::Exhausted`] when its errno
    /// names a cause the client should hear, else `Backend`.
    pub fn io(driver: &'static str, err: &io::Error) -> Self {
        match Exhaustion::of(err) {
            Some(cause) => StorageError::Exhausted {
                driver,
                cause,
                detail: err.to_string(),
            },
            None => StorageError::backend(driver, err),
        }
    }

    /// True when the error means "nothing at this key".
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound(_))
    }
}

/// Result alias for storage operations.
pub type StorageResult<T> = Result<T, StorageError>;

/// What `stat` tells about a key: enough for Content-Length, Last-Modified and
/// for telling objects from directories (prefixes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The key that was asked about.
    pub path: String,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last modification time, when the backend knows it.
    pub modified: Option<SystemTime>,
    /// True for a directory / common prefix rather than an object.
    pub is_dir: bool,
}

/// The primitive surface every backend implements (memory, filesystem, object
/// stores). Kept small and close to distribution's driver interface so that the
/// registry logic above is written once and every backend passes one test suite.
#[async_trait]
pub trait StorageDriver: Send + Sync + 'static {
    /// Short backend name for logs and errors ("filesystem", "inmemory", "s3").
    fn name(&self) -> &'static str;

    /// Whether the backend can serve at all, beyond keys being absent: the
    /// filesystem driver checks that its root is (or can become) a
    /// directory, since reads below a regular file look like "not found".
    /// Default: nothing to check.
    async fn check_ready(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Reads a whole small object (links, manifests, state files).
    /// Errors: `NotFound` when no object is at `path`.
    async fn get_content(&self, path: &str) -> StorageResult<Bytes>;

    /// Stores a whole small object, replacing any previous one atomically:
    /// readers see either the old or the new content, never a mix.
    async fn put_content(&self, path: &str, content: Bytes) -> StorageResult<()>;

    /// Like `put_content`, but durable only once a later [`sync`] returns:
    /// atomic and visible at once, yet not forced to disk, so a request that
    /// writes several objects pays for durability once. Also used alone for
    /// data whose loss in a crash is harmless (upload bookkeeping, tag
    /// history). Backends whose writes are durable on return store it as
    /// `put_content` does.
    ///
    /// [`sync`]: StorageDriver::sync
    async fn put_deferred(&self, path: &str, content: Bytes) -> StorageResult<()> {
        self.put_content(path, content).await
    }

    /// Opens a stream over the object starting at `offset`.
    /// Errors: `NotFound`; `InvalidOffset` when `offset` is past the end.
    async fn reader(&self, path: &str, offset: u64) -> StorageResult<BoxReader>;

    /// Streams the `len` bytes of the object starting at `offset`, in chunks
    /// of the backend's choosing; for serving blobs, where the chunks go to
    /// the socket as they are. The stream yields exactly `len` bytes, or ends
    /// with an error (`UnexpectedEof` when the object is shorter).
    /// Errors: as `reader`. The default reads through `reader`; backends with
    /// a cheaper way to produce owned chunks override it.
    async fn read_stream(&self, path: &str, offset: u64, len: u64) -> StorageResult<ByteStream> {
        let reader = self.reader(path, offset).await?;
        Ok(Box::pin(Exact::new(
            ReaderStream::with_capacity(reader.take(len), DEFAULT_STREAM_CHUNK),
            len,
        )))
    }

    /// Opens a writer. With `append` the writer continues the object left by an
    /// earlier writer's `close` (resumable uploads); without it, it starts empty.
    ///
    /// A non-append writer replaces `path` atomically on `commit` or `close`:
    /// until then readers see the previous content (or nothing), never a part.
    /// An append writer may write in place, so readers of `path` can see a
    /// growing tail before `commit`; only use `append` on private keys
    /// (upload data).
    /// Errors: `NotFound` when `append` is set and nothing is there to continue.
    async fn writer(&self, path: &str, append: bool) -> StorageResult<Box<dyn FileWriter>>;

    /// The local file that holds (or will hold) the object at `path`, for a
    /// caller that writes a private key (upload data) itself and commits it
    /// with an append writer: the pull-through cache spools a blob there,
    /// serves it while it grows, and then takes it as the blob by rename
    /// instead of copying it. `None` (the default) where objects are not
    /// local files, or `path` is not a valid key.
    fn local_path(&self, _path: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// Describes the object or directory at `path`.
    /// Errors: `NotFound`.
    async fn stat(&self, path: &str) -> StorageResult<FileInfo>;

    /// Lists the direct children of the directory `path` as full keys, in no
    /// particular order. Errors: `NotFound` when the directory does not exist.
    /// Whether an emptied directory still exists depends on the backend (it
    /// does on a filesystem, not on object stores), so callers must treat an
    /// empty list and `NotFound` alike.
    async fn list(&self, path: &str) -> StorageResult<Vec<String>>;

    /// True when the directory `path` has at least one child; false when it
    /// is empty or does not exist (which `list` callers treat alike). The
    /// catalog asks this of every repository's manifest revisions, and a
    /// backend that can stop at the first entry answers it for less than a
    /// full `list`, which is what this default costs.
    async fn has_children(&self, path: &str) -> StorageResult<bool> {
        match self.list(path).await {
            Ok(children) => Ok(!children.is_empty()),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Moves an object from `source` to `dest`, replacing `dest` atomically.
    /// Errors: `NotFound` when `source` does not exist.
    async fn move_object(&self, source: &str, dest: &str) -> StorageResult<()>;

    /// Like `move_object`, but durable only once a later `sync` returns.
    async fn move_deferred(&self, source: &str, dest: &str) -> StorageResult<()> {
        self.move_object(source, dest).await
    }

    /// Makes every write this driver finished before the call durable:
    /// `put_deferred`, `move_deferred`, `commit_deferred` and `close`. On a
    /// filesystem, concurrent callers share one flush (group commit). A
    /// no-op where every write is durable on return (object stores).
    async fn sync(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Applies `writes` in order, as the matching `*_deferred` and `delete`
    /// calls would, stopping at the first error (earlier writes stay);
    /// durable once a later [`sync`] returns. A request's writes in one
    /// call: backends that pay per call (the filesystem driver's blocking
    /// pool) override it to pay once.
    ///
    /// [`sync`]: StorageDriver::sync
    async fn apply_deferred(&self, writes: Vec<DeferredWrite>) -> StorageResult<()> {
        apply_one_by_one(self, writes).await
    }

    /// Deletes the object or the whole directory tree at `path`. Parent
    /// directories left empty are not removed (as in distribution).
    /// Errors: `NotFound` when nothing is there.
    async fn delete(&self, path: &str) -> StorageResult<()>;

    /// A URL a client may be redirected to for reading `path` directly from the
    /// backend (presigned object-store URLs). `None` when the backend cannot.
    async fn redirect_url(&self, _path: &str) -> StorageResult<Option<String>> {
        Ok(None)
    }

    /// Lists every object (not directory) under `path`, recursively, as full
    /// keys in lexical order. Backends with a cheaper native walk override this.
    /// Errors: `NotFound` when `path` does not exist.
    async fn walk(&self, path: &str) -> StorageResult<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![path.to_string()];
        while let Some(dir) = stack.pop() {
            for child in self.list(&dir).await? {
                let info = self.stat(&child).await?;
                if info.is_dir {
                    stack.push(child);
                } else {
                    out.push(child);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A writer returned by [`StorageDriver::writer`]. Dropping it without
/// `commit`, `close` or `cancel` discards whatever it wrote since opening
/// (an appended object goes back to its size when the writer was opened).
#[async_trait]
pub trait FileWriter: Send {
    /// Appends bytes.
    async fn write(&mut self, data: &[u8]) -> StorageResult<()>;

    /// Total size of the object so far, including content from earlier writers
    /// when appending.
    fn size(&self) -> u64;

    /// Makes the content durable and visible at the writer's path; the writer
    /// is finished. On a filesystem this means fsynced before returning.
    async fn commit(self: Box<Self>) -> StorageResult<()>;

    /// Like `commit`, but durable only once a later
    /// [`StorageDriver::sync`] returns (visible at once).
    async fn commit_deferred(self: Box<Self>) -> StorageResult<()> {
        self.commit().await
    }

    /// `commit_deferred`, then `then` applied as `driver.apply_deferred`
    /// applies it; `driver` must be the driver that made this writer. An
    /// upload's last write and its move and link then take one step where
    /// the backend can (the filesystem driver: one blocking-pool trip).
    async fn commit_deferred_then(
        self: Box<Self>,
        driver: &dyn StorageDriver,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()> {
        self.commit_deferred().await?;
        driver.apply_deferred(then).await
    }

    /// Commits what this writer holds at `dest` instead of at its own path
    /// (left for `then` to remove: it may still hold what it held before the
    /// writer opened, or nothing), durable once a later
    /// [`StorageDriver::sync`] returns, then applies `then` as
    /// `driver.apply_deferred` does; `driver` must be the driver that made
    /// this writer. What appears at `dest` is exactly what went through this
    /// writer (with what it resumed from), even when another process
    /// rewrites the writer's path meanwhile: an upload finished on one
    /// replica publishes the bytes it verified, not a chunk another replica
    /// saved after the check.
    async fn commit_to_then(
        self: Box<Self>,
        driver: &dyn StorageDriver,
        dest: &str,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()>;

    /// Persists what was written so that a later `writer(path, true)` can
    /// continue it, without committing, from this or any other process
    /// sharing the storage. Used between upload chunks. `stat` then reports
    /// the full size, but it need not survive a crash. The content is
    /// readable at `path` too, except on object stores once it exceeds one
    /// multipart part (it is readable after `commit`; see docs/storage.md).
    async fn close(self: Box<Self>) -> StorageResult<()>;

    /// Discards everything this writer and earlier appending writers wrote:
    /// an append writer removes the object at its path; a non-append writer
    /// leaves whatever was at its path before it was opened.
    async fn cancel(self: Box<Self>) -> StorageResult<()>;
}

/// Ends a stream that stops short of the length it promised with an
/// `UnexpectedEof` error, so a body can never silently come out truncated.
struct Exact<S> {
    inner: S,
    left: u64,
    done: bool,
}

impl<S> Exact<S> {
    /// Expects exactly `len` bytes from `inner`.
    fn new(inner: S, len: u64) -> Self {
        Self {
            inner,
            left: len,
            done: false,
        }
    }
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for Exact<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let item = match item {
            Some(Ok(chunk)) => match self.left.checked_sub(chunk.len() as u64) {
                Some(left) => {
                    self.left = left;
                    return Poll::Ready(Some(Ok(chunk)));
                }
                None => Some(Err(io::Error::other(
                    "object longer than its stream length",
                ))),
            },
            Some(Err(e)) => Some(Err(e)),
            None if self.left == 0 => None,
            None => Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("object ended {} bytes early", self.left),
            ))),
        };
        self.done = true;
        Poll::Ready(item)
    }
}

/// Checks a key against distribution's path grammar `^(/[A-Za-z0-9._-]+)+$`,
/// refusing `.` and `..` segments so no key can escape the storage root.
pub fn validate_path(path: &str) -> StorageResult<()> {
    let ok = path.starts_with('/')
        && path[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidPath(path.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::{stream, StreamExt};

    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn exact_passes_a_stream_of_the_promised_length() {
        let got: Vec<_> = Exact::new(chunks(&[b"ab", b"cde"]), 5).collect().await;
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|c| c.is_ok()));
    }

    #[tokio::test]
    async fn exact_turns_a_short_stream_into_an_error() {
        let mut s = Exact::new(chunks(&[b"ab", b"cde"]), 6);
        assert!(s.next().await.is_some_and(|c| c.is_ok()));
        assert!(s.next().await.is_some_and(|c| c.is_ok()));
        let err = s.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn exact_refuses_a_long_stream() {
        let mut s = Exact::new(chunks(&[b"ab", b"cde"]), 4);
        assert!(s.next().await.is_some_and(|c| c.is_ok()));
        assert!(s.next().await.is_some_and(|c| c.is_err()));
        assert!(s.next().await.is_none());
    }

    #[test]
    fn path_grammar() {
        for good in [
            "/a",
            "/docker/registry/v2/blobs/sha256/ab/abcd/data",
            "/a-b/c_d/e.f",
        ] {
            assert!(validate_path(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/", "a/b", "/a//b", "/a/", "/a/../b", "/./a", "/a b", "/a%2fb", "/ä",
        ] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
    }
}
