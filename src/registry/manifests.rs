//! Manifests and tags. Manifest bytes are stored verbatim as blobs and linked
//! as revisions; a tag is a `current/link` to a revision plus an index entry.

use bytes::Bytes;

use super::{Registry, RegistryError, RegistryResult};
use crate::oci::digest::Digest;
use crate::oci::manifest::{self, ManifestError, ParsedManifest};
use crate::oci::name::{Reference, RepoName, Tag};
use crate::storage::paths::StoragePath;
use crate::storage::DeferredWrite;

/// A manifest as served: its bytes, digest and media type.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub body: Bytes,
}

/// What a successful manifest PUT reports back.
#[derive(Debug, Clone)]
pub struct PutManifestResult {
    pub digest: Digest,
    /// The `subject` digest, sent back as `OCI-Subject`.
    pub subject: Option<Digest>,
}

impl From<ManifestError> for RegistryError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::TooLarge { size, limit } => {
                RegistryError::ManifestTooLarge { size, limit }
            }
            other => RegistryError::ManifestInvalid(other.to_string()),
        }
    }
}

impl Registry {
    /// Resolves a reference to a manifest digest linked in the repository.
    /// Errors: `ManifestUnknown`.
    pub async fn resolve(&self, name: &RepoName, reference: &Reference) -> RegistryResult<Digest> {
        let digest = match reference {
            Reference::Tag(tag) => self
                .read_link(StoragePath::TagCurrentLink { name, tag })
                .await?
                .ok_or(RegistryError::ManifestUnknown)?,
            Reference::Digest(d) => d.clone(),
        };
        // Online GC keeps what requests resolve (an index push checking its
        // children, a pull, a re-tag): see gc::tracker.
        self.recent.touch(&digest).await;
        let linked = self
            .read_link(StoragePath::ManifestRevisionLink {
                name,
                digest: &digest,
            })
            .await?;
        if linked.as_ref() != Some(&digest) {
            return Err(RegistryError::ManifestUnknown);
        }
        Ok(digest)
    }

    /// Reads a manifest by tag or digest. Errors: `ManifestUnknown`.
    pub async fn get_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> RegistryResult<StoredManifest> {
        let digest = self.resolve(name, reference).await?;
        if let Some(hit) = self.manifests.get(&digest) {
            return Ok(StoredManifest {
                digest,
                media_type: hit.media_type,
                body: hit.body,
            });
        }
        let body = match self
            .driver
            .get_content(&StoragePath::BlobData { digest: &digest }.to_key())
            .await
        {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(RegistryError::ManifestUnknown),
            Err(e) => return Err(e.into()),
        };
        let media_type = manifest::detect_media_type(&body)
            .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
        let entry = super::manifest_cache::CachedManifest {
            media_type: media_type.clone(),
            body: body.clone(),
        };
        self.manifests.put(&digest, entry);
        Ok(StoredManifest {
            digest,
            media_type,
            body,
        })
    }

