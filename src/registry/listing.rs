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

/// Takes the entries after `last` that `valid` accepts, at most `n` of
/// them (all when `n` is None), in lexical order, without duplicates.
/// A partial selection: only the page and the entry after it are sorted and
/// checked, so a first page of 100 out of 10,000 tags sorts 101 names, not
/// 10,000. Duplicates or rejected names among those (rare: an object and a
/// prefix of the same name on an object store, foreign directories) fall
/// back to filtering and sorting everything.
fn paginate(
    mut all: Vec<&str>,
    n: Option<usize>,
    last: Option<&str>,
    valid: impl Fn(&str) -> bool,
) -> Page<String> {
    if let Some(l) = last {
        all.retain(|x| *x > l);
    }
    // The page plus one entry, which tells whether more remain.
    let head = n.map_or(all.len(), |n| n.saturating_add(1)).min(all.len());
    if head < all.len() {
        all.select_nth_unstable(head);
    }
    let first = &mut all[..head];
    first.sort_unstable();
    let clean = first.windows(2).all(|w| w[0] != w[1]) && first.iter().all(|x| valid(x));
    if !clean {
        all.retain(|x| valid(x));
        all.sort_unstable();
        all.dedup();
    }
    let take = n.unwrap_or(all.len()).min(all.len());
    Page {
        items: all[..take].iter().map(|s| s.to_string()).collect(),
        more: take < all.len(),
    }
}

/// A directory of the catalog walk: its subdirectories still to visit.
struct WalkDir {
    /// Repository-relative name (`a/b`; empty for the root).
    rel: String,
    /// The key of its `_manifests` child, if it has one.
    manifests: Option<String>,
    /// Names (last components) of the children to visit, in catalog order:
    /// `_`-prefixed ones and those wholly before `last` left out.
    children: Vec<String>,
    next: usize,
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
        let names = entries.iter().map(|k| base_name(k)).collect();
        Ok(paginate(names, n, last, |t| t.parse::<Tag>().is_ok()))
    }

    /// True when `<manifests_dir>/revisions/<alg>/` holds at least one
    /// manifest: a repository whose manifests were all deleted (and then
    /// collected) leaves empty directories behind and is no longer listed.
    pub(super) async fn has_revisions(&self, manifests_dir: &str) -> RegistryResult<bool> {
        // Almost every manifest is sha256: one check decides the common case.
        if self
            .driver
            .has_children(&format!("{manifests_dir}/revisions/sha256"))
            .await?
        {
            return Ok(true);
        }
        for alg in self
            .list_or_empty(&format!("{manifests_dir}/revisions"))
            .await?
        {
            if self.driver.has_children(&alg).await? {
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
    /// directory listing and one revisions check per repository on it (plus
    /// the path to `last`), not a walk of the whole tree — what keeps
    /// `_catalog` cheap on object stores.
    pub async fn walk_repositories(
        &self,
        last: Option<&str>,
        limit: Option<usize>,
        keep: impl Fn(&str) -> bool,
    ) -> RegistryResult<Page<String>> {
        let root = StoragePath::RepositoriesRoot.to_key();
        let mut items = Vec::new();
        let mut stack = Vec::new();
        stack.extend(self.walk_dir(&root, String::new(), last).await?);
        // Depth first, children in order: exactly the catalog order.
        while let Some(top) = stack.last_mut() {
            let Some(child) = top.children.get(top.next) else {
                stack.pop();
                continue;
            };
            top.next += 1;
            let rel = join_rel(&top.rel, child);
            let Some(dir) = self.walk_dir(&root, rel, last).await? else {
                continue;
            };
            let after_last = last.is_none_or(|l| component_cmp(&dir.rel, l) == Ordering::Greater);
            let is_repo = match &dir.manifests {
                Some(m) if after_last && keep(&dir.rel) => self.has_revisions(m).await?,
                _ => false,
            };
            if is_repo {
                if limit.is_some_and(|n| items.len() >= n) {
                    return Ok(Page { items, more: true });
                }
                items.push(dir.rel.clone());
            }
            stack.push(dir);
        }
        Ok(Page { items, more: false })
    }

    /// Lists the directory `rel` under `root` for the catalog walk. `None`
    /// when it is gone or unreadable (logged; a walk does not fail for one
    /// directory), except for the root, whose errors are the caller's.
    async fn walk_dir(
        &self,
        root: &str,
        rel: String,
        last: Option<&str>,
    ) -> RegistryResult<Option<WalkDir>> {
        let key = if rel.is_empty() {
            root.to_string()
        } else {
            format!("{root}/{rel}")
        };
        let mut children = match self.driver.list(&key).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) if rel.is_empty() => return Err(e.into()),
            Err(e) => {
                tracing::debug!(dir = key, error = %e, "skipping unreadable directory in catalog walk");
                return Ok(None);
            }
        };
        // Keep only the last component (in place): a namespace of 5,000
        // repositories is sorted and searched on every page.
        for c in &mut children {
            let start = c.len() - base_name(c).len();
            c.drain(..start);
        }
        let manifests = children
            .iter()
            .any(|c| c == "_manifests")
            .then(|| format!("{key}/_manifests"));
        children.retain(|c| !c.starts_with('_'));
        // Siblings in catalog order are in byte order of their last
        // component (the filesystem driver already lists them so). An object
        // store may list a name twice (an object and a prefix): once here.
        children.sort_unstable();
        children.dedup();
        // Those wholly before `last` form a prefix: skip it.
        let next = match last {
            Some(l) => children.partition_point(|c| may_skip(&join_rel(&rel, c), l)),
            None => 0,
        };
        Ok(Some(WalkDir {
            rel,
            manifests,
            children,
            next,
        }))
    }

    /// One page of the catalog, of the repositories `keep` accepts (the
    /// caller's view: filtering comes before paging). Served from the
    /// in-memory index once it is built (no storage access; cost: the names
    /// scanned from `last` until the page is full), else by a storage walk.
    pub async fn catalog(
        &self,
        n: Option<usize>,
        last: Option<&str>,
        keep: impl Fn(&str) -> bool,
    ) -> RegistryResult<Page<String>> {
        if let Some(page) = self.repo_index.page(last, n, &keep) {
            return Ok(page);
        }
        self.walk_repositories(last, n, keep).await
    }

    /// `/v1/search`: how many repositories `keep` accepts whose name contains
    /// `term`, and `take` of them after the first `skip`, in byte order.
    /// From the in-memory index once built, else from a storage walk.
    pub async fn search_repositories(
        &self,
        term: &str,
        skip: usize,
        take: usize,
        keep: impl Fn(&str) -> bool,
    ) -> RegistryResult<(usize, Vec<String>)> {
        if let Some(found) = self.repo_index.search(term, skip, take, &keep) {
            return Ok(found);
        }
        let mut names = self.all_repositories().await?;
        names.retain(|n| n.contains(term) && keep(n));
        names.sort_unstable();
        let total = names.len();
        Ok((total, names.into_iter().skip(skip).take(take).collect()))
    }
}

