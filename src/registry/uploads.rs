//! Upload sessions: data accumulates under `_uploads/<id>/data` and becomes a
//! blob only after its digest is verified, by a move into `blobs/`.
//!
//! The running hash of each upload is kept in memory between chunks and saved
//! in storage after each chunk (`hashstates/sha256/<offset>`, distribution's
//! format), so a chunked push hashes every byte once even when its chunks land
//! on different instances; only when no state is found is the data re-hashed.
//! The requests of one session run one at a time (`upload_locks.rs`).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncReadExt;

use super::{BlobInfo, Registry, RegistryError, RegistryResult};
use crate::oci::digest::{Algorithm, Digest, Hasher};
use crate::oci::name::{RepoName, UploadId};
use crate::storage::paths::StoragePath;
use crate::storage::{DeferredWrite, FileWriter};

/// Where an upload stands: its id and how many bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: UploadId,
    pub size: u64,
}

/// An inclusive byte range from a `Content-Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// Most running hashes kept at once; beyond this the oldest guess is dropped
/// and that upload is re-hashed at completion (correct, only slower).
const MAX_CACHED_HASHERS: usize = 4096;

/// Running hashes of uploads in progress, keyed by repository and id, each
/// valid only at the recorded offset.
#[derive(Default)]
pub(super) struct HasherCache {
    inner: Mutex<HashMap<String, (u64, Hasher)>>,
}

impl HasherCache {
    /// Takes the hasher if it is valid for `offset`.
    fn take(&self, name: &RepoName, id: &UploadId, offset: u64) -> Option<Hasher> {
        let mut map = self.inner.lock().ok()?;
        match map.remove(&super::upload_locks::session_key(name, id)) {
            Some((at, h)) if at == offset => Some(h),
            _ => None,
        }
    }

    fn put(&self, name: &RepoName, id: &UploadId, offset: u64, hasher: Hasher) {
        if let Ok(mut map) = self.inner.lock() {
            if map.len() >= MAX_CACHED_HASHERS {
                if let Some(k) = map.keys().next().cloned() {
                    map.remove(&k);
                }
            }
            map.insert(super::upload_locks::session_key(name, id), (offset, hasher));
        }
    }

    fn forget(&self, name: &RepoName, id: &UploadId) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(&super::upload_locks::session_key(name, id));
        }
    }
}

/// A request body as the registry layer sees it: a stream of byte chunks.
pub trait BodyStream: Stream<Item = std::io::Result<Bytes>> + Send + Unpin {}
impl<T: Stream<Item = std::io::Result<Bytes>> + Send + Unpin> BodyStream for T {}

impl Registry {
    /// Starts an upload session in repository `name`.
    /// Errors: `TooManyUploadSessions` when the repository already has
    /// `limits.uploadsessionsperrepository` sessions open.
    pub async fn start_upload(&self, name: &RepoName) -> RegistryResult<UploadStatus> {
        self.check_session_count(name).await?;
        self.new_session(name).await
    }

    /// A new session, whatever the count (a monolithic push's own session
    /// lives only for its request and is not limited).
    async fn new_session(&self, name: &RepoName) -> RegistryResult<UploadStatus> {
        let id = UploadId::new_random();
        // Only the empty data file, closed by a writer so that any backend
        // can continue it: its mtime tells the purger the upload's age (no
        // `startedat`, which would cost an inode to create and one to free
        // per blob), and a lone `data` lets the filesystem driver move the
        // whole directory into `blobs/` at completion.
        // Bookkeeping of an upload: lost in a crash, the client starts over.
        let writer = self
            .driver
            .writer(&StoragePath::UploadData { name, id: &id }.to_key(), false)
            .await?;
        writer.close().await?;
        self.hashers
            .put(name, &id, 0, Hasher::new(Algorithm::Sha256));
        Ok(UploadStatus { id, size: 0 })
    }

