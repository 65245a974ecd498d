//! Object-store driver: the `StorageDriver` over the `object_store` crate, so
//! S3, Azure Blob Storage and GCS (each a small constructor: `s3::build`,
//! `azure::build`, `gcs::build`) share one implementation and one test suite.
//!
//! Key `/a/b` is the object `<rootdirectory>/a/b`, as in distribution's s3
//! driver, so a registry:2 bucket is served in place. Directories are key
//! prefixes: one exists while some object is under it.
//!
//! Resumable (append) writers keep a multipart upload open across requests
//! and processes; see `writer` for the state kept in the bucket. Names with a
//! `~` are the driver's own (upload state): `~` is outside the key grammar,
//! so no key names one, and `list`/`walk` never show them.
//!
//! Correctness never relies on conditional PUT (Garage ignores
//! `If-None-Match`): every write is a plain last-writer-wins replace, which
//! is safe because blobs are content-addressed (two writers of one key write
//! the same bytes) and links/tags are single small objects replaced whole.
//! Where the store honours create-only writes, upload sessions also take a
//! claim (`claim`) so their requests run in order across replicas.

pub mod azure;
mod claim;
mod copy;
pub mod gcs;
pub mod idle;
mod inner;
pub mod s3;
mod upload_state;
mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{StreamExt, TryStreamExt};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{Attribute, Attributes, GetOptions, GetRange, GetResult, ObjectStore};

use super::{BoxReader, FileInfo, FileWriter, StorageDriver, StorageError, StorageResult};
use inner::is_marked;
use inner::Inner;
use upload_state::read_state;
use writer::ObjectWriter;

/// How long a presigned redirect URL stays valid (distribution uses 20 min).
pub const REDIRECT_TTL: Duration = Duration::from_secs(20 * 60);

/// The largest object a single server-side copy may move (S3's CopyObject
/// limit); larger objects are streamed through a multipart upload.
pub const SINGLE_COPY_LIMIT: u64 = 5 << 30;

/// Objects up to this size are read whole before a reader is returned (so a
/// concurrent replace cannot break the read); larger ones (blobs, which are
/// never replaced by other content) are streamed.
const SMALL_OBJECT: u64 = 4 << 20;

/// Attempts at reading a small object whose body was cut short.
const READ_ATTEMPTS: u32 = 5;

/// A store that can do everything the driver needs: objects, multipart
/// uploads that outlive a process, and presigned URLs.
pub trait Backend: ObjectStore + MultipartStore + Signer {}
impl<T: ObjectStore + MultipartStore + Signer> Backend for T {}

/// Tuning that does not depend on the backend.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Multipart part size; every part but the last has exactly this size
    /// (at least 5 MiB on S3).
    pub chunk_size: usize,
    /// Parts uploaded concurrently per writer; memory per writer is about
    /// `(max_inflight + 1) * chunk_size`.
    pub max_inflight: usize,
    /// Objects above this size are moved by streaming through a multipart
    /// upload instead of one server-side copy.
    pub copy_limit: u64,
    /// Offer presigned GET URLs for redirects.
    pub redirect: bool,
    /// Attributes set on every new object (storage class).
    pub attributes: Attributes,
    /// Metadata name marking an object written by `close` (S3 and GCS take
    /// `berth-upload`; Azure metadata names must be identifiers).
    pub upload_marker: &'static str,
    /// The store's `abort_multipart` does nothing (Azure: uncommitted blocks
    /// stay with the blob name until it is written or a week passes), so
    /// where an upload's key goes away anyway the driver first replaces it,
    /// which drops the blocks.
    pub discard_blocks: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            chunk_size: 10 << 20,
            max_inflight: 2,
            copy_limit: SINGLE_COPY_LIMIT,
            redirect: true,
            attributes: Attributes::new(),
            upload_marker: inner::DEFAULT_MARKER,
            discard_blocks: false,
        }
    }
}

/// A `StorageDriver` over any `object_store` backend with multipart and
/// signing support; cloning shares the client.
#[derive(Clone)]
pub struct ObjectStoreDriver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectStoreDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreDriver")
            .field("name", &self.inner.name)
            .field("root", &self.inner.root)
            .field("opts", &self.inner.opts)
            .finish()
    }
}

