//! Streaming writer of the filesystem driver.
//!
//! Bytes collect in a page-aligned buffer (64 KiB first, so a small blob
//! costs no large allocation, then 4 MiB ones from the process's pool,
//! `buf_pool.rs`, given back when the writer is done); each full buffer is
//! written by a blocking-pool thread with `O_DIRECT` while the request keeps
//! receiving (and hashing) into a second buffer, so network, hashing and
//! disk overlap. Direct writes skip the page cache: no copy into it, no
//! dirty pages to write back at commit (measured: docs/performance.md). The
//! unaligned tail goes through the page cache; the driver's group sync makes
//! everything durable.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::task::JoinHandle;

use super::aligned::{AlignedBuf, ALIGN};
use super::buf_pool::POOL;
use super::claim::Claim;
use super::group_sync::GroupSync;
use super::ops::{Ops, Step};
use super::target::Target;
use super::{backend, blocking, BUF_SIZE, FIRST_BUF_SIZE};
use crate::storage::{DeferredWrite, FileWriter, StorageDriver, StorageResult};

/// How a writer's file is opened when it is first needed: in the blocking
/// trip of the first full buffer, or of the finish. A small object is then
/// written in one trip to the blocking pool instead of two.
pub(super) enum Open {
    /// A temp file in `dest`'s directory (under `root`) that replaces it.
    Replace { root: PathBuf, dest: PathBuf },
    /// The object at `path`, which held `len` bytes (a block multiple) when
    /// the writer was made.
    Append { path: PathBuf, len: u64 },
}

impl Open {
    fn open(self) -> io::Result<Target> {
        match self {
            Open::Replace { root, dest } => Target::replace(&root, dest, true),
            Open::Append { path, len } => Target::append_at(path, len),
        }
    }
}

/// The writer's file, shared with the write in flight.
pub(super) enum Slot {
    /// Not opened yet.
    Pending(Open),
    Ready(Target),
    /// Taken to finish, or dropped (undoing the writer's work) after a
    /// failed write.
    Gone,
}

impl Slot {
    /// The open file, opening it first if needed.
    fn ready(&mut self) -> io::Result<&mut Target> {
        if matches!(self, Slot::Pending(_)) {
            if let Slot::Pending(open) = std::mem::replace(self, Slot::Gone) {
                *self = Slot::Ready(open.open()?);
            }
        }
        match self {
            Slot::Ready(target) => Ok(target),
            _ => Err(io::Error::other("writer abandoned")),
        }
    }
}

type Shared = Arc<Mutex<Slot>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Slot> {
    // Nothing panics while holding it; recover the value regardless.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writer over a [`Target`] with double buffering (see the module doc).
pub(super) struct FsWriter {
    key: String,
    target: Shared,
    /// The buffer being written; handed back for reuse.
    in_flight: Option<JoinHandle<io::Result<AlignedBuf>>>,
    buf: AlignedBuf,
    spare: Option<AlignedBuf>,
    /// File offset of `buf`'s first byte.
    buf_start: u64,
    /// Size of the object: what was there before plus what was written.
    size: u64,
    /// Set once a write failed: every later call fails too.
    broken: bool,
    group: Arc<GroupSync>,
    /// The driver's file operations, for a batch run with the finish, and
    /// its per-file mode (`fsync_each`: fsync at finish, no group sync).
    ops: Ops,
    /// An append writer's claim on its upload, released when the writer is
    /// dropped, after its finish (`claim.rs`).
    claim: Option<Claim>,
}

impl FsWriter {
    /// A writer over `slot`, whose object holds `size` bytes already;
    /// `resume` is where the buffer starts and the stored bytes it repeats
    /// ([`Target::resume_point`]).
    pub(super) fn new(
        key: String,
        slot: Slot,
        size: u64,
        resume: (u64, Vec<u8>),
        ops: Ops,
        group: Arc<GroupSync>,
    ) -> Self {
        let (buf_start, head) = resume;
        let mut buf = AlignedBuf::new(FIRST_BUF_SIZE);
        // The head is under one block, below the buffer's capacity.
        buf.extend(&head);
        Self {
            size,
            key,
            target: Arc::new(Mutex::new(slot)),
            in_flight: None,
            buf,
            spare: None,
            buf_start,
            broken: false,
            group,
            ops,
            claim: None,
        }
    }

    /// The writer, holding `claim` until it is dropped.
    pub(super) fn with_claim(mut self, claim: Claim) -> Self {
        self.claim = Some(claim);
        self
    }

    fn failed(&self) -> crate::storage::StorageError {
        backend(format!("writer for {} failed earlier", self.key))
    }

    /// Waits for the write in flight, keeping its buffer as the spare.
    async fn settle(&mut self) -> StorageResult<()> {
        if let Some(handle) = self.in_flight.take() {
            match handle.await {
                Ok(Ok(mut done)) => {
                    done.clear();
                    self.spare = Some(done);
                }
                Ok(Err(e)) => {
                    self.broken = true;
                    return Err(backend(e));
                }
                Err(e) => {
                    self.broken = true;
                    return Err(backend(e));
                }
            }
        }
        if self.broken {
            return Err(self.failed());
        }
        Ok(())
    }

    /// Waits for the write in flight and takes the file (open or not) out
    /// of the writer.
    async fn take_target(&mut self) -> StorageResult<Slot> {
        self.settle().await?;
        match std::mem::replace(&mut *lock(&self.target), Slot::Gone) {
            Slot::Gone => Err(self.failed()),
            slot => Ok(slot),
        }
    }

    /// Sends the full buffer to a blocking thread and carries on with the
    /// spare one.
    async fn start_write(&mut self) -> StorageResult<()> {
        self.settle().await?;
        // The small first buffer is not reused: past it, the body is large.
        let next = self
            .spare
            .take()
            .filter(|b| b.capacity() == BUF_SIZE)
            .unwrap_or_else(|| POOL.take());
        let full = std::mem::replace(&mut self.buf, next);
        let offset = self.buf_start;
        self.buf_start += full.len() as u64;
        let shared = Arc::clone(&self.target);
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let mut guard = lock(&shared);
            let written = guard
                .ready()
                .and_then(|target| target.write_at(full.as_slice(), offset, true));
            if let Err(e) = written {
                // Dropping the target undoes the writer's work.
                *guard = Slot::Gone;
                return Err(e);
            }
            Ok(full)
        }));
        Ok(())
    }

    /// Writes what is buffered and makes the content visible, then runs
    /// `then` (a batch that depends on the content: its move, its link);
    /// with `durable`, waits for the group sync.
    async fn finish(mut self: Box<Self>, durable: bool, then: Vec<Step>) -> StorageResult<()> {
        let mut slot = self.take_target().await?;
        let buf = std::mem::replace(&mut self.buf, AlignedBuf::empty());
        let start = self.buf_start;
        // Per-file mode has no later group sync: every finish is durable.
        let fsync = self.ops.fsync_each;
        let ops = self.ops.clone();
        // The opening (if still due), the last buffer, the rename and the
        // batch in one trip to the blocking pool.
        blocking(move || {
            let target = slot.ready().map_err(backend)?;
            let data = buf.as_slice();
            let bulk = data.len() - data.len() % ALIGN;
            // A small object goes through the page cache: an `O_DIRECT`
            // descriptor would cost one more open and save nothing.
            target
                .write_at(&data[..bulk], start, bulk >= FIRST_BUF_SIZE)
                .map_err(backend)?;
            target
                .write_at(&data[bulk..], start + bulk as u64, false)
                .map_err(backend)?;
            POOL.give(buf);
            match std::mem::replace(&mut slot, Slot::Gone) {
                Slot::Ready(target) => target.finish(fsync).map_err(backend)?,
                _ => return Err(backend("writer abandoned")),
            }
            ops.run(then)
        })
        .await?;
        if durable && !fsync {
            self.group.sync().await.map_err(backend)?;
        }
        Ok(())
    }
}

