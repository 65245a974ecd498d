//! Tags, catalog, search and the on-disk layout.

use axum::http::{Method, StatusCode};
use berth::oci::digest::Digest;

use crate::support::*;

#[tokio::test]
async fn tags_list_sorted_and_paginated() {
    for reg in TestRegistry::all() {
        let (body, _) = reg.push_image("t/repo", "b", "t").await;
        for tag in ["a", "c", "B", "1.0", "latest"] {
            assert_eq!(
                reg.put_manifest("t/repo", tag, OCI_MANIFEST, &body)
                    .await
                    .status,
                StatusCode::CREATED
            );
        }
        let r = reg.get("/v2/t/repo/tags/list").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.json(),
            serde_json::json!({"name": "t/repo", "tags": ["1.0", "B", "a", "b", "c", "latest"]})
        );
        assert!(r.header("link").is_none());

        let r = reg.get("/v2/t/repo/tags/list?n=2").await;
        assert_eq!(r.json()["tags"], serde_json::json!(["1.0", "B"]));
        assert_eq!(
            r.header("link"),
            Some("</v2/t/repo/tags/list?last=B&n=2>; rel=\"next\"")
        );
        let r = reg.get("/v2/t/repo/tags/list?n=2&last=B").await;
        assert_eq!(r.json()["tags"], serde_json::json!(["a", "b"]));
        let r = reg.get("/v2/t/repo/tags/list?n=10&last=b").await;
        assert_eq!(r.json()["tags"], serde_json::json!(["c", "latest"]));
        assert!(r.header("link").is_none());

        let r = reg.get("/v2/t/repo/tags/list?n=100000").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID")
        );
        let r = reg.get("/v2/t/repo/tags/list?n=-1").await;
        assert_eq!(r.error_code(), "PAGINATION_NUMBER_INVALID");

        let r = reg.get("/v2/never/pushed/tags/list").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
        );
    }
}

