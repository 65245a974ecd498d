//! Manifests through the cache. By digest: a local hit is served and never
//! asked again; a miss is fetched, checked against the digest and stored
//! (its blobs are not required: they arrive when pulled). By tag: served
//! locally while checked within the entry's interval, else revalidated
//! with a `HEAD` — same digest: local; moved: fetched by digest and
//! re-tagged; unknown upstream: 404; upstream unavailable: the cached
//! manifest, with one warning per tag per interval.

use bytes::Bytes;

use super::routing::Route;
use super::CachedContent;
use super::{records, MirrorStats};
use crate::mirror::{RemoteManifest, UpstreamError};
use crate::oci::digest::Digest;
use crate::oci::manifest;
use crate::oci::name::{Reference, RepoName, Tag};
use crate::registry::{Registry, RegistryError, RegistryResult, StoredManifest};
use crate::storage::paths::StoragePath;
use crate::storage::DeferredWrite;

/// A manifest answer: the stored manifest, or for a `HEAD` of one not
/// cached, what the upstream said about it (`body` empty, `size` its size).
#[derive(Debug, Clone)]
pub struct ServedManifest {
    pub digest: Digest,
    pub media_type: String,
    /// The bytes; empty for a `HEAD` answered from the upstream's `HEAD`.
    pub body: Bytes,
    /// `Content-Length` to send.
    pub size: u64,
}

impl From<StoredManifest> for ServedManifest {
    fn from(m: StoredManifest) -> Self {
        ServedManifest {
            size: m.body.len() as u64,
            digest: m.digest,
            media_type: m.media_type,
            body: m.body,
        }
    }
}

