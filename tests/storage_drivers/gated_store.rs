//! An object store wrapper that proves a copy streams: reads of the source
//! object stop after `gate` bytes until the destination's multipart upload
//! has started a part. A copy that buffers the whole source before writing
//! never gets past the gate, and the read fails after a deadline instead
//! of hanging.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    GetOptions, GetResult, GetResultPayload, ListResult, MultipartId, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tokio::sync::Notify;

/// How long a gated read waits for a part to start before it fails the copy.
const GATE_DEADLINE: Duration = Duration::from_secs(60);

/// `S` with gated reads of `source` (see the module doc).
#[derive(Debug)]
pub struct GatedStore<S> {
    inner: S,
    source: Path,
    gate: usize,
    parts: Arc<AtomicUsize>,
    part_taken: Arc<Notify>,
}

impl<S> GatedStore<S> {
    /// Wraps `inner`; reads of `source` pause after `gate` bytes.
    pub fn new(inner: S, source: Path, gate: usize) -> Self {
        GatedStore {
            inner,
            source,
            gate,
            parts: Arc::default(),
            part_taken: Arc::default(),
        }
    }

    /// Parts uploaded so far, shared with the wrapper once it moves.
    pub fn parts(&self) -> Arc<AtomicUsize> {
        self.parts.clone()
    }
}

impl<S> std::fmt::Display for GatedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GatedStore")
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for GatedStore<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let mut result = self.inner.get_opts(location, options).await?;
        if *location != self.source {
            return Ok(result);
        }
        // Without object_store's `fs` feature a stream is the only payload.
        let GetResultPayload::Stream(inner) = result.payload;
        let (gate, parts, notify) = (self.gate, self.parts.clone(), self.part_taken.clone());
        let stream = futures::stream::unfold((inner, 0usize), move |(mut inner, read)| {
            let (parts, notify) = (parts.clone(), notify.clone());
            async move {
                if read >= gate && parts.load(Ordering::SeqCst) == 0 {
                    let waited = tokio::time::timeout(GATE_DEADLINE, async {
                        loop {
                            // Created before the check: a part taken in
                            // between still wakes it (notify_waiters).
                            let taken = notify.notified();
                            if parts.load(Ordering::SeqCst) > 0 {
                                break;
                            }
                            taken.await;
                        }
                    })
                    .await;
                    if waited.is_err() {
                        let e = object_store::Error::Generic {
                                store: "GatedStore",
                                source: format!(
                                    "no part written after {read} bytes were read: the copy does not stream"
                                )
                                .into(),
                            };
                        return Some((Err(e), (inner, usize::MAX)));
                    }
                }
                if read == usize::MAX {
                    return None;
                }
                let chunk = inner.next().await?;
                let n = chunk.as_ref().map_or(0, |c: &Bytes| c.len());
                Some((chunk, (inner, read + n)))
            }
        });
        result.payload = GetResultPayload::Stream(stream.boxed());
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.inner.head(location).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[async_trait]
impl<S: MultipartStore> MultipartStore for GatedStore<S> {
    async fn create_multipart(&self, path: &Path) -> object_store::Result<MultipartId> {
        self.inner.create_multipart(path).await
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> object_store::Result<PartId> {
        // Counted when the part starts: the gate must not wait for the
        // store to finish it (Garage holds a part while a GET it serves is
        // stalled by the gate).
        self.parts.fetch_add(1, Ordering::SeqCst);
        self.part_taken.notify_waiters();
        self.inner.put_part(path, id, part_idx, data).await
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> object_store::Result<PutResult> {
        self.inner.complete_multipart(path, id, parts).await
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> object_store::Result<()> {
        self.inner.abort_multipart(path, id).await
    }
}

#[async_trait]
impl<S: Signer> Signer for GatedStore<S> {
    async fn signed_url(
        &self,
        method: http::Method,
        path: &Path,
        expires_in: Duration,
    ) -> object_store::Result<reqwest::Url> {
        self.inner.signed_url(method, path, expires_in).await
    }
}
