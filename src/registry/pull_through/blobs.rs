//! Blobs through the cache: a blob already stored (fetched for another
//! repository) is linked after the upstream confirms the name has it; a
//! `HEAD` miss asks the upstream's `HEAD`; a `GET` miss joins or starts the
//! one fetch of that digest and streams from its spool.

use std::sync::Arc;

use super::fetch::{Fetch, Phase, StartError, Target};
use super::MirrorStats;
use crate::mirror::UpstreamError;
use crate::oci::digest::Digest;
use crate::oci::name::RepoName;
use crate::registry::{BlobInfo, Registry, RegistryError, RegistryResult};
use crate::storage::paths::StoragePath;
use crate::storage::ByteStream;

/// Seconds a client is asked to wait when too many fetches run.
const RETRY_AFTER_SECS: u64 = 5;

/// A blob a mirrored repository does not link yet, as it can be served.
pub enum MirrorBlob {
    /// Now linked from storage: serve it as a local blob.
    Local(BlobInfo),
    /// Answer to a `HEAD`: the upstream has it, with this size.
    HeadOnly { size: u64 },
    /// Being fetched: `size` is the upstream's `Content-Length`, when sent.
    Fetching {
        size: Option<u64>,
        stream: MirrorBlobStream,
    },
}

/// A handle on a running fetch, from which response bodies are streamed.
pub struct MirrorBlobStream(Arc<Fetch>);

impl MirrorBlobStream {
    /// The bytes `[offset, offset + len)` (`None`: to the end) as they
    /// arrive; the stream fails, rather than end, if the blob does not
    /// verify.
    pub fn stream(&self, offset: u64, len: Option<u64>) -> ByteStream {
        Box::pin(self.0.stream(offset, len))
    }
}

impl Registry {
    /// A blob of a mirrored repository that `stat_blob` did not find.
    /// Errors: `BlobUnknown` (not mirrored, or the upstream has no such
    /// blob), `BlobUnavailable` (upstream unreachable), `TooManyRequests`.
    pub async fn mirror_blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        head: bool,
    ) -> RegistryResult<MirrorBlob> {
        let (Some(mirrors), Some(route)) = (self.mirrors.clone(), self.mirror_route(name)) else {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        };
        let entry = route.entry.clone();
        let upstream = &entry.upstream;
        let unknown = || RegistryError::BlobUnknown(digest.clone());
        if let Some(size) = self.global_blob_size(digest).await? {
            // Stored for another repository: link it once the upstream
            // confirms this name has it (no upstream, no cross-repo read).
            return match upstream.head_blob(&route.upstream_name, digest).await {
                Ok(Some(_)) => {
                    self.write_link_deferred(StoragePath::LayerLink { name, digest }, digest)
                        .await?;
                    self.driver.sync().await?;
                    MirrorStats::add(&entry.stats.hits, 1);
                    Ok(MirrorBlob::Local(BlobInfo {
                        digest: digest.clone(),
                        size,
                    }))
                }
                Ok(None) => Err(unknown()),
                Err(e) => Err(blob_error(&entry.remote, &entry.stats, e)),
            };
        }
        if head {
            return match upstream.head_blob(&route.upstream_name, digest).await {
                Ok(Some(size)) => Ok(MirrorBlob::HeadOnly { size }),
                Ok(None) => Err(unknown()),
                Err(e) => Err(blob_error(&entry.remote, &entry.stats, e)),
            };
        }
        let target = Target {
            registry: self.clone(),
            entry: entry.clone(),
            name: name.clone(),
            upstream_name: route.upstream_name.clone(),
            digest: digest.clone(),
        };
        let fetch = match mirrors.fetches.join_or_start(target) {
            Ok(f) => f,
            Err(StartError::TooMany) => {
                return Err(RegistryError::TooManyRequests {
                    retry_after: RETRY_AFTER_SECS,
                })
            }
            Err(StartError::Spool(e)) => {
                return Err(RegistryError::Storage(
                    crate::storage::StorageError::backend("spool", e),
                ))
            }
        };
        match fetch.started().await {
            Ok(size) => Ok(MirrorBlob::Fetching {
                size,
                stream: MirrorBlobStream(fetch),
            }),
            Err(Phase::NotFound) => Err(unknown()),
            Err(Phase::Failed(m)) => Err(RegistryError::BlobUnavailable(m)),
            Err(other) => Err(RegistryError::BlobUnavailable(format!("{other:?}"))),
        }
    }
}

/// A failed upstream call for a blob nothing cached answers.
fn blob_error(remote: &str, stats: &MirrorStats, e: UpstreamError) -> RegistryError {
    MirrorStats::add(&stats.upstream_errors, 1);
    match e {
        UpstreamError::Denied(m) => {
            RegistryError::Denied(format!("the upstream {remote} refused access: {m}"))
        }
        other => RegistryError::BlobUnavailable(format!(
            "blob not cached, and the upstream {remote} is unreachable: {other}"
        )),
    }
}
