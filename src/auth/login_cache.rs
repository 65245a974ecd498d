//! Recently verified htpasswd logins, so a client sending the same correct
//! password on every request (every Basic-auth client does) costs one
//! bcrypt check per [`TTL`] instead of one per request, and a CI farm
//! sharing one address does not run into the login throttle's bounds on
//! correct passwords.
//!
//! Only successful checks are cached, under an HMAC-SHA256 (per-process
//! random key) of user and password: the process never keeps a password or
//! an offline-guessable hash of one. An entry holds the generation of the
//! htpasswd entries it was verified against, so a reloaded file (a changed
//! or removed user) invalidates it at once. Concurrent checks of the same
//! credentials share one check ([`LoginCache::flight`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ring::hmac;
use tokio::sync::OnceCell;

/// How long a verified login is served from the cache.
pub const TTL: Duration = Duration::from_secs(5 * 60);

/// Most verified logins kept; beyond it expired ones are dropped, then the
/// oldest.
pub const CAPACITY: usize = 4096;

/// Most distinct credentials whose check is shared at once; past it a
/// check runs on its own (still bounded by the login throttle).
const MAX_FLIGHTS: usize = 4096;

/// The HMAC of one user and password: the cache's key.
pub type LoginKey = [u8; 32];

/// One verified login.
#[derive(Debug, Clone, Copy)]
struct Verified {
    expires: Instant,
    generation: u64,
}

/// A check of one set of credentials that concurrent requests share; its
/// value is set once, by whichever request runs the check.
pub type Flight<T> = Arc<OnceCell<T>>;

/// What requests share a check by: the credentials and the client address
/// (so one address's throttling is never handed to another).
pub type FlightKey = (LoginKey, Option<IpAddr>);

/// The cache of verified logins, and the checks under way.
#[derive(Debug)]
pub struct LoginCache<T> {
    key: hmac::Key,
    ttl: Duration,
    capacity: usize,
    verified: Mutex<HashMap<LoginKey, Verified>>,
    flights: Mutex<HashMap<FlightKey, Flight<T>>>,
}

impl<T> LoginCache<T> {
    /// A cache of up to [`CAPACITY`] logins for [`TTL`], with a fresh
    /// random key.
    pub fn new() -> Self {
        Self::with_limits(TTL, CAPACITY)
    }

