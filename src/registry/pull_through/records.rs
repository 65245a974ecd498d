//! In-memory records of the cache, each bounded: when each cached tag was
//! last checked upstream (and last warned about), and when each cached
//! manifest's last-pulled file was last written. The last-pulled file
//! (`_manifests/revisions/<alg>/<hex>/lastpulled` in the cache repository,
//! Unix seconds as text) is what the garbage collector reads for `ttl` and
//! `maxsize`; it lives in the revision's directory, so deleting the
//! manifest deletes it too, and distribution ignores it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The last-pulled record's file name inside a manifest revision directory.
pub const LAST_PULLED_FILE: &str = "lastpulled";

/// Entries each record holds at most; when full it is emptied (the cost is
/// one extra upstream `HEAD` per tag, or one extra write per manifest).
const RECORD_LIMIT: usize = 100_000;

/// How often a cached manifest's last-pulled file is rewritten while it is
/// being pulled (the `ttl` is counted in hours or days).
pub(super) const PULL_RECORD_INTERVAL: Duration = Duration::from_secs(600);

/// Least time between two "upstream unavailable" warnings for one tag when
/// it is revalidated on every request.
const MIN_WARN_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
struct TagCheck {
    checked: Option<Instant>,
    warned: Option<Instant>,
}

/// When each `(cache name, tag)` was last confirmed upstream.
#[derive(Default)]
pub(super) struct TagChecks {
    map: Mutex<HashMap<(String, String), TagCheck>>,
}

impl TagChecks {
    /// True when the tag was confirmed less than `interval` ago.
    pub fn fresh(&self, name: &str, tag: &str, interval: Duration) -> bool {
        let Ok(map) = self.map.lock() else {
            return false;
        };
        map.get(&(name.to_string(), tag.to_string()))
            .and_then(|c| c.checked)
            .is_some_and(|t| t.elapsed() < interval)
    }

    /// Records that the upstream confirmed the tag now.
    pub fn mark_checked(&self, name: &str, tag: &str) {
        self.update(name, tag, |c| c.checked = Some(Instant::now()));
    }

    /// True when an "upstream unavailable" warning for the tag is due (at
    /// most one per interval), recording that it is given now.
    pub fn should_warn(&self, name: &str, tag: &str, interval: Duration) -> bool {
        let interval = interval.max(MIN_WARN_INTERVAL);
        let mut due = false;
        self.update(name, tag, |c| {
            due = c.warned.is_none_or(|t| t.elapsed() >= interval);
            if due {
                c.warned = Some(Instant::now());
            }
        });
        due
    }

    fn update(&self, name: &str, tag: &str, f: impl FnOnce(&mut TagCheck)) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        let key = (name.to_string(), tag.to_string());
        if map.len() >= RECORD_LIMIT && !map.contains_key(&key) {
            map.clear();
        }
        let entry = map.entry(key).or_insert(TagCheck {
            checked: None,
            warned: None,
        });
        f(entry);
    }
}

/// When each `(cache name, digest)` last-pulled file was last written.
#[derive(Default)]
pub(super) struct PullRecords {
    map: Mutex<HashMap<(String, String), Instant>>,
}

impl PullRecords {
    /// True when the manifest's last-pulled file should be written now
    /// (never written by this process, or longer ago than
    /// [`PULL_RECORD_INTERVAL`]); records the write as done.
    pub fn due(&self, name: &str, digest: &str) -> bool {
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        let key = (name.to_string(), digest.to_string());
        if let Some(t) = map.get(&key) {
            if t.elapsed() < PULL_RECORD_INTERVAL {
                return false;
            }
        }
        if map.len() >= RECORD_LIMIT && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, Instant::now());
        true
    }
}

/// Keys (`name@reference`) locked while one request asks the upstream about
/// them, so concurrent misses of one manifest or tag make one upstream call:
/// the others wait, then find the answer stored (or the tag just checked).
#[derive(Default)]
pub(super) struct KeyLocks {
    map: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

/// A held key; the map entry goes when the last holder or waiter is done.
pub(super) struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits for `key`; `None` (no coalescing, never blocking) when
    /// [`RECORD_LIMIT`] keys are locked at once.
    pub async fn lock(&self, key: String) -> Option<KeyGuard<'_>> {
        let lock = {
            let mut map = self.map.lock().ok()?;
            if map.len() >= RECORD_LIMIT && !map.contains_key(&key) {
                return None;
            }
            map.entry(key.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        Some(KeyGuard {
            locks: self,
            key,
            lock,
            guard: Some(guard),
        })
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        if let Ok(mut map) = self.locks.map.lock() {
            // The map's handle and ours: nobody else waits for the key.
            if std::sync::Arc::strong_count(&self.lock) <= 2 {
                map.remove(&self.key);
            }
        }
    }
}
