//! registry:2 behaviours beyond the API proper: `http.prefix`, `GET /`,
//! CORS preflight (`OPTIONS`), the `health:` checks and the debug router.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::Router;
use berth::config::auth::{AuthConfig, HtpasswdAuthConfig};
use berth::config::{Config, FileCheck, HealthConfig, HttpCheck, TcpCheck};
use berth::storage::memory::MemoryDriver;
use berth::storage::{BoxReader, FileInfo, FileWriter, StorageDriver, StorageError, StorageResult};
use bytes::Bytes;

use crate::support::*;

#[tokio::test]
async fn prefix_serves_the_api_and_urls_under_it() {
    let dir = crate::auth::users();
    let reg = TestRegistry::memory_with(|c| {
        c.http.prefix = "/registry/".into();
        c.storage.delete.enabled = true;
    });
    assert_eq!(reg.get("/registry/v2/").await.status, StatusCode::OK);
    assert_eq!(reg.get("/registry/v2").await.status, StatusCode::OK);
    // As registry:2: the bare API is not served beside the prefixed one.
    assert_eq!(reg.get("/v2/").await.status, StatusCode::NOT_FOUND);
    // Probes still answer at the root.
    assert_eq!(reg.get("/").await.status, StatusCode::OK);
    assert_eq!(reg.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(reg.get("/registry/healthz").await.status, StatusCode::OK);

    let r = reg
        .req(Method::POST, "/registry/v2/p/app/blobs/uploads/", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = path_of(r.header("location").unwrap());
    assert!(
        loc.starts_with("/registry/v2/p/app/blobs/uploads/"),
        "{loc}"
    );
    // The upload continues at the URL it was given.
    let data = b"prefixed blob";
    let d = berth::oci::digest::Digest::sha256_of(data);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = reg
        .req(
            Method::PUT,
            &format!("{loc}{sep}digest={d}"),
            &[],
            data.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        path_of(r.header("location").unwrap()),
        format!("/registry/v2/p/app/blobs/{d}")
    );
    let manifest = image_manifest(&d, data.len(), &[], None);
    for repo in ["p/one", "p/two"] {
        reg.req(
            Method::POST,
            &format!("/registry/v2/{repo}/blobs/uploads/?digest={d}"),
            &[],
            data.to_vec(),
        )
        .await;
        let r = reg
            .req(
                Method::PUT,
                &format!("/registry/v2/{repo}/manifests/v1"),
                &[("content-type", OCI_MANIFEST)],
                manifest.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert!(path_of(r.header("location").unwrap()).starts_with("/registry/v2/"));
    }
    let r = reg.get("/registry/v2/_catalog?n=1").await;
    let link = r.header("link").unwrap_or_else(|| panic!("{:?}", r.body));
    assert!(link.starts_with("</registry/v2/_catalog?last="), "{link}");

    // The built-in token server's realm carries the prefix too.
    let reg = TestRegistry::memory_with(|c| {
        c.http.prefix = "registry".into();
        c.auth = Some(AuthConfig {
            token: Some(berth::config::auth::TokenAuthConfig {
                builtin: true,
                htpasswd: dir.path().join("htpasswd").display().to_string(),
                ..Default::default()
            }),
            ..Default::default()
        });
    });
    let r = reg.get("/registry/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"http://registry.test/registry/auth/token\",service=\"berth\"")
    );
    let r = reg
        .req(
            Method::GET,
            "/registry/auth/token?service=berth&scope=repository:a/x:pull",
            &[("authorization", &crate::auth::basic("alice", "alicepw"))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn bad_prefixes_are_refused_not_panicked_on() {
    for bad in ["/a b/", "/{x}/", "/*rest", "/a//b", "/../x", "/:id"] {
        let mut c = Config::default();
        c.http.prefix = bad.into();
        let err = berth::app::build_app(c.clone(), Arc::new(MemoryDriver::new()))
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(err.to_string().contains("http.prefix"), "{err}");
        assert!(c.validate().is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn root_answers_200_for_probes() {
    let reg = TestRegistry::memory_with(|_| {});
    for method in [Method::GET, Method::HEAD] {
        let r = reg.req(method, "/", &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty());
        assert_eq!(r.header("cache-control"), Some("no-cache"));
    }
}

#[tokio::test]
async fn options_preflight_passes_with_cors_headers_and_no_challenge() {
    let dir = crate::auth::users();
    let reg = TestRegistry::memory_with(|c| {
        c.auth = Some(AuthConfig {
            htpasswd: Some(HtpasswdAuthConfig {
                realm: "r".into(),
                path: dir.path().join("htpasswd").display().to_string(),
            }),
            ..Default::default()
        });
        let h = &mut c.http.headers;
        h.insert(
            "Access-Control-Allow-Origin".into(),
            vec!["https://ui.example".into()],
        );
        h.insert(
            "Access-Control-Allow-Methods".into(),
            vec!["HEAD, GET, OPTIONS, DELETE".into()],
        );
        h.insert(
            "Access-Control-Allow-Headers".into(),
            vec!["Authorization, Accept".into()],
        );
        h.insert(
            "Access-Control-Allow-Credentials".into(),
            vec!["true".into()],
        );
        h.insert(
            "Access-Control-Expose-Headers".into(),
            vec!["Docker-Content-Digest".into()],
        );
    });
    let preflight = [
        ("origin", "https://ui.example"),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "authorization"),
    ];
    for path in [
        "/v2/",
        "/v2/_catalog",
        "/v2/a/b/tags/list",
        "/v2/a/manifests/latest",
        "/v2/a/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = reg.req(Method::OPTIONS, path, &preflight, "").await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("www-authenticate"), None, "{path}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://ui.example")
        );
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert!(r.header("access-control-allow-headers").is_some());
        assert!(r.header("access-control-allow-methods").is_some());
        assert!(r.header("access-control-expose-headers").is_some());
        assert!(r.header("allow").unwrap().contains("GET"), "{path}");
    }
    let r = reg
        .req(Method::OPTIONS, "/v2/a/manifests/latest", &preflight, "")
        .await;
    assert_eq!(r.header("allow"), Some("GET, HEAD, PUT, DELETE, OPTIONS"));
    // The real request still needs credentials, and carries the CORS headers.
    let r = reg.get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://ui.example")
    );
    // An invalid path is not a route: answered as a GET would be.
    let r = reg
        .req(Method::OPTIONS, "/v2/Upper/tags/list", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// A memory driver whose `stat` fails while `down` is set.
struct Flaky {
    inner: MemoryDriver,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl StorageDriver for Flaky {
    fn name(&self) -> &'static str {
        "inmemory"
    }
    async fn get_content(&self, p: &str) -> StorageResult<Bytes> {
        self.inner.get_content(p).await
    }
    async fn put_content(&self, p: &str, c: Bytes) -> StorageResult<()> {
        self.inner.put_content(p, c).await
    }
    async fn reader(&self, p: &str, o: u64) -> StorageResult<BoxReader> {
        self.inner.reader(p, o).await
    }
    async fn writer(&self, p: &str, a: bool) -> StorageResult<Box<dyn FileWriter>> {
        self.inner.writer(p, a).await
    }
    async fn stat(&self, p: &str) -> StorageResult<FileInfo> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StorageError::backend("inmemory", "backend down"));
        }
        self.inner.stat(p).await
    }
    async fn list(&self, p: &str) -> StorageResult<Vec<String>> {
        self.inner.list(p).await
    }
    async fn move_object(&self, s: &str, d: &str) -> StorageResult<()> {
        self.inner.move_object(s, d).await
    }
    async fn delete(&self, p: &str) -> StorageResult<()> {
        self.inner.delete(p).await
    }
}

pub(crate) fn apps(config: Config, driver: Arc<dyn StorageDriver>) -> berth::app::Apps {
    let registry = berth::app::registry_for(&config, driver);
    berth::app::build_apps(config, registry).unwrap()
}

pub(crate) async fn get(app: &Router, path: &str) -> Resp {
    crate::oneshot::send(app, Method::GET, path, &[], Body::empty()).await
}

#[tokio::test]
async fn storage_check_makes_requests_503_after_threshold_until_recovery() {
    let down = Arc::new(AtomicBool::new(false));
    let driver = Arc::new(Flaky {
        inner: MemoryDriver::new(),
        down: down.clone(),
    });
    let mut config = Config::default();
    let mut health = HealthConfig::default();
    health.storagedriver.enabled = true;
    health.storagedriver.threshold = 2;
    config.health = Some(health);
    let a = apps(config, driver);
    a.health.run_once().await;
    assert_eq!(get(&a.main, "/v2/").await.status, StatusCode::OK);
    assert_eq!(get(&a.debug, "/debug/health").await.body.as_ref(), b"{}");

    down.store(true, Ordering::SeqCst);
    a.health.run_once().await;
    // One failure is below the threshold of 2.
    assert_eq!(get(&a.main, "/v2/").await.status, StatusCode::OK);
    a.health.run_once().await;
    for path in ["/v2/", "/", "/v2/x/tags/list"] {
        let r = get(&a.main, path).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(r.error_code(), "UNAVAILABLE");
    }
    let r = get(&a.main, "/healthz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["errors"][0]["detail"]["storagedriver_inmemory"].is_string());
    let r = get(&a.main, "/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["errors"][0]["detail"]["storagedriver_inmemory"].is_string());
    let r = get(&a.debug, "/debug/health").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json()["storagedriver_inmemory"],
        "inmemory: backend down",
        "{:?}",
        r.json()
    );

    down.store(false, Ordering::SeqCst);
    a.health.run_once().await;
    assert_eq!(get(&a.main, "/v2/").await.status, StatusCode::OK);
    assert_eq!(get(&a.main, "/readyz").await.status, StatusCode::OK);
    assert_eq!(get(&a.debug, "/debug/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn file_tcp_and_http_checks() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("maintenance");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_addr = tcp.local_addr().unwrap().to_string();
    // An HTTP endpoint answering 503 to one request.
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/ping", web.local_addr().unwrap());
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = web.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        head
    });
    let health = HealthConfig {
        file: vec![FileCheck {
            file: flag.display().to_string(),
            ..Default::default()
        }],
        tcp: vec![TcpCheck {
            addr: tcp_addr.clone(),
            ..Default::default()
        }],
        http: vec![HttpCheck {
            uri: uri.clone(),
            statuscode: 503,
            headers: [("X-Probe".to_string(), vec!["yes".to_string()])].into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let config = Config {
        health: Some(health),
        ..Default::default()
    };
    let a = apps(config, Arc::new(MemoryDriver::new()));
    a.health.run_once().await;
    assert!(a.health.is_healthy(), "{:?}", a.health.failing());
    let head = server.await.unwrap();
    assert!(head.starts_with("HEAD /ping HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("X-Probe: yes\r\n"), "{head}");

    std::fs::write(&flag, b"").unwrap();
    drop(tcp);
    // The HTTP endpoint is gone too: its check now fails to connect.
    a.health.run_once().await;
    let failing = a.health.failing();
    assert_eq!(failing[&flag.display().to_string()], "file exists");
    assert_eq!(
        failing[&tcp_addr],
        format!("connection to {tcp_addr} failed")
    );
    assert_eq!(failing[&uri], format!("error while checking: {uri}"));
    assert_eq!(
        get(&a.main, "/v2/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn metrics_move_to_the_debug_listener_when_it_is_configured() {
    let mut config = Config::default();
    config.http.debug.addr = "127.0.0.1:0".into();
    config.http.debug.prometheus.enabled = true;
    let a = apps(config, Arc::new(MemoryDriver::new()));
    assert_eq!(get(&a.main, "/metrics").await.status, StatusCode::NOT_FOUND);
    let r = get(&a.debug, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).contains("berth_build_info"));
    let r = get(&a.debug, "/debug/vars").await;
    assert_eq!(r.json()["berth"]["healthy"], true);
    // Without a debug listener they stay on the main router (as before).
    let on = TestRegistry::memory_with(|c| c.http.debug.prometheus.enabled = true);
    assert_eq!(on.get("/metrics").await.status, StatusCode::OK);
}
