//! A bounded cache of large directory listings (a namespace's repositories, a
//! repository's tags), so paging through them does not re-read thousands of
//! entries per page.
//!
//! A cached listing is served only while the directory's `(dev, inode, mtime,
//! ctime)` are exactly those stat returned just before it was read, and only
//! when that read happened at least `margin` after the directory last changed
//! (git's "racy timestamp" rule). The argument that it is never stale, and
//! its limits, are in docs/performance.md ("Listings").

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::dir::Names;

/// Heap bytes the process-wide cache may hold: ~100,000 short names.
const BUDGET: usize = 2 << 20;

/// How long after a directory's last change a listing of it can be trusted:
/// above the timestamp granularity of the filesystems a registry runs on
/// (a clock tick on ext4/xfs/btrfs, 1 s on ext3, 2 s on FAT would need more)
/// plus the clock skew between hosts sharing a network filesystem.
const MARGIN: Duration = Duration::from_secs(2);

/// Directories with fewer entries are not cached: reading them costs about
/// the stat that validates a cached listing.
const MIN_ENTRIES: usize = 64;

/// Bookkeeping bytes counted per entry besides its names and path.
const ENTRY_OVERHEAD: usize = 128;

static SHARED: LazyLock<ListCache> = LazyLock::new(|| ListCache::new(BUDGET, MARGIN, MIN_ENTRIES));

/// The process-wide cache. One for all driver instances, so the memory bound
/// holds per process; sharing is safe because validity depends only on the
/// directory itself, never on who wrote to it.
pub(super) fn shared() -> &'static ListCache {
    &SHARED
}

/// What identifies one state of a directory: any entry added, removed or
/// renamed updates mtime and ctime; `utimes` can set mtime back but also
/// sets ctime to now; a directory deleted and recreated (even on a reused
/// inode) gets new times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    /// The stamp of a directory's metadata (from `stat`, following links).
    pub(super) fn of(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: ns(meta.mtime(), meta.mtime_nsec()),
            ctime: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// True when a listing read after `started` (a time taken before the
    /// stat) may be trusted: the directory's last change is at least
    /// `margin` older, so any later change gets a different timestamp.
    /// Timestamps in the future, or a clock before 1970, are never trusted.
    fn settled(&self, started: SystemTime, margin: Duration) -> bool {
        let Ok(since_epoch) = started.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let now = i128::try_from(since_epoch.as_nanos()).unwrap_or(i128::MAX);
        let margin = i128::try_from(margin.as_nanos()).unwrap_or(i128::MAX);
        self.mtime.max(self.ctime).saturating_add(margin) <= now
    }
}

/// Listings keyed by directory path, each with the stamp it was read under.
#[derive(Debug)]
pub(super) struct ListCache {
    state: Mutex<State>,
    budget: usize,
    margin: Duration,
    min_entries: usize,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<PathBuf, Entry>,
    /// Sum of the entries' costs, never above the budget.
    bytes: usize,
    /// Increments on every use; orders entries for eviction.
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    names: Arc<Names>,
    cost: usize,
    last_used: u64,
}

