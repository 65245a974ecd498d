//! `limits.uploadrateperclient`: a fair share of the machine for everyone
//! while one address uploads as fast as it can. Admitted uploads are not
//! otherwise bounded in speed; on a small machine four of them streaming
//! at full speed (reading the socket, hashing, writing) took the CPU from
//! another address's pulls (docs/reliability.md, "the flood test").
//!
//! While another client address has a request in progress (other than
//! `GET /v2/`, which `dispatch` does not count), or had one in
//! the last [`RECENT`], the bytes of one address's upload bodies are paced
//! to `limits.uploadrateperclient` bytes per second, all its uploads
//! together: the body is simply read more slowly, so TCP holds the sender
//! back. With no one else around an upload goes at full speed.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// How long after its last request another address still counts as
/// present: a client pulling an image sends its requests one after another,
/// and a blob's body is still streaming after its handler returned.
pub const RECENT: Duration = Duration::from_secs(1);

/// Bytes a paced address may send at once before the pace applies.
const BURST: u64 = 1 << 20;

/// What one refused upload request costs its address's pace, in bytes:
/// a client sending upload requests back to back past its limit spends
/// the server's CPU on 429s (thousands a second) instead of bytes.
const REFUSED_COST: u64 = 64 << 10;

/// Longest a 429 is held back: no longer than its `Retry-After`.
const MAX_REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// Most addresses whose pace debt is remembered; past it the paid-up ones
/// are dropped, and if none is, a new address goes unpaced until one is.
const MAX_DEBTORS: usize = 4096;

/// Who is talking to the server, and how far ahead of its pace each
/// uploading address is. One per server.
pub struct UploadPacer {
    rate: u64,
    state: Mutex<Traffic>,
}

#[derive(Default)]
struct Traffic {
    /// Requests in progress per address (only addresses with one).
    in_flight: HashMap<Option<IpAddr>, usize>,
    total: usize,
    /// The two most recent distinct addresses to start or end a request:
    /// enough to tell whether any address other than a given one was seen
    /// within [`RECENT`].
    recent: [Option<(Option<IpAddr>, Instant)>; 2],
    /// When each paced address's bytes so far will have been paid for.
    ready_at: HashMap<Option<IpAddr>, Instant>,
}

impl Traffic {
    fn touch(&mut self, client: Option<IpAddr>, now: Instant) {
        match self.recent[0] {
            Some((c, _)) if c == client => self.recent[0] = Some((client, now)),
            _ => self.recent = [Some((client, now)), self.recent[0]],
        }
    }

    /// Whether an address other than `client` is in progress or recent.
    fn others(&self, client: Option<IpAddr>, now: Instant) -> bool {
        let mine = self.in_flight.get(&client).copied().unwrap_or(0);
        self.total > mine
            || self
                .recent
                .iter()
                .flatten()
                .any(|(c, t)| *c != client && now.saturating_duration_since(*t) < RECENT)
    }
}

/// One request in progress; counted until dropped.
pub struct Presence {
    pacer: Arc<UploadPacer>,
    client: Option<IpAddr>,
}

