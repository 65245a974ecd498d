//! Operations (issue 14): `/readyz` through a shutdown, `X-Request-Id`.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use berth::config::Config;
use berth::storage::memory::MemoryDriver;

use crate::features::{apps, get};
use crate::support::*;

#[tokio::test]
async fn readyz_is_ok_until_draining_starts_at_the_root_and_under_the_prefix() {
    let mut config = Config::default();
    config.http.prefix = "/registry".into();
    let a = apps(config, Arc::new(MemoryDriver::new()));
    for path in ["/readyz", "/registry/readyz"] {
        let r = get(&a.main, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.json()["status"], "ready");
    }
    a.readiness.start_draining();
    for path in ["/readyz", "/registry/readyz"] {
        let r = get(&a.main, path).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(r.error_code(), "UNAVAILABLE");
    }
    // Liveness is not readiness: /healthz and the API still answer.
    assert_eq!(get(&a.main, "/healthz").await.status, StatusCode::OK);
    assert_eq!(get(&a.main, "/registry/v2/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let reg = TestRegistry::memory_with(|_| {});
    let r = reg
        .req(Method::GET, "/v2/", &[("x-request-id", "abc-1.2_3")], "")
        .await;
    assert_eq!(r.header("x-request-id"), Some("abc-1.2_3"));
    let too_long = "a".repeat(129);
    for bad in ["a/b", "x y", too_long.as_str()] {
        let r = reg
            .req(
                Method::GET,
                "/v2/nope/tags/list",
                &[("x-request-id", bad)],
                "",
            )
            .await;
        let id = r.header("x-request-id").unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{bad:?} -> {id}");
    }
    // Errors and unknown paths carry one too, different each time.
    let a = reg.get("/nowhere").await;
    let b = reg.get("/nowhere").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    assert!(a.header("x-request-id").is_some());
}