impl ListCache {
    /// An empty cache holding at most `budget` bytes of listings of
    /// directories with `min_entries` or more, read `margin` or more after
    /// their last change.
    pub(super) fn new(budget: usize, margin: Duration, min_entries: usize) -> Self {
        Self {
            state: Mutex::default(),
            budget,
            margin,
            min_entries,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock: a poisoned state is whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The listing of `dir` if it was read under exactly `stamp` (the stat
    /// the caller just took). A listing under another stamp is dropped.
    pub(super) fn get(&self, dir: &Path, stamp: Stamp) -> Option<Arc<Names>> {
        let mut st = self.lock();
        st.clock += 1;
        let clock = st.clock;
        match st.entries.get_mut(dir) {
            Some(e) if e.stamp == stamp => {
                e.last_used = clock;
                Some(e.names.clone())
            }
            Some(_) => {
                st.remove(dir);
                None
            }
            None => None,
        }
    }

    /// Remembers the listing of `dir`, read after `started` under `stamp`
    /// (stat taken after `started`, before the read). Small, oversized and
    /// not yet settled listings are not kept.
    pub(super) fn insert(
        &self,
        dir: PathBuf,
        stamp: Stamp,
        started: SystemTime,
        names: Arc<Names>,
    ) {
        let cost = names.heap_bytes() + dir.as_os_str().len() + ENTRY_OVERHEAD;
        let keep = names.len() >= self.min_entries
            && cost <= self.budget
            && stamp.settled(started, self.margin);
        let mut st = self.lock();
        st.remove(&dir);
        if !keep {
            return;
        }
        while st.bytes + cost > self.budget && st.evict_oldest() {}
        st.clock += 1;
        let last_used = st.clock;
        st.bytes += cost;
        st.entries.insert(
            dir,
            Entry {
                stamp,
                names,
                cost,
                last_used,
            },
        );
    }

    /// Bytes currently held (for tests of the bound).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl State {
    fn remove(&mut self, dir: &Path) {
        if let Some(e) = self.entries.remove(dir) {
            self.bytes -= e.cost;
        }
    }

    /// Drops the least recently used entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last_used)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                self.remove(&k);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::dir::read_sorted;
    use super::*;
    use std::fs;

    /// Lists `dir` the way the driver does: clock, stat, cache or read.
    fn list(cache: &ListCache, dir: &Path) -> (Vec<String>, bool) {
        let started = SystemTime::now();
        let stamp = Stamp::of(&fs::metadata(dir).unwrap());
        if let Some(n) = cache.get(dir, stamp) {
            return (n.iter().map(str::to_owned).collect(), true);
        }
        let names = Arc::new(read_sorted(dir).unwrap());
        cache.insert(dir.to_path_buf(), stamp, started, names.clone());
        (names.iter().map(str::to_owned).collect(), false)
    }

    fn settle(margin: Duration) {
        std::thread::sleep(margin + Duration::from_millis(20));
    }

    const M: Duration = Duration::from_millis(50);

    #[test]
    fn served_only_while_the_directory_is_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cache = ListCache::new(1 << 20, M, 1);
        fs::create_dir(dir.join("a")).unwrap();
        settle(M);
        assert_eq!(list(&cache, dir), (vec!["a".to_string()], false));
        assert_eq!(list(&cache, dir), (vec!["a".to_string()], true));

        // Added, removed, renamed: each is seen at once, never the old listing.
        fs::create_dir(dir.join("b")).unwrap();
        assert_eq!(list(&cache, dir), (vec!["a".into(), "b".into()], false));
        settle(M);
        list(&cache, dir);
        fs::remove_dir(dir.join("a")).unwrap();
        assert_eq!(list(&cache, dir), (vec!["b".to_string()], false));
        settle(M);
        list(&cache, dir);
        fs::rename(dir.join("b"), dir.join("c")).unwrap();
        assert_eq!(list(&cache, dir), (vec!["c".to_string()], false));
    }

    #[test]
    fn a_recreated_directory_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        let cache = ListCache::new(1 << 20, M, 1);
        fs::create_dir_all(dir.join("old")).unwrap();
        settle(M);
        list(&cache, &dir);
        assert!(list(&cache, &dir).1, "settled listing is cached");
        fs::remove_dir_all(&dir).unwrap();
        fs::create_dir_all(dir.join("new")).unwrap();
        assert_eq!(list(&cache, &dir), (vec!["new".to_string()], false));
    }

    #[test]
    fn mtime_set_back_does_not_revive_a_listing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cache = ListCache::new(1 << 20, M, 1);
        fs::create_dir(dir.join("a")).unwrap();
        settle(M);
        list(&cache, dir);
        let mtime = fs::metadata(dir).unwrap().modified().unwrap();
        fs::create_dir(dir.join("b")).unwrap();
        // Put the directory's mtime back (as rsync or `touch -d` would):
        // ctime still moves, so the cached listing is not served.
        fs::File::open(dir).unwrap().set_modified(mtime).unwrap();
        assert_eq!(fs::metadata(dir).unwrap().modified().unwrap(), mtime);
        assert_eq!(list(&cache, dir), (vec!["a".into(), "b".into()], false));
    }

    #[test]
    fn racy_listings_are_not_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cache = ListCache::new(1 << 20, Duration::from_secs(3600), 1);
        fs::create_dir(dir.join("a")).unwrap();
        list(&cache, dir);
        assert!(
            !list(&cache, dir).1,
            "changed within the margin: read again"
        );
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn small_directories_are_not_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cache = ListCache::new(1 << 20, M, 3);
        fs::create_dir(dir.join("a")).unwrap();
        settle(M);
        list(&cache, dir);
        assert!(!list(&cache, dir).1);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..8).map(|i| tmp.path().join(format!("d{i}"))).collect();
        for d in &dirs {
            for j in 0..100 {
                fs::create_dir_all(d.join(format!("tag{j:04}"))).unwrap();
            }
        }
        settle(M);
        let one = {
            let c = ListCache::new(1 << 20, M, 1);
            list(&c, &dirs[0]);
            c.bytes()
        };
        // Room for three listings: the least recently used goes first.
        let cache = ListCache::new(3 * one + one / 2, M, 1);
        for d in &dirs[..3] {
            list(&cache, d);
        }
        assert!(list(&cache, &dirs[0]).1);
        list(&cache, &dirs[3]);
        assert!(cache.bytes() <= 3 * one + one / 2);
        assert!(list(&cache, &dirs[0]).1, "recently used, kept");
        assert!(!list(&cache, &dirs[1]).1, "least recently used, evicted");
        for d in &dirs {
            list(&cache, d);
            assert!(cache.bytes() <= 3 * one + one / 2);
        }
        // A listing larger than the whole budget is never kept.
        let tiny = ListCache::new(one / 2, M, 1);
        list(&tiny, &dirs[0]);
        assert_eq!(tiny.bytes(), 0);
    }
}
