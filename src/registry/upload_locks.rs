//! One request at a time per upload session. Without it a PUT could verify
//! and move an upload while a PATCH on the same session is still writing:
//! the PATCH's open file would then keep growing the blob after its digest
//! was checked, and two PATCHes could interleave their bytes behind a running
//! hash that matches neither. Held for the whole PATCH, PUT or DELETE.
//!
//! The lock is per process: instances behind a load balancer do not share
//! it (docs/replicas.md says what that leaves).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::oci::name::{RepoName, UploadId};

/// A session's lock and how many requests hold it or wait for it.
type Entry = (Arc<AsyncMutex<()>>, usize);

/// The locks of sessions that some request holds or waits for, each with
/// its number of holders and waiters; an entry goes with the last of them,
/// so the map stays as small as the number of uploads in flight.
#[derive(Default)]
pub(super) struct UploadLocks {
    held: Mutex<HashMap<String, Entry>>,
}

/// Holds a session's lock until dropped. It counts as a user from before
/// the wait, so a request cancelled while waiting also gives its place up.
pub(super) struct UploadGuard<'a> {
    locks: &'a UploadLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

/// The key of upload session `id` of `name` in per-session maps (this
/// lock table, the running hashes).
pub(super) fn session_key(name: &RepoName, id: &UploadId) -> String {
    format!("{name}\n{id}")
}

impl UploadLocks {
    /// Waits until no other request works on upload `id` of `name`.
    pub(super) async fn lock(&self, name: &RepoName, id: &UploadId) -> UploadGuard<'_> {
        let key = session_key(name, id);
        let lock = {
            let mut held = self.map();
            let entry = held.entry(key.clone()).or_default();
            entry.1 += 1;
            Arc::clone(&entry.0)
        };
        let mut me = UploadGuard {
            locks: self,
            key,
            guard: None,
        };
        me.guard = Some(lock.lock_owned().await);
        me
    }

    /// A poisoned map only means a panic elsewhere while it was held; its
    /// entries are still whole (counts change under the lock only).
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sessions with a holder or a waiter (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.map();
        if let Some(entry) = held.get_mut(&self.key) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                held.remove(&self.key);
            }
        }
        // The lock itself is released when `guard` drops, after this.
    }
}

#[cfg(test)]
mod tests {
    use super::UploadLocks;
    use crate::oci::name::{RepoName, UploadId};
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_session_and_entries_go_when_done() {
        let locks = UploadLocks::default();
        let name = "a/b".parse::<RepoName>().expect("name");
        let (one, two) = (UploadId::new_random(), UploadId::new_random());
        let first = locks.lock(&name, &one).await;
        // Another session is not held up.
        let other = tokio::time::timeout(Duration::from_secs(5), locks.lock(&name, &two))
            .await
            .expect("other session free");
        drop(other);
        // The same session waits until the first holder is done.
        let waiter = locks.lock(&name, &one);
        tokio::pin!(waiter);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiter)
                .await
                .is_err(),
            "second holder got in while the first held the lock"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("lock passed on");
        // The waiter's entry survived the first holder's release.
        assert_eq!(locks.len(), 1);
        drop(second);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_no_entry() {
        let locks = UploadLocks::default();
        let name = "a/b".parse::<RepoName>().expect("name");
        let id = UploadId::new_random();
        let first = locks.lock(&name, &id).await;
        // A request dropped while waiting (client gone).
        let gave_up = tokio::time::timeout(Duration::from_millis(20), locks.lock(&name, &id)).await;
        assert!(gave_up.is_err(), "got the lock while it was held");
        assert_eq!(locks.len(), 1);
        drop(first);
        assert_eq!(locks.len(), 0);
        // And the session can be locked again at once.
        let again = tokio::time::timeout(Duration::from_secs(5), locks.lock(&name, &id)).await;
        assert!(again.is_ok());
    }
}
