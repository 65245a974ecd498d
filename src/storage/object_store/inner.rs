//! The driver's shared state and its requests: key mapping, reads with
//! the upload marker, whole-object reads that survive a concurrent replace,
//! puts with the configured attributes, listings and batched deletes.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, GetOptions, GetResult, ObjectStore, PutOptions, PutPayload,
};

use super::upload_state::read_state;
use super::{DriverOptions, READ_ATTEMPTS};
use crate::storage::{validate_path, StorageError, StorageResult};

/// Shared state of a driver and its writers.
pub(crate) struct Inner {
    pub(super) name: &'static str,
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) multipart: Arc<dyn MultipartStore>,
    pub(super) signer: Arc<dyn Signer>,
    /// `rootdirectory` without leading/trailing slashes ("" for the bucket root).
    pub(super) root: String,
    pub(super) opts: DriverOptions,
    /// Whether the store honours create-only writes (probed once): then
    /// upload sessions take claims (`claim.rs`).
    pub(super) claims: tokio::sync::OnceCell<bool>,
}

impl Inner {
    /// Whether upload sessions take claims on this store: probed on first
    /// use (or at start through `check_ready`), logged once.
    pub(super) async fn claims(&self) -> bool {
        let known = self
            .claims
            .get_or_try_init(|| async {
                let Some(on) = super::claim::probe(&self.store, &self.root).await else {
                    // Not answered (an outage): asked again next time.
                    return Err(());
                };
                if on {
                    tracing::info!(
                        driver = self.name,
                        "the store honours conditional writes: upload sessions are claimed across replicas"
                    );
                } else {
                    tracing::info!(
                        driver = self.name,
                        "the store ignores create-only writes: no claim on upload sessions across replicas (see docs/replicas.md)"
                    );
                }
                Ok(on)
            })
            .await;
        known.is_ok_and(|on| *on)
    }

    /// A backend error; one the client gave up retrying, or a store that
    /// stalled past the idle timeout, is `Exhausted` (`storage
    /// unavailable`), so the registry client hears the cause.
    pub(super) fn err(&self, e: impl std::fmt::Display) -> StorageError {
        let detail = e.to_string();
        if crate::storage::Exhaustion::retries_ran_out(&detail)
            || detail.contains(super::idle::IDLE_MESSAGE)
        {
            return StorageError::Exhausted {
                driver: self.name,
                cause: crate::storage::Exhaustion::Unavailable,
                detail,
            };
        }
        StorageError::Backend {
            driver: self.name,
            detail,
        }
    }

