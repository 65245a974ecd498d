//! Login throttling per client address, so a password cannot be guessed at
//! the speed of the network. In memory, per process: each replica throttles
//! on its own, which still bounds guessing to a small multiple of the limit.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most addresses tracked at once; beyond it expired entries are pruned and
/// then the oldest evicted, so memory stays bounded (~5 MB) under a flood
/// of distinct addresses.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Per-client-address login throttling: after `max_failures` failed logins
/// within `window` (counted from the first failure), further attempts from
/// that address are refused for `window` after the last counted failure; a
/// success clears the address. IPv6 clients are grouped by /64 (one host
/// usually owns a whole /64, so single addresses would be free to rotate);
/// IPv4-mapped IPv6 addresses count as their IPv4 address. Bounded memory.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// First failure of the current window.
    first: Instant,
    failures: u32,
    /// Set once `failures` reached the limit.
    blocked_until: Option<Instant>,
}

impl Entry {
    /// When this entry stops mattering and may be forgotten.
    fn expires(&self, window: Duration) -> Instant {
        self.blocked_until.unwrap_or(self.first + window)
    }
}

/// The key an address is counted under (see [`LoginLimiter`]).
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

impl LoginLimiter {
    /// `max_failures` failed logins per `window` per address; 0 disables
    /// throttling.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, DEFAULT_CAPACITY)
    }

    /// As [`LoginLimiter::new`], tracking at most `capacity` addresses.
    pub fn with_capacity(max_failures: u32, window: Duration, capacity: usize) -> Self {
        LoginLimiter {
            max_failures,
            window,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Ok, or Err(retry_after) when the address is currently blocked.
    /// Call before checking a password, and skip the check when blocked.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let key = key(addr);
        let now = Instant::now();
        let mut map = self.lock();
        let Some(entry) = map.get(&key).copied() else {
            return Ok(());
        };
        if now >= entry.expires(self.window) {
            map.remove(&key);
            return Ok(());
        }
        match entry.blocked_until {
            Some(until) => Err(until - now),
            None => Ok(()),
        }
    }

    /// Counts a failed login from `addr`. Failures while already blocked do
    /// not extend the block (the caller should not have checked a password).
    pub fn record_failure(&self, addr: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        let key = key(addr);
        let now = Instant::now();
        let mut map = self.lock();
        let fresh = Entry {
            first: now,
            failures: 0,
            blocked_until: None,
        };
        let entry = match map.get(&key) {
            Some(e) if now < e.expires(self.window) => *e,
            Some(_) => fresh,
            None => {
                if map.len() >= self.capacity {
                    self.make_room(&mut map, now);
                }
                fresh
            }
        };
        if entry.blocked_until.is_some() {
            return;
        }
        let failures = entry.failures.saturating_add(1);
        let blocked_until = (failures >= self.max_failures).then(|| now + self.window);
        map.insert(
            key,
            Entry {
                first: entry.first,
                failures,
                blocked_until,
            },
        );
    }

    /// A successful login: forgets the address's failures.
    pub fn record_success(&self, addr: IpAddr) {
        self.lock().remove(&key(addr));
    }

    /// How many addresses are tracked (diagnostics and tests).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops expired entries; if that is not enough, evicts the oldest down
    /// to 90% of capacity, so the O(n) work happens once per n/10 inserts.
    fn make_room(&self, map: &mut HashMap<IpAddr, Entry>, now: Instant) {
        map.retain(|_, e| now < e.expires(self.window));
        let target = self.capacity - self.capacity / 10;
        if map.len() <= target {
            return;
        }
        let excess = map.len() - target;
        let mut by_age: Vec<(Instant, IpAddr)> = map.iter().map(|(k, e)| (e.first, *k)).collect();
        if excess < by_age.len() {
            by_age.select_nth_unstable(excess - 1);
        }
        for (_, k) in by_age.iter().take(excess) {
            map.remove(k);
        }
    }
}

