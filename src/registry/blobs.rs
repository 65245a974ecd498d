//! Blobs seen through a repository: a blob is readable in a repository only
//! when the repository links it (`_layers/.../link`, or a manifest revision).

use super::{Registry, RegistryError, RegistryResult};
use crate::oci::digest::Digest;
use crate::oci::name::RepoName;
use crate::storage::paths::StoragePath;
use crate::storage::ByteStream;

/// What the HTTP layer needs to answer HEAD/GET for a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

impl Registry {
    /// Size of the blob's data in global storage, `None` when absent.
    /// Touches the online-GC tracker first: whoever relies on the answer
    /// (a HEAD before a push, a manifest's reference check, a mount, an
    /// upload's dedup) cannot lose the blob to a concurrent collection.
    pub(super) async fn global_blob_size(&self, digest: &Digest) -> RegistryResult<Option<u64>> {
        self.recent.touch(digest).await;
        match self
            .driver
            .stat(&StoragePath::BlobData { digest }.to_key())
            .await
        {
            Ok(info) if !info.is_dir => Ok(Some(info.size)),
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// True when the repository links the digest as a layer or a manifest.
    async fn repository_links(&self, name: &RepoName, digest: &Digest) -> RegistryResult<bool> {
        if self
            .read_link(StoragePath::LayerLink { name, digest })
            .await?
            .as_ref()
            == Some(digest)
        {
            return Ok(true);
        }
        let revision = StoragePath::ManifestRevisionLink { name, digest };
        Ok(self.read_link(revision).await?.as_ref() == Some(digest))
    }

    /// Describes a blob as the repository sees it.
    /// Errors: `BlobUnknown` when not linked in `name` or its data is missing.
    pub async fn stat_blob(&self, name: &RepoName, digest: &Digest) -> RegistryResult<BlobInfo> {
        if !self.repository_links(name, digest).await? {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        match self.global_blob_size(digest).await? {
            Some(size) => Ok(BlobInfo {
                digest: digest.clone(),
                size,
            }),
            None => Err(RegistryError::BlobUnknown(digest.clone())),
        }
    }

    /// Streams `len` bytes of the blob from `offset`, for a GET body (whole
    /// or a range). Call `stat_blob` first: `len` must come from its size.
    /// The stream ends with an error rather than short if the data shrank.
    pub async fn blob_stream(
        &self,
        digest: &Digest,
        offset: u64,
        len: u64,
    ) -> RegistryResult<ByteStream> {
        match self
            .driver
            .read_stream(&StoragePath::BlobData { digest }.to_key(), offset, len)
            .await
        {
            Ok(s) => Ok(s),
            Err(e) if e.is_not_found() => Err(RegistryError::BlobUnknown(digest.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// A URL the client may fetch the blob from directly, when the backend
    /// offers one (object stores); `None` for local storage.
    pub async fn blob_redirect_url(&self, digest: &Digest) -> RegistryResult<Option<String>> {
        Ok(self
            .driver
            .redirect_url(&StoragePath::BlobData { digest }.to_key())
            .await?)
    }

    /// Unlinks a blob from a repository (the data stays for garbage collection,
    /// as in distribution). Errors: `Unsupported` when deletes are disabled,
    /// `BlobUnknown` when the repository does not link it.
    pub async fn delete_blob(&self, name: &RepoName, digest: &Digest) -> RegistryResult<()> {
        if !self.options.delete_enabled {
            return Err(RegistryError::Unsupported(
                "deletes are disabled on this registry",
            ));
        }
        let link = StoragePath::LayerLink { name, digest };
        if self.read_link(link.clone()).await?.is_none() {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        // Remove the link's directory (`_layers/<alg>/<hex>`), as distribution does.
        let key = link.to_key();
        let dir = key.trim_end_matches("/link");
        match self.driver.delete(dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Err(RegistryError::BlobUnknown(digest.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Links a blob of repository `from` into `name` without moving bytes
    /// (cross-repository mount). Returns `None` when `from` does not have it,
    /// so the caller can fall back to a normal upload.
    pub async fn mount_blob(
        &self,
        name: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<Option<BlobInfo>> {
        let info = match self.stat_blob(from, digest).await {
            Ok(info) => info,
            Err(RegistryError::BlobUnknown(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.write_link_deferred(StoragePath::LayerLink { name, digest }, digest)
            .await?;
        self.driver.sync().await?;
        Ok(Some(info))
    }
}