impl Drop for FsWriter {
    /// An abandoned writer (client gone mid-upload) is undone before the
    /// next request can look: if a write is in flight, this waits for it
    /// (at most one buffer) rather than let a late write or clean-up land
    /// after a retry started.
    fn drop(&mut self) {
        let taken = std::mem::replace(&mut *lock(&self.target), Slot::Gone);
        drop(taken);
        if let Some(spare) = self.spare.take() {
            POOL.give(spare);
        }
        POOL.give(std::mem::replace(&mut self.buf, AlignedBuf::empty()));
    }
}

#[async_trait]
impl FileWriter for FsWriter {
    async fn write(&mut self, mut data: &[u8]) -> StorageResult<()> {
        if self.broken {
            return Err(self.failed());
        }
        while !data.is_empty() {
            let n = self.buf.extend(data);
            data = &data[n..];
            self.size += n as u64;
            if self.buf.is_full() {
                self.start_write().await?;
            }
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(self: Box<Self>) -> StorageResult<()> {
        self.finish(true, Vec::new()).await
    }

    async fn commit_deferred(self: Box<Self>) -> StorageResult<()> {
        self.finish(false, Vec::new()).await
    }

    /// The batch runs in the finish's own blocking-pool trip; `driver` is
    /// this writer's, whose operations the writer already holds.
    async fn commit_deferred_then(
        self: Box<Self>,
        _driver: &dyn StorageDriver,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()> {
        let steps = self.ops.steps(then)?;
        self.finish(false, steps).await
    }

    /// A rename into place in the finish's trip, as `then` would do it; the
    /// file renamed is the one this writer wrote, and the upload's claim
    /// (held until the writer is dropped) keeps other processes' writers
    /// of the same upload out until it is gone.
    async fn commit_to_then(
        self: Box<Self>,
        _driver: &dyn StorageDriver,
        dest: &str,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()> {
        let mut writes = Vec::with_capacity(then.len() + 1);
        writes.push(DeferredWrite::Move {
            from: self.key.clone(),
            to: dest.to_string(),
        });
        writes.extend(then);
        let steps = self.ops.steps(writes)?;
        self.finish(false, steps).await
    }

    async fn close(self: Box<Self>) -> StorageResult<()> {
        self.finish(false, Vec::new()).await
    }

    async fn cancel(mut self: Box<Self>) -> StorageResult<()> {
        let slot = self.take_target().await?;
        blocking(move || match slot {
            Slot::Ready(target) => target.cancel().map_err(backend),
            // An append writer's cancel removes the object, opened or not.
            Slot::Pending(Open::Append { path, .. }) => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(backend(e)),
                _ => Ok(()),
            },
            Slot::Pending(Open::Replace { .. }) | Slot::Gone => Ok(()),
        })
        .await
    }
}
