//! Known vulnerability classes of registries, one regression test each
//! against a live server (the others are listed in docs/reliability.md
//! with the tests in tests/api/ that cover them).

use crate::live::{client_from, error_code, image_manifest, live_with, OCI_INDEX, OCI_MANIFEST};
use base64::Engine;
use berth::config::auth::{AccessConfig, AccessRule, AuthConfig, HtpasswdAuthConfig};

/// CVE-2023-2253: `n` on `_catalog` and `tags/list` is bounded by
/// `catalog.maxentries` (1000 by default): above it (or past u64) the
/// answer is 400 `PAGINATION_NUMBER_INVALID` at once, not a huge walk or
/// allocation; at the bound it is served.
#[tokio::test]
async fn unbounded_n_on_listings_is_refused() {
    let srv = live_with(|_| {}).await;
    let c = client_from("127.0.0.1");
    srv.push_image(&c, "app", "v1", b"l").await;
    for path in ["/v2/_catalog", "/v2/app/tags/list"] {
        for n in ["1001", "1000000000", "18446744073709551616", "-1", "1e9"] {
            let r = c
                .get(format!("{}{path}?n={n}", srv.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{path}?n={n}");
            assert_eq!(
                error_code(&r.bytes().await.unwrap()),
                "PAGINATION_NUMBER_INVALID"
            );
        }
        let r = c
            .get(format!("{}{path}?n=1000", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}?n=1000");
    }
}

/// With `storage.delete.enabled` false (the default), deleting a tag or a
/// manifest is 405 `UNSUPPORTED`, and both are still served.
#[tokio::test]
async fn tag_delete_with_deletes_disabled_is_refused() {
    let srv = live_with(|_| {}).await;
    let c = client_from("127.0.0.1");
    let (_, d) = srv.push_image(&c, "app", "v1", b"l").await;
    for reference in ["v1".to_string(), d.to_string()] {
        let r = c
            .delete(format!("{}/v2/app/manifests/{reference}", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "DELETE {reference}");
        assert_eq!(error_code(&r.bytes().await.unwrap()), "UNSUPPORTED");
    }
    let r = c
        .get(format!("{}/v2/app/manifests/v1", srv.base))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/v2/app/tags/list", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["tags"],
        serde_json::json!(["v1"])
    );
}

/// CVE-2021-41190: a manifest that is both an image and an index (both
/// `layers` and `manifests`), or whose `mediaType` disagrees with its
/// Content-Type, is refused with 400 `MANIFEST_INVALID`, whichever type
/// it is sent as, and nothing is tagged.
#[tokio::test]
async fn ambiguous_manifests_are_refused() {
    let srv = live_with(|_| {}).await;
    let c = client_from("127.0.0.1");
    let (image, image_digest) = srv.push_image(&c, "app", "v1", b"l").await;
    let cfg = srv.push_blob(&c, "app", b"{}").await;
    let child = serde_json::json!([{"mediaType": OCI_MANIFEST, "digest": image_digest.to_string(), "size": image.len()}]);
    let mut both: serde_json::Value =
        serde_json::from_slice(&image_manifest(&cfg, 2, &[], None)).unwrap();
    both["manifests"] = child.clone();
    let mut both_no_type = both.clone();
    both_no_type.as_object_mut().unwrap().remove("mediaType");
    let index_typed_image: serde_json::Value = {
        let mut m: serde_json::Value = serde_json::from_slice(&image).unwrap();
        m["mediaType"] = OCI_INDEX.into();
        m
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": child});
    let cases = [
        ("both, sent as image", &both, OCI_MANIFEST),
        ("both, sent as index", &both, OCI_INDEX),
        ("both, no mediaType, as index", &both_no_type, OCI_INDEX),
        ("both, no mediaType, as image", &both_no_type, OCI_MANIFEST),
        (
            "image body saying index, as image",
            &index_typed_image,
            OCI_MANIFEST,
        ),
        ("index body, sent as image", &index, OCI_MANIFEST),
    ];
    for (what, body, ct) in cases {
        let r = srv
            .put_manifest(&c, "app", "confused", ct, serde_json::to_vec(body).unwrap())
            .await;
        assert_eq!(r.status(), 400, "{what}");
        assert_eq!(
            error_code(&r.bytes().await.unwrap()),
            "MANIFEST_INVALID",
            "{what}"
        );
    }
    let r = c
        .get(format!("{}/v2/app/manifests/confused", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "nothing was tagged");
    // The unambiguous index is accepted (the refusals were not blanket).
    let r = srv
        .put_manifest(
            &c,
            "app",
            "idx",
            OCI_INDEX,
            serde_json::to_vec(&index).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 201);
}

fn basic(user: &str, pw: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    format!("Basic {b64}")
}

/// A user with only pull on a repository cannot move its tag: the PUT is
/// 403 `DENIED` before the body counts, and the tag still names the
/// original manifest; the owner can move it.
#[tokio::test]
async fn tag_overwrite_without_push_right_is_refused() {
    let users = tempfile::tempdir().unwrap();
    let htpasswd = users.path().join("htpasswd");
    berth::auth::htpasswd::add_user(&htpasswd, "owner", "ownerpw", 4).unwrap();
    berth::auth::htpasswd::add_user(&htpasswd, "reader", "readerpw", 4).unwrap();
    let rule = |repos: &[&str], actions: &[&str]| AccessRule {
        repositories: repos.iter().map(|s| s.to_string()).collect(),
        actions: actions.iter().map(|s| s.to_string()).collect(),
    };
    let mut access = AccessConfig::default();
    access
        .users
        .insert("owner".into(), vec![rule(&["**"], &["*"])]);
    access
        .users
        .insert("reader".into(), vec![rule(&["team/**"], &["pull"])]);
    let path = htpasswd.display().to_string();
    let srv = live_with(move |c| {
        c.auth = Some(AuthConfig {
            htpasswd: Some(HtpasswdAuthConfig {
                realm: "r".into(),
                path: path.clone(),
            }),
            ..Default::default()
        });
        c.access = Some(access.clone());
    })
    .await;
    let c = client_from("127.0.0.1");
    let (owner, reader) = (basic("owner", "ownerpw"), basic("reader", "readerpw"));
    let put = |auth: String, body: Vec<u8>| {
        c.put(format!("{}/v2/team/app/manifests/v1", srv.base))
            .header("authorization", auth)
            .header("content-type", OCI_MANIFEST)
            .body(body)
            .send()
    };
    let push_blob = |auth: String, data: &'static [u8]| {
        let d = berth::oci::digest::Digest::sha256_of(data);
        let req = c
            .post(format!(
                "{}/v2/team/app/blobs/uploads/?digest={d}",
                srv.base
            ))
            .header("authorization", auth)
            .body(data)
            .send();
        async move { (req.await.unwrap().status().as_u16(), d) }
    };
    let (s, cfg) = push_blob(owner.clone(), b"{}").await;
    assert_eq!(s, 201);
    let original = image_manifest(&cfg, 2, &[], None);
    assert_eq!(
        put(owner.clone(), original.clone()).await.unwrap().status(),
        201
    );
    // The reader may not upload a blob either.
    let (s, _) = push_blob(reader.clone(), b"evil").await;
    assert_eq!(s, 403);
    let evil = image_manifest(&cfg, 2, &[], Some(serde_json::json!({"by": "reader"})));
    let r = put(reader.clone(), evil).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "DENIED");
    let r = c
        .get(format!("{}/v2/team/app/manifests/v1", srv.base))
        .header("authorization", &reader)
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        &original[..],
        "the tag moved"
    );
    let moved = image_manifest(&cfg, 2, &[], Some(serde_json::json!({"by": "owner"})));
    assert_eq!(put(owner, moved).await.unwrap().status(), 201);
}

/// Deeply nested JSON in a manifest (100,000 levels, well under the size
/// limit) is refused with 400 `MANIFEST_INVALID`, with no stack overflow:
/// the server answers the next request.
#[tokio::test]
async fn deeply_nested_manifest_json_is_refused() {
    let srv = live_with(|_| {}).await;
    let c = client_from("127.0.0.1");
    let depth = 100_000;
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let body =
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","annotations":{nested}}}"#);
        let r = srv
            .put_manifest(&c, "app", "deep", OCI_MANIFEST, body.into_bytes())
            .await;
        assert_eq!(r.status(), 400);
        assert_eq!(error_code(&r.bytes().await.unwrap()), "MANIFEST_INVALID");
    }
    let r = c.get(format!("{}/v2/", srv.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
