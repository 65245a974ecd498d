//! The repository index: every repository name in memory, in catalog order,
//! so `_catalog` and `/v1/search` cost what they scan in memory instead of a
//! storage walk per request. Built and refreshed from storage by
//! [`Registry::refresh_repo_index`] (the background worker of
//! [`spawn_refresh`] runs it at start and on an interval, for other
//! replicas' writes), and kept current by this process's own writes
//! ([`RepoIndex::note`]). Until it is first built, or when the registry has
//! more repositories than its bound, listings walk storage as before.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::listing::component_cmp;
use super::{Page, Registry, RegistryResult};

/// Default bound on the names the index holds (`catalog.indexlimit`).
pub const DEFAULT_INDEX_LIMIT: usize = crate::config::DEFAULT_INDEX_LIMIT;

/// At most this many of this process's writes are remembered while a
/// refresh walks storage; past it the refresh's result is dropped (the live
/// index, updated directly, stays) and the next refresh tries again.
const JOURNAL_LIMIT: usize = 100_000;

/// A repository name ordered as the catalog orders: component by component.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name(Box<str>);

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        component_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What the index holds.
#[derive(Debug)]
enum Contents {
    /// Not built yet: listings walk storage.
    Unbuilt,
    /// Every repository name.
    Ready(BTreeSet<Name>),
    /// More repositories than the bound: listings walk storage.
    TooLarge,
}

#[derive(Debug)]
struct State {
    contents: Contents,
    /// While a refresh walks storage: this process's writes since it began,
    /// replayed onto its result (`true`: the repository exists).
    journal: Option<Vec<(Name, bool)>>,
    /// The journal overflowed during the current refresh.
    journal_lost: bool,
}

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The index now holds this many names.
    Ready(usize),
    /// More repositories than the bound: listings walk storage.
    TooLarge,
    /// Too many writes happened during the walk to replay; the previous
    /// contents stay (kept current by those writes) until the next refresh.
    Dropped,
}

