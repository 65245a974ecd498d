//! What listings cost and the in-memory repository index behind `_catalog`
//! and `/v1/search`: pages list only what they return, the index answers
//! without storage listings, and writes show in it (this process's at once,
//! another replica's after a refresh).

use axum::http::{Method, StatusCode};

use crate::support::*;

/// A driver that counts directory listings, to see what a catalog page costs.
struct CountingDriver {
    inner: berth::storage::memory::MemoryDriver,
    lists: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl berth::storage::StorageDriver for CountingDriver {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn get_content(&self, p: &str) -> berth::storage::StorageResult<bytes::Bytes> {
        self.inner.get_content(p).await
    }
    async fn put_content(&self, p: &str, c: bytes::Bytes) -> berth::storage::StorageResult<()> {
        self.inner.put_content(p, c).await
    }
    async fn reader(
        &self,
        p: &str,
        o: u64,
    ) -> berth::storage::StorageResult<berth::storage::BoxReader> {
        self.inner.reader(p, o).await
    }
    async fn writer(
        &self,
        p: &str,
        a: bool,
    ) -> berth::storage::StorageResult<Box<dyn berth::storage::FileWriter>> {
        self.inner.writer(p, a).await
    }
    async fn stat(&self, p: &str) -> berth::storage::StorageResult<berth::storage::FileInfo> {
        self.inner.stat(p).await
    }
    async fn list(&self, p: &str) -> berth::storage::StorageResult<Vec<String>> {
        self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.list(p).await
    }
    async fn move_object(&self, s: &str, d: &str) -> berth::storage::StorageResult<()> {
        self.inner.move_object(s, d).await
    }
    async fn delete(&self, p: &str) -> berth::storage::StorageResult<()> {
        self.inner.delete(p).await
    }
}

#[tokio::test]
async fn a_catalog_page_lists_only_what_it_returns() {
    use std::sync::atomic::Ordering::SeqCst;
    let driver = std::sync::Arc::new(CountingDriver {
        inner: berth::storage::memory::MemoryDriver::new(),
        lists: Default::default(),
    });
    let reg = TestRegistry::with_driver(driver.clone(), |_| {});
    for i in 0..300 {
        reg.push_image(&format!("org{}/repo{i:03}", i % 3), "v", "x")
            .await;
    }
    driver.lists.store(0, SeqCst);
    let r = reg.get("/v2/_catalog?n=10").await;
    assert_eq!(r.json()["repositories"].as_array().unwrap().len(), 10);
    let first_page = driver.lists.load(SeqCst);
    driver.lists.store(0, SeqCst);
    let r = reg.get("/v2/_catalog?n=10&last=org1/repo150").await;
    assert_eq!(r.json()["repositories"][0], "org1/repo151");
    let later_page = driver.lists.load(SeqCst);
    // Root, one namespace, then two listings per repository on the page (its
    // directory and its manifest revisions; +1 repository to know there is
    // more): far from the 600+ a full walk needs.
    assert!(
        first_page <= 2 + 2 * 11,
        "first page listed {first_page} directories"
    );
    assert!(
        later_page <= 4 + 2 * 11,
        "a later page listed {later_page} directories"
    );
}

fn counting() -> std::sync::Arc<CountingDriver> {
    std::sync::Arc::new(CountingDriver {
        inner: berth::storage::memory::MemoryDriver::new(),
        lists: Default::default(),
    })
}

fn catalog_names(r: &Resp) -> Vec<String> {
    r.json()["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn search_names(r: &Resp) -> Vec<String> {
    r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

/// Once built, the index answers `_catalog` (plain and filtered by policy)
/// and `/v1/search` without one directory listing.
#[tokio::test]
async fn the_index_serves_catalog_and_search_without_listing_storage() {
    use std::sync::atomic::Ordering::SeqCst;
    let driver = counting();
    let dir = crate::auth::users();
    let access = berth::config::auth::AccessConfig {
        anonymous: vec![crate::auth::rule(&["org1/**"], &["pull"])],
        authenticated: vec![crate::auth::rule(&["**"], &["pull", "push"])],
        ..Default::default()
    };
    let reg = TestRegistry::with_driver(
        driver.clone(),
        crate::auth::htpasswd_config(&dir, Some(access)),
    );
    let alice = crate::auth::basic("alice", "alicepw");
    let h = [("authorization", alice.as_str())];
    for i in 0..60 {
        let repo = format!("org{}/repo{i:03}", i % 3);
        assert_eq!(
            crate::auth::push_as(&reg, &repo, &alice).await,
            StatusCode::CREATED
        );
    }
    reg.refresh_index().await;
    driver.lists.store(0, SeqCst);
    let r = reg.req(Method::GET, "/v2/_catalog?n=10", &h, "").await;
    assert_eq!(catalog_names(&r).len(), 10);
    assert_eq!(
        r.header("link"),
        Some("</v2/_catalog?last=org0%2Frepo027&n=10>; rel=\"next\"")
    );
    let r = reg
        .req(Method::GET, "/v2/_catalog?n=2&last=org1/repo040", &h, "")
        .await;
    assert_eq!(catalog_names(&r), ["org1/repo043", "org1/repo046"]);
    // Anonymous callers see org1 only: the index is scanned, filtering,
    // until the page is full.
    let r = reg.get("/v2/_catalog?n=3").await;
    assert_eq!(
        catalog_names(&r),
        ["org1/repo001", "org1/repo004", "org1/repo007"]
    );
    let r = reg.get("/v1/search?q=repo05&n=2").await;
    assert_eq!(r.json()["num_results"], 3);
    assert_eq!(search_names(&r), ["org1/repo052", "org1/repo055"]);
    let r = reg.req(Method::GET, "/v1/search?q=repo05", &h, "").await;
    assert_eq!(r.json()["num_results"], 10);
    assert_eq!(driver.lists.load(SeqCst), 0, "listings walked storage");
}

/// A push or a delete of a repository's last manifest through this process
/// shows in the index at once; untagging keeps the repository listed (its
/// manifest stays, as with registry:2).
#[tokio::test]
async fn this_process_writes_show_in_the_index_at_once() {
    use std::sync::atomic::Ordering::SeqCst;
    let driver = counting();
    let reg = TestRegistry::with_driver(driver.clone(), |c| c.storage.delete.enabled = true);
    reg.push_image("old", "v", "old").await;
    reg.refresh_index().await;
    let (_, d) = reg.push_image("fresh/one", "v", "fresh").await;
    driver.lists.store(0, SeqCst);
    assert_eq!(
        catalog_names(&reg.get("/v2/_catalog").await),
        ["fresh/one", "old"]
    );
    assert_eq!(driver.lists.load(SeqCst), 0);
    let r = reg
        .req(Method::DELETE, "/v2/fresh/one/manifests/v", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        catalog_names(&reg.get("/v2/_catalog").await),
        ["fresh/one", "old"]
    );
    let r = reg
        .req(
            Method::DELETE,
            &format!("/v2/fresh/one/manifests/{d}"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    driver.lists.store(0, SeqCst);
    assert_eq!(catalog_names(&reg.get("/v2/_catalog").await), ["old"]);
    assert_eq!(reg.get("/v1/search?q=fresh").await.json()["num_results"], 0);
    assert_eq!(driver.lists.load(SeqCst), 0);
}

/// Another replica's push, delete and garbage collection show in this
/// replica's listings after its next refresh (driven here explicitly; the
/// server runs one every `catalog.refreshinterval`).
#[tokio::test]
async fn another_replicas_writes_show_after_a_refresh() {
    for (a, b) in TestRegistry::replica_pairs() {
        a.push_image("base", "v", "base").await;
        let (_, kept) = b.push_image("kept", "v", "kept").await;
        a.refresh_index().await;
        assert_eq!(
            catalog_names(&a.get("/v2/_catalog").await),
            ["base", "kept"]
        );
        let (_, d) = b.push_image("other/new", "v", "new").await;
        // Stale until the refresh (documented staleness).
        assert_eq!(
            catalog_names(&a.get("/v2/_catalog").await),
            ["base", "kept"],
            "{}",
            a.kind
        );
        assert_eq!(a.get("/v1/search?q=new").await.json()["num_results"], 0);
        a.refresh_index().await;
        assert_eq!(
            catalog_names(&a.get("/v2/_catalog").await),
            ["base", "kept", "other/new"],
            "{}",
            a.kind
        );
        assert_eq!(a.get("/v1/search?q=new").await.json()["num_results"], 1);
        // The other replica deletes the last manifest: gone after a refresh.
        let r = b
            .req(
                Method::DELETE,
                &format!("/v2/other/new/manifests/{d}"),
                &[],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        a.refresh_index().await;
        assert_eq!(
            catalog_names(&a.get("/v2/_catalog").await),
            ["base", "kept"],
            "{}",
            a.kind
        );
        // Untagged by the other replica, then collected there: listed while
        // the manifest exists (as today), gone after the refresh.
        let r = b.req(Method::DELETE, "/v2/kept/manifests/v", &[], "").await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        a.refresh_index().await;
        assert_eq!(
            catalog_names(&a.get("/v2/_catalog").await),
            ["base", "kept"],
            "{}",
            a.kind
        );
        b.refresh_index().await;
        let opts = berth::registry::gc::GcOptions {
            delete_untagged: true,
            ..Default::default()
        };
        let report =
            berth::registry::gc::run_once(b.registry(), &opts, &berth::registry::gc::no_events)
                .await
                .unwrap();
        assert!(
            report.manifests_removed.iter().any(|m| m.digest == kept),
            "{}",
            a.kind
        );
        // The collecting replica's own index dropped it at once.
        assert_eq!(catalog_names(&b.get("/v2/_catalog").await), ["base"]);
        assert_eq!(
            catalog_names(&a.get("/v2/_catalog").await),
            ["base", "kept"],
            "{}",
            a.kind
        );
        a.refresh_index().await;
        assert_eq!(
            catalog_names(&a.get("/v2/_catalog").await),
            ["base"],
            "{}",
            a.kind
        );
    }
}

/// With authentication on and no anonymous rules, an anonymous search is
/// refused with `_catalog`'s challenge before anything is listed.
#[tokio::test]
async fn anonymous_search_with_auth_is_refused_before_any_walk() {
    use std::sync::atomic::Ordering::SeqCst;
    let driver = counting();
    let dir = crate::auth::users();
    let reg = TestRegistry::with_driver(driver.clone(), crate::auth::htpasswd_config(&dir, None));
    let alice = crate::auth::basic("alice", "alicepw");
    assert_eq!(
        crate::auth::push_as(&reg, "team/app", &alice).await,
        StatusCode::CREATED
    );
    driver.lists.store(0, SeqCst);
    for url in ["/v1/search?q=", "/v1/search?q=app", "/v2/_catalog"] {
        let r = reg.get(url).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            "{url}"
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"test-realm\""),
            "{url}"
        );
    }
    assert_eq!(
        driver.lists.load(SeqCst),
        0,
        "an anonymous request walked storage"
    );
    let r = reg
        .req(
            Method::GET,
            "/v1/search?q=app",
            &[("authorization", &alice)],
            "",
        )
        .await;
    assert_eq!(search_names(&r), ["team/app"]);
}