    /// Maps a backend error on `key`: the store's not-found is ours.
    pub(super) fn map_err(&self, key: &str, e: object_store::Error) -> StorageError {
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
            other => self.err(other),
        }
    }

    /// The object path of a valid key.
    pub(super) fn path(&self, key: &str) -> StorageResult<Path> {
        validate_path(key)?;
        let raw = if self.root.is_empty() {
            key[1..].to_string()
        } else {
            format!("{}{key}", self.root)
        };
        Path::parse(raw).map_err(|_| StorageError::InvalidPath(key.to_string()))
    }

    /// The key of an object path, or `None` for names outside the key
    /// grammar (the driver's own state objects, foreign objects).
    pub(super) fn key_of(&self, path: &Path) -> Option<String> {
        let raw = path.as_ref();
        let rest = if self.root.is_empty() {
            raw
        } else {
            raw.strip_prefix(&self.root)?.strip_prefix('/')?
        };
        let key = format!("/{rest}");
        validate_path(&key).ok().map(|()| key)
    }

    /// Fetches an object (or just its headers with `head`), with its
    /// attributes, which carry the in-progress upload marker.
    pub(super) async fn get(
        &self,
        key: &str,
        path: &Path,
        opts: GetOptions,
    ) -> StorageResult<GetResult> {
        self.store
            .get_opts(path, opts)
            .await
            .map_err(|e| self.map_err(key, e))
    }

    pub(super) async fn head(&self, key: &str, path: &Path) -> StorageResult<GetResult> {
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        self.get(key, path, opts).await
    }

    /// Refuses to read an upload whose bytes are partly in an unfinished
    /// multipart upload (the object, if any, is older content).
    pub(super) async fn check_readable(
        &self,
        key: &str,
        path: &Path,
        attrs: &Attributes,
    ) -> StorageResult<()> {
        if !is_marked(attrs) {
            return Ok(());
        }
        match read_state(self, path).await? {
            Some(state) => Err(self.err(format!(
                "{key} is an upload in progress ({} bytes, partly in multipart parts); \
                 it can be read once committed",
                state.size()
            ))),
            None => Ok(()),
        }
    }

    /// Reads a response body whole. Garage ends a response early when the
    /// object is replaced meanwhile; for these small objects (links, tags,
    /// manifests) a fresh GET then gives the whole new content, so a reader
    /// sees the old or the new object, never an error or a mix.
    pub(super) async fn read_whole(
        &self,
        key: &str,
        path: &Path,
        first: GetResult,
        opts: GetOptions,
    ) -> StorageResult<Bytes> {
        let mut response = first;
        let mut attempt = 1;
        loop {
            match response.bytes().await {
                Ok(b) => return Ok(b),
                // A store that stalled already had its retries.
                Err(e) if attempt >= READ_ATTEMPTS || is_stall(&e) => {
                    return Err(self.map_err(key, e))
                }
                Err(e) => tracing::debug!("re-reading {key} after {e}"),
            }
            attempt += 1;
            response = self.get(key, path, opts.clone()).await?;
        }
    }

    pub(super) async fn put(
        &self,
        key: &str,
        path: &Path,
        data: Bytes,
        attrs: Attributes,
    ) -> StorageResult<()> {
        let mut attributes = self.opts.attributes.clone();
        for (k, v) in &attrs {
            attributes.insert(k.clone(), v.clone());
        }
        let opts = PutOptions {
            attributes,
            ..Default::default()
        };
        self.store
            .put_opts(path, PutPayload::from(data), opts)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(key, e))
    }

    /// Every object path under the directory `path`, including the driver's
    /// own state objects.
    pub(super) fn list_all(&self, path: &Path) -> BoxStream<'static, object_store::Result<Path>> {
        self.store.list(Some(path)).map_ok(|m| m.location).boxed()
    }

    /// Deletes objects in batches (one request per 1,000 keys); objects
    /// already gone are not an error.
    pub(super) async fn delete_paths(&self, paths: Vec<Path>) -> StorageResult<()> {
        let results: Vec<object_store::Result<Path>> = self
            .store
            .delete_stream(stream::iter(paths).map(Ok).boxed())
            .collect()
            .await;
        for r in results {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(())
    }
}

/// True for an error of a request the store stopped answering (cut by the
/// idle timeout).
fn is_stall(e: &object_store::Error) -> bool {
    e.to_string().contains(super::idle::IDLE_MESSAGE)
}

/// The upload marker's metadata name on S3 and GCS.
pub(super) const DEFAULT_MARKER: &str = "berth-upload";
/// The upload marker's name where metadata names must be identifiers (Azure).
pub(super) const IDENTIFIER_MARKER: &str = "berthupload";

/// True for an object written by `close`: an upload that may have more
/// bytes in a multipart upload (see the state object). Either spelling
/// counts, whatever the backend.
pub(super) fn is_marked(attrs: &Attributes) -> bool {
    [DEFAULT_MARKER, IDENTIFIER_MARKER]
        .iter()
        .any(|m| attrs.get(&Attribute::Metadata((*m).into())).is_some())
}

pub(super) fn marker(name: &'static str) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::Metadata(name.into()), "1".into());
    a
}

/// On stores whose abort leaves parts behind (Azure's uncommitted blocks),
/// drops them by replacing `data` with an empty object; only for keys about
/// to be deleted.
pub(super) async fn discard_blocks(d: &Inner, key: &str, data: &Path) -> StorageResult<()> {
    if d.opts.discard_blocks {
        d.put(key, data, Bytes::new(), Attributes::new()).await?;
    }
    Ok(())
}
