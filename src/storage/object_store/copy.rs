//! Server-side copies between object paths: one CopyObject up to the
//! store's single-copy limit, a stream through a multipart upload above it
//! (bounded memory: a few parts). Path-level, so the driver's own objects
//! (a completed upload's private multipart object) can be copied too.

use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path;
use object_store::GetOptions;

use super::inner::Inner;
use super::writer::ObjectWriter;
use crate::storage::{FileWriter, StorageResult};

/// Copies the `size` bytes at `src` to `dst` (key `dest` for errors),
/// replacing `dst` atomically.
pub(super) async fn copy_path(
    d: &Arc<Inner>,
    dest: &str,
    src: &Path,
    dst: &Path,
    size: u64,
) -> StorageResult<()> {
    if size <= d.opts.copy_limit {
        return d.store.copy(src, dst).await.map_err(|e| d.map_err(dest, e));
    }
    let mut body = d.get(dest, src, GetOptions::default()).await?.into_stream();
    let mut w = ObjectWriter::fresh(d.clone(), dest, dst.clone());
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| d.map_err(dest, e))?;
        w.write(&chunk).await?;
    }
    Box::new(w).commit().await
}

/// Deletes `path`; already gone is fine.
pub(super) async fn remove_path(d: &Inner, path: &Path) -> StorageResult<()> {
    match d.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(d.err(e)),
    }
}
