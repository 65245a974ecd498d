//! In-process API tests: every endpoint and error of the distribution API,
//! run against the memory, filesystem, S3 (Garage) and Azure (Azurite)
//! drivers.
#![allow(clippy::unwrap_used)]

#[path = "../common/azure.rs"]
mod azure;
#[path = "../common/clients.rs"]
mod clients;
#[path = "../common/loopback.rs"]
mod loopback;
#[path = "../common/oci_bodies.rs"]
mod oci_bodies;
#[path = "../common/oneshot.rs"]
mod oneshot;
#[path = "../common/procs.rs"]
mod procs;
#[path = "../common/s3.rs"]
mod s3;

mod auth;
mod auth_cache;
mod auth_token;
mod blobs;
mod features;
mod forwarded;
mod listing;
mod manifests;
mod metrics;
mod mirror_routing;
mod ops;
mod replica_races;
mod repo_index;
mod socket;
mod socket_timeouts;
mod support;
mod ui;
mod ui_auth;
mod uploads;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use berth::config::Config;
use berth::oci::digest::Digest;
use berth::storage::memory::MemoryDriver;
use berth::storage::StorageDriver;
use support::TestRegistry;

#[tokio::test]
async fn base_endpoint_and_ping() {
    for reg in TestRegistry::all() {
        for path in ["/v2/", "/v2"] {
            let r = reg.get(path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert_eq!(r.body.as_ref(), b"{}");
            assert_eq!(
                r.header("docker-distribution-api-version"),
                Some("registry/2.0")
            );
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
        assert_eq!(reg.get("/v1/_ping").await.status, StatusCode::OK);
        assert_eq!(reg.get("/_ping").await.status, StatusCode::OK);
        let r = reg.get("/healthz").await;
        assert_eq!(
            (r.status, r.body.as_ref()),
            (StatusCode::OK, br#"{"status":"ok"}"#.as_ref())
        );
        let r = reg.get("/nothing/here").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.error_code(), "UNSUPPORTED");
        let r = reg.req(Method::POST, "/v2/", &[], "").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn healthz_fails_when_the_filesystem_root_is_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let reg = TestRegistry::filesystem_at(&file, |_| {});
    let r = reg.get("/healthz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = reg.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "UNAVAILABLE");
    // A root that does not exist yet is fine: it is created on first write.
    let reg = TestRegistry::filesystem_at(&dir.path().join("later"), |_| {});
    assert_eq!(reg.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn invalid_names_and_references_rejected_before_storage() {
    for reg in TestRegistry::all() {
        let table = [
            ("/v2/Upper/manifests/latest", 400, "NAME_INVALID"),
            ("/v2/a/../b/manifests/latest", 400, "NAME_INVALID"),
            ("/v2/a%2Fb/manifests/latest", 400, "NAME_INVALID"),
            ("/v2/a/%2E%2E/b/tags/list", 400, "NAME_INVALID"),
            ("/v2/x/manifests/-bad", 404, "MANIFEST_UNKNOWN"),
            (
                "/v2/x/manifests/.INVALID_MANIFEST_NAME",
                404,
                "MANIFEST_UNKNOWN",
            ),
            ("/v2/x/blobs/sha256:123", 400, "DIGEST_INVALID"),
            ("/v2/x/blobs/uploads/../../etc", 404, "UNSUPPORTED"),
            ("/v2/x/blobs/uploads/not-a-uuid", 404, "BLOB_UPLOAD_UNKNOWN"),
            ("/v2/x/what/ever", 404, "UNSUPPORTED"),
        ];
        for (path, status, code) in table {
            let r = reg.get(path).await;
            assert_eq!(
                (r.status.as_u16(), r.error_code().as_str()),
                (status, code),
                "{} {path}",
                reg.kind
            );
        }
        // Reads find no manifest under an invalid tag; a push is told why.
        let r = reg
            .req(Method::PUT, "/v2/x/manifests/-bad", &[], "{}")
            .await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (400, "TAG_INVALID"),
            "{}",
            reg.kind
        );
        if let Some(root) = &reg.root {
            assert!(
                !root.join("docker").exists(),
                "bad requests must not create storage"
            );
        }
    }
}

#[tokio::test]
async fn custom_headers_from_config() {
    let regs = TestRegistry::all_with(|c| {
        c.http
            .headers
            .insert("X-Content-Type-Options".into(), vec!["nosniff".into()]);
    });
    for reg in regs {
        let r = reg.get("/v2/").await;
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn read_only_mode_refuses_writes_and_serves_reads() {
    // Fill a storage, then serve that same storage read-only: every write is
    // refused and every read returns the stored content.
    let dir = tempfile::tempdir().unwrap();
    let mem: Arc<dyn StorageDriver> = Arc::new(MemoryDriver::new());
    let read_only = |c: &mut Config| {
        c.storage.maintenance.readonly.enabled = true;
        c.storage.delete.enabled = true;
    };
    let pairs = [
        (
            TestRegistry::with_driver(mem.clone(), |c| c.storage.delete.enabled = true),
            TestRegistry::with_driver(mem, read_only),
        ),
        (
            TestRegistry::filesystem_at(dir.path(), |c| c.storage.delete.enabled = true),
            TestRegistry::filesystem_at(dir.path(), read_only),
        ),
    ];
    for (rw, reg) in pairs {
        let (manifest, digest) = rw.push_image("ro/app", "v1", "ro").await;
        let layer = b"layer of ro";
        let layer_digest = Digest::sha256_of(layer);
        let r = reg
            .req(Method::POST, "/v2/ro/app/blobs/uploads/", &[], "")
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
        );
        assert!(r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("read-only"));
        let r = reg
            .req(Method::PUT, "/v2/ro/app/manifests/v2", &[], "{}")
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        let r = reg
            .req(Method::DELETE, "/v2/ro/app/manifests/v1", &[], "")
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        let r = reg
            .req(
                Method::DELETE,
                &format!("/v2/ro/app/blobs/{layer_digest}"),
                &[],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

        // Reads serve what was stored, byte for byte.
        let r = reg.get("/v2/ro/app/manifests/v1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", reg.kind);
        assert_eq!(r.body.as_ref(), manifest.as_slice(), "{}", reg.kind);
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.to_string().as_str())
        );
        let r = reg.get(&format!("/v2/ro/app/manifests/{digest}")).await;
        assert_eq!(r.body.as_ref(), manifest.as_slice());
        let r = reg.get(&format!("/v2/ro/app/blobs/{layer_digest}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", reg.kind);
        assert_eq!(r.body.as_ref(), layer, "{}", reg.kind);
        let r = reg.head(&format!("/v2/ro/app/blobs/{layer_digest}")).await;
        assert_eq!(r.header("content-length"), Some("11"));
        let r = reg.get("/v2/ro/app/tags/list").await;
        assert_eq!(r.json()["tags"], serde_json::json!(["v1"]), "{}", reg.kind);
        let r = reg.get("/v2/_catalog").await;
        assert_eq!(
            r.json()["repositories"],
            serde_json::json!(["ro/app"]),
            "{}",
            reg.kind
        );
    }
}

#[tokio::test]
async fn metrics_only_when_enabled() {
    let off = TestRegistry::memory_with(|_| {});
    assert_eq!(off.get("/metrics").await.status, StatusCode::NOT_FOUND);
    let on = TestRegistry::memory_with(|c| c.http.debug.prometheus.enabled = true);
    let r = on.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("berth_gc_runs_total 0"), "{text}");
    assert!(text.contains("berth_build_info{version="));
}
