//! The cap on open connections (`http.maxconnections`, in total, and
//! `http.maxconnectionsperclient`, per client address), shared by the plain
//! and the TLS listener: past it a new connection is closed at once, so a
//! flood of idle sockets cannot use up every file descriptor and lock other
//! clients out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Counts open connections; hands out a [`ConnPermit`] per accepted one.
#[derive(Debug)]
pub struct ConnLimiter {
    max_total: usize,
    max_per_client: usize,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
    last_warning: Option<Instant>,
    refused_since_warning: u64,
}

/// How often a refusal is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(1);

impl ConnLimiter {
    /// A limiter with the given caps; zero means no cap.
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            max_total,
            max_per_client,
            state: Mutex::new(Counts::default()),
        })
    }

    /// A permit for one more connection from `client`, or `None` (logged,
    /// at most once a second) when a cap is reached.
    pub fn try_acquire(self: &Arc<Self>, client: IpAddr) -> Option<ConnPermit> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let from_client = s.per_client.get(&client).copied().unwrap_or(0);
        let total_full = self.max_total != 0 && s.total >= self.max_total;
        let client_full = self.max_per_client != 0 && from_client >= self.max_per_client;
        if total_full || client_full {
            s.refused_since_warning += 1;
            let now = Instant::now();
            if s.last_warning
                .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
            {
                let which = if total_full {
                    format!("http.maxconnections ({})", self.max_total)
                } else {
                    format!("http.maxconnectionsperclient ({})", self.max_per_client)
                };
                tracing::warn!(
                    "connection limit {which} reached: closed {} new connection(s) in the \
                     last second (latest from {client})",
                    s.refused_since_warning
                );
                s.last_warning = Some(now);
                s.refused_since_warning = 0;
            }
            return None;
        }
        s.total += 1;
        *s.per_client.entry(client).or_insert(0) += 1;
        Some(ConnPermit {
            limiter: self.clone(),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One open connection's place under the caps; given back on drop.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    client: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut s = self
            .limiter
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_client_and_gives_back_on_drop() {
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let limiter = ConnLimiter::new(3, 2);
        let a1 = limiter.try_acquire(a);
        let a2 = limiter.try_acquire(a);
        assert!(a1.is_some() && a2.is_some());
        assert!(limiter.try_acquire(a).is_none(), "per-client cap");
        let b1 = limiter.try_acquire(b);
        assert!(b1.is_some());
        assert!(limiter.try_acquire(b).is_none(), "total cap");
        assert_eq!(limiter.open(), 3);
        drop(a1);
        assert!(limiter.try_acquire(b).is_some(), "a place came free");
        assert_eq!(limiter.open(), 2, "the temporary permit was dropped");

        let unlimited = ConnLimiter::new(0, 0);
        let held: Vec<_> = (0..100).filter_map(|_| unlimited.try_acquire(a)).collect();
        assert_eq!(held.len(), 100);
    }
}
