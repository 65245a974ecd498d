//! Writers: whole objects and resumable uploads on an object store.
//!
//! A writer buffers up to one part (`chunk_size`). Below that, `commit` is a
//! single PUT. Above, it opens a multipart upload at the key and sends every
//! full part as it fills (a few in flight), so memory stays bounded;
//! `commit` sends the rest as the last part and completes the upload, which
//! replaces the key atomically.
//!
//! `close` (between upload chunks) must let any process continue, so the
//! upload is recorded in the bucket, next to the key:
//!
//! - Without parts yet (small uploads), `<key>` simply holds everything
//!   written so far, marked with metadata `berth-upload: 1` (`berthupload`
//!   on Azure, whose metadata names must be identifiers).
//! - With parts, `<key>~upload` holds the state, JSON `{"upload_id",
//!   "parts": [{"etag", "size"}], "tail", "object"}`, and `<key>~tail` the
//!   bytes after the last full part (less than one part). An append
//!   writer's multipart upload is opened at a private object,
//!   `<key>~mp-<random>` (the state's `object`; without it, as written
//!   before, at `<key>`), so completing it writes nothing that another
//!   writer of the upload (another replica's request) can overwrite before
//!   it is copied into place. `<key>` itself is not written while a
//!   multipart upload is open at it: Garage discards an unfinished upload
//!   when its key is written. `<key>` may still hold the marked content
//!   from before the first part; a marked object therefore always defers
//!   to the state when there is one, and `stat` reports parts plus tail.
//!
//! `writer(key, true)` reads them back, puts the tail first in its buffer
//! and numbers new parts after the recorded ones. `commit` sends the buffer
//! as the last part, completes the upload, copies a private object to
//! `<key>` (`commit_to_then`: to its destination) and removes it, state and
//! tail. `cancel` and `delete` abort the multipart upload; a dropped writer
//! aborts an upload it opened and never recorded. So no parts are left in
//! the bucket. (Azure cannot abort: cancel and delete first write the
//! object the blocks belong to, which drops them, then delete it; see
//! `DriverOptions::discard_blocks`.)

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{Attributes, GetOptions, MultipartId, PutPayload};
use tokio::task::JoinSet;

use super::claim::Claim;
use super::copy;
use super::inner::{discard_blocks, marker};
use super::upload_state::{
    abort, load, private_object, state_path, tail_path, Loaded, Part, State,
};
use super::Inner;
use crate::storage::{DeferredWrite, FileWriter, StorageDriver, StorageError, StorageResult};

/// A part slot: its size, and its etag once uploaded.
struct Slot {
    size: u64,
    etag: Option<String>,
}

/// The multipart upload a writer sends parts to.
struct Upload {
    id: MultipartId,
    /// The object the multipart upload completes into.
    object: Path,
    parts: Vec<Slot>,
    /// Opened by this writer (so abort it if the writer is dropped before
    /// recording it).
    created_here: bool,
    recorded: bool,
}

type PartResult = (usize, object_store::Result<PartId>);

/// A writer on an object store; see the module docs.
pub(super) struct ObjectWriter {
    d: Arc<Inner>,
    key: String,
    path: Path,
    append: bool,
    upload: Option<Upload>,
    inflight: JoinSet<PartResult>,
    buf: BytesMut,
    size: u64,
    failed: bool,
    finished: bool,
    /// The session's claim, where the store offers one (append writers).
    claim: Option<Claim>,
}

impl ObjectWriter {
    /// A writer that starts empty and replaces `path` on commit or close.
    pub fn fresh(d: Arc<Inner>, key: &str, path: Path) -> Self {
        ObjectWriter {
            d,
            key: key.to_string(),
            path,
            append: false,
            upload: None,
            inflight: JoinSet::new(),
            buf: BytesMut::new(),
            size: 0,
            failed: false,
            finished: false,
            claim: None,
        }
    }

