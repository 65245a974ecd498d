//! Listings: tags of a repository and the catalog of repositories, in lexical
//! order with `n`/`last` pagination.

use super::{base_name, Registry, RegistryError, RegistryResult};
use crate::oci::name::{RepoName, Tag};
use crate::storage::paths::StoragePath;

/// One page of a lexically ordered listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// True when entries remain after the last item.
    pub more: bool,
}

/// Takes the entries after `last`, at most `n` of them (all when `n` is None).
fn paginate<T: Ord + Clone>(mut all: Vec<T>, n: Option<usize>, last: Option<&T>) -> Page<T> {
    all.sort();
    all.dedup();
    let start = match last {
        Some(l) => all.partition_point(|x| x <= l),
        None => 0,
    };
    let rest = &all[start..];
    let take = n.unwrap_or(rest.len()).min(rest.len());
    Page {
        items: rest[..take].to_vec(),
        more: take < rest.len(),
    }
}

impl Registry {
    /// Every tag of a repository with a current link, unordered.
    pub(super) async fn all_tags(&self, name: &RepoName) -> RegistryResult<Vec<Tag>> {
        let entries = self
            .list_or_empty(&StoragePath::TagsDir { name }.to_key())
            .await?;
        Ok(entries
            .iter()
            .filter_map(|k| base_name(k).parse().ok())
            .collect())
    }

    /// One page of a repository's tags. Errors: `NameUnknown` when the
    /// repository does not exist at all.
    pub async fn list_tags(
        &self,
        name: &RepoName,
        n: Option<usize>,
        last: Option<&str>,
    ) -> RegistryResult<Page<String>> {
        let tags_dir = StoragePath::TagsDir { name }.to_key();
        let entries = match self.driver.list(&tags_dir).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => {
                return if self.repository_exists(name).await? {
                    Ok(Page {
                        items: Vec::new(),
                        more: false,
                    })
                } else {
                    Err(RegistryError::NameUnknown)
                };
            }
            Err(e) => return Err(e.into()),
        };
        let tags: Vec<String> = entries
            .iter()
            .map(|k| base_name(k))
            .filter(|t| t.parse::<Tag>().is_ok())
            .map(str::to_string)
            .collect();
        let last = last.map(str::to_string);
        Ok(paginate(tags, n, last.as_ref()))
    }

    /// True when `<manifests_dir>/revisions/<alg>/` holds at least one
    /// manifest: a repository whose manifests were all deleted (and then
    /// collected) leaves empty directories behind and is no longer listed.
    async fn has_revisions(&self, manifests_dir: &str) -> RegistryResult<bool> {
        for alg in self
            .list_or_empty(&format!("{manifests_dir}/revisions"))
            .await?
        {
            if !self.list_or_empty(&alg).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every repository name: directories holding `_manifests` with at least
    /// one manifest revision, found by
    /// descending the repositories tree and skipping `_`-prefixed directories,
    /// as distribution's catalog does.
    pub async fn all_repositories(&self) -> RegistryResult<Vec<String>> {
        let root = StoragePath::RepositoriesRoot.to_key();
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let children = match self.driver.list(&dir).await {
                Ok(c) => c,
                Err(e) if e.is_not_found() => continue,
                Err(e) if dir == root => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(dir, error = %e, "skipping unreadable directory in catalog walk");
                    continue;
                }
            };
            for child in children {
                let base = base_name(&child);
                if base == "_manifests" {
                    let repo = dir.strip_prefix(&root).and_then(|r| r.strip_prefix('/'));
                    if let Some(repo) = repo {
                        if self.has_revisions(&child).await? {
                            found.push(repo.to_string());
                        }
                    }
                } else if !base.starts_with('_') {
                    stack.push(child);
                }
            }
        }
        Ok(found)
    }

    /// One page of the catalog, of the repositories `keep` accepts (the
    /// caller's view: filtering comes before paging).
    pub async fn catalog(
        &self,
        n: Option<usize>,
        last: Option<&str>,
        keep: impl Fn(&str) -> bool,
    ) -> RegistryResult<Page<String>> {
        let mut all = self.all_repositories().await?;
        all.retain(|r| keep(r));
        let last = last.map(str::to_string);
        Ok(paginate(all, n, last.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::paginate;

    #[test]
    fn pagination() {
        let all = vec!["c", "a", "b", "d"];
        let p = paginate(all.clone(), Some(2), None);
        assert_eq!((p.items, p.more), (vec!["a", "b"], true));
        let p = paginate(all.clone(), Some(2), Some(&"b"));
        assert_eq!((p.items, p.more), (vec!["c", "d"], false));
        let p = paginate(all.clone(), None, Some(&"bb"));
        assert_eq!((p.items, p.more), (vec!["c", "d"], false));
        let p = paginate(all.clone(), Some(0), None);
        assert_eq!((p.items, p.more), (vec![], true));
        let p = paginate(all, Some(10), Some(&"z"));
        assert_eq!((p.items, p.more), (Vec::<&str>::new(), false));
    }
}