impl ObjectStoreDriver {
    /// A driver named `name` (for logs) storing keys under `root` in `store`.
    pub fn new<B: Backend>(name: &'static str, store: B, root: &str, opts: DriverOptions) -> Self {
        let store = Arc::new(store);
        let root = root
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        ObjectStoreDriver {
            inner: Arc::new(Inner {
                name,
                store: store.clone(),
                multipart: store.clone(),
                signer: store,
                root,
                opts,
                claims: tokio::sync::OnceCell::new(),
            }),
        }
    }
}

impl ObjectStoreDriver {
    /// Whether the requests of one upload session are ordered across
    /// replicas (the store honours create-only writes, so sessions are
    /// claimed); probes the store on first use.
    pub async fn orders_sessions(&self) -> bool {
        self.inner.claims().await
    }
}

/// An `AsyncRead` over a get result's byte stream.
fn into_reader(r: GetResult) -> BoxReader {
    let s = r
        .into_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    Box::pin(tokio_util::io::StreamReader::new(s))
}

fn modified(r: &GetResult) -> Option<SystemTime> {
    Some(SystemTime::from(r.meta.last_modified))
}

#[async_trait]
impl StorageDriver for ObjectStoreDriver {
    fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Probes (and logs) whether upload sessions are claimed on this store.
    async fn check_ready(&self) -> StorageResult<()> {
        self.inner.claims().await;
        Ok(())
    }

    async fn get_content(&self, key: &str) -> StorageResult<Bytes> {
        let d = &self.inner;
        let path = d.path(key)?;
        let r = d.get(key, &path, GetOptions::default()).await?;
        d.check_readable(key, &path, &r.attributes).await?;
        d.read_whole(key, &path, r, GetOptions::default()).await
    }

    async fn put_content(&self, key: &str, content: Bytes) -> StorageResult<()> {
        let d = &self.inner;
        let path = d.path(key)?;
        d.put(key, &path, content, Attributes::new()).await
    }

