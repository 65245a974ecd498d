//! The referrers index (OCI 1.1): for each subject digest, links to the
//! manifests whose `subject` names it. Rebuildable from the manifests.

use super::{base_name, Registry, RegistryResult};
use crate::oci::digest::Digest;
use crate::oci::manifest::{self, Descriptor};
use crate::oci::name::{Reference, RepoName};
use crate::storage::paths::{parse_link, StoragePath};
use crate::storage::DeferredWrite;

impl Registry {
    /// The write recording that `referrer` refers to `subject`, for the
    /// caller's batch; durable after its next `driver.sync()`.
    pub(super) async fn referrer_write(
        &self,
        name: &RepoName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Option<DeferredWrite> {
        self.link_write(
            StoragePath::ReferrerLink {
                name,
                subject,
                referrer,
            },
            referrer,
        )
        .await
    }

    /// Forgets that `referrer` refers to `subject`.
    pub(super) async fn remove_referrer(
        &self,
        name: &RepoName,
        subject: &Digest,
        referrer: &Digest,
    ) -> RegistryResult<()> {
        let key = StoragePath::ReferrerLink {
            name,
            subject,
            referrer,
        }
        .to_key();
        match self.driver.delete(key.trim_end_matches("/link")).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Descriptors of the manifests referring to `subject`, optionally only
    /// those with the given artifact type, ordered by digest.
    pub async fn referrers(
        &self,
        name: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> RegistryResult<Vec<Descriptor>> {
        let dir = StoragePath::SubjectReferrersDir { name, subject }.to_key();
        let mut out = Vec::new();
        for alg_dir in self.list_or_empty(&dir).await? {
            for entry in self.list_or_empty(&alg_dir).await? {
                let link = format!("{entry}/link");
                let digest = match self.driver.get_content(&link).await {
                    Ok(c) => parse_link(&c),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e.into()),
                };
                let Some(digest) = digest else {
                    tracing::debug!(
                        entry = base_name(&entry),
                        "ignoring unreadable referrer link"
                    );
                    continue;
                };
                let stored = match self.get_manifest(name, &Reference::Digest(digest)).await {
                    Ok(m) => m,
                    Err(super::RegistryError::ManifestUnknown) => continue,
                    Err(e) => return Err(e),
                };
                let Ok(parsed) = manifest::parse_limited(None, &stored.body, usize::MAX) else {
                    continue;
                };
                if artifact_type.is_some() && parsed.artifact_type.as_deref() != artifact_type {
                    continue;
                }
                out.push(Descriptor {
                    media_type: stored.media_type,
                    digest: stored.digest,
                    size: stored.body.len() as u64,
                    artifact_type: parsed.artifact_type,
                    annotations: parsed.annotations,
                    platform: None,
                    urls: None,
                });
            }
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }
}