impl Default for LoginLimiter {
    /// 10 failures per 60 s.
    fn default() -> Self {
        LoginLimiter::new(10, Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::net::Ipv4Addr;
    use std::thread::sleep;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_after_max_failures_with_sensible_retry_after() {
        let window = Duration::from_secs(60);
        let l = LoginLimiter::new(3, window);
        let a = ip("192.0.2.1");
        for _ in 0..2 {
            assert_eq!(l.check(a), Ok(()));
            l.record_failure(a);
        }
        assert_eq!(l.check(a), Ok(()), "2 of 3 failures: still allowed");
        l.record_failure(a);
        let retry = l.check(a).unwrap_err();
        assert!(
            retry <= window && retry > window - Duration::from_secs(5),
            "{retry:?}"
        );
        // Further failures while blocked do not extend the block.
        l.record_failure(a);
        assert!(l.check(a).unwrap_err() <= retry);
    }

    #[test]
    fn success_clears_the_address() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        l.record_failure(a);
        l.record_success(a);
        l.record_failure(a);
        assert_eq!(l.check(a), Ok(()), "count restarted after success");
        l.record_failure(a);
        assert!(l.check(a).is_err());
        l.record_success(a);
        assert_eq!(l.check(a), Ok(()));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn addresses_are_independent() {
        let l = LoginLimiter::new(1, Duration::from_secs(60));
        l.record_failure(ip("192.0.2.1"));
        assert!(l.check(ip("192.0.2.1")).is_err());
        assert_eq!(l.check(ip("192.0.2.2")), Ok(()));
        assert_eq!(l.check(ip("2001:db8::1")), Ok(()));
        l.record_failure(ip("2001:db8:0:1::1"));
        assert!(l.check(ip("2001:db8:0:1::1")).is_err());
        assert_eq!(l.check(ip("2001:db8:0:2::1")), Ok(()));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        l.record_failure(ip("2001:db8:1:2::1"));
        l.record_failure(ip("2001:db8:1:2:ffff::99"));
        assert!(l.check(ip("2001:db8:1:2::7")).is_err());
        l.record_failure(ip("::ffff:192.0.2.9"));
        l.record_failure(ip("192.0.2.9"));
        assert!(l.check(ip("192.0.2.9")).is_err());
        assert!(l.check(ip("::ffff:192.0.2.9")).is_err());
    }

    #[test]
    fn window_expiry_unblocks_and_forgets_old_failures() {
        let window = Duration::from_millis(200);
        let l = LoginLimiter::new(2, window);
        let a = ip("192.0.2.1");
        l.record_failure(a);
        l.record_failure(a);
        assert!(l.check(a).unwrap_err() <= window);
        sleep(window + Duration::from_millis(50));
        assert_eq!(l.check(a), Ok(()), "unblocked after the window");
        // Counting starts over.
        l.record_failure(a);
        assert_eq!(l.check(a), Ok(()));

        // Failures spread over more than a window never block.
        let b = ip("192.0.2.2");
        l.record_failure(b);
        sleep(window + Duration::from_millis(50));
        l.record_failure(b);
        assert_eq!(l.check(b), Ok(()));
    }

    #[test]
    fn zero_max_failures_disables() {
        let l = LoginLimiter::new(0, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        for _ in 0..100 {
            l.record_failure(a);
        }
        assert_eq!(l.check(a), Ok(()));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let l = LoginLimiter::default();
        for i in 0..200_000u32 {
            l.record_failure(IpAddr::V4(Ipv4Addr::from(i)));
            assert!(l.tracked() <= DEFAULT_CAPACITY);
        }
        assert!(l.tracked() > DEFAULT_CAPACITY / 2);
        // The newest addresses are still tracked; the oldest were evicted.
        let newest = IpAddr::V4(Ipv4Addr::from(199_999u32));
        l.record_failure(newest);
        assert_eq!(l.lock().get(&newest).map(|e| e.failures), Some(2));
        assert!(!l.lock().contains_key(&IpAddr::V4(Ipv4Addr::from(0u32))));
    }

    #[test]
    fn expired_entries_are_pruned_before_evicting_live_ones() {
        let window = Duration::from_millis(100);
        let l = LoginLimiter::with_capacity(1, window, 10);
        let blocked = ip("192.0.2.200");
        for i in 0..9u32 {
            l.record_failure(IpAddr::V4(Ipv4Addr::from(i)));
        }
        sleep(window + Duration::from_millis(120));
        // Blocked now, after the others expired: it must survive pruning.
        l.record_failure(blocked);
        for i in 100..105u32 {
            l.record_failure(IpAddr::V4(Ipv4Addr::from(i)));
        }
        assert!(l.tracked() <= 10);
        assert!(l.check(blocked).is_err());
    }
}
