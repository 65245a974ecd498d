//! Registry layer: the meaning of the storage layout — blobs linked into
//! repositories, upload sessions, manifests and tags, referrers, listings.
//! It sees no HTTP types and reaches storage only through `StorageDriver`.

mod blobs;
pub mod gc;
mod listing;
mod manifest_cache;
mod manifests;
pub mod pull_through;
mod referrers;
pub mod repo_index;
mod summary;
mod upload_limits;
mod upload_locks;
mod uploads;

use std::sync::Arc;

use bytes::Bytes;

use crate::oci::digest::Digest;
use crate::oci::name::RepoName;
use crate::storage::paths::{parse_link, StoragePath};
use crate::storage::{DeferredWrite, StorageDriver, StorageError};

pub use blobs::BlobInfo;
pub use listing::Page;
pub use manifests::{PutManifestResult, StoredManifest};
pub use summary::RepoSummary;
pub use uploads::{ByteRange, UploadStatus};

/// What can go wrong in registry operations, in registry terms. The HTTP
/// layer maps each variant to one wire error code.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown: {0}")]
    BlobUnknown(Digest),
    #[error("upload unknown")]
    UploadUnknown,
    #[error("upload invalid: {0}")]
    UploadInvalid(String),
    #[error("digest mismatch: expected {expected}, content is {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch: {0}")]
    SizeInvalid(String),
    #[error("range invalid: upload is at {size} bytes")]
    RangeInvalid { size: u64 },
    #[error("manifest unknown")]
    ManifestUnknown,
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("manifest too large: {size} bytes, limit {limit}")]
    ManifestTooLarge { size: usize, limit: usize },
    #[error("manifest references unknown blob {0}")]
    ManifestBlobUnknown(Digest),
    #[error("repository name unknown")]
    NameUnknown,
    #[error("too many upload sessions open in this repository (limit {limit})")]
    TooManyUploadSessions { limit: usize },
    #[error("{0}")]
    Unsupported(&'static str),
    /// A write into a mirrored name (403 DENIED).
    #[error("{0}")]
    Denied(String),
    /// A mirrored manifest is not cached and the upstream cannot say what
    /// it is (404 MANIFEST_UNKNOWN with the reason, as registry:2 answers).
    #[error("{0}")]
    ManifestUnavailable(String),
    /// A mirrored blob is not cached and the upstream cannot send it (503).
    #[error("{0}")]
    BlobUnavailable(String),
    /// Too many upstream fetches at once (429 with `Retry-After`).
    #[error("too many upstream fetches; retry after {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Result alias for registry operations.
pub type RegistryResult<T> = Result<T, RegistryError>;

/// Settings the registry layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `storage.delete.enabled`: deletes of manifests, tags and blobs allowed.
    pub delete_enabled: bool,
    /// `catalog.indexlimit`: most repository names the in-memory index holds.
    pub index_limit: usize,
    /// `limits.manifestsize`: largest manifest body accepted.
    pub manifest_size: usize,
    /// `limits.uploadsessionsperrepository`: most upload sessions open at
    /// once in one repository (zero: no limit).
    pub upload_sessions_per_repository: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            delete_enabled: false,
            index_limit: repo_index::DEFAULT_INDEX_LIMIT,
            manifest_size: crate::oci::manifest::MAX_MANIFEST_SIZE,
            upload_sessions_per_repository: 0,
        }
    }
}

/// The registry over one storage driver. Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct Registry {
    driver: Arc<dyn StorageDriver>,
    options: RegistryOptions,
    hashers: Arc<uploads::HasherCache>,
    /// One request at a time per upload session.
    upload_locks: Arc<upload_locks::UploadLocks>,
    /// Digests used by requests recently; online GC keeps them (gc::tracker).
    recent: Arc<gc::tracker::RecentDigests>,
    /// Manifest bytes by digest (immutable, so never stale).
    manifests: Arc<manifest_cache::ManifestCache>,
    /// What the online collector and purger did, for `/metrics`.
    gc_stats: Arc<gc::stats::GcStats>,
    /// Repository names in memory, for `_catalog` and `/v1/search`.
    repo_index: Arc<repo_index::RepoIndex>,
    /// The process's metrics (requests, storage calls), for `/metrics`.
    metrics: Arc<crate::metrics::Metrics>,
    /// The pull-through cache, when `proxy:` or `mirrors:` is configured.
    mirrors: Option<Arc<pull_through::Mirrors>>,
}

impl Registry {
    /// A registry storing everything through `driver`.
    pub fn new(driver: Arc<dyn StorageDriver>, options: RegistryOptions) -> Self {
        Registry {
            driver,
            hashers: Arc::new(uploads::HasherCache::default()),
            upload_locks: Arc::new(upload_locks::UploadLocks::default()),
            recent: Arc::new(gc::tracker::RecentDigests::default()),
            manifests: Arc::new(manifest_cache::ManifestCache::default()),
            gc_stats: Arc::new(gc::stats::GcStats::default()),
            repo_index: Arc::new(repo_index::RepoIndex::new(options.index_limit)),
            metrics: Arc::default(),
            mirrors: None,
            options,
        }
    }

