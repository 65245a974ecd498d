//! Login throttling per client address, so a password cannot be guessed at
//! the speed of the network, and a bound on the password checks running at
//! once, so a flood of logins cannot take every core and blocking thread.
//! In memory, per process: each replica throttles on its own, which still
//! bounds guessing to a small multiple of the limit.
//!
//! An attempt is counted *before* its password is checked: it reserves a
//! slot of its address's failure budget, so concurrent guesses cannot all
//! pass the gate before the first failure is recorded.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
// tokio's Instant is std's at run time; under tokio's paused test clock the
// windows move with it, so tests advance time instead of sleeping.
use tokio::time::Instant;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Most addresses tracked at once; beyond it expired entries are pruned and
/// then the oldest idle ones evicted, so memory stays bounded (~10 MB) under
/// a flood of distinct addresses.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Password checks one address may have running at once.
pub const PER_ADDRESS_CHECKS: u32 = 4;

/// Logins from one address that may wait for their turn (its checks busy,
/// or the outcome of earlier attempts pending); more are refused at once.
pub const PER_ADDRESS_WAITERS: u32 = 32;

/// `Retry-After` of a login refused because its address has too many
/// logins under way (not because of failures).
pub const BUSY_RETRY: Duration = Duration::from_secs(1);

/// Password checks running at once across all addresses: twice the CPUs
/// (at least 2). bcrypt is CPU-bound; more would only queue on the
/// blocking thread pool.
pub fn default_total_checks() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(2)
        .max(2)
}