/// `rel/name`, or `name` at the root.
fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
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

    fn page(all: &[&str], n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
        let p = paginate(all.to_vec(), n, last, |x| !x.starts_with('.'));
        (p.items, p.more)
    }

    #[test]
    fn pagination() {
        let all = ["c", "a", "b", "d"];
        assert_eq!(
            page(&all, Some(2), None),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            page(&all, Some(2), Some("b")),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(
            page(&all, None, Some("bb")),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(page(&all, Some(0), None), (vec![], true));
        assert!(!page(&all, Some(4), None).1);
        assert!(page(&all, Some(3), None).1);
        assert_eq!(page(&all, Some(10), Some("z")), (vec![], false));
        assert_eq!(page(&[], Some(10), None), (vec![], false));
        assert_eq!(page(&all, Some(usize::MAX), None).0.len(), 4);
    }

    #[test]
    fn pagination_skips_duplicates_and_rejected_names() {
        let all = ["b", ".x", "a", "b", ".y", "c", "a"];
        assert_eq!(
            page(&all, Some(2), None),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            page(&all, Some(3), None),
            (vec!["a".into(), "b".into(), "c".into()], false)
        );
        assert_eq!(page(&all, Some(1), Some("a")), (vec!["b".into()], true));
        assert_eq!(page(&all, None, None).0, ["a", "b", "c"]);
        // Only rejected names after the page: no more.
        assert_eq!(page(&["a", ".z"], Some(1), None), (vec!["a".into()], false));
    }

    #[test]
    fn partial_selection_matches_a_full_sort() {
        // Pseudo-random names; every page size and cut-off agrees with
        // sorting everything.
        let names: Vec<String> = (0..300u32)
            .map(|i| format!("t{}", i.wrapping_mul(2_654_435_761) % 1000))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        for n in [0, 1, 7, 100, 299, 300, 301] {
            for last in [None, Some("t3"), Some("t500"), Some("t999")] {
                let rest: Vec<String> = sorted
                    .iter()
                    .filter(|x| last.is_none_or(|l| x.as_str() > l))
                    .cloned()
                    .collect();
                let want = rest[..n.min(rest.len())].to_vec();
                assert_eq!(
                    page(&refs, Some(n), last),
                    (want, n < rest.len()),
                    "{n} {last:?}"
                );
            }
        }
    }
}
