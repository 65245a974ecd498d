//! The web UI through the router (no browser): security headers, `GET /`
//! for API clients, `ui.enabled: false`, `http.prefix`, asset caching,
//! manifest pages, tag and repository paging. Sign-in, visibility, CSRF and
//! deletes: ui_auth.rs. tests/ui_browser.rs drives the pages in Chromium.

use axum::http::{Method, StatusCode};
use berth::oci::digest::Digest;

use crate::support::*;

pub(crate) const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

pub(crate) fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The session cookie a response set (`name=value`).
pub(crate) fn cookie(r: &Resp) -> String {
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

/// POSTs the login form with the session `cookie` of the form page and
/// `body` (`csrf=...&username=...&password=...`), from the registry's own
/// origin; returns the response.
pub(crate) async fn login_post(reg: &TestRegistry, cookie: &str, body: String) -> Resp {
    reg.req(
        Method::POST,
        "/ui/login",
        &[
            ("cookie", cookie),
            ("origin", "http://registry.test"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        body,
    )
    .await
}

/// The CSRF token of a page (its `csrf-token` meta element; forms carry the same).
pub(crate) fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf-token\" content=\"")
        .expect("a CSRF token")
        + 27;
    page[at..].split('"').next().unwrap().to_string()
}

pub(crate) fn assert_security_headers(r: &Resp, what: &str) {
    let csp = r.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}");
    assert!(!csp.contains("unsafe-inline"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("same-origin"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test]
async fn ui_pages_carry_security_headers_and_no_inline_code() {
    let reg = TestRegistry::memory_with(|_| {});
    let (_, d) = reg.push_image("team/app", "v1", "a").await;
    for path in [
        "/ui/".to_string(),
        "/ui/?q=app".into(),
        "/ui/r/team/app".into(),
        "/ui/r/team/app/-/m/v1".into(),
        format!("/ui/r/team/app/-/m/{d}"),
        "/ui/status".into(),
        "/ui/login".into(),
        "/ui/no/such/page".into(),
        "/ui/r/team/none".into(),
        "/ui/assets/ui.css".into(),
    ] {
        let r = reg.req(Method::GET, &path, &[("accept", HTML)], "").await;
        assert_security_headers(&r, &path);
        let body = text(&r);
        if r.header("content-type") == Some("text/html; charset=utf-8") {
            assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
            assert!(
                !body.contains("<script>") && !body.contains("style="),
                "{path}"
            );
            assert!(!body.contains(" onclick="), "{path}");
        }
    }
    let r = reg.get("/ui/r/team/app").await;
    assert_eq!(r.status, StatusCode::OK);
    let body = text(&r);
    assert!(
        body.contains("docker pull registry.test/team/app:v1"),
        "{body}"
    );
    assert!(body.contains(&format!("/ui/r/team/app/-/m/{d}")));
    let status = text(&reg.get("/ui/status").await);
    assert!(status.contains("<dd>inmemory</dd>"), "{status}");
    assert!(status.contains(&format!("berth {}", env!("CARGO_PKG_VERSION"))));
    assert!(status.contains("none since start"));
    reg.registry()
        .gc_stats()
        .record(&berth::registry::gc::GcReport {
            bytes_freed: 3 * 1024 * 1024,
            ..Default::default()
        });
    let status = text(&reg.get("/ui/status").await);
    assert!(status.contains("<dd>3.0 MiB</dd>"), "{status}");
    assert_eq!(
        reg.get("/ui/no/such/page").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reg.get("/ui/r/team/none").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn root_answers_api_clients_as_before_and_sends_browsers_to_the_ui() {
    let reg = TestRegistry::memory_with(|_| {});
    for accept in [None, Some("application/json"), Some("*/*")] {
        let h: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let r = reg.req(Method::GET, "/", &h, "").await;
        assert_eq!(r.status, StatusCode::OK, "{accept:?}");
        assert!(r.body.is_empty(), "{accept:?}");
        assert!(r.header("content-security-policy").is_none());
    }
    let r = reg.req(Method::HEAD, "/", &[("accept", HTML)], "").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg.req(Method::GET, "/", &[("accept", HTML)], "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/ui/"));
    let r = reg.get("/ui").await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/ui/"))
    );
}

#[tokio::test]
async fn ui_disabled_leaves_only_the_api() {
    let reg = TestRegistry::memory_with(|c| c.ui.enabled = false);
    for path in [
        "/ui/",
        "/ui",
        "/ui/status",
        "/ui/assets/ui.css",
        "/ui/login",
    ] {
        let r = reg.req(Method::GET, path, &[("accept", HTML)], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.error_code(), "UNSUPPORTED", "{path}");
    }
    let r = reg.req(Method::GET, "/", &[("accept", HTML)], "").await;
    assert_eq!((r.status, r.body.is_empty()), (StatusCode::OK, true));
}

#[tokio::test]
async fn ui_under_http_prefix() {
    let reg = TestRegistry::memory_with(|c| c.http.prefix = "/reg".into());
    let data = b"config";
    let d = Digest::sha256_of(data);
    let r = reg
        .req(
            Method::POST,
            &format!("/reg/v2/a/blobs/uploads/?digest={d}"),
            &[],
            &data[..],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let m = image_manifest(&d, data.len(), &[], None);
    let r = reg
        .req(
            Method::PUT,
            "/reg/v2/a/manifests/v1",
            &[("content-type", OCI_MANIFEST)],
            m,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = reg.req(Method::GET, "/", &[("accept", HTML)], "").await;
    assert_eq!(r.header("location"), Some("/reg/ui/"));
    let r = reg.get("/reg/ui/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(text(&r).contains("href=\"/reg/ui/r/a\""), "{}", text(&r));
    let r = reg.get("/reg/ui/r/a").await;
    assert!(text(&r).contains("/reg/ui/r/a/-/m/v1"), "{}", text(&r));
}

#[tokio::test]
async fn assets_have_strong_etags_and_revalidate() {
    let reg = TestRegistry::memory_with(|_| {});
    for (file, ctype) in [("ui.css", "text/css"), ("ui.js", "text/javascript")] {
        let r = reg.get(&format!("/ui/assets/{file}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("content-type").unwrap().starts_with(ctype));
        let etag = r.header("etag").unwrap().to_string();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
        assert!(r.header("cache-control").unwrap().contains("max-age"));
        let r2 = reg
            .req(
                Method::GET,
                &format!("/ui/assets/{file}"),
                &[("if-none-match", &etag)],
                "",
            )
            .await;
        assert_eq!(r2.status, StatusCode::NOT_MODIFIED);
        assert!(r2.body.is_empty());
        // Pages link the asset by its hash.
        let page = text(&reg.get("/ui/").await);
        assert!(page.contains(&format!("/ui/assets/{file}?v={}", etag.trim_matches('"'))));
    }
    assert_eq!(
        reg.get("/ui/assets/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn manifest_pages_show_configs_indexes_children_and_referrers() {
    let reg = TestRegistry::memory_with(|_| {});
    let config = br#"{"architecture":"arm64","os":"linux","created":"2026-01-02T03:04:05Z",
        "config":{"Entrypoint":["/bin/app","--serve"],"Labels":{"org.example.x":"<b>bold</b>"}},
        "history":[{"created_by":"COPY app /bin/app"}]}"#;
    let cd = reg.push_blob("multi", config).await;
    let ld = reg.push_blob("multi", b"layer bytes").await;
    let image = image_manifest(&cd, config.len(), &[(ld, 11)], None);
    let id = Digest::sha256_of(&image);
    assert_eq!(
        reg.put_manifest("multi", &id.to_string(), OCI_MANIFEST, &image)
            .await
            .status,
        StatusCode::CREATED
    );
    let (other, od) = reg.push_image("multi", "amd", "x").await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": od.to_string(), "size": other.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": id.to_string(), "size": image.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
        ],
        "annotations": {"note": "<script>alert(1)</script>"}
    }))
    .unwrap();
    assert_eq!(
        reg.put_manifest("multi", "latest", OCI_INDEX, &index)
            .await
            .status,
        StatusCode::CREATED
    );
    // An SBOM referring to the arm64 image.
    let empty = reg.push_blob("multi", b"{}").await;
    let sbom = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": id.to_string(), "size": image.len()}
    }))
    .unwrap();
    let sd = Digest::sha256_of(&sbom);
    assert_eq!(
        reg.put_manifest("multi", &sd.to_string(), OCI_MANIFEST, &sbom)
            .await
            .status,
        StatusCode::CREATED
    );

    let repo = text(&reg.get("/ui/r/multi").await);
    assert!(repo.contains("linux/amd64, linux/arm64/v8"), "{repo}");
    assert!(repo.contains("OCI index"));
    let idx = text(&reg.get("/ui/r/multi/-/m/latest").await);
    assert!(idx.contains(&format!("/ui/r/multi/-/m/{id}")), "{idx}");
    assert!(idx.contains("linux/arm64/v8"));
    assert!(
        idx.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !idx.contains("<script>alert")
    );
    let img = text(&reg.get(&format!("/ui/r/multi/-/m/{id}")).await);
    assert!(img.contains("/bin/app --serve"), "{img}");
    assert!(img.contains("2026-01-02 03:04 UTC"));
    assert!(img.contains("linux/arm64"));
    assert!(img.contains("&lt;b&gt;bold&lt;/b&gt;"));
    assert!(img.contains("COPY app /bin/app"));
    assert!(img.contains("11 B"));
    assert!(img.contains("application/spdx+json"), "{img}");
    assert!(img.contains(&format!("/ui/r/multi/-/m/{sd}")));
    let s = text(&reg.get(&format!("/ui/r/multi/-/m/{sd}")).await);
    assert!(s.contains("Subject") && s.contains(&format!("/ui/r/multi/-/m/{id}")));
    assert_eq!(
        reg.get("/ui/r/multi/-/m/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_thousand_tags_come_in_pages() {
    let reg = TestRegistry::memory_with(|_| {});
    let (m, _) = reg.push_image("many", "t0000", "m").await;
    for i in 1..1001 {
        let r = reg
            .put_manifest("many", &format!("t{i:04}"), OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let rows = |page: &str| page.matches("<tr><td><a href=\"/ui/r/many/-/m/t").count();
    let first = text(&reg.get("/ui/r/many").await);
    assert_eq!(rows(&first), 50);
    assert!(first.contains("Page 1 of 21 (1001 items)"), "{first}");
    assert!(first.contains(">t0000<") && !first.contains(">t0050<"));
    let last = text(&reg.get("/ui/r/many?sort=name&page=21").await);
    assert_eq!(rows(&last), 1);
    assert!(last.contains(">t1000<"));
    let desc = text(&reg.get("/ui/r/many?sort=-name").await);
    assert!(desc.contains(">t1000<") && !desc.contains(">t0000<"));
    let pushed = text(&reg.get("/ui/r/many?sort=-pushed").await);
    assert_eq!(rows(&pushed), 50);
}

#[tokio::test]
async fn repository_list_pages_and_searches() {
    let reg = TestRegistry::memory_with(|_| {});
    reg.push_image("seed", "v1", "s").await;
    for i in 0..120 {
        reg.push_image(&format!("group/r{i:03}"), "v1", "x").await;
    }
    reg.refresh_index().await;
    let first = text(&reg.get("/ui/").await);
    assert!(first.contains("Page 1 of 3 (121 items)"), "{first}");
    assert!(first.contains(">group/r000<") && !first.contains(">group/r050<"));
    let found = text(&reg.get("/ui/?q=R11").await);
    assert!(found.contains(">group/r110<") && found.contains(">group/r119<"));
    assert!(!found.contains(">group/r100<") && !found.contains(">seed<"));
    assert!(!found.contains("class=\"pager\""));
    let far = reg.get("/ui/?page=99").await;
    assert_eq!(far.status, StatusCode::OK);
    assert!(text(&far).contains(">seed<"), "past the end: the last page");
}

/// The value a `/metrics` series shows.
fn metric(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

#[tokio::test]
async fn status_shows_each_mirror_and_notification_endpoint_escaped() {
    use berth::config::mirror::MirrorConfig;
    use berth::config::notifications::{EndpointConfig, NotificationsConfig};
    // A receiver accepting every event, and a port refusing connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let receiver = axum::Router::new().route("/hook", axum::routing::post(|| async { "" }));
    let server = tokio::spawn(async move { axum::serve(listener, receiver).await });
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_up, upstream, _manifest, _digest) = crate::mirror_routing::upstream_with_alpine().await;
    let reg = crate::mirror_routing::mirror_of(upstream, false, |c| {
        c.http.debug.prometheus.enabled = true;
        c.mirrors = vec![MirrorConfig {
            prefix: "dockerhub".into(),
            remoteurl: "https://upstream.test".into(),
            ttl: std::time::Duration::from_secs(7200),
            maxsize: Some(3 << 30),
            ..Default::default()
        }];
        c.notifications = Some(NotificationsConfig {
            endpoints: vec![
                EndpointConfig {
                    name: "ci<b>".into(),
                    url: format!("http://u:SECRETPW@{hook}/hook?token=SECRETQ"),
                    ..Default::default()
                },
                EndpointConfig {
                    name: "dead".into(),
                    url: format!("http://{dead}/hook"),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
    });
    // A cold pull, a warm pull, and a blob through the mirror.
    for _ in 0..2 {
        let r = reg.get("/v2/dockerhub/alpine/manifests/3.20").await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&reg.get("/v2/dockerhub/alpine/manifests/3.20").await.body).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let b = reg
        .get(&format!("/v2/dockerhub/alpine/blobs/{layer}"))
        .await;
    assert_eq!(b.status, StatusCode::OK);
    // Wait (bounded) until one endpoint delivered and the other failed.
    let section = |page: &str, from: &str, to: &str| -> String {
        let start = page.find(from).unwrap_or(0);
        let end = page[start..].find(to).map_or(page.len(), |e| start + e);
        page[start..end].to_string()
    };
    // Each GET of a manifest or blob above is one `pull` event (4), and
    // what the cold ones stored from the upstream one `fetch` event each
    // (the manifest and the blob): 6 in all.
    let mut page = String::new();
    for _ in 0..600 {
        page = text(&reg.get("/ui/status").await);
        let ci = section(&page, "Notifications ci", "Notifications dead");
        if ci.contains("<dt>Delivered</dt><dd>6</dd>")
            && page.contains("<dt>Last error</dt><dd>cannot connect")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let metrics = text(&reg.get("/metrics").await);
    let hits = metric(&metrics, "berth_mirror_hits_total{mirror=\"dockerhub\"}");
    let misses = metric(&metrics, "berth_mirror_misses_total{mirror=\"dockerhub\"}");
    let bytes = metric(
        &metrics,
        "berth_mirror_bytes_fetched_total{mirror=\"dockerhub\"}",
    );
    assert!(hits >= 1 && misses >= 2 && bytes > 0, "{metrics}");
    for want in [
        "<h2>Mirror dockerhub</h2>".to_string(),
        "<dt>Mode</dt><dd>prefix: dockerhub/…</dd>".into(),
        "<dt>Upstream</dt><dd>https://upstream.test</dd>".into(),
        "<dt>TTL</dt><dd>2h</dd>".into(),
        "<dt>Max size</dt><dd>3.0 GiB</dd>".into(),
        format!("<dt>Hits</dt><dd>{hits}</dd>"),
        format!("<dt>Misses</dt><dd>{misses}</dd>"),
        "<dt>Upstream errors</dt><dd>0</dd>".into(),
        format!("({bytes} bytes)</dd>"),
        // Names are escaped; URLs lose credentials and query values.
        "<h2>Notifications ci&lt;b&gt;</h2>".into(),
        format!("<dd>http://{hook}/hook?token=&lt;redacted&gt;</dd>"),
        "<h2>Notifications dead</h2>".into(),
        "<dt>Last error</dt><dd>cannot connect".into(),
        "<dt>Dropped</dt><dd>0</dd>".into(),
        "<dt>Backlog</dt><dd>in memory</dd>".into(),
    ] {
        assert!(page.contains(&want), "{want} not in\n{page}");
    }
    assert!(!page.contains("SECRET") && !page.contains("<b>"), "{page}");
    // The healthy endpoint delivered and has no error; the dead one none.
    let ci = section(&page, "Notifications ci", "Notifications dead");
    assert!(ci.contains("<dt>Last error</dt><dd>none</dd>"), "{ci}");
    assert!(ci.contains("<dt>Delivered</dt><dd>6</dd>"), "{ci}");
    assert!(ci.contains("<dt>Queue depth</dt><dd>0</dd>"), "{ci}");
    let dead = section(&page, "Notifications dead", "</main>");
    assert!(dead.contains("<dt>Delivered</dt><dd>0</dd>"), "{dead}");
    assert!(dead.contains("<dt>Queue depth</dt><dd>6</dd>"), "{dead}");
    server.abort();
}