    /// Stores a manifest under a tag or its digest after checking that
    /// everything it references is in the repository.
    /// Errors: `ManifestInvalid`, `ManifestTooLarge`, `DigestMismatch` (digest
    /// reference not matching the body), `ManifestBlobUnknown`.
    pub async fn put_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: Bytes,
    ) -> RegistryResult<PutManifestResult> {
        let parsed = manifest::parse_limited(content_type, &body, self.options.manifest_size)?;
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), &body);
                if &actual != d {
                    return Err(RegistryError::DigestMismatch {
                        expected: d.clone(),
                        actual,
                    });
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(&body),
        };
        self.check_references(name, &parsed).await?;

        let mut writes = Vec::with_capacity(3);
        if self.global_blob_size(&digest).await? != Some(body.len() as u64) {
            writes.push(DeferredWrite::Put {
                key: StoragePath::BlobData { digest: &digest }.to_key(),
                content: body,
            });
        }
        let revision = StoragePath::ManifestRevisionLink {
            name,
            digest: &digest,
        };
        writes.extend(self.link_write(revision, &digest).await);
        if let Some(subject) = &parsed.subject {
            writes.extend(self.referrer_write(name, &subject.digest, &digest).await);
        }
        self.driver.apply_deferred(writes).await?;
        // The manifest is durable before a tag can point at it: a crash
        // never leaves a tag naming a manifest that is not on disk.
        self.driver.sync().await?;
        if let Reference::Tag(tag) = reference {
            let writes = self.tag_writes(name, tag, &digest).await;
            self.driver.apply_deferred(writes).await?;
            self.driver.sync().await?;
        }
        self.repo_index.note(name.as_str(), true);
        Ok(PutManifestResult {
            digest,
            subject: parsed.subject.map(|s| s.digest),
        })
    }

    /// Every blob and child manifest must already be in the repository.
    async fn check_references(
        &self,
        name: &RepoName,
        parsed: &ParsedManifest,
    ) -> RegistryResult<()> {
        for blob in &parsed.blobs {
            match self.stat_blob(name, &blob.digest).await {
                Ok(_) => {}
                Err(RegistryError::BlobUnknown(d)) => {
                    return Err(RegistryError::ManifestBlobUnknown(d))
                }
                Err(e) => return Err(e),
            }
        }
        for child in &parsed.manifests {
            match self
                .resolve(name, &Reference::Digest(child.digest.clone()))
                .await
            {
                Ok(_) => {}
                Err(RegistryError::ManifestUnknown) => {
                    return Err(RegistryError::ManifestBlobUnknown(child.digest.clone()))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The writes that point a tag at a manifest, recording it in the
    /// tag's index as distribution does; durable after the caller's next
    /// `driver.sync()`.
    pub(super) async fn tag_writes(
        &self,
        name: &RepoName,
        tag: &Tag,
        digest: &Digest,
    ) -> Vec<DeferredWrite> {
        // The history entry, as distribution writes it (nothing reads it to
        // serve a pull); it rides on the caller's sync.
        let mut writes = vec![DeferredWrite::Put {
            key: StoragePath::TagIndexLink { name, tag, digest }.to_key(),
            content: Bytes::from(digest.to_string()),
        }];
        writes.extend(
            self.link_write(StoragePath::TagCurrentLink { name, tag }, digest)
                .await,
        );
        writes
    }

    /// Deletes by tag (untag: the manifest stays) or by digest (the manifest
    /// revision and every tag pointing at it go).
    /// Errors: `Unsupported` when deletes are disabled, `ManifestUnknown`.
    pub async fn delete_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> RegistryResult<()> {
        if !self.options.delete_enabled {
            return Err(RegistryError::Unsupported(
                "deletes are disabled on this registry",
            ));
        }
        match reference {
            Reference::Tag(tag) => {
                if self
                    .read_link(StoragePath::TagCurrentLink { name, tag })
                    .await?
                    .is_none()
                {
                    return Err(RegistryError::ManifestUnknown);
                }
                self.delete_if_exists(StoragePath::TagDir { name, tag })
                    .await?;
                Ok(())
            }
            Reference::Digest(digest) => {
                let stored = self.get_manifest(name, reference).await?;
                for tag in self.all_tags(name).await? {
                    let current = self
                        .read_link(StoragePath::TagCurrentLink { name, tag: &tag })
                        .await?;
                    if current.as_ref() == Some(digest) {
                        self.delete_if_exists(StoragePath::TagDir { name, tag: &tag })
                            .await?;
                    }
                }
                if let Ok(parsed) = manifest::parse_limited(None, &stored.body, usize::MAX) {
                    if let Some(subject) = parsed.subject {
                        self.remove_referrer(name, &subject.digest, digest).await?;
                    }
                }
                self.delete_if_exists(StoragePath::ManifestRevisionDir { name, digest })
                    .await?;
                // Its last manifest gone, the repository leaves listings.
                if let Err(e) = self.recheck_listed(name.as_str()).await {
                    tracing::warn!(repository = %name, error = %e, "cannot recheck a repository for listings; the next index refresh will");
                }
                Ok(())
            }
        }
    }
}
