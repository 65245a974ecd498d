//! Listings: tags of a repository and the catalog of repositories, in lexical
//! order with `n`/`last` pagination.

use std::cmp::Ordering;

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
        // Almost every manifest is sha256: one listing decides the common case.
        let sha256 = format!("{manifests_dir}/revisions/sha256");
        if !self.list_or_empty(&sha256).await?.is_empty() {
            return Ok(true);
        }
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

    /// Every repository name, in catalog order.
    pub async fn all_repositories(&self) -> RegistryResult<Vec<String>> {
        Ok(self.walk_repositories(None, None, |_| true).await?.items)
    }

    /// Repositories in distribution's catalog order (component by component:
    /// `a` < `a/b` < `a-b`) after `last`, at most `limit` of those `keep`
    /// accepts. A repository is a directory holding `_manifests` with at least
    /// one manifest revision; `_`-prefixed
    /// directories are never entered. Subtrees wholly before `last` are not
    /// listed and the walk stops once the page is full, so a page costs one
    /// directory listing per repository on it (plus the path to `last`), not
    /// a walk of the whole tree — what keeps `_catalog` cheap on object stores.
    pub async fn walk_repositories(
        &self,
        last: Option<&str>,
        limit: Option<usize>,
        keep: impl Fn(&str) -> bool,
    ) -> RegistryResult<Page<String>> {
        let root = StoragePath::RepositoriesRoot.to_key();
        let mut items = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir = if rel.is_empty() {
                root.clone()
            } else {
                format!("{root}/{rel}")
            };
            let mut children = match self.driver.list(&dir).await {
                Ok(c) => c,
                Err(e) if e.is_not_found() => continue,
                Err(e) if rel.is_empty() => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(dir, error = %e, "skipping unreadable directory in catalog walk");
                    continue;
                }
            };
            children.sort_unstable_by(|a, b| base_name(b).cmp(base_name(a)));
            let manifests = children.iter().find(|c| base_name(c) == "_manifests");
            let after_last = last.is_none_or(|l| component_cmp(&rel, l) == Ordering::Greater);
            let candidate = !rel.is_empty() && after_last && keep(&rel);
            let is_repo = match manifests {
                Some(m) if candidate => self.has_revisions(m).await?,
                _ => false,
            };
            if is_repo {
                if limit.is_some_and(|n| items.len() >= n) {
                    return Ok(Page { items, more: true });
                }
                items.push(rel.clone());
            }
            for child in children {
                let base = base_name(&child);
                if base.starts_with('_') {
                    continue;
                }
                let sub = if rel.is_empty() {
                    base.to_string()
                } else {
                    format!("{rel}/{base}")
                };
                if last.is_some_and(|l| may_skip(&sub, l)) {
                    continue;
                }
                stack.push(sub);
            }
        }
        Ok(Page { items, more: false })
    }

    /// One page of the catalog, of the repositories `keep` accepts (the
    /// caller's view: filtering comes before paging).
    pub async fn catalog(
        &self,
        n: Option<usize>,
        last: Option<&str>,
        keep: impl Fn(&str) -> bool,
    ) -> RegistryResult<Page<String>> {
        self.walk_repositories(last, n, keep).await
    }
}

/// Compares repository names component by component, as distribution orders
/// its catalog.
pub fn component_cmp(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// True when nothing in the subtree `dir` (itself included) comes after
/// `last`: `dir` sorts before `last` and is not one of its ancestors (`last`'s
/// own subtree follows it, so it is never skipped).
fn may_skip(dir: &str, last: &str) -> bool {
    let is_ancestor =
        last.len() > dir.len() && last.starts_with(dir) && last.as_bytes()[dir.len()] == b'/';
    !is_ancestor && component_cmp(dir, last) == Ordering::Less
}

#[cfg(test)]
mod tests {
    use super::{component_cmp, may_skip, paginate};
    use std::cmp::Ordering;

    #[test]
    fn catalog_order_and_pruning() {
        let mut names = vec!["a-b", "a/b", "a", "b", "a/b/c", "ab"];
        names.sort_by(|x, y| component_cmp(x, y));
        assert_eq!(names, ["a", "a/b", "a/b/c", "a-b", "ab", "b"]);
        assert_eq!(component_cmp("a/b", "a/b"), Ordering::Equal);
        // Subtrees before `last` are skipped; ancestors of `last` are not.
        assert!(may_skip("a", "b"));
        assert!(!may_skip("a", "a/b"));
        assert!(!may_skip("a/b", "a/b/c"));
        assert!(may_skip("a/b", "a/c"));
        assert!(!may_skip("a/b", "a/b"), "the subtree of last follows it");
        assert!(!may_skip("c", "b"));
    }

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
