//! Streaming writer of the filesystem driver.

use std::io::Write;

use async_trait::async_trait;

use std::sync::Arc;

use super::group_sync::GroupSync;
use super::target::Target;
use super::{backend, blocking, BUF_SIZE};
use crate::storage::{FileWriter, StorageResult};

/// Writer over a [`Target`], buffering up to [`BUF_SIZE`] bytes so that each
/// trip to a blocking thread writes a large chunk.
pub(super) struct FsWriter {
    key: String,
    /// `None` once an operation failed mid-way: the writer is unusable.
    target: Option<Target>,
    buf: Vec<u8>,
    size: u64,
    group: Arc<GroupSync>,
}

impl FsWriter {
    pub(super) fn new(key: String, target: Target, group: Arc<GroupSync>) -> Self {
        Self {
            group,
            key,
            size: target.base_len(),
            target: Some(target),
            buf: Vec::with_capacity(BUF_SIZE),
        }
    }

    fn take_target(&mut self) -> StorageResult<Target> {
        self.target
            .take()
            .ok_or_else(|| backend(format!("writer for {} failed earlier", self.key)))
    }

    /// Writes the buffer out. On error the target is dropped, undoing the
    /// writer's work, and the writer stays unusable.
    async fn flush(&mut self) -> StorageResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut target = self.take_target()?;
        let buf = std::mem::take(&mut self.buf);
        let (target, mut buf) = blocking(move || {
            target.file.write_all(&buf).map_err(backend)?;
            Ok((target, buf))
        })
        .await?;
        buf.clear();
        self.buf = buf;
        self.target = Some(target);
        Ok(())
    }

    /// Makes the content visible; with `durable`, waits for the group sync.
    async fn finish(mut self: Box<Self>, durable: bool) -> StorageResult<()> {
        // The last buffer and the rename in one trip to the blocking pool.
        let mut target = self.take_target()?;
        let buf = std::mem::take(&mut self.buf);
        blocking(move || {
            target.file.write_all(&buf).map_err(backend)?;
            target.finish().map_err(backend)
        })
        .await?;
        if durable {
            self.group.sync().await.map_err(backend)?;
        }
        Ok(())
    }
}

#[async_trait]
impl FileWriter for FsWriter {
    async fn write(&mut self, data: &[u8]) -> StorageResult<()> {
        if self.target.is_none() {
            return Err(backend(format!("writer for {} failed earlier", self.key)));
        }
        self.buf.extend_from_slice(data);
        self.size += data.len() as u64;
        if self.buf.len() >= BUF_SIZE {
            self.flush().await?;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(self: Box<Self>) -> StorageResult<()> {
        self.finish(true).await
    }

    async fn commit_deferred(self: Box<Self>) -> StorageResult<()> {
        self.finish(false).await
    }

    async fn close(self: Box<Self>) -> StorageResult<()> {
        self.finish(false).await
    }

    async fn cancel(mut self: Box<Self>) -> StorageResult<()> {
        let target = self.take_target()?;
        blocking(move || target.cancel().map_err(backend)).await
    }
}