    /// This registry pulling mirrored names through `mirrors`.
    pub fn with_mirrors(mut self, mirrors: pull_through::Mirrors) -> Self {
        self.mirrors = Some(Arc::new(mirrors));
        self
    }

    /// The pull-through cache, when configured (metrics read its counters).
    pub fn mirrors(&self) -> Option<&Arc<pull_through::Mirrors>> {
        self.mirrors.as_ref()
    }

    /// True when `name` is served through the pull-through cache.
    pub fn is_mirrored(&self, name: &RepoName) -> bool {
        self.mirror_route(name).is_some()
    }

    /// The local cache name of a containerd `?ns=<host>` request for
    /// `name`, when a mirror entry lists `host`.
    pub fn mirror_ns_name(&self, host: &str, name: &RepoName) -> Option<RepoName> {
        self.mirrors.as_ref()?.ns_name(host, name)
    }

    /// Refuses the writes a mirror does not take (see
    /// [`pull_through::Mirrors::check_write`]); local names pass.
    pub fn check_mirror_write(
        &self,
        name: &RepoName,
        kind: pull_through::WriteKind,
    ) -> RegistryResult<()> {
        match &self.mirrors {
            Some(m) => m.check_write(name, kind),
            None => Ok(()),
        }
    }

    fn mirror_route(&self, name: &RepoName) -> Option<pull_through::routing::Route> {
        self.mirrors.as_ref()?.route(name)
    }

    fn mirrors_state(&self) -> Option<&pull_through::Mirrors> {
        self.mirrors.as_deref()
    }

    /// This registry recording into `metrics` (the ones its driver's
    /// [`Metered`](crate::storage::metered::Metered) wrapper records into).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The process's metrics, which the HTTP layer records into and renders.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The storage driver, for wiring (health checks, redirects).
    pub fn driver(&self) -> &Arc<dyn StorageDriver> {
        &self.driver
    }

    /// Counters of the online collector and the upload purger.
    pub fn gc_stats(&self) -> &gc::stats::GcStats {
        &self.gc_stats
    }

    /// The options the registry was built with.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// Reads a link file; `None` when it does not exist or does not hold a digest.
    async fn read_link(&self, path: StoragePath<'_>) -> RegistryResult<Option<Digest>> {
        match self.driver.get_content(&path.to_key()).await {
            Ok(content) => Ok(parse_link(&content)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a link file in distribution's format (`sha256:<hex>`, no newline),
    /// durable only after the caller's next `driver.sync()`: a request links
    /// several things and pays for durability once.
    async fn write_link_deferred(
        &self,
        path: StoragePath<'_>,
        digest: &Digest,
    ) -> RegistryResult<()> {
        if let Some(write) = self.link_write(path, digest).await {
            self.driver.apply_deferred(vec![write]).await?;
        }
        Ok(())
    }

    /// The write that makes `path` a link to `digest`, for a batch given to
    /// `driver.apply_deferred`; `None` when the link already holds `digest`
    /// (the read is a page-cache hit; the rewrite would create and free an
    /// inode). Every link write goes through here, so online GC sees each
    /// digest a request links (layer, revision, tag) as recently used.
    async fn link_write(&self, path: StoragePath<'_>, digest: &Digest) -> Option<DeferredWrite> {
        self.recent.touch(digest).await;
        let key = path.to_key();
        let content = digest.to_string();
        if let Ok(old) = self.driver.get_content(&key).await {
            if old == content.as_bytes() {
                return None;
            }
        }
        Some(DeferredWrite::Put {
            key,
            content: Bytes::from(content),
        })
    }

    /// Deletes a key, treating "already gone" as success.
    async fn delete_if_exists(&self, path: StoragePath<'_>) -> RegistryResult<bool> {
        match self.driver.delete(&path.to_key()).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists a directory, treating a missing one as empty.
    async fn list_or_empty(&self, key: &str) -> RegistryResult<Vec<String>> {
        match self.driver.list(key).await {
            Ok(v) => Ok(v),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that storage answers (for health checks): a missing root is
    /// fine, an I/O or backend error is not.
    pub async fn check_storage(&self) -> RegistryResult<()> {
        self.driver.check_ready().await?;
        match self
            .driver
            .stat(&StoragePath::RepositoriesRoot.to_key())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// True when the repository has had a manifest pushed: a name holding
    /// only layers or an upload session is no repository yet (registry:2
    /// answers NAME_UNKNOWN for its tags).
    pub async fn repository_exists(&self, name: &RepoName) -> RegistryResult<bool> {
        match self
            .driver
            .stat(&StoragePath::ManifestRevisionsDir { name }.to_key())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The last `/`-separated segment of a key.
fn base_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}