    /// Bytes received so far. Errors: `UploadUnknown`.
    pub async fn upload_status(
        &self,
        name: &RepoName,
        id: &UploadId,
    ) -> RegistryResult<UploadStatus> {
        match self
            .driver
            .stat(&StoragePath::UploadData { name, id }.to_key())
            .await
        {
            Ok(info) if !info.is_dir => Ok(UploadStatus {
                id: id.clone(),
                size: info.size,
            }),
            Ok(_) => Err(RegistryError::UploadUnknown),
            Err(e) if e.is_not_found() => Err(RegistryError::UploadUnknown),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the upload's data for appending, with the running hash if known.
    async fn open_upload(
        &self,
        name: &RepoName,
        id: &UploadId,
    ) -> RegistryResult<(Box<dyn FileWriter>, Option<Hasher>)> {
        let writer = match self
            .driver
            .writer(&StoragePath::UploadData { name, id }.to_key(), true)
            .await
        {
            Ok(w) => w,
            Err(e) if e.is_not_found() => return Err(RegistryError::UploadUnknown),
            Err(e) => return Err(e.into()),
        };
        let size = writer.size();
        let hasher = match self.hashers.take(name, id, size) {
            Some(h) => Some(h),
            None if size == 0 => Some(Hasher::new(Algorithm::Sha256)),
            None => self.load_hash_state(name, id, size).await,
        };
        Ok((writer, hasher))
    }

    /// Reads the hash state saved at `offset` by whichever instance (berth or
    /// registry:2) took the previous chunk; `None` when absent or unreadable.
    async fn load_hash_state(&self, name: &RepoName, id: &UploadId, offset: u64) -> Option<Hasher> {
        let alg = Algorithm::Sha256;
        let key = StoragePath::UploadHashState {
            name,
            id,
            alg,
            offset,
        }
        .to_key();
        let state = self.driver.get_content(&key).await.ok()?;
        Hasher::restore_state(alg, &state).filter(|h| h.bytes_hashed() == Some(offset))
    }

    /// Saves the running hash so another instance can continue the upload.
    /// A failure only costs a re-hash at completion, so it is logged, not fatal.
    async fn save_hash_state(&self, name: &RepoName, id: &UploadId, offset: u64, hasher: &Hasher) {
        let Some(state) = hasher.save_state() else {
            return;
        };
        let alg = hasher.algorithm();
        let key = StoragePath::UploadHashState {
            name,
            id,
            alg,
            offset,
        }
        .to_key();
        if let Err(e) = self.driver.put_deferred(&key, Bytes::from(state)).await {
            tracing::warn!(error = %e, "could not save upload hash state; the upload will be re-hashed");
        }
    }

    /// Appends a chunk (PATCH). With `range`, the chunk must start exactly at
    /// the current size and be as long as announced: a body whose length is
    /// known up front (`body_len`, the request's `Content-Length`) and
    /// disagrees is refused before a byte is written, as distribution does;
    /// one of unknown length is checked after it was appended.
    /// Errors: `UploadUnknown`, `RangeInvalid`, `SizeInvalid`.
    pub async fn append_upload(
        &self,
        name: &RepoName,
        id: &UploadId,
        range: Option<ByteRange>,
        body_len: Option<u64>,
        body: impl BodyStream,
    ) -> RegistryResult<UploadStatus> {
        let _session = self.upload_locks.lock(name, id).await;
        let (mut writer, mut hasher) = self.open_upload(name, id).await?;
        let start = writer.size();
        if let Some(r) = range {
            if r.start != start || r.end < r.start {
                let _ = writer.close().await;
                return Err(RegistryError::RangeInvalid { size: start });
            }
            let announced = r.end - r.start + 1;
            if let Some(len) = body_len.filter(|len| *len != announced) {
                let _ = writer.close().await;
                return Err(RegistryError::SizeInvalid(format!(
                    "Content-Range announces {announced} bytes, Content-Length {len}"
                )));
            }
        }
        let copied = copy_body(body, writer.as_mut(), hasher.as_mut()).await;
        let size = writer.size();
        writer.close().await?;
        copied?;
        if let Some(h) = hasher {
            self.save_hash_state(name, id, size, &h).await;
            self.hashers.put(name, id, size, h);
        }
        if let Some(r) = range {
            if size - start != r.end - r.start + 1 {
                return Err(RegistryError::SizeInvalid(format!(
                    "Content-Range announced {} bytes, body had {}",
                    r.end - r.start + 1,
                    size - start
                )));
            }
        }
        Ok(UploadStatus {
            id: id.clone(),
            size,
        })
    }

    /// Finishes an upload (PUT `?digest=`): appends the optional last chunk,
    /// verifies the digest, then makes the blob visible and links it into the
    /// repository. A mismatching upload is discarded, as in distribution.
    /// Errors: `UploadUnknown`, `DigestMismatch`.
    pub async fn complete_upload(
        &self,
        name: &RepoName,
        id: &UploadId,
        digest: &Digest,
        body: Option<impl BodyStream>,
    ) -> RegistryResult<BlobInfo> {
        let _session = self.upload_locks.lock(name, id).await;
        let (mut writer, mut hasher) = self.open_upload(name, id).await?;
        if hasher.as_ref().map(Hasher::algorithm) != Some(digest.algorithm()) {
            hasher = None;
        }
        if let Some(body) = body {
            if let Err(e) = copy_body(body, writer.as_mut(), hasher.as_mut()).await {
                let _ = writer.close().await;
                return Err(e);
            }
        }
        let size = writer.size();
        let blob_key = StoragePath::BlobData { digest }.to_key();
        let needs_blob = self.global_blob_size(digest).await? != Some(size);
        let mut then: Vec<DeferredWrite> = self
            .link_write(StoragePath::LayerLink { name, digest }, digest)
            .await
            .into_iter()
            .collect();
        then.push(DeferredWrite::DeleteIfExists {
            key: StoragePath::UploadDir { name, id }.to_key(),
        });
        match hasher {
            // The digest is known before anything is committed: the bytes
            // this request wrote go straight to the blob, its link and the
            // upload's clean-up in the same step.
            Some(h) => {
                let actual = h.finish();
                if &actual != digest {
                    return self
                        .discard_mismatch(writer, name, id, digest, actual)
                        .await;
                }
                if needs_blob {
                    writer
                        .commit_to_then(self.driver.as_ref(), &blob_key, then)
                        .await?;
                } else {
                    // The blob is stored already (the same layer pushed to
                    // another repository without a mount): the upload's
                    // bytes are dropped, not completed or copied.
                    writer.cancel().await?;
                    self.driver.apply_deferred(then).await?;
                }
            }
            // No running hash: the bytes are committed under a name only
            // this request knows, read back and hashed there, and that very
            // object becomes the blob.
            None => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let verifying = StoragePath::UploadVerifying {
                    name,
                    id,
                    nonce: &nonce,
                }
                .to_key();
                writer
                    .commit_to_then(self.driver.as_ref(), &verifying, Vec::new())
                    .await?;
                let actual = self.hash_object(&verifying, digest.algorithm()).await?;
                if &actual != digest {
                    self.remove_upload(name, id).await?;
                    return Err(RegistryError::DigestMismatch {
                        expected: digest.clone(),
                        actual,
                    });
                }
                let mut writes = Vec::with_capacity(then.len() + 1);
                if needs_blob {
                    writes.push(DeferredWrite::Move {
                        from: verifying,
                        to: blob_key,
                    });
                }
                writes.extend(then);
                self.driver.apply_deferred(writes).await?;
            }
        }
        self.driver.sync().await?;
        self.hashers.forget(name, id);
        Ok(BlobInfo {
            digest: digest.clone(),
            size,
        })
    }

    /// Ends an upload whose bytes do not match the digest the client sent:
    /// the writer is closed (not cancelled, so the upload is still there for
    /// `remove_upload` on every backend), then the upload is removed.
    async fn discard_mismatch(
        &self,
        writer: Box<dyn FileWriter>,
        name: &RepoName,
        id: &UploadId,
        expected: &Digest,
        actual: Digest,
    ) -> RegistryResult<BlobInfo> {
        let _ = writer.close().await;
        self.remove_upload(name, id).await?;
        Err(RegistryError::DigestMismatch {
            expected: expected.clone(),
            actual,
        })
    }

    /// Pushes a whole blob in one request (POST `?digest=`).
    pub async fn put_blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        body: impl BodyStream,
    ) -> RegistryResult<BlobInfo> {
        let upload = self.new_session(name).await?;
        let done = self
            .complete_upload(name, &upload.id, digest, Some(body))
            .await;
        if done.is_err() {
            // No client knows this session, so none would continue or
            // cancel it: a failed push (disk full, body cut) leaves nothing.
            let _session = self.upload_locks.lock(name, &upload.id).await;
            match self.remove_upload(name, &upload.id).await {
                Ok(()) | Err(RegistryError::UploadUnknown) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot remove the session of a failed push; the upload purger will")
                }
            }
        }
        done
    }

    /// Abandons an upload and removes its data (after any request still
    /// working on it). Errors: `UploadUnknown`.
    pub async fn cancel_upload(&self, name: &RepoName, id: &UploadId) -> RegistryResult<()> {
        let _session = self.upload_locks.lock(name, id).await;
        self.remove_upload(name, id).await
    }

    /// Removes an upload's directory; the caller holds its session lock.
    async fn remove_upload(&self, name: &RepoName, id: &UploadId) -> RegistryResult<()> {
        self.hashers.forget(name, id);
        if self
            .delete_if_exists(StoragePath::UploadDir { name, id })
            .await?
        {
            Ok(())
        } else {
            Err(RegistryError::UploadUnknown)
        }
    }

    /// Hashes a stored object from the start (fallback when no running hash).
    async fn hash_object(&self, key: &str, algorithm: Algorithm) -> RegistryResult<Digest> {
        let mut reader = self.driver.reader(key, 0).await?;
        let mut hasher = Hasher::new(algorithm);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| crate::storage::StorageError::backend(self.driver.name(), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finish())
    }
}

/// Streams a request body into a writer, feeding the hasher on the way.
async fn copy_body(
    mut body: impl BodyStream,
    writer: &mut dyn FileWriter,
    mut hasher: Option<&mut Hasher>,
) -> RegistryResult<()> {
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| RegistryError::UploadInvalid(format!("reading request body: {e}")))?;
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&chunk);
        }
        writer.write(&chunk).await?;
        // A body that always has data ready never makes this loop wait:
        // give the worker thread to other requests' tasks now and then.
        tokio::task::coop::consume_budget().await;
    }
    Ok(())
}
