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
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::oci::digest::Digest;

/// Most digests remembered exactly (about 4 MiB). At this many a touch first
/// drops the expired ones; if that frees nothing, the entries are folded
/// into the [`Sketch`] and the map starts empty.
const EXACT_MAX: usize = 32_768;

/// Slots of the sketch (4 bytes each: 2 MiB).
const SKETCH_SLOTS: usize = 1 << 19;

/// Slots per digest.
const SKETCH_HASHES: [u8; 3] = [0, 1, 2];

/// The overflow of the exact map, for a registry touching more distinct
/// digests within the grace period than [`EXACT_MAX`] (a busy registry with
/// the default 1 h grace period): each digest sets three slots to the
/// second of its touch (keeping the later time). A digest is recent when
/// all its slots are, so the sketch never forgets a touch within the
/// retention; a digest it never saw may look recent because others share
/// its slots, and is then only kept until a later run. Fixed size.
struct Sketch {
    /// Seconds since `epoch` of the last touch per slot; 0: never.
    slots: Vec<u32>,
    /// The latest time stored, to drop the sketch once all is expired.
    newest: u32,
}

fn slot(digest: &Digest, seed: u8) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    digest.hash(&mut h);
    (h.finish() as usize) % SKETCH_SLOTS
}

impl Sketch {
    fn new() -> Self {
        Sketch {
            slots: vec![0; SKETCH_SLOTS],
            newest: 0,
        }
    }

    fn set(&mut self, digest: &Digest, secs: u32) {
        for seed in SKETCH_HASHES {
            let s = &mut self.slots[slot(digest, seed)];
            *s = (*s).max(secs);
        }
        self.newest = self.newest.max(secs);
    }

    /// All its slots set within `retention` of `now` (whole seconds, rounded
    /// towards "recent").
    fn is_recent(&self, digest: &Digest, now: u32, retention: Duration) -> bool {
        let keep = u32::try_from(retention.as_secs()).unwrap_or(u32::MAX);
        SKETCH_HASHES.iter().all(|seed| {
            let t = self.slots[slot(digest, *seed)];
            t != 0 && u64::from(t) + u64::from(keep) + 1 >= u64::from(now)
        })
    }
}

/// Digests touched in the last `retention`, with the time of the last touch.
/// Disabled (retention zero, nothing recorded) until online GC enables it.
#[derive(Default)]
pub struct RecentDigests {
    inner: Mutex<State>,
    /// Mirrors `retention > 0`, so requests skip the lock while online GC is
    /// off (the common case, and the hot path of every pull).
    recording: AtomicBool,
}

struct State {
    retention: Duration,
    seen: HashMap<Digest, Instant>,
    /// Where the exact map overflowed to, while any of it is recent.
    sketch: Option<Sketch>,
    /// Time zero of the sketch's seconds.
    epoch: Instant,
}

impl Default for State {
    fn default() -> Self {
        State {
            retention: Duration::ZERO,
            seen: HashMap::new(),
            sketch: None,
            epoch: Instant::now(),
        }
    }
}

impl State {
    /// Whole seconds since the epoch, rounded up (a touch then looks a
    /// little more recent than it was, never less).
    fn secs(&self, t: Instant) -> u32 {
        let d = t.saturating_duration_since(self.epoch);
        let s = d.as_secs() + u64::from(d.subsec_nanos() > 0) + 1;
        u32::try_from(s).unwrap_or(u32::MAX)
    }