/// Per-client-address login throttling: after `max_failures` failed logins
/// within `window` (counted from the first failure), further attempts from
/// that address are refused for `window` after the last counted failure; a
/// success clears the address. Attempts in flight count against the budget
/// until they end, and at most [`PER_ADDRESS_CHECKS`] run at once per
/// address (later ones wait, up to [`PER_ADDRESS_WAITERS`]). IPv6 clients
/// are grouped by /64 (one host usually owns a whole /64, so single
/// addresses would be free to rotate); IPv4-mapped IPv6 addresses count as
/// their IPv4 address. Bounded memory.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    entries: Mutex<HashMap<IpAddr, Entry>>,
    /// Password checks running at once, all addresses together.
    total: Arc<Semaphore>,
    stats: LoginStats,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct LoginStats {
    /// Password checks run (bcrypt verifications started).
    pub checks: AtomicU64,
    /// Checks that failed (wrong user or password).
    pub failures: AtomicU64,
    /// Logins refused with 429 without a check.
    pub throttled: AtomicU64,
    /// Logins accepted from the verified-login cache without a check
    /// (counted by the authenticator).
    pub cache_hits: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    /// First failure of the current window (creation time before any).
    first: Instant,
    failures: u32,
    /// Set once `failures` reached the limit.
    blocked_until: Option<Instant>,
    /// Attempts that reserved a slot and have not ended.
    in_flight: u32,
    /// Attempts waiting for a turn.
    waiters: u32,
    /// Wakes the waiters when an attempt ends.
    notify: Arc<Notify>,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            first: now,
            failures: 0,
            blocked_until: None,
            in_flight: 0,
            waiters: 0,
            notify: Arc::new(Notify::new()),
        }
    }

    /// When the failures stop mattering.
    fn expires(&self, window: Duration) -> Instant {
        self.blocked_until.unwrap_or(self.first + window)
    }

    /// Forgets failures whose window has passed.
    fn refresh(&mut self, now: Instant, window: Duration) {
        if now >= self.expires(window) {
            self.first = now;
            self.failures = 0;
            self.blocked_until = None;
        }
    }

    /// Nothing under way: the entry may be dropped once its failures expire.
    fn idle(&self) -> bool {
        self.in_flight == 0 && self.waiters == 0
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

/// What an attempt may do now.
enum Turn {
    Go,
    Wait(Arc<Notify>),
    Refuse(Duration),
}

impl LoginLimiter {
    /// `max_failures` failed logins per `window` per address (0 disables
    /// the per-address limits); [`default_total_checks`] checks at once.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_limits(
            max_failures,
            window,
            DEFAULT_CAPACITY,
            default_total_checks(),
        )
    }

    /// As [`LoginLimiter::new`], tracking at most `capacity` addresses and
    /// running at most `total_checks` password checks at once.
    pub fn with_limits(
        max_failures: u32,
        window: Duration,
        capacity: usize,
        total_checks: usize,
    ) -> Self {
        LoginLimiter {
            max_failures,
            window,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            total: Arc::new(Semaphore::new(total_checks.max(1))),
            stats: LoginStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &LoginStats {
        &self.stats
    }

    /// Waits for the right to check a password from `client` (None: an
    /// unknown address, bound only by the total). Err(retry_after) when the
    /// address is blocked by failures, or has too many logins under way;
    /// skip the check then. The [`Attempt`] must be ended with
    /// [`Attempt::finish`]; dropped unfinished, it counts as nothing.
    pub async fn begin(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Attempt, Duration> {
        let key = client.filter(|_| self.max_failures > 0).map(key);
        if let Some(k) = key {
            self.reserve(k).await.inspect_err(|_| {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            })?;
        }
        // From here on, dropping the attempt releases the reservation.
        let mut attempt = Attempt {
            limiter: self.clone(),
            key,
            permit: None,
            done: false,
        };
        match self.total.clone().acquire_owned().await {
            Ok(permit) => attempt.permit = Some(permit),
            // The semaphore is never closed; refuse rather than run unbounded.
            Err(_) => return Err(BUSY_RETRY),
        }
        self.stats.checks.fetch_add(1, Ordering::Relaxed);
        Ok(attempt)
    }

    /// Reserves a slot of `key`'s budget, waiting while its checks are busy
    /// or earlier attempts' outcomes decide whether there is room.
    async fn reserve(&self, key: IpAddr) -> Result<(), Duration> {
        loop {
            let notify;
            let woken;
            {
                let mut map = self.lock();
                match self.turn(&mut map, key, Instant::now()) {
                    Turn::Go => return Ok(()),
                    Turn::Refuse(wait) => return Err(wait),
                    Turn::Wait(n) => {
                        notify = n;
                        // Registered now, under the lock: no wake-up is missed.
                        woken = notify.notified();
                    }
                }
            }
            let waiting = Waiting { limiter: self, key };
            woken.await;
            drop(waiting);
        }
    }

    /// Decides an attempt's turn, reserving a slot on [`Turn::Go`] and
    /// counting a waiter on [`Turn::Wait`].
    fn turn(&self, map: &mut HashMap<IpAddr, Entry>, key: IpAddr, now: Instant) -> Turn {
        if !map.contains_key(&key) {
            if map.len() >= self.capacity {
                self.make_room(map, now);
            }
            if map.len() >= self.capacity {
                // Every tracked address has logins under way.
                return Turn::Refuse(BUSY_RETRY);
            }
            map.insert(key, Entry::new(now));
        }
        let Some(e) = map.get_mut(&key) else {
            return Turn::Refuse(BUSY_RETRY);
        };
        e.refresh(now, self.window);
        if let Some(until) = e.blocked_until {
            return Turn::Refuse(until.saturating_duration_since(now));
        }
        if e.in_flight < PER_ADDRESS_CHECKS && e.failures + e.in_flight < self.max_failures {
            e.in_flight += 1;
            return Turn::Go;
        }
        // Not blocked, so attempts are in flight: their outcome decides.
        if e.waiters >= PER_ADDRESS_WAITERS {
            return Turn::Refuse(BUSY_RETRY);
        }
        e.waiters += 1;
        Turn::Wait(e.notify.clone())
    }

    /// Ends an attempt on `key`: `Some(ok)` counts its outcome, `None`
    /// (abandoned) only frees its slot. Wakes the address's waiters.
    fn settle(&self, key: IpAddr, outcome: Option<bool>) {
        let now = Instant::now();
        let mut map = self.lock();
        let Some(e) = map.get_mut(&key) else {
            return;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        e.refresh(now, self.window);
        match outcome {
            Some(true) => {
                e.failures = 0;
                e.blocked_until = None;
            }
            Some(false) if e.blocked_until.is_none() => {
                if e.failures == 0 {
                    e.first = now;
                }
                e.failures = e.failures.saturating_add(1);
                if e.failures >= self.max_failures {
                    e.blocked_until = Some(now + self.window);
                }
            }
            // Already blocked: a late failure does not extend the block.
            Some(false) | None => {}
        }
        e.notify.notify_waiters();
        if e.idle() && e.failures == 0 {
            map.remove(&key);
        }
    }

    /// Ok, or Err(retry_after) when the address is currently blocked by
    /// failures. A look only: it reserves nothing (diagnostics and tests).
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        match self.lock().get(&key(addr)) {
            Some(e) if now < e.expires(self.window) => match e.blocked_until {
                Some(until) => Err(until - now),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// How many addresses are tracked (diagnostics and tests).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops idle expired entries; if that is not enough, evicts the oldest
    /// idle ones down to 90% of capacity, so the O(n) work happens once per
    /// n/10 inserts. Entries with logins under way are kept (their waiters
    /// hold the entry's wake-up).
    fn make_room(&self, map: &mut HashMap<IpAddr, Entry>, now: Instant) {
        map.retain(|_, e| !e.idle() || now < e.expires(self.window));
        let target = self.capacity - self.capacity / 10;
        if map.len() <= target {
            return;
        }
        let excess = map.len() - target;
        let mut by_age: Vec<(Instant, IpAddr)> = map
            .iter()
            .filter(|(_, e)| e.idle())
            .map(|(k, e)| (e.first, *k))
            .collect();
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

/// One waiter of an address; uncounted when dropped (also when the waiting
/// request is abandoned).
struct Waiting<'a> {
    limiter: &'a LoginLimiter,
    key: IpAddr,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut map = self.limiter.lock();
        if let Some(e) = map.get_mut(&self.key) {
            e.waiters = e.waiters.saturating_sub(1);
            if e.idle() && e.failures == 0 && e.blocked_until.is_none() {
                map.remove(&self.key);
            }
        }
    }
}

/// The right to check one password: a reserved slot of the address's
/// budget and one of the total checks. End it with [`Attempt::finish`].
#[derive(Debug)]
pub struct Attempt {
    limiter: Arc<LoginLimiter>,
    key: Option<IpAddr>,
    permit: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl Attempt {
    /// Records the check's outcome: a failure counts against the address
    /// (blocking it at the limit), a success clears its failures.
    pub fn finish(mut self, ok: bool) {
        self.done = true;
        if !ok {
            self.limiter.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(k) = self.key {
            self.limiter.settle(k, Some(ok));
        }
    }
}

impl Drop for Attempt {
    /// Frees the slot and the permit; an unfinished attempt counts as
    /// nothing.
    fn drop(&mut self) {
        self.permit.take();
        if !self.done {
            if let Some(k) = self.key {
                self.limiter.settle(k, None);
            }
        }
    }
}

#[cfg(test)]
#[path = "ratelimit_tests.rs"]
mod tests;