/// A name holding only an upload session or layers is no repository yet:
/// its tags are NAME_UNKNOWN (as registry:2 answers); once a manifest is
/// pushed by digest, the list exists and is empty.
#[tokio::test]
async fn tags_list_of_a_name_with_only_uploads_or_layers() {
    for reg in TestRegistry::all() {
        let r = reg
            .req(
                axum::http::Method::POST,
                "/v2/only/upload/blobs/uploads/",
                &[],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", reg.kind);
        reg.push_blob("only/layer", b"a layer and nothing else")
            .await;
        for name in ["only/upload", "only/layer"] {
            let r = reg.get(&format!("/v2/{name}/tags/list")).await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
                "{} {name}",
                reg.kind
            );
        }
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let cd = reg.push_blob("only/layer", config).await;
        let layer = b"a layer and nothing else";
        let manifest = image_manifest(
            &cd,
            config.len(),
            &[(Digest::sha256_of(layer), layer.len())],
            None,
        );
        let by_digest = Digest::sha256_of(&manifest).to_string();
        let r = reg
            .put_manifest("only/layer", &by_digest, OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", reg.kind);
        let r = reg.get("/v2/only/layer/tags/list").await;
        assert_eq!(r.status, StatusCode::OK, "{}", reg.kind);
        assert_eq!(r.json()["tags"], serde_json::json!([]), "{}", reg.kind);
    }
}

/// Pages of a repository with more tags than a page, in random push order:
/// every tag once, in order, whatever the page size.
#[tokio::test]
async fn tags_list_pages_through_many_tags() {
    for reg in TestRegistry::all() {
        let (body, _) = reg.push_image("many/tags", "seed", "m").await;
        let mut want: Vec<String> = (0..150u32)
            .map(|i| format!("v{}", i.wrapping_mul(2_654_435_761) % 1000))
            .collect();
        for tag in &want {
            let r = reg
                .put_manifest("many/tags", tag, OCI_MANIFEST, &body)
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
        want.push("seed".into());
        want.sort();
        want.dedup();
        for n in [1, 7, 100, want.len() - 1, want.len()] {
            let mut got = Vec::new();
            let mut url = format!("/v2/many/tags/tags/list?n={n}");
            loop {
                let r = reg.get(&url).await;
                let tags = r.json()["tags"].as_array().unwrap().clone();
                assert!(tags.len() <= n, "{} {n}", reg.kind);
                got.extend(tags.iter().map(|t| t.as_str().unwrap().to_string()));
                match r.header("link") {
                    Some(l) => url = l[1..l.find('>').unwrap()].to_string(),
                    None => break,
                }
            }
            assert_eq!(got, want, "{} n={n}", reg.kind);
        }
    }
}

#[tokio::test]
async fn catalog_sorted_and_paginated() {
    for reg in TestRegistry::all() {
        let names = [
            "zeta",
            "alpha/one",
            "alpha",
            "a/b/c/d/e/f/g/h",
            "mid-dle/x_y",
        ];
        for n in names {
            reg.push_image(n, "v", n).await;
        }
        // A repository with only blobs (no manifests) is not listed.
        reg.push_blob("blobonly", b"x").await;
        // The same answers from the storage walk and from the index.
        for indexed in [false, true] {
            if indexed {
                reg.refresh_index().await;
            }
            check_catalog_pages(&reg).await;
        }
    }
}

async fn check_catalog_pages(reg: &TestRegistry) {
    {
        let r = reg.get("/v2/_catalog").await;
        assert_eq!(r.status, StatusCode::OK);
        let want = [
            "a/b/c/d/e/f/g/h",
            "alpha",
            "alpha/one",
            "mid-dle/x_y",
            "zeta",
        ];
        assert_eq!(r.json(), serde_json::json!({"repositories": want}));
        let r = reg.get("/v2/_catalog?n=2").await;
        assert_eq!(
            r.json()["repositories"],
            serde_json::json!(["a/b/c/d/e/f/g/h", "alpha"])
        );
        assert_eq!(
            r.header("link"),
            Some("</v2/_catalog?last=alpha&n=2>; rel=\"next\"")
        );
        let r = reg.get("/v2/_catalog?n=2&last=alpha").await;
        assert_eq!(
            r.json()["repositories"],
            serde_json::json!(["alpha/one", "mid-dle/x_y"])
        );
        let r = reg.get("/v2/_catalog?n=2&last=mid-dle%2Fx_y").await;
        assert_eq!(r.json()["repositories"], serde_json::json!(["zeta"]));
        assert!(r.header("link").is_none());
        let r = reg.get("/v2/_catalog?n=1001").await;
        assert_eq!(r.error_code(), "PAGINATION_NUMBER_INVALID");
    }
}

#[tokio::test]
async fn catalog_page_size_has_a_server_cap() {
    for reg in TestRegistry::all_with(|c| c.catalog.maxentries = 3) {
        for i in 0..5 {
            reg.push_image(&format!("r{i}"), "v", "x").await;
        }
        reg.refresh_index().await;
        // Without n, the page is the smaller of 100 and the cap.
        let r = reg.get("/v2/_catalog").await;
        assert_eq!(r.json()["repositories"].as_array().unwrap().len(), 3);
        assert_eq!(
            r.header("link"),
            Some("</v2/_catalog?last=r2&n=3>; rel=\"next\"")
        );
        let r = reg.get("/v2/_catalog?n=3&last=r2").await;
        assert_eq!(r.json()["repositories"], serde_json::json!(["r3", "r4"]));
        assert_eq!(
            reg.get("/v2/_catalog?n=4").await.status,
            StatusCode::BAD_REQUEST
        );
    }
}

#[tokio::test]
async fn v1_search() {
    for reg in TestRegistry::all() {
        for n in ["team/web-app", "team/db", "other/webby"] {
            reg.push_image(n, "v", n).await;
        }
        for indexed in [false, true] {
            if indexed {
                reg.refresh_index().await;
            }
            check_search(&reg).await;
        }
    }
}

async fn check_search(reg: &TestRegistry) {
    {
        let r = reg.get("/v1/search?q=web").await;
        assert_eq!(r.status, StatusCode::OK);
        let j = r.json();
        assert_eq!(j["num_results"], 2);
        assert_eq!(j["query"], "web");
        let names: Vec<_> = j["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["other/webby", "team/web-app"]);
        assert_eq!(j["results"][0]["description"], "");
        let j = reg.get("/v1/search?q=&n=1&page=2").await.json();
        assert_eq!(j["num_results"], 3);
        assert_eq!(j["results"][0]["name"], "team/db");
        assert_eq!(j["num_pages"], 3);
    }
}

#[tokio::test]
async fn filesystem_layout_is_distributions() {
    for reg in TestRegistry::all() {
        let Some(root) = reg.root.clone() else {
            continue;
        };
        let (body, d) = reg.push_image("lay/out", "v1", "layout").await;
        let v2 = root.join("docker/registry/v2");
        let hex = d.hex();
        let blob = v2.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]));
        assert_eq!(std::fs::read(&blob).unwrap(), body);
        let repo = v2.join("repositories/lay/out");
        let read = |p: &str| std::fs::read_to_string(repo.join(p)).unwrap();
        assert_eq!(
            read(&format!("_manifests/revisions/sha256/{hex}/link")),
            d.to_string()
        );
        assert_eq!(read("_manifests/tags/v1/current/link"), d.to_string());
        assert_eq!(
            read(&format!("_manifests/tags/v1/index/sha256/{hex}/link")),
            d.to_string()
        );
        let layer = Digest::sha256_of(b"layer of layout");
        assert_eq!(
            read(&format!("_layers/sha256/{}/link", layer.hex())),
            layer.to_string()
        );
        // Completed uploads leave nothing behind.
        let uploads = repo.join("_uploads");
        let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0);
    }
}

#[tokio::test]
async fn catalog_pages_in_component_order_with_nested_names() {
    for reg in TestRegistry::all() {
        let names = ["a-b", "a/b", "a", "a/b/c", "ab", "b"];
        for n in names {
            reg.push_image(n, "v", n).await;
        }
        for indexed in [false, true] {
            if indexed {
                reg.refresh_index().await;
            }
            check_nested_pages(&reg).await;
        }
    }
}

async fn check_nested_pages(reg: &TestRegistry) {
    {
        let all = reg.get("/v2/_catalog").await.json()["repositories"].clone();
        assert_eq!(
            all,
            serde_json::json!(["a", "a/b", "a/b/c", "a-b", "ab", "b"]),
            "{}",
            reg.kind
        );
        // Walk the pages by Link, two at a time: same list, no repeats.
        let mut got = Vec::new();
        let mut url = "/v2/_catalog?n=2".to_string();
        loop {
            let r = reg.get(&url).await;
            for v in r.json()["repositories"].as_array().unwrap() {
                got.push(v.as_str().unwrap().to_string());
            }
            match r.header("link") {
                Some(l) => {
                    url = l
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap()
                        .to_string()
                }
                None => break,
            }
        }
        assert_eq!(got, ["a", "a/b", "a/b/c", "a-b", "ab", "b"], "{}", reg.kind);
    }
}

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