    /// A cache of up to `capacity` logins for `ttl` (tests).
    pub fn with_limits(ttl: Duration, capacity: usize) -> Self {
        let secret: [u8; 32] = rand::random();
        LoginCache {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            ttl,
            capacity: capacity.max(1),
            verified: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The key of `user` and `password` (length-prefixed, so no two
    /// different pairs share an input).
    pub fn key(&self, user: &str, password: &str) -> LoginKey {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// True when `key` was verified against entries of `generation` less
    /// than the TTL ago. A stale entry is dropped.
    pub fn hit(&self, key: &LoginKey, generation: u64) -> bool {
        let mut map = lock(&self.verified);
        match map.get(key) {
            Some(v) if v.generation == generation && Instant::now() < v.expires => true,
            Some(_) => {
                map.remove(key);
                false
            }
            None => false,
        }
    }

    /// Records a successful check of `key` against entries of
    /// `generation`.
    pub fn insert(&self, key: LoginKey, generation: u64) {
        let now = Instant::now();
        let mut map = lock(&self.verified);
        if map.len() >= self.capacity && !map.contains_key(&key) {
            self.make_room(&mut map, now, generation);
        }
        map.insert(
            key,
            Verified {
                expires: now + self.ttl,
                generation,
            },
        );
    }

    /// How many logins are cached (diagnostics and tests).
    pub fn len(&self) -> usize {
        lock(&self.verified).len()
    }

    /// True when no login is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired and stale entries; if that is not enough, the oldest
    /// down to 90 % of capacity, so the O(n) work happens once per n/10
    /// inserts.
    fn make_room(&self, map: &mut HashMap<LoginKey, Verified>, now: Instant, generation: u64) {
        map.retain(|_, v| v.generation == generation && now < v.expires);
        let target = self.capacity - self.capacity / 10;
        if map.len() < target.max(1) {
            return;
        }
        let excess = map.len() + 1 - target.max(1);
        let mut by_age: Vec<(Instant, LoginKey)> =
            map.iter().map(|(k, v)| (v.expires, *k)).collect();
        if excess < by_age.len() {
            by_age.select_nth_unstable(excess - 1);
        }
        for (_, k) in by_age.iter().take(excess) {
            map.remove(k);
        }
    }

    /// The check of `key` under way, joined, or a new one this caller
    /// should run (`get_or_init`); `None` when too many are under way. End
    /// it with [`LoginCache::land`] once its value is set.
    pub fn flight(&self, key: &FlightKey) -> Option<Flight<T>> {
        let mut map = lock(&self.flights);
        if let Some(f) = map.get(key) {
            return Some(f.clone());
        }
        if map.len() >= MAX_FLIGHTS {
            return None;
        }
        let f = Flight::default();
        map.insert(*key, f.clone());
        Some(f)
    }

    /// Forgets the check `flight` of `key` (if it is still the current
    /// one): later requests look at the cache, or start a new check.
    pub fn land(&self, key: &FlightKey, flight: &Flight<T>) {
        let mut map = lock(&self.flights);
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            map.remove(key);
        }
    }
}

impl<T> Default for LoginCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<V>(m: &Mutex<V>) -> MutexGuard<'_, V> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_user_password_split_and_process_key() {
        let c = LoginCache::<()>::new();
        assert_eq!(c.key("ab", "c"), c.key("ab", "c"));
        assert_ne!(c.key("ab", "c"), c.key("a", "bc"));
        assert_ne!(c.key("u", "p"), c.key("u", "q"));
        let other = LoginCache::<()>::new();
        assert_ne!(c.key("u", "p"), other.key("u", "p"));
    }

    #[test]
    fn entries_expire_and_follow_the_generation() {
        let c = LoginCache::<()>::with_limits(Duration::from_secs(60), 10);
        let k = c.key("u", "p");
        assert!(!c.hit(&k, 1));
        c.insert(k, 1);
        assert!(c.hit(&k, 1));
        assert!(!c.hit(&k, 2), "a reloaded file invalidates");
        assert!(!c.hit(&k, 1), "and the stale entry is gone");
        let expired = LoginCache::<()>::with_limits(Duration::ZERO, 10);
        let k = expired.key("u", "p");
        expired.insert(k, 1);
        assert!(!expired.hit(&k, 1));
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_oldest() {
        let c = LoginCache::<()>::with_limits(Duration::from_secs(60), 100);
        let first = c.key("user0", "p");
        for i in 0..1000 {
            c.insert(c.key(&format!("user{i}"), "p"), 7);
            assert!(c.len() <= 100, "{} entries", c.len());
        }
        assert!(!c.hit(&first, 7), "the oldest was evicted");
        assert!(c.hit(&c.key("user999", "p"), 7), "the newest is kept");
    }

    #[test]
    fn concurrent_checks_of_the_same_credentials_share_one_flight() {
        let c = LoginCache::<bool>::new();
        let k = (c.key("u", "p"), None);
        let a = c.flight(&k).unwrap();
        let b = c.flight(&k).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = c.flight(&(c.key("u", "q"), None)).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        let elsewhere = c.flight(&(k.0, Some([127, 0, 0, 1].into()))).unwrap();
        assert!(
            !Arc::ptr_eq(&a, &elsewhere),
            "other addresses check on their own"
        );
        c.land(&k, &a);
        let fresh = c.flight(&k).unwrap();
        assert!(!Arc::ptr_eq(&a, &fresh), "a landed flight is not joined");
    }
}