    /// A writer continuing what an earlier writer closed at `path`, from
    /// any process. Errors: `NotFound` when nothing is there.
    pub async fn resume(d: Arc<Inner>, key: &str, path: Path) -> StorageResult<Self> {
        // The claim first, so what is loaded is not being changed by
        // another replica's writer.
        let claim = Claim::acquire(&d, key, &path).await?;
        let loaded = load(&d, key, &path).await?;
        let mut w = Self::fresh(d.clone(), key, path);
        w.append = true;
        w.claim = claim;
        let r = match loaded {
            Loaded::Object(r) => r,
            Loaded::Upload(state) => {
                w.size = state.size() - state.tail;
                w.upload = Some(Upload {
                    object: state.object(&w.path),
                    id: state.upload_id,
                    parts: state
                        .parts
                        .into_iter()
                        .map(|p| Slot {
                            size: p.size,
                            etag: Some(p.etag),
                        })
                        .collect(),
                    created_here: false,
                    recorded: true,
                });
                let r = d
                    .get(key, &tail_path(&w.path), GetOptions::default())
                    .await?;
                if r.meta.size != state.tail {
                    return Err(d.err(format!("upload tail of {key} does not match its state")));
                }
                r
            }
        };
        // The content (or tail), normally under one part, goes first into
        // the buffer; anything bigger is sent on as parts.
        let mut body = r.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| d.map_err(key, e))?;
            w.write_bytes(&chunk).await?;
        }
        Ok(w)
    }

    /// Gives the session's claim up, if one is held.
    async fn release(&mut self) {
        if let Some(c) = self.claim.take() {
            c.release().await;
        }
    }

    fn failed_err(&self) -> StorageError {
        self.d
            .err(format!("writer for {} failed earlier", self.key))
    }

    async fn write_bytes(&mut self, data: &[u8]) -> StorageResult<()> {
        if self.failed {
            return Err(self.failed_err());
        }
        self.buf.extend_from_slice(data);
        self.size += data.len() as u64;
        let chunk = self.d.opts.chunk_size;
        while self.buf.len() >= chunk {
            let part = self.buf.split_to(chunk).freeze();
            if let Err(e) = self.send_part(part).await {
                self.failed = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Starts uploading one part, waiting first while too many are in flight.
    async fn send_part(&mut self, part: Bytes) -> StorageResult<()> {
        if self.upload.is_none() {
            // An upload's multipart object is private (see
            // `private_object`); a whole-object writer's is its path.
            let object = if self.append {
                private_object(&self.path)
            } else {
                self.path.clone()
            };
            let id = self
                .d
                .multipart
                .create_multipart(&object)
                .await
                .map_err(|e| self.d.map_err(&self.key, e))?;
            self.upload = Some(Upload {
                object,
                id,
                parts: Vec::new(),
                created_here: true,
                recorded: false,
            });
        }
        while self.inflight.len() >= self.d.opts.max_inflight.max(1) {
            self.join_one().await?;
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.failed_err());
        };
        let idx = upload.parts.len();
        upload.parts.push(Slot {
            size: part.len() as u64,
            etag: None,
        });
        let (mp, path, id) = (
            self.d.multipart.clone(),
            upload.object.clone(),
            upload.id.clone(),
        );
        self.inflight.spawn(async move {
            let r = mp.put_part(&path, &id, idx, PutPayload::from(part)).await;
            (idx, r)
        });
        Ok(())
    }

    /// Waits for one in-flight part and records its etag.
    async fn join_one(&mut self) -> StorageResult<()> {
        let Some(joined) = self.inflight.join_next().await else {
            return Ok(());
        };
        let (idx, result) = joined.map_err(|e| self.d.err(e))?;
        let part = result.map_err(|e| self.d.err(e))?;
        match self.upload.as_mut().and_then(|u| u.parts.get_mut(idx)) {
            Some(slot) => slot.etag = Some(part.content_id),
            None => return Err(self.failed_err()),
        }
        Ok(())
    }

    async fn drain(&mut self) -> StorageResult<()> {
        if self.failed {
            return Err(self.failed_err());
        }
        while !self.inflight.is_empty() {
            if let Err(e) = self.join_one().await {
                self.failed = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends the buffer as the last part and completes the multipart
    /// upload; returns the object it completed into. The state and tail
    /// objects are left for the caller to remove.
    async fn complete(&mut self) -> StorageResult<Path> {
        let empty_upload = self.upload.as_ref().is_some_and(|u| u.parts.is_empty());
        if !self.buf.is_empty() || empty_upload {
            let last = self.buf.split().freeze();
            self.send_part(last).await?;
            self.drain().await?;
        }
        let parts = self.parts()?;
        let upload = self.upload.as_ref().ok_or_else(|| self.failed_err())?;
        let (id, object) = (upload.id.clone(), upload.object.clone());
        let ids = parts
            .into_iter()
            .map(|p| PartId { content_id: p.etag })
            .collect();
        let d = self.d.clone();
        d.multipart
            .complete_multipart(&object, &id, ids)
            .await
            .map_err(|e| d.map_err(&self.key, e))?;
        self.finished = true;
        Ok(object)
    }

    /// Puts the completed `object` (this writer's `size` bytes) at `dest`
    /// (key `dest_key`) unless it is there already, then removes the
    /// upload's state, tail and private object.
    async fn place(&self, object: &Path, dest_key: &str, dest: &Path) -> StorageResult<()> {
        let d = &self.d;
        if object != dest {
            copy::copy_path(d, dest_key, object, dest, self.size).await?;
        }
        let mut doomed = vec![state_path(&self.path), tail_path(&self.path)];
        if object != &self.path && object != dest {
            doomed.push(object.clone());
        }
        d.delete_paths(doomed).await
    }

    /// The uploaded parts, in order, for the state object or completion.
    fn parts(&self) -> StorageResult<Vec<Part>> {
        let upload = self.upload.as_ref().ok_or_else(|| self.failed_err())?;
        upload
            .parts
            .iter()
            .map(|s| {
                s.etag
                    .clone()
                    .map(|etag| Part { etag, size: s.size })
                    .ok_or_else(|| self.failed_err())
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl FileWriter for ObjectWriter {
    async fn write(&mut self, data: &[u8]) -> StorageResult<()> {
        self.write_bytes(data).await
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(mut self: Box<Self>) -> StorageResult<()> {
        self.drain().await?;
        let d = self.d.clone();
        if self.upload.is_none() {
            let data = self.buf.split().freeze();
            d.put(&self.key, &self.path, data, Attributes::new())
                .await?;
            self.finished = true;
            self.release().await;
            return Ok(());
        }
        let object = self.complete().await?;
        let (key, path) = (self.key.clone(), self.path.clone());
        self.place(&object, &key, &path).await?;
        self.release().await;
        Ok(())
    }

    /// Below one part the buffer holds everything: one PUT at `dest`, the
    /// upload's key untouched. With parts, the multipart upload completes
    /// into its private object, which is copied to `dest` (a multipart
    /// upload cannot end elsewhere). Either way nothing another writer of
    /// the upload can write lies between the bytes and `dest`.
    async fn commit_to_then(
        mut self: Box<Self>,
        driver: &dyn StorageDriver,
        dest: &str,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()> {
        self.drain().await?;
        let d = self.d.clone();
        let dest_path = d.path(dest)?;
        if self.upload.is_some() {
            let object = self.complete().await?;
            self.place(&object, dest, &dest_path).await?;
        } else {
            let data = self.buf.split().freeze();
            d.put(dest, &dest_path, data, Attributes::new()).await?;
            self.finished = true;
        }
        // Held until the upload's data is gone, as the flock is.
        let r = driver.apply_deferred(then).await;
        self.release().await;
        r
    }

    async fn close(mut self: Box<Self>) -> StorageResult<()> {
        self.drain().await?;
        let d = self.d.clone();
        let tail = self.buf.split().freeze();
        let Some(upload) = self.upload.as_ref() else {
            d.put(&self.key, &self.path, tail, marker(d.opts.upload_marker))
                .await?;
            self.finished = true;
            self.release().await;
            return Ok(());
        };
        let state = State {
            upload_id: upload.id.clone(),
            parts: self.parts()?,
            tail: tail.len() as u64,
            object: (upload.object != self.path).then(|| upload.object.to_string()),
        };
        let json = serde_json::to_vec(&state).map_err(|e| d.err(e))?;
        // Never `<key>` itself: that would end the upload on Garage.
        let tail_key = tail_path(&self.path);
        d.put(&self.key, &tail_key, tail, Attributes::new()).await?;
        d.put(
            &self.key,
            &state_path(&self.path),
            Bytes::from(json),
            Attributes::new(),
        )
        .await?;
        if let Some(u) = self.upload.as_mut() {
            u.recorded = true;
        }
        self.finished = true;
        self.release().await;
        Ok(())
    }

    async fn cancel(mut self: Box<Self>) -> StorageResult<()> {
        self.inflight.abort_all();
        while self.inflight.join_next().await.is_some() {}
        let d = self.d.clone();
        if let Some(u) = &self.upload {
            if self.append || u.created_here {
                abort(&d, &u.object, &u.id).await?;
            }
        }
        if self.append {
            let p = &self.path;
            let mut doomed = vec![p.clone(), state_path(p), tail_path(p)];
            if let Some(u) = &self.upload {
                discard_blocks(&d, &self.key, &u.object).await?;
                doomed.push(u.object.clone());
            }
            doomed.sort_unstable();
            doomed.dedup();
            d.delete_paths(doomed).await?;
        }
        self.finished = true;
        self.release().await;
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // An upload this writer opened and nobody recorded would be an
        // orphan: abort it in the background (best effort; nobody to tell).
        let Some(u) = self
            .upload
            .as_ref()
            .filter(|u| u.created_here && !u.recorded)
        else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (mp, path, id) = (self.d.multipart.clone(), u.object.clone(), u.id.clone());
        rt.spawn(async move {
            if let Err(e) = mp.abort_multipart(&path, &id).await {
                tracing::warn!("cannot abort multipart upload of {path}: {e}");
            }
        });
    }
}