impl Registry {
    /// A manifest for `GET`/`HEAD`: from storage for local names, through
    /// the cache for mirrored ones. Errors: `ManifestUnknown`,
    /// `ManifestUnavailable` (nothing cached, upstream unreachable).
    pub async fn serve_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
        head: bool,
    ) -> RegistryResult<ServedManifest> {
        let Some(route) = self.mirror_route(name) else {
            return Ok(self.get_manifest(name, reference).await?.into());
        };
        match reference {
            Reference::Digest(d) => self.manifest_by_digest(name, &route, d, head).await,
            Reference::Tag(t) => self.manifest_by_tag(name, &route, t, head).await,
        }
    }

    async fn manifest_by_digest(
        &self,
        name: &RepoName,
        route: &Route,
        digest: &Digest,
        head: bool,
    ) -> RegistryResult<ServedManifest> {
        self.manifest_by_digest_for(name, route, digest, head, None)
            .await
    }

    /// [`Self::manifest_by_digest`] for a pull of `tag` (named in the
    /// notice of a manifest this stores).
    async fn manifest_by_digest_for(
        &self,
        name: &RepoName,
        route: &Route,
        digest: &Digest,
        head: bool,
        tag: Option<&Tag>,
    ) -> RegistryResult<ServedManifest> {
        let stats = &route.entry.stats;
        match self
            .get_manifest(name, &Reference::Digest(digest.clone()))
            .await
        {
            Ok(m) => {
                MirrorStats::add(&stats.hits, 1);
                self.note_pulled(name, digest).await;
                return Ok(m.into());
            }
            Err(RegistryError::ManifestUnknown) => {}
            Err(e) => return Err(e),
        }
        let upstream = &route.entry.upstream;
        if head {
            return match upstream
                .head_manifest(&route.upstream_name, &digest.to_string())
                .await
            {
                Ok(Some(desc)) if &desc.digest == digest => Ok(ServedManifest {
                    digest: desc.digest,
                    media_type: desc.media_type,
                    body: Bytes::new(),
                    size: desc.size,
                }),
                Ok(_) => Err(RegistryError::ManifestUnknown),
                Err(e) => Err(upstream_manifest_error(route, stats, e)),
            };
        }
        // Concurrent misses of this manifest: one asks, the others then
        // find it stored.
        let _held = match self.mirrors_state() {
            Some(m) => m.in_flight.lock(format!("{name}@{digest}")).await,
            None => None,
        };
        if let Ok(m) = self
            .get_manifest(name, &Reference::Digest(digest.clone()))
            .await
        {
            MirrorStats::add(&stats.hits, 1);
            return Ok(m.into());
        }
        MirrorStats::add(&stats.misses, 1);
        let fetched = match upstream
            .get_manifest(&route.upstream_name, &digest.to_string())
            .await
        {
            Ok(Some(m)) => m,
            Ok(None) => return Err(RegistryError::ManifestUnknown),
            Err(e) => return Err(upstream_manifest_error(route, stats, e)),
        };
        MirrorStats::add(&stats.bytes_fetched, fetched.body.len() as u64);
        let actual = Digest::of(digest.algorithm(), &fetched.body);
        if &actual != digest {
            MirrorStats::add(&stats.upstream_errors, 1);
            tracing::warn!(mirror = %route.entry.upstream.label(), repository = %name, expected = %digest, %actual, "upstream sent a manifest that does not match its digest; nothing stored");
            return Err(RegistryError::ManifestUnavailable(format!(
                "the upstream {} sent a manifest whose digest is {actual}, not {digest}",
                route.entry.remote
            )));
        }
        self.store_fetched(name, digest, &fetched).await?;
        if let Some(m) = self.mirrors_state() {
            m.listener.notify(CachedContent::Manifest {
                repository: name.to_string(),
                digest: digest.to_string(),
                media_type: media_type_of(&fetched),
                body: fetched.body.clone(),
                tag: tag.map(|t| t.to_string()),
                upstream: route.entry.remote.clone(),
            });
        }
        Ok(ServedManifest {
            size: fetched.body.len() as u64,
            digest: actual,
            media_type: media_type_of(&fetched),
            body: fetched.body,
        })
    }

    async fn manifest_by_tag(
        &self,
        name: &RepoName,
        route: &Route,
        tag: &Tag,
        head: bool,
    ) -> RegistryResult<ServedManifest> {
        let entry = &route.entry;
        let fresh = |m: &super::Mirrors| {
            m.tag_checks
                .fresh(name.as_str(), tag.as_str(), entry.tag_revalidate)
        };
        let local = self.local_tag(name, tag).await?;
        if let Some(d) = &local {
            if self.mirrors_state().is_some_and(fresh) {
                return self.manifest_by_digest(name, route, d, head).await;
            }
        }
        // Concurrent revalidations of one tag: one asks, the others then
        // see it checked (when the interval is not zero).
        let _held = match self.mirrors_state() {
            Some(m) => m.in_flight.lock(format!("{name}:{tag}")).await,
            None => None,
        };
        let local = self.local_tag(name, tag).await?;
        if let Some(d) = &local {
            if self.mirrors_state().is_some_and(fresh) {
                return self.manifest_by_digest(name, route, d, head).await;
            }
        }
        let checked = entry
            .upstream
            .head_manifest(&route.upstream_name, tag.as_str())
            .await;
        let desc = match checked {
            Ok(Some(desc)) => desc,
            Ok(None) => return Err(RegistryError::ManifestUnknown),
            Err(e) => {
                let Some(d) = local else {
                    return Err(upstream_manifest_error(route, &entry.stats, e));
                };
                MirrorStats::add(&entry.stats.upstream_errors, 1);
                let warn = self.mirrors_state().is_some_and(|m| {
                    m.tag_checks
                        .should_warn(name.as_str(), tag.as_str(), entry.tag_revalidate)
                });
                if warn {
                    tracing::warn!(mirror = %entry.upstream.label(), repository = %name, %tag, error = %e, "upstream unavailable: serving the cached tag");
                }
                return self.manifest_by_digest(name, route, &d, head).await;
            }
        };
        let mark = || {
            if let Some(m) = self.mirrors_state() {
                m.tag_checks.mark_checked(name.as_str(), tag.as_str());
            }
        };
        if local.as_ref() == Some(&desc.digest) {
            mark();
            return self
                .manifest_by_digest(name, route, &desc.digest, head)
                .await;
        }
        // The tag moved (or is new here). A manifest already cached by
        // digest is re-tagged without a download. A HEAD of one not cached
        // fetches it too: docker and containerd resolve a tag with a HEAD,
        // then GET by digest, so only a HEAD can cache the tag, and it must,
        // or the tag no longer resolves once the upstream is down (the
        // client's GET by digest then finds the manifest cached).
        let served = self
            .manifest_by_digest_for(name, route, &desc.digest, false, Some(tag))
            .await?;
        let writes = self.tag_writes(name, tag, &served.digest).await;
        self.driver.apply_deferred(writes).await?;
        self.driver.sync().await?;
        mark();
        if head {
            return Ok(ServedManifest {
                body: Bytes::new(),
                ..served
            });
        }
        Ok(served)
    }

    /// The digest a tag points at in the cache, `None` when not cached.
    async fn local_tag(&self, name: &RepoName, tag: &Tag) -> RegistryResult<Option<Digest>> {
        match self.resolve(name, &Reference::Tag(tag.clone())).await {
            Ok(d) => Ok(Some(d)),
            Err(RegistryError::ManifestUnknown) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a fetched manifest as a push would, without requiring its
    /// blobs (they are fetched when pulled).
    async fn store_fetched(
        &self,
        name: &RepoName,
        digest: &Digest,
        fetched: &RemoteManifest,
    ) -> RegistryResult<()> {
        let mut writes = Vec::with_capacity(3);
        if self.global_blob_size(digest).await? != Some(fetched.body.len() as u64) {
            writes.push(DeferredWrite::Put {
                key: StoragePath::BlobData { digest }.to_key(),
                content: fetched.body.clone(),
            });
        }
        writes.extend(
            self.link_write(StoragePath::ManifestRevisionLink { name, digest }, digest)
                .await,
        );
        if let Ok(parsed) = manifest::parse(Some(&fetched.media_type), &fetched.body) {
            if let Some(subject) = &parsed.subject {
                writes.extend(self.referrer_write(name, &subject.digest, digest).await);
            }
        }
        self.driver.apply_deferred(writes).await?;
        self.driver.sync().await?;
        self.repo_index.note(name.as_str(), true);
        self.note_pulled(name, digest).await;
        Ok(())
    }

    /// Writes the manifest's last-pulled record when it is due (see
    /// `records`); a failure is logged, never fails the pull.
    async fn note_pulled(&self, name: &RepoName, digest: &Digest) {
        let Some(m) = self.mirrors_state() else {
            return;
        };
        if !m.pulled.due(name.as_str(), &digest.to_string()) {
            return;
        }
        let dir = StoragePath::ManifestRevisionDir { name, digest }.to_key();
        let key = format!("{dir}/{}", records::LAST_PULLED_FILE);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Err(e) = self
            .driver
            .put_content(&key, Bytes::from(now.to_string()))
            .await
        {
            tracing::warn!(repository = %name, %digest, error = %e, "cannot write the last-pulled record");
        }
    }
}

/// The media type to serve a fetched manifest with: the upstream's, or
/// what its bytes say.
fn media_type_of(m: &RemoteManifest) -> String {
    if !m.media_type.is_empty() {
        return m.media_type.clone();
    }
    manifest::detect_media_type(&m.body).unwrap_or_else(|| manifest::OCI_MANIFEST.to_string())
}

/// A failed upstream call for a manifest nothing cached answers: 404
/// MANIFEST_UNKNOWN as registry:2 answers, with a message saying why.
fn upstream_manifest_error(route: &Route, stats: &MirrorStats, e: UpstreamError) -> RegistryError {
    MirrorStats::add(&stats.upstream_errors, 1);
    tracing::warn!(mirror = %route.entry.upstream.label(), upstream_name = %route.upstream_name, error = %e, "upstream manifest request failed; nothing cached");
    RegistryError::ManifestUnavailable(format!(
        "manifest unknown: not cached, and the upstream {} is unreachable or refused: {e}",
        route.entry.remote
    ))
}