/// The in-memory repository list of one registry process.
#[derive(Debug)]
pub struct RepoIndex {
    state: RwLock<State>,
    /// Most names held.
    limit: usize,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl RepoIndex {
    /// An unbuilt index that will hold at most `limit` names.
    pub fn new(limit: usize) -> RepoIndex {
        RepoIndex {
            state: RwLock::new(State {
                contents: Contents::Unbuilt,
                journal: None,
                journal_lost: false,
            }),
            limit,
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// True once built (and within its bound): listings are served from it.
    pub fn is_ready(&self) -> bool {
        matches!(self.read().contents, Contents::Ready(_))
    }

    /// How many names the index holds; `None` until built or when over
    /// its bound (listings then walk storage).
    pub fn size(&self) -> Option<usize> {
        match &self.read().contents {
            Contents::Ready(set) => Some(set.len()),
            _ => None,
        }
    }

    /// Records that this process created (`exists`) or emptied a repository.
    /// Repeated pushes to a listed repository take only the read lock.
    pub fn note(&self, name: &str, exists: bool) {
        let key = Name(name.into());
        {
            let st = self.read();
            let settled = match &st.contents {
                Contents::Ready(set) => set.contains(&key) == exists,
                Contents::Unbuilt | Contents::TooLarge => true,
            };
            if settled && st.journal.is_none() {
                return;
            }
        }
        let mut st = self.write();
        let st = &mut *st;
        if let Some(journal) = &mut st.journal {
            if journal.len() < JOURNAL_LIMIT {
                journal.push((key.clone(), exists));
            } else {
                st.journal = None;
                st.journal_lost = true;
            }
        }
        if let Contents::Ready(set) = &mut st.contents {
            if !exists {
                set.remove(&key);
            } else if set.len() < self.limit {
                set.insert(key);
            } else if !set.contains(&key) {
                tracing::warn!(
                    limit = self.limit,
                    "more repositories than catalog.indexlimit: listings walk storage"
                );
                st.contents = Contents::TooLarge;
            }
        }
    }

    /// Starts remembering writes for a refresh; the guard forgets them if
    /// the refresh is abandoned (an error, or shutdown mid-walk).
    fn begin(&self) -> JournalGuard<'_> {
        let mut st = self.write();
        st.journal = Some(Vec::new());
        st.journal_lost = false;
        JournalGuard(self)
    }

    /// Replaces the contents with a walk's result (`more`: it stopped at the
    /// bound) plus the writes made while it ran.
    fn finish(&self, walked: Vec<String>, more: bool) -> RefreshOutcome {
        let mut st = self.write();
        let journal = st.journal.take();
        if more {
            if !matches!(st.contents, Contents::TooLarge) {
                tracing::warn!(
                    limit = self.limit,
                    "more repositories than catalog.indexlimit: listings walk storage"
                );
            }
            st.contents = Contents::TooLarge;
            return RefreshOutcome::TooLarge;
        }
        let Some(journal) = journal.filter(|_| !st.journal_lost) else {
            return RefreshOutcome::Dropped;
        };
        let mut set: BTreeSet<Name> = walked.into_iter().map(|n| Name(n.into())).collect();
        for (name, exists) in journal {
            if exists {
                set.insert(name);
            } else {
                set.remove(&name);
            }
        }
        if set.len() > self.limit {
            st.contents = Contents::TooLarge;
            return RefreshOutcome::TooLarge;
        }
        let n = set.len();
        st.contents = Contents::Ready(set);
        RefreshOutcome::Ready(n)
    }

    /// One catalog page from memory: the names after `last` that `keep`
    /// accepts, at most `n` (all when None). Scans only until the page is
    /// full (plus one name, to know whether more remain). `None` when the
    /// index is not ready.
    pub fn page(
        &self,
        last: Option<&str>,
        n: Option<usize>,
        keep: impl Fn(&str) -> bool,
    ) -> Option<Page<String>> {
        let st = self.read();
        let Contents::Ready(set) = &st.contents else {
            return None;
        };
        let from = match last {
            Some(l) => Bound::Excluded(Name(l.into())),
            None => Bound::Unbounded,
        };
        let mut items = Vec::new();
        for name in set.range((from, Bound::Unbounded)) {
            if !keep(&name.0) {
                continue;
            }
            if n.is_some_and(|n| items.len() >= n) {
                return Some(Page { items, more: true });
            }
            items.push(name.0.to_string());
        }
        Some(Page { items, more: false })
    }

    /// The names containing `term` that `keep` accepts, in byte order: their
    /// count and the `take` of them after the first `skip`. `None` when the
    /// index is not ready. Scans the whole index in memory (a substring can
    /// be anywhere), allocating only the page.
    pub fn search(
        &self,
        term: &str,
        skip: usize,
        take: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Option<(usize, Vec<String>)> {
        let st = self.read();
        let Contents::Ready(set) = &st.contents else {
            return None;
        };
        let mut hits: Vec<&str> = set
            .iter()
            .map(|n| &*n.0)
            .filter(|n| n.contains(term) && keep(n))
            .collect();
        hits.sort_unstable();
        let total = hits.len();
        let page = hits
            .into_iter()
            .skip(skip)
            .take(take)
            .map(str::to_string)
            .collect();
        Some((total, page))
    }
}

/// Forgets a refresh's journal unless the refresh finished.
struct JournalGuard<'a>(&'a RepoIndex);

impl Drop for JournalGuard<'_> {
    fn drop(&mut self) {
        // After `finish` the journal is already gone; otherwise stop
        // recording for an abandoned refresh.
        self.0.write().journal = None;
    }
}

impl Registry {
    /// The in-memory repository index (for tests and the listing paths).
    pub fn repo_index(&self) -> &RepoIndex {
        &self.repo_index
    }

    /// Rebuilds the repository index from storage: one walk of the
    /// repositories (stopping past `catalog.indexlimit`), then the writes
    /// this process made meanwhile. Other replicas' writes show after this.
    pub async fn refresh_repo_index(&self) -> RegistryResult<RefreshOutcome> {
        let index = &*self.repo_index;
        let _one = index.refreshing.lock().await;
        let _journal = index.begin();
        let page = self
            .walk_repositories(None, Some(index.limit), |_| true)
            .await?;
        Ok(index.finish(page.items, page.more))
    }

