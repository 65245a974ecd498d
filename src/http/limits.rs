//! `limits.uploads` and `limits.uploadsperclient`: blob upload requests
//! served at once, in total and per client address. A request past either
//! bound is answered 429 `TOOMANYREQUESTS` with `Retry-After` before its
//! body is read, so one client streaming many uploads cannot take every
//! upload slot (or the storage bandwidth) from the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderValue};

use super::upload_pace::UploadPacer;
use crate::config::limits::LimitsConfig;
use crate::error::{ApiError, ErrorCode};

/// `Retry-After` (seconds) when the in-flight upload limits are reached:
/// slots free as soon as a running upload request ends.
pub const UPLOADS_RETRY_AFTER: u64 = 1;

/// `Retry-After` (seconds) when a repository has too many upload
/// sessions: they free only when a client finishes or cancels one, or the
/// purger removes abandoned ones.
pub const SESSIONS_RETRY_AFTER: u64 = 60;

/// The counters of upload requests in progress. The per-client map holds
/// only addresses with a request in progress, so it is bounded by
/// `limits.uploads` (or by the connection caps when that is zero).
pub struct UploadLimiter {
    total_limit: usize,
    per_client_limit: usize,
    counts: Mutex<Counts>,
    /// `limits.uploadrateperclient`: who is present, and the upload pace.
    pub pacer: Arc<UploadPacer>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<Option<IpAddr>, usize>,
}

/// One admitted upload request; its slot is given back when dropped.
pub struct UploadSlot {
    limiter: Arc<UploadLimiter>,
    client: Option<IpAddr>,
}

impl UploadLimiter {
    /// From the `limits:` section (zero turns a limit off).
    pub fn new(limits: &LimitsConfig) -> Arc<Self> {
        Arc::new(UploadLimiter {
            total_limit: limits.uploads,
            per_client_limit: limits.uploadsperclient,
            counts: Mutex::new(Counts::default()),
            pacer: UploadPacer::new(limits.uploadrateperclient),
        })
    }

    /// Admits one upload request from `client` (None when the address is
    /// unknown: those share one count), or refuses it with the 429 to send.
    pub fn acquire(self: &Arc<Self>, client: Option<IpAddr>) -> Result<UploadSlot, ApiError> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.total_limit > 0 && counts.total >= self.total_limit {
            return Err(too_many(
                format!(
                    "too many uploads in progress on this registry (limits.uploads: {}); retry later",
                    self.total_limit
                ),
                UPLOADS_RETRY_AFTER,
            ));
        }
        let mine = counts.by_client.get(&client).copied().unwrap_or(0);
        if self.per_client_limit > 0 && mine >= self.per_client_limit {
            return Err(too_many(
                format!(
                    "too many uploads in progress from this address (limits.uploadsperclient: {}); retry later",
                    self.per_client_limit
                ),
                UPLOADS_RETRY_AFTER,
            ));
        }
        counts.total += 1;
        counts.by_client.insert(client, mine + 1);
        Ok(UploadSlot {
            limiter: self.clone(),
            client,
        })
    }

    /// Upload requests in progress (all clients).
    pub fn in_flight(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .total
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_client.remove(&self.client);
            }
        }
    }
}

/// 429 `TOOMANYREQUESTS` with `Retry-After: secs`, in the spec's format.
pub(crate) fn too_many(message: String, secs: u64) -> ApiError {
    let mut e = ApiError::new(ErrorCode::TooManyRequests).message(message);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        e = e.header(header::RETRY_AFTER, v);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(uploads: usize, per_client: usize) -> Arc<UploadLimiter> {
        UploadLimiter::new(&LimitsConfig {
            uploads,
            uploadsperclient: per_client,
            ..LimitsConfig::default()
        })
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn per_client_limit_leaves_other_clients_their_slots() {
        let l = limiter(10, 2);
        let a1 = l.acquire(ip(1)).ok();
        let a2 = l.acquire(ip(1)).ok();
        assert!(a1.is_some() && a2.is_some());
        let Err(refused) = l.acquire(ip(1)) else {
            panic!("a third upload from one address must be refused");
        };
        let resp = axum::response::IntoResponse::into_response(refused);
        assert_eq!(resp.status(), 429);
        assert_eq!(
            resp.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert!(l.acquire(ip(2)).is_ok(), "another address is unaffected");
        drop(a1);
        assert!(l.acquire(ip(1)).is_ok(), "a freed slot is reusable");
    }

    #[test]
    fn total_limit_counts_every_client_and_slots_come_back() {
        let l = limiter(2, 0);
        let s1 = l.acquire(ip(1)).ok();
        let s2 = l.acquire(ip(2)).ok();
        assert!(s1.is_some() && s2.is_some());
        assert!(l.acquire(ip(3)).is_err());
        assert_eq!(l.in_flight(), 2);
        drop((s1, s2));
        assert_eq!(l.in_flight(), 0);
        assert!(l
            .counts
            .lock()
            .map(|c| c.by_client.is_empty())
            .unwrap_or(false));
        assert!(l.acquire(ip(3)).is_ok());
    }

    #[test]
    fn zero_turns_the_limits_off() {
        let l = limiter(0, 0);
        let slots: Vec<_> = (0..1000).filter_map(|_| l.acquire(ip(1)).ok()).collect();
        assert_eq!(slots.len(), 1000);
    }
}
