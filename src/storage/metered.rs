//! A driver wrapper that times every call of the driver and of its writers
//! and counts outcomes into [`StorageMetrics`]: the storage layer's side
//! of `/metrics`. Each method delegates to the same method of the wrapped
//! driver, so overridden defaults (batched `apply_deferred`, native
//! `walk`, `read_stream`) keep their cost.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    BoxReader, ByteStream, DeferredWrite, FileInfo, FileWriter, StorageDriver, StorageResult,
};
use crate::metrics::storage::{Outcome, StorageMetrics, StorageOp};
use crate::metrics::Metrics;

/// `inner`, measured into `metrics`.
pub struct Metered {
    inner: Arc<dyn StorageDriver>,
    metrics: Arc<Metrics>,
}

impl Metered {
    /// Wraps `inner`; its name becomes the `driver` label.
    pub fn new(inner: Arc<dyn StorageDriver>, metrics: Arc<Metrics>) -> Metered {
        metrics.storage.set_driver(inner.name());
        Metered { inner, metrics }
    }
}

/// Records the outcome and latency of one call.
fn note<T>(m: &StorageMetrics, op: StorageOp, started: Instant, r: &StorageResult<T>) {
    let outcome = match r {
        Ok(_) => Outcome::Ok,
        Err(e) if e.is_not_found() => Outcome::NotFound,
        Err(_) => Outcome::Error,
    };
    m.record(op, outcome, started.elapsed());
}

/// Times `$call` as `$op`.
macro_rules! timed {
    ($self:ident, $op:expr, $call:expr) => {{
        let started = Instant::now();
        let r = $call.await;
        note(&$self.metrics.storage, $op, started, &r);
        r
    }};
}

#[async_trait]
impl StorageDriver for Metered {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn check_ready(&self) -> StorageResult<()> {
        timed!(self, StorageOp::CheckReady, self.inner.check_ready())
    }

    async fn get_content(&self, path: &str) -> StorageResult<Bytes> {
        timed!(self, StorageOp::GetContent, self.inner.get_content(path))
    }

    async fn put_content(&self, path: &str, content: Bytes) -> StorageResult<()> {
        timed!(
            self,
            StorageOp::PutContent,
            self.inner.put_content(path, content)
        )
    }

    async fn put_deferred(&self, path: &str, content: Bytes) -> StorageResult<()> {
        timed!(
            self,
            StorageOp::PutDeferred,
            self.inner.put_deferred(path, content)
        )
    }

    async fn reader(&self, path: &str, offset: u64) -> StorageResult<BoxReader> {
        timed!(self, StorageOp::Reader, self.inner.reader(path, offset))
    }

    async fn read_stream(&self, path: &str, offset: u64, len: u64) -> StorageResult<ByteStream> {
        timed!(
            self,
            StorageOp::ReadStream,
            self.inner.read_stream(path, offset, len)
        )
    }

    async fn writer(&self, path: &str, append: bool) -> StorageResult<Box<dyn FileWriter>> {
        let w = timed!(self, StorageOp::Writer, self.inner.writer(path, append))?;
        Ok(Box::new(MeteredWriter {
            inner: w,
            driver: self.inner.clone(),
            metrics: self.metrics.clone(),
        }))
    }

    fn local_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(path)
    }

    async fn stat(&self, path: &str) -> StorageResult<FileInfo> {
        timed!(self, StorageOp::Stat, self.inner.stat(path))
    }

    async fn list(&self, path: &str) -> StorageResult<Vec<String>> {
        timed!(self, StorageOp::List, self.inner.list(path))
    }

    async fn has_children(&self, path: &str) -> StorageResult<bool> {
        timed!(self, StorageOp::HasChildren, self.inner.has_children(path))
    }

    async fn move_object(&self, source: &str, dest: &str) -> StorageResult<()> {
        timed!(self, StorageOp::Move, self.inner.move_object(source, dest))
    }

    async fn move_deferred(&self, source: &str, dest: &str) -> StorageResult<()> {
        timed!(
            self,
            StorageOp::MoveDeferred,
            self.inner.move_deferred(source, dest)
        )
    }

    async fn sync(&self) -> StorageResult<()> {
        timed!(self, StorageOp::Sync, self.inner.sync())
    }

    async fn apply_deferred(&self, writes: Vec<DeferredWrite>) -> StorageResult<()> {
        timed!(
            self,
            StorageOp::ApplyDeferred,
            self.inner.apply_deferred(writes)
        )
    }

    async fn delete(&self, path: &str) -> StorageResult<()> {
        timed!(self, StorageOp::Delete, self.inner.delete(path))
    }

    async fn redirect_url(&self, path: &str) -> StorageResult<Option<String>> {
        timed!(self, StorageOp::RedirectUrl, self.inner.redirect_url(path))
    }

    async fn walk(&self, path: &str) -> StorageResult<Vec<String>> {
        timed!(self, StorageOp::Walk, self.inner.walk(path))
    }
}

/// A writer of the wrapped driver, measured. The `*_then` calls hand the
/// inner writer the inner driver, as their contract requires ("the driver
/// that made this writer").
struct MeteredWriter {
    inner: Box<dyn FileWriter>,
    driver: Arc<dyn StorageDriver>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl FileWriter for MeteredWriter {
    async fn write(&mut self, data: &[u8]) -> StorageResult<()> {
        timed!(self, StorageOp::WriterWrite, self.inner.write(data))
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    async fn commit(self: Box<Self>) -> StorageResult<()> {
        timed!(self, StorageOp::WriterCommit, self.inner.commit())
    }

    async fn commit_deferred(self: Box<Self>) -> StorageResult<()> {
        timed!(
            self,
            StorageOp::WriterCommitDeferred,
            self.inner.commit_deferred()
        )
    }

    async fn commit_deferred_then(
        self: Box<Self>,
        _driver: &dyn StorageDriver,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()> {
        let this = *self;
        timed!(
            this,
            StorageOp::WriterCommitThen,
            this.inner.commit_deferred_then(this.driver.as_ref(), then)
        )
    }

    async fn commit_to_then(
        self: Box<Self>,
        _driver: &dyn StorageDriver,
        dest: &str,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()> {
        let this = *self;
        timed!(
            this,
            StorageOp::WriterCommitThen,
            this.inner.commit_to_then(this.driver.as_ref(), dest, then)
        )
    }

    async fn close(self: Box<Self>) -> StorageResult<()> {
        timed!(self, StorageOp::WriterClose, self.inner.close())
    }

    async fn cancel(self: Box<Self>) -> StorageResult<()> {
        timed!(self, StorageOp::WriterCancel, self.inner.cancel())
    }
}