    async fn reader(&self, key: &str, offset: u64) -> StorageResult<BoxReader> {
        let d = &self.inner;
        let path = d.path(key)?;
        let opts = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..Default::default()
        };
        match d.get(key, &path, opts).await {
            Ok(r) => {
                d.check_readable(key, &path, &r.attributes).await?;
                if r.range.end - r.range.start > SMALL_OBJECT {
                    return Ok(into_reader(r));
                }
                let opts = GetOptions {
                    range: (offset > 0).then_some(GetRange::Offset(offset)),
                    ..Default::default()
                };
                let data = d.read_whole(key, &path, r, opts).await?;
                Ok(Box::pin(std::io::Cursor::new(data)))
            }
            Err(e) if e.is_not_found() || offset == 0 => Err(e),
            // A range at or past the end is refused by S3 (416): tell the
            // empty end from an offset past it.
            Err(e) => {
                let head = d.head(key, &path).await?;
                d.check_readable(key, &path, &head.attributes).await?;
                let size = head.meta.size;
                if offset == size {
                    Ok(Box::pin(std::io::Cursor::new(Bytes::new())))
                } else if offset > size {
                    Err(StorageError::InvalidOffset {
                        path: key.to_string(),
                        offset,
                    })
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn writer(&self, key: &str, append: bool) -> StorageResult<Box<dyn FileWriter>> {
        let path = self.inner.path(key)?;
        let w = if append {
            ObjectWriter::resume(self.inner.clone(), key, path).await?
        } else {
            ObjectWriter::fresh(self.inner.clone(), key, path)
        };
        Ok(Box::new(w))
    }

    async fn stat(&self, key: &str) -> StorageResult<FileInfo> {
        let d = &self.inner;
        let path = d.path(key)?;
        match d.head(key, &path).await {
            Ok(r) => {
                let upload = if is_marked(&r.attributes) {
                    read_state(d, &path).await?
                } else {
                    None
                };
                Ok(FileInfo {
                    path: key.to_string(),
                    size: upload.map_or(r.meta.size, |s| s.size()),
                    modified: modified(&r),
                    is_dir: false,
                })
            }
            Err(e) if e.is_not_found() => {
                // An upload whose parts were sent before its key was ever
                // written; else a directory: a non-empty prefix (one listed
                // key is enough). Both asked at once.
                let mut listing = d.list_all(&path);
                let (state, first) = futures::join!(read_state(d, &path), listing.next());
                if let Some(state) = state? {
                    return Ok(FileInfo {
                        path: key.to_string(),
                        size: state.size(),
                        modified: None,
                        is_dir: false,
                    });
                }
                match first {
                    Some(Ok(_)) => Ok(FileInfo {
                        path: key.to_string(),
                        size: 0,
                        modified: None,
                        is_dir: true,
                    }),
                    Some(Err(e)) => Err(d.map_err(key, e)),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn list(&self, key: &str) -> StorageResult<Vec<String>> {
        let d = &self.inner;
        let path = d.path(key)?;
        // One delimiter listing (paginated by object_store): direct
        // children only, never the whole subtree.
        let res = d
            .store
            .list_with_delimiter(Some(&path))
            .await
            .map_err(|e| d.map_err(key, e))?;
        let out: Vec<String> = res
            .common_prefixes
            .iter()
            .chain(res.objects.iter().map(|o| &o.location))
            .filter_map(|p| d.key_of(p))
            .collect();
        if out.is_empty() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        Ok(out)
    }

    async fn move_object(&self, source: &str, dest: &str) -> StorageResult<()> {
        let d = &self.inner;
        let src = d.path(source)?;
        let dst = d.path(dest)?;
        let head = d.head(source, &src).await?;
        d.check_readable(source, &src, &head.attributes).await?;
        if src == dst {
            return Ok(());
        }
        copy::copy_path(d, dest, &src, &dst, head.meta.size).await?;
        copy::remove_path(d, &src).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let d = &self.inner;
        let path = d.path(key)?;
        let mut doomed = Vec::new();
        // An upload in progress at the key itself: abort it first.
        let state = read_state(d, &path).await?;
        if let Some(state) = &state {
            let object = state.object(&path);
            upload_state::abort(d, &object, state.upload_id()).await?;
            inner::discard_blocks(d, key, &object).await?;
            doomed.extend([
                upload_state::state_path(&path),
                upload_state::tail_path(&path),
            ]);
            if object != path {
                doomed.push(object);
            }
        }
        match d.head(key, &path).await {
            Ok(_) => doomed.push(path.clone()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let below: Vec<Path> = d
            .list_all(&path)
            .try_collect()
            .await
            .map_err(|e| d.map_err(key, e))?;
        // Uploads in progress under the tree: abort their multipart uploads
        // so no parts are left behind in the bucket.
        let mut discarded = Vec::new();
        for p in below.iter().filter(|p| upload_state::is_state_path(p)) {
            let Some(data) = upload_state::data_path_of(p) else {
                continue;
            };
            let object = upload_state::abort_recorded(d, &data).await.unwrap_or(data);
            if d.opts.discard_blocks {
                inner::discard_blocks(d, key, &object).await?;
                discarded.push(object);
            }
        }
        doomed.extend(below);
        doomed.extend(discarded);
        doomed.sort_unstable();
        doomed.dedup();
        if state.is_none() && doomed.is_empty() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        d.delete_paths(doomed).await
    }

    async fn redirect_url(&self, key: &str) -> StorageResult<Option<String>> {
        let d = &self.inner;
        if !d.opts.redirect {
            return Ok(None);
        }
        let path = d.path(key)?;
        let url = d
            .signer
            .signed_url(http::Method::GET, &path, REDIRECT_TTL)
            .await
            .map_err(|e| d.err(e))?;
        Ok(Some(url.to_string()))
    }

    async fn walk(&self, key: &str) -> StorageResult<Vec<String>> {
        let d = &self.inner;
        let path = d.path(key)?;
        let all: Vec<Path> = d
            .list_all(&path)
            .try_collect()
            .await
            .map_err(|e| d.map_err(key, e))?;
        let mut out: Vec<String> = all.iter().filter_map(|p| d.key_of(p)).collect();
        if out.is_empty() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// The storage-class attribute for new objects (`None` for "NONE"/empty).
pub fn storage_class_attributes(class: &str) -> Attributes {
    let mut a = Attributes::new();
    if !class.is_empty() && !class.eq_ignore_ascii_case("NONE") {
        a.insert(Attribute::StorageClass, class.to_string().into());
    }
    a
}

/// How the object store clients retry a failed request (5xx, 429, a
/// connection refused or reset): up to 10 times, waits from 0.1 s growing
/// (jittered, doubling) to at most 2 s, 30 s in all; then the error reaches
/// the registry client as a 5xx. object_store's default (waits up to 15 s,
/// 3 minutes in all) kept a push hanging for about a minute through an
/// outage (tests/faults/object_store.rs).
pub fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: Duration::from_secs(30),
    }
}
