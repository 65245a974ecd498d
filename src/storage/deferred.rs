//! Batches of deferred writes: the writes one request makes after its
//! body (links, moves, clean-up), handed to a driver in one call. The
//! filesystem driver runs a batch in one blocking-pool trip instead of one
//! per write; each trip costs context switches that, for a small image
//! push, outweighed the file operations themselves (docs/performance.md).

use bytes::Bytes;

use super::{StorageDriver, StorageResult};

/// One write of a batch given to [`StorageDriver::apply_deferred`]; each
/// means what the driver call of the same name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferredWrite {
    /// As [`StorageDriver::put_deferred`].
    Put { key: String, content: Bytes },
    /// As [`StorageDriver::move_deferred`].
    Move { from: String, to: String },
    /// As [`StorageDriver::delete`], where nothing there is no error.
    DeleteIfExists { key: String },
}

/// Applies `writes` through the single-write calls, in order, stopping at
/// the first error: the default of [`StorageDriver::apply_deferred`].
pub async fn apply_one_by_one<D: StorageDriver + ?Sized>(
    driver: &D,
    writes: Vec<DeferredWrite>,
) -> StorageResult<()> {
    for write in writes {
        match write {
            DeferredWrite::Put { key, content } => driver.put_deferred(&key, content).await?,
            DeferredWrite::Move { from, to } => driver.move_deferred(&from, &to).await?,
            DeferredWrite::DeleteIfExists { key } => match driver.delete(&key).await {
                Err(e) if e.is_not_found() => {}
                other => other?,
            },
        }
    }
    Ok(())
}