impl UploadPacer {
    /// Paces at `rate` bytes per second per address (0: never).
    pub fn new(rate: u64) -> Arc<Self> {
        Arc::new(UploadPacer {
            rate,
            state: Mutex::new(Traffic::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Traffic> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request from `client` until the returned guard drops.
    pub fn enter(self: &Arc<Self>, client: Option<IpAddr>) -> Presence {
        let mut t = self.lock();
        *t.in_flight.entry(client).or_insert(0) += 1;
        t.total += 1;
        t.touch(client, Instant::now());
        Presence {
            pacer: self.clone(),
            client,
        }
    }

    /// Records `bytes` of upload body from `client`; returns how long to
    /// wait before reading more of it (zero when unpaced).
    pub fn charge(&self, client: Option<IpAddr>, bytes: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let mut t = self.lock();
        if !t.others(client, now) {
            t.ready_at.remove(&client);
            return Duration::ZERO;
        }
        if !t.ready_at.contains_key(&client) && t.ready_at.len() >= MAX_DEBTORS {
            t.ready_at.retain(|_, at| *at > now);
            if t.ready_at.len() >= MAX_DEBTORS {
                return Duration::ZERO;
            }
        }
        let burst = Duration::from_secs_f64(BURST as f64 / self.rate as f64);
        // `Instant - Duration` panics below the clock's origin.
        let floor = now.checked_sub(burst).unwrap_or(now);
        let from = t
            .ready_at
            .get(&client)
            .copied()
            .map_or(floor, |at| at.max(floor));
        let at = from + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        t.ready_at.insert(client, at);
        at.saturating_duration_since(now)
    }

    /// Before a 429 for an upload request past `client`'s limits: waits
    /// as long as the address's pace asks (at most [`MAX_REFUSAL_WAIT`]),
    /// counting the refusal as [`REFUSED_COST`] bytes, so a flood of
    /// refused requests is slowed like a flood of bytes. Unpaced (no other
    /// address present), it returns at once.
    pub async fn refused(&self, client: Option<IpAddr>) {
        let now = Instant::now();
        let delay = self.charge(client, REFUSED_COST, now).min(MAX_REFUSAL_WAIT);
        if !delay.is_zero() {
            tokio::time::sleep_until(now + delay).await;
        }
    }

    /// Wraps an upload request's body so that reading it follows `client`'s
    /// pace.
    pub fn pace(self: &Arc<Self>, client: Option<IpAddr>, body: Body) -> Body {
        if self.rate == 0 {
            return body;
        }
        Body::new(Paced {
            inner: body,
            pacer: self.clone(),
            client,
            wait: None,
        })
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        let mut t = self.pacer.lock();
        if let Some(n) = t.in_flight.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.in_flight.remove(&self.client);
            }
        }
        t.total = t.total.saturating_sub(1);
        t.touch(self.client, Instant::now());
    }
}

/// An upload body read at its address's pace: each data frame is passed
/// on at once and the next one is read after the frame's time is paid.
struct Paced {
    inner: Body,
    pacer: Arc<UploadPacer>,
    client: Option<IpAddr>,
    wait: Option<Pin<Box<Sleep>>>,
}

impl hyper::body::Body for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(w) = self.wait.as_mut() {
            if w.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let now = Instant::now();
                let delay = self.pacer.charge(self.client, data.len() as u64, now);
                if !delay.is_zero() {
                    self.wait = Some(Box::pin(tokio::time::sleep_until(now + delay)));
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[tokio::test(start_paused = true)]
    async fn alone_an_upload_is_never_paced() {
        let p = UploadPacer::new(1 << 20);
        let _mine = p.enter(ip(1));
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(p.charge(ip(1), 8 << 20, now), Duration::ZERO);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn with_another_address_present_the_uploader_gets_its_rate() {
        let p = UploadPacer::new(1 << 20);
        let _mine = p.enter(ip(1));
        let other = p.enter(ip(2));
        let now = Instant::now();
        // The burst is free, then every MiB costs a second, shared by all
        // of the address's uploads.
        assert_eq!(p.charge(ip(1), 1 << 20, now), Duration::ZERO);
        assert_eq!(p.charge(ip(1), 1 << 20, now), Duration::from_secs(1));
        assert_eq!(p.charge(ip(1), 2 << 20, now), Duration::from_secs(3));
        // The other address is not paced by the first one's debt.
        assert_eq!(p.charge(ip(2), 1 << 20, now), Duration::ZERO);
        // Once the other address has been gone for RECENT, the pace lifts.
        drop(other);
        tokio::time::advance(RECENT).await;
        assert_eq!(p.charge(ip(1), 8 << 20, Instant::now()), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_recent_other_address_still_counts() {
        let p = UploadPacer::new(1 << 20);
        let _mine = p.enter(ip(1));
        drop(p.enter(ip(2)));
        // The uploader's own requests since do not hide the other one.
        drop(p.enter(ip(1)));
        drop(p.enter(ip(1)));
        tokio::time::advance(RECENT / 2).await;
        let now = Instant::now();
        assert_eq!(p.charge(ip(1), 2 << 20, now), Duration::from_secs(1));
        assert!(
            p.lock().in_flight.len() == 1,
            "only addresses in progress are kept"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_body_is_delivered_whole_and_takes_its_time() {
        use http_body_util::BodyExt;
        let p = UploadPacer::new(1 << 20);
        let _mine = p.enter(ip(1));
        let _other = p.enter(ip(2));
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..4u8)
            .map(|i| Ok(Bytes::from(vec![i; 1 << 20])))
            .collect();
        let body = p.pace(ip(1), Body::from_stream(futures::stream::iter(chunks)));
        let start = Instant::now();
        let all = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        assert_eq!(all.len(), 4 << 20);
        assert!(all[(3 << 20)..].iter().all(|b| *b == 3));
        // 1 MiB of burst, then 3 MiB at 1 MiB/s (paused clock: exact).
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_held_back_while_others_are_served() {
        let p = UploadPacer::new(REFUSED_COST);
        let _mine = p.enter(ip(1));
        // Alone: at once, however many.
        let start = Instant::now();
        for _ in 0..100 {
            p.refused(ip(1)).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        // Another address present: each refusal costs a second of the
        // pace (after the burst), and no wait exceeds Retry-After.
        let _other = p.enter(ip(2));
        let start = Instant::now();
        for _ in 0..(BURST / REFUSED_COST + 3) {
            p.refused(ip(1)).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        let before = Instant::now();
        p.charge(ip(1), 100 * REFUSED_COST, before);
        p.refused(ip(1)).await;
        assert_eq!(before.elapsed(), MAX_REFUSAL_WAIT);
    }

    #[test]
    fn zero_turns_pacing_off() {
        let p = UploadPacer::new(0);
        let _a = p.enter(ip(1));
        let _b = p.enter(ip(2));
        assert_eq!(p.charge(ip(1), u64::MAX, Instant::now()), Duration::ZERO);
    }
}