    /// After manifests of `name` were removed: drops it from the index when
    /// no manifest revision is left (it is then no longer listed).
    pub(crate) async fn recheck_listed(&self, name: &str) -> RegistryResult<()> {
        let dir = format!(
            "{}/{name}/_manifests",
            crate::storage::paths::StoragePath::RepositoriesRoot.to_key()
        );
        if !self.has_revisions(&dir).await? {
            self.repo_index.note(name, false);
        }
        Ok(())
    }
}

/// Refreshes `registry`'s repository index now and then every `interval`
/// until shutdown. Runs in read-only mode too (it only reads).
pub fn spawn_refresh(
    registry: Registry,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = registry.refresh_repo_index() => match r {
                    Ok(outcome) => tracing::debug!(?outcome, "repository index refreshed"),
                    Err(e) => tracing::warn!(error = %e, "repository index refresh failed; retrying next interval"),
                },
                _ = shutdown.changed() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{RefreshOutcome, RepoIndex};

    fn ready(names: &[&str]) -> RepoIndex {
        let idx = RepoIndex::new(10);
        let g = idx.begin();
        let out = idx.finish(names.iter().map(|s| s.to_string()).collect(), false);
        drop(g);
        assert_eq!(out, RefreshOutcome::Ready(names.len()));
        idx
    }

    #[test]
    fn pages_in_catalog_order_with_filtering() {
        let idx = ready(&["b", "a-b", "a/b/c", "a", "ab", "a/b"]);
        let all = idx.page(None, None, |_| true).unwrap();
        assert_eq!(all.items, ["a", "a/b", "a/b/c", "a-b", "ab", "b"]);
        let p = idx.page(Some("a/b"), Some(2), |_| true).unwrap();
        assert_eq!(
            (p.items, p.more),
            (vec!["a/b/c".into(), "a-b".into()], true)
        );
        // `last` need not exist.
        let p = idx.page(Some("a/a"), Some(1), |_| true).unwrap();
        assert_eq!(p.items, ["a/b"]);
        let p = idx.page(None, Some(1), |n| n.starts_with("a")).unwrap();
        assert_eq!((p.items, p.more), (vec!["a".into()], true));
        let p = idx.page(Some("ab"), Some(5), |n| n != "b").unwrap();
        assert_eq!((p.items, p.more), (vec![], false));
        let (total, page) = idx.search("b", 1, 2, |n| n != "ab").unwrap();
        assert_eq!((total, page), (4, vec!["a/b".into(), "a/b/c".into()]));
    }

    #[test]
    fn writes_during_a_refresh_are_replayed() {
        let idx = RepoIndex::new(10);
        assert!(idx.page(None, None, |_| true).is_none());
        idx.note("ignored", true);
        let g = idx.begin();
        idx.note("new", true);
        idx.note("gone", false);
        let out = idx.finish(vec!["gone".into(), "old".into()], false);
        drop(g);
        assert_eq!(out, RefreshOutcome::Ready(2));
        assert_eq!(
            idx.page(None, None, |_| true).unwrap().items,
            ["new", "old"]
        );
        // After the refresh, notes apply directly and are not journaled.
        idx.note("x", true);
        idx.note("old", false);
        assert_eq!(idx.page(None, None, |_| true).unwrap().items, ["new", "x"]);
        assert!(idx.read().journal.is_none());
    }

    #[test]
    fn the_bound_turns_the_index_off() {
        let idx = RepoIndex::new(2);
        let g = idx.begin();
        assert_eq!(
            idx.finish(vec!["a".into(), "b".into()], true),
            RefreshOutcome::TooLarge
        );
        drop(g);
        assert!(idx.page(None, None, |_| true).is_none());
        let idx = ready(&[]);
        let idx2 = RepoIndex::new(1);
        let g = idx2.begin();
        idx2.finish(vec!["a".into()], false);
        drop(g);
        idx2.note("b", true);
        assert!(!idx2.is_ready());
        idx.note("a", true);
        assert!(idx.is_ready());
    }
}
