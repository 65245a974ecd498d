//! Summaries for browsing (the web UI): when tags were pushed, how many tags
//! a repository has, and small blobs (image configs) read whole. Cheap per
//! call; callers ask only for what one page shows.

use std::time::SystemTime;

use bytes::Bytes;
use futures::{stream, StreamExt};

use super::{base_name, Registry, RegistryError, RegistryResult};
use crate::oci::digest::Digest;
use crate::oci::name::{RepoName, Tag};
use crate::storage::paths::StoragePath;

/// Storage calls in flight at once while stat-ing tags.
const STAT_CONCURRENCY: usize = 16;

/// A repository at a glance: its tag count and its latest push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSummary {
    /// Tags with a current link.
    pub tags: usize,
    /// The newest modification time among the tags looked at (the last
    /// push or re-tag), when the backend reports times.
    pub last_push: Option<SystemTime>,
    /// True when only the first `max_stats` tags were looked at, so
    /// `last_push` is a lower bound.
    pub partial: bool,
}

impl Registry {
    /// When `tag` was last pointed at a manifest (the modification time of
    /// its current link); `None` when the tag is gone or the backend keeps
    /// no times.
    pub async fn tag_pushed(
        &self,
        name: &RepoName,
        tag: &Tag,
    ) -> RegistryResult<Option<SystemTime>> {
        match self
            .driver
            .stat(&StoragePath::TagCurrentLink { name, tag }.to_key())
            .await
        {
            Ok(info) => Ok(info.modified),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Registry::tag_pushed`] for several tags, a bounded number at once,
    /// in the order given.
    pub async fn tags_pushed(
        &self,
        name: &RepoName,
        tags: &[Tag],
    ) -> RegistryResult<Vec<Option<SystemTime>>> {
        // Owned inputs: borrowed ones make the future not `Send` for every
        // lifetime, which axum handlers need.
        stream::iter(tags.to_vec())
            .map(|t| {
                let (this, name) = (self.clone(), name.clone());
                async move { this.tag_pushed(&name, &t).await }
            })
            .buffered(STAT_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// Every tag of a repository, sorted. Errors: `NameUnknown` when the
    /// repository does not exist.
    pub async fn tag_names(&self, name: &RepoName) -> RegistryResult<Vec<Tag>> {
        let page = self.list_tags(name, None, None).await?;
        Ok(page.items.iter().filter_map(|t| t.parse().ok()).collect())
    }

    /// Tag count and latest push of a repository, stat-ing at most
    /// `max_stats` tags (the lexically last ones, usually the newest
    /// versions).
    pub async fn repo_summary(
        &self,
        name: &RepoName,
        max_stats: usize,
    ) -> RegistryResult<RepoSummary> {
        let entries = self
            .list_or_empty(&StoragePath::TagsDir { name }.to_key())
            .await?;
        let mut tags: Vec<Tag> = entries
            .iter()
            .filter_map(|k| base_name(k).parse().ok())
            .collect();
        tags.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        tags.dedup_by(|a, b| a.as_str() == b.as_str());
        let count = tags.len();
        let looked = &tags[count.saturating_sub(max_stats)..];
        let times = self.tags_pushed(name, looked).await?;
        Ok(RepoSummary {
            tags: count,
            last_push: times.into_iter().flatten().max(),
            partial: looked.len() < count,
        })
    }

    /// A blob linked in `name`, read whole when at most `limit` bytes
    /// (image configs); `None` when larger. Errors: `BlobUnknown`.
    pub async fn read_small_blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        limit: u64,
    ) -> RegistryResult<Option<Bytes>> {
        let info = self.stat_blob(name, digest).await?;
        if info.size > limit {
            return Ok(None);
        }
        match self
            .driver
            .get_content(&StoragePath::BlobData { digest }.to_key())
            .await
        {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Err(RegistryError::BlobUnknown(digest.clone())),
            Err(e) => Err(e.into()),
        }
    }
}
