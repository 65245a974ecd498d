//! Tags, catalog, search and the on-disk layout.

use axum::http::StatusCode;
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
