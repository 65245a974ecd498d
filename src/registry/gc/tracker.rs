//! In-process record of digests the registry touched recently, shared by the
//! request path and the online collector of the same process.
//!
//! The request path calls [`RecentDigests::touch`] *before* it checks that a
//! blob or manifest exists (and when it writes a link to one); the collector
//! calls [`RecentDigests::delete_unless_recent`], which checks and deletes
//! while holding the same lock. Whichever comes first wins cleanly: either
//! the collector sees the touch and keeps the digest, or the delete is done
//! before the request's existence check, which then reports the blob unknown
//! (the client uploads it again). A request can never see a blob that is
//! deleted after it checked.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::oci::digest::Digest;

/// Above this many entries, a touch first drops the expired ones.
const PRUNE_AT: usize = 100_000;

/// Digests touched in the last `retention`, with the time of the last touch.
/// Disabled (retention zero, nothing recorded) until online GC enables it.
#[derive(Default)]
pub struct RecentDigests {
    inner: Mutex<State>,
    /// Mirrors `retention > 0`, so requests skip the lock while online GC is
    /// off (the common case, and the hot path of every pull).
    recording: AtomicBool,
}

#[derive(Default)]
struct State {
    retention: Duration,
    seen: HashMap<Digest, Instant>,
}

impl State {
    fn is_recent(&self, digest: &Digest, now: Instant) -> bool {
        self.seen
            .get(digest)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.retention)
    }

    fn prune(&mut self, now: Instant) {
        let retention = self.retention;
        self.seen
            .retain(|_, t| now.saturating_duration_since(*t) < retention);
    }
}

impl RecentDigests {
    /// Starts recording, keeping each touch for `retention` (the grace
    /// period). Zero turns recording off again.
    pub async fn set_retention(&self, retention: Duration) {
        let mut st = self.inner.lock().await;
        st.retention = retention;
        self.recording
            .store(!retention.is_zero(), AtomicOrdering::SeqCst);
        if retention.is_zero() {
            st.seen.clear();
        }
    }

    /// Records that a request is about to rely on `digest` (check it exists,
    /// link it, reference it). Waits while a collector deletes it.
    pub async fn touch(&self, digest: &Digest) {
        if !self.recording.load(AtomicOrdering::SeqCst) {
            return;
        }
        let mut st = self.inner.lock().await;
        if st.retention.is_zero() {
            return;
        }
        let now = Instant::now();
        if st.seen.len() >= PRUNE_AT {
            st.prune(now);
        }
        st.seen.insert(digest.clone(), now);
    }

    /// True when `digest` was touched within the retention.
    pub async fn is_recent(&self, digest: &Digest) -> bool {
        self.inner.lock().await.is_recent(digest, Instant::now())
    }

    /// Runs `delete` unless `digest` was touched within the retention,
    /// holding the lock so that no touch interleaves with the check and the
    /// delete. Returns `None` when skipped, else what `delete` returned.
    pub async fn delete_unless_recent<F, T>(&self, digest: &Digest, delete: F) -> Option<T>
    where
        F: Future<Output = T>,
    {
        let st = self.inner.lock().await;
        if st.is_recent(digest, Instant::now()) {
            return None;
        }
        let out = delete.await;
        drop(st);
        Some(out)
    }

    /// Drops expired entries (called once per collection run).
    pub async fn prune(&self) {
        self.inner.lock().await.prune(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disabled_records_nothing() {
        let r = RecentDigests::default();
        let d = Digest::sha256_of(b"a");
        r.touch(&d).await;
        assert!(!r.is_recent(&d).await);
        assert_eq!(r.delete_unless_recent(&d, async { 1 }).await, Some(1));
    }

    #[tokio::test]
    async fn touched_digests_are_not_deleted() {
        let r = RecentDigests::default();
        r.set_retention(Duration::from_secs(3600)).await;
        let d = Digest::sha256_of(b"a");
        let e = Digest::sha256_of(b"b");
        r.touch(&d).await;
        assert!(r.is_recent(&d).await);
        assert_eq!(r.delete_unless_recent(&d, async { 1 }).await, None);
        assert_eq!(r.delete_unless_recent(&e, async { 2 }).await, Some(2));
    }
}
