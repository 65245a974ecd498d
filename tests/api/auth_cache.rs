//! The cache of recently verified htpasswd logins: a correct password
//! costs one bcrypt check per few minutes, not one per request, so a busy
//! client (or a CI farm behind one NAT address) is not slowed or throttled
//! on correct passwords; a changed or removed user counts at once.

use axum::http::{Method, StatusCode};

use crate::auth::{basic, htpasswd_config, metric, users};
use crate::support::TestRegistry;

/// A registry with htpasswd users alice and bob, and `/metrics`.
fn registry(dir: &tempfile::TempDir) -> TestRegistry {
    let config = htpasswd_config(dir, None);
    TestRegistry::memory_with(|c| {
        config(c);
        c.http.debug.prometheus.enabled = true;
    })
}

async fn login(reg: &TestRegistry, user: &str, pw: &str) -> StatusCode {
    let auth = basic(user, pw);
    reg.req(Method::GET, "/v2/", &[("authorization", &auth)], "")
        .await
        .status
}

/// The second request with the same correct password is served from the
/// cache: one bcrypt check in all. Wrong passwords are never cached.
#[tokio::test]
async fn a_verified_password_is_served_from_the_cache() {
    let dir = users();
    let reg = registry(&dir);
    assert_eq!(login(&reg, "alice", "alicepw").await, StatusCode::OK);
    assert_eq!(metric(&reg, "berth_login_checks_total").await, 1);
    assert_eq!(login(&reg, "alice", "alicepw").await, StatusCode::OK);
    assert_eq!(metric(&reg, "berth_login_checks_total").await, 1);
    assert_eq!(metric(&reg, "berth_login_cache_hits_total").await, 1);
    for _ in 0..2 {
        assert_eq!(login(&reg, "alice", "nope").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(metric(&reg, "berth_login_checks_total").await, 3);
    assert_eq!(metric(&reg, "berth_login_failures_total").await, 2);
}

/// A changed password or a removed user counts as soon as the file is
/// reloaded: the cached logins of the old file are not honoured.
#[tokio::test]
async fn a_changed_or_removed_user_invalidates_the_cache() {
    let dir = users();
    let reg = registry(&dir);
    let file = dir.path().join("htpasswd");
    assert_eq!(login(&reg, "alice", "alicepw").await, StatusCode::OK);
    assert_eq!(login(&reg, "bob", "bobpw").await, StatusCode::OK);
    assert_eq!(login(&reg, "alice", "alicepw").await, StatusCode::OK);
    assert_eq!(metric(&reg, "berth_login_cache_hits_total").await, 1);
    berth::auth::htpasswd::add_user(&file, "alice", "newpw", 4).unwrap();
    assert!(berth::auth::htpasswd::delete_user(&file, "bob").unwrap());
    // The file is looked at for changes at most this often: move the
    // registry's clock past it (no sleep, no wall-clock margin).
    tokio::time::pause();
    tokio::time::advance(berth::auth::htpasswd::RECHECK_INTERVAL).await;
    tokio::time::resume();
    assert_eq!(
        login(&reg, "alice", "alicepw").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&reg, "bob", "bobpw").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&reg, "alice", "newpw").await, StatusCode::OK);
    assert_eq!(metric(&reg, "berth_login_cache_hits_total").await, 1);
}

/// 100 concurrent requests from one address with a correct password (a
/// CI farm behind one NAT address) all get in, with one bcrypt check:
/// they share the check under way, then the cache; none takes a throttle
/// slot of its own, so none gets 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_right_passwords_share_one_check() {
    let dir = users();
    let reg = registry(&dir);
    let alice = basic("alice", "alicepw");
    let h = [("authorization", alice.as_str())];
    let all = (0..100).map(|_| reg.req(Method::GET, "/v2/", &h, ""));
    let statuses: Vec<_> = futures::future::join_all(all)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(metric(&reg, "berth_login_checks_total").await, 1);
    assert_eq!(metric(&reg, "berth_login_throttled_total").await, 0);
}

/// A blocked address waits out its block even with a cached password, so
/// the cache cannot tell a guesser which guess is right.
#[tokio::test]
async fn a_blocked_address_is_refused_even_with_a_cached_password() {
    let dir = users();
    let reg = registry(&dir);
    assert_eq!(login(&reg, "alice", "alicepw").await, StatusCode::OK);
    for _ in 0..10 {
        assert_eq!(login(&reg, "alice", "nope").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&reg, "alice", "alicepw").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