    fn is_recent(&self, digest: &Digest, now: Instant) -> bool {
        let exact = self
            .seen
            .get(digest)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.retention);
        exact
            || self
                .sketch
                .as_ref()
                .is_some_and(|s| s.is_recent(digest, self.secs(now), self.retention))
    }

    fn prune(&mut self, now: Instant) {
        let retention = self.retention;
        self.seen
            .retain(|_, t| now.saturating_duration_since(*t) < retention);
        // A burst's table stays allocated after its entries expire: give
        // it back once mostly empty.
        if self.seen.capacity() > 1024 && self.seen.len() < self.seen.capacity() / 4 {
            self.seen.shrink_to(self.seen.len() * 2);
        }
        let keep = u32::try_from(retention.as_secs()).unwrap_or(u32::MAX);
        let now_s = self.secs(now);
        if self
            .sketch
            .as_ref()
            .is_some_and(|s| u64::from(s.newest) + u64::from(keep) + 1 < u64::from(now_s))
        {
            self.sketch = None;
        }
    }

    /// Makes room in the exact map: expired entries go; if none were, every
    /// entry moves to the sketch.
    fn make_room(&mut self, now: Instant) {
        self.prune(now);
        if self.seen.len() < EXACT_MAX {
            return;
        }
        let seen = std::mem::take(&mut self.seen);
        let times: Vec<(Digest, u32)> = seen.into_iter().map(|(d, t)| (d, self.secs(t))).collect();
        let sketch = self.sketch.get_or_insert_with(Sketch::new);
        for (d, t) in &times {
            sketch.set(d, *t);
        }
        tracing::debug!(
            folded = times.len(),
            "more digests used within the grace period than the tracker holds exactly; the rest is kept approximately"
        );
    }

    /// Bytes of heap held (for the bound's test).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.seen.capacity() * (std::mem::size_of::<(Digest, Instant)>() + 72 + 1)
            + self.sketch.as_ref().map_or(0, |s| s.slots.capacity() * 4)
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
            st.seen = HashMap::new();
            st.sketch = None;
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
        if st.seen.len() >= EXACT_MAX && !st.seen.contains_key(digest) {
            st.make_room(now);
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

    /// [`Self::delete_unless_recent`] for many digests under one hold of
    /// the lock: the deletes of those not recent run concurrently (a sweep
    /// under load otherwise waits behind every request's touch once per
    /// blob). Returns, per digest in order, `None` when skipped.
    pub async fn delete_many_unless_recent<F, Fut, T>(
        &self,
        digests: &[Digest],
        delete: F,
    ) -> Vec<Option<T>>
    where
        F: Fn(&Digest) -> Fut,
        Fut: Future<Output = T>,
    {
        let st = self.inner.lock().await;
        let now = Instant::now();
        let runs = digests.iter().map(|d| {
            let go = (!st.is_recent(d, now)).then(|| delete(d));
            async move {
                match go {
                    Some(f) => Some(f.await),
                    None => None,
                }
            }
        });
        let out = futures::future::join_all(runs).await;
        drop(st);
        out
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
        let many = r
            .delete_many_unless_recent(&[d.clone(), e.clone()], |x| {
                let x = x.clone();
                async move { x }
            })
            .await;
        assert_eq!(many, vec![None, Some(e)]);
    }

    /// Past `EXACT_MAX` digests within the retention the tracker stays
    /// within its bound and still remembers every touched digest.
    #[tokio::test]
    async fn overflow_is_bounded_and_forgets_no_touch() {
        let r = RecentDigests::default();
        r.set_retention(Duration::from_secs(3600)).await;
        let n = EXACT_MAX * 3;
        let d = |i: usize| Digest::sha256_of(&i.to_le_bytes());
        for i in 0..n {
            r.touch(&d(i)).await;
        }
        for i in (0..n).step_by(97) {
            assert!(r.is_recent(&d(i)).await, "{i} touched");
        }
        let st = r.inner.lock().await;
        assert!(st.seen.len() <= EXACT_MAX);
        let bytes = st.heap_bytes();
        assert!(bytes < 12 << 20, "{bytes} bytes");
        // Some never-touched digests look recent (shared slots), not most.
        let now = Instant::now();
        let false_hits = (n..n + 1000).filter(|i| st.is_recent(&d(*i), now)).count();
        assert!(false_hits < 100, "{false_hits} of 1000");
    }
}
