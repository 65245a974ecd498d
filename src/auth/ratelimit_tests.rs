#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use futures::FutureExt;
use std::net::Ipv4Addr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limiter(max_failures: u32, window: Duration) -> Arc<LoginLimiter> {
    Arc::new(LoginLimiter::new(max_failures, window))
}

/// Begins an attempt that must get its turn at once.
fn begin(l: &Arc<LoginLimiter>, a: IpAddr) -> Attempt {
    l.begin(Some(a))
        .now_or_never()
        .expect("no wait")
        .expect("allowed")
}

fn fail(l: &Arc<LoginLimiter>, a: IpAddr) {
    begin(l, a).finish(false);
}

fn succeed(l: &Arc<LoginLimiter>, a: IpAddr) {
    begin(l, a).finish(true);
}

#[test]
fn blocks_after_max_failures_with_sensible_retry_after() {
    let window = Duration::from_secs(60);
    let l = limiter(3, window);
    let a = ip("192.0.2.1");
    fail(&l, a);
    fail(&l, a);
    assert_eq!(l.check(a), Ok(()), "2 of 3 failures: still allowed");
    fail(&l, a);
    let retry = l.check(a).unwrap_err();
    assert!(
        retry <= window && retry > window - Duration::from_secs(5),
        "{retry:?}"
    );
    let refused = l.begin(Some(a)).now_or_never().expect("no wait");
    assert!(refused.unwrap_err() <= retry);
    assert_eq!(l.stats().checks.load(Ordering::Relaxed), 3);
    assert_eq!(l.stats().throttled.load(Ordering::Relaxed), 1);
}

#[test]
fn success_clears_the_address() {
    let l = limiter(2, Duration::from_secs(60));
    let a = ip("192.0.2.1");
    fail(&l, a);
    succeed(&l, a);
    fail(&l, a);
    assert_eq!(l.check(a), Ok(()), "count restarted after success");
    fail(&l, a);
    assert!(l.check(a).is_err());
    assert_eq!(l.tracked(), 1);
}

#[test]
fn attempts_in_flight_reserve_the_budget() {
    let l = limiter(3, Duration::from_secs(60));
    let a = ip("192.0.2.1");
    let held: Vec<Attempt> = (0..3).map(|_| begin(&l, a)).collect();
    // The budget is taken by attempts whose outcome is unknown: the next
    // one waits for them instead of running a fourth check.
    let mut next = Box::pin(l.begin(Some(a)));
    assert!((&mut next).now_or_never().is_none(), "must wait");
    for h in held {
        h.finish(false);
    }
    // Three failures: blocked, so the waiter is refused without a check.
    let wait = next.now_or_never().expect("woken").unwrap_err();
    assert!(wait > Duration::from_secs(50), "{wait:?}");
    assert_eq!(l.stats().checks.load(Ordering::Relaxed), 3);
}

#[test]
fn a_success_in_flight_lets_the_waiters_through() {
    let l = limiter(2, Duration::from_secs(60));
    let a = ip("192.0.2.1");
    let first = begin(&l, a);
    let second = begin(&l, a);
    let mut third = Box::pin(l.begin(Some(a)));
    assert!((&mut third).now_or_never().is_none());
    first.finish(true);
    let third = third.now_or_never().expect("woken").expect("allowed");
    second.finish(true);
    third.finish(true);
    assert_eq!(l.tracked(), 0, "idle and clean: forgotten");
}

#[test]
fn checks_per_address_are_bounded_and_waiters_too() {
    let l = Arc::new(LoginLimiter::with_limits(
        1000,
        Duration::from_secs(60),
        DEFAULT_CAPACITY,
        100,
    ));
    let a = ip("192.0.2.1");
    let held: Vec<Attempt> = (0..PER_ADDRESS_CHECKS).map(|_| begin(&l, a)).collect();
    let mut waiting: Vec<_> = (0..PER_ADDRESS_WAITERS)
        .map(|_| Box::pin(l.begin(Some(a))))
        .collect();
    for w in &mut waiting {
        assert!(w.now_or_never().is_none(), "must wait");
    }
    // The queue is full: refused at once, with the short retry.
    let over = l.begin(Some(a)).now_or_never().expect("no wait");
    assert_eq!(over.unwrap_err(), BUSY_RETRY);
    // Another address is not affected.
    begin(&l, ip("192.0.2.2")).finish(true);
    // An abandoned waiter frees its place in the queue.
    waiting.pop();
    let mut again = Box::pin(l.begin(Some(a)));
    assert!((&mut again).now_or_never().is_none(), "queued, not refused");
    drop(held);
    let next = again.now_or_never().expect("woken").expect("allowed");
    next.finish(true);
}

#[test]
fn total_checks_are_bounded_across_addresses() {
    let l = Arc::new(LoginLimiter::with_limits(
        10,
        Duration::from_secs(60),
        DEFAULT_CAPACITY,
        2,
    ));
    let a = begin(&l, ip("192.0.2.1"));
    let _b = begin(&l, ip("192.0.2.2"));
    let mut c = Box::pin(l.begin(Some(ip("192.0.2.3"))));
    assert!((&mut c).now_or_never().is_none(), "third check waits");
    let mut unknown = Box::pin(l.begin(None));
    assert!(
        (&mut unknown).now_or_never().is_none(),
        "even without address"
    );
    a.finish(false);
    let c = c.now_or_never().expect("permit freed").expect("allowed");
    drop(c);
    assert!(unknown.now_or_never().expect("permit freed").is_ok());
}

#[test]
fn addresses_are_independent() {
    let l = limiter(1, Duration::from_secs(60));
    fail(&l, ip("192.0.2.1"));
    assert!(l.check(ip("192.0.2.1")).is_err());
    assert_eq!(l.check(ip("192.0.2.2")), Ok(()));
    assert_eq!(l.check(ip("2001:db8::1")), Ok(()));
    fail(&l, ip("2001:db8:0:1::1"));
    assert!(l.check(ip("2001:db8:0:1::1")).is_err());
    assert_eq!(l.check(ip("2001:db8:0:2::1")), Ok(()));
}

#[test]
fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
    let l = limiter(2, Duration::from_secs(60));
    fail(&l, ip("2001:db8:1:2::1"));
    fail(&l, ip("2001:db8:1:2:ffff::99"));
    assert!(l.check(ip("2001:db8:1:2::7")).is_err());
    fail(&l, ip("::ffff:192.0.2.9"));
    fail(&l, ip("192.0.2.9"));
    assert!(l.check(ip("192.0.2.9")).is_err());
    assert!(l.check(ip("::ffff:192.0.2.9")).is_err());
}

/// On tokio's paused clock: the window passes by `advance`, not by a sleep
/// the machine's load could stretch.
#[tokio::test(start_paused = true)]
async fn window_expiry_unblocks_and_forgets_old_failures() {
    let window = Duration::from_millis(200);
    let l = limiter(2, window);
    let a = ip("192.0.2.1");
    fail(&l, a);
    fail(&l, a);
    assert!(l.check(a).unwrap_err() <= window);
    tokio::time::advance(window + Duration::from_millis(50)).await;
    assert_eq!(l.check(a), Ok(()), "unblocked after the window");
    // Counting starts over.
    fail(&l, a);
    assert_eq!(l.check(a), Ok(()));

    // Failures spread over more than a window never block.
    let b = ip("192.0.2.2");
    fail(&l, b);
    tokio::time::advance(window + Duration::from_millis(50)).await;
    fail(&l, b);
    assert_eq!(l.check(b), Ok(()));
}

#[test]
fn zero_max_failures_disables_the_per_address_limits() {
    let l = limiter(0, Duration::from_secs(60));
    let a = ip("192.0.2.1");
    for _ in 0..100 {
        fail(&l, a);
    }
    assert_eq!(l.check(a), Ok(()));
    assert_eq!(l.tracked(), 0);
}

#[test]
fn memory_stays_bounded_under_many_addresses() {
    let l = Arc::new(LoginLimiter::default());
    for i in 0..200_000u32 {
        fail(&l, IpAddr::V4(Ipv4Addr::from(i)));
        assert!(l.tracked() <= DEFAULT_CAPACITY);
    }
    assert!(l.tracked() > DEFAULT_CAPACITY / 2);
    // The newest addresses are still tracked; the oldest were evicted.
    let newest = IpAddr::V4(Ipv4Addr::from(199_999u32));
    fail(&l, newest);
    assert_eq!(l.lock().get(&newest).map(|e| e.failures), Some(2));
    assert!(!l.lock().contains_key(&IpAddr::V4(Ipv4Addr::from(0u32))));
}

#[tokio::test(start_paused = true)]
async fn expired_entries_are_pruned_before_evicting_live_ones() {
    let window = Duration::from_millis(100);
    let l = Arc::new(LoginLimiter::with_limits(1, window, 10, 4));
    let blocked = ip("192.0.2.200");
    for i in 0..9u32 {
        fail(&l, IpAddr::V4(Ipv4Addr::from(i)));
    }
    tokio::time::advance(window + Duration::from_millis(120)).await;
    // Blocked now, after the others expired: it must survive pruning.
    fail(&l, blocked);
    for i in 100..105u32 {
        fail(&l, IpAddr::V4(Ipv4Addr::from(i)));
    }
    assert!(l.tracked() <= 10);
    assert!(l.check(blocked).is_err());
}

#[test]
fn addresses_with_logins_under_way_are_not_evicted() {
    let l = Arc::new(LoginLimiter::with_limits(5, Duration::from_secs(60), 2, 8));
    let a = begin(&l, ip("192.0.2.1"));
    let b = begin(&l, ip("192.0.2.2"));
    // Full of active entries: a new address is refused, not tracked over
    // the bound, and the active ones keep their counts.
    let c = l
        .begin(Some(ip("192.0.2.3")))
        .now_or_never()
        .expect("no wait");
    assert_eq!(c.unwrap_err(), BUSY_RETRY);
    assert_eq!(l.tracked(), 2);
    a.finish(false);
    b.finish(true);
    succeed(&l, ip("192.0.2.3"));
}
