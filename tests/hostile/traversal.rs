//! Path traversal in names, digests and upload ids, sent byte for byte
//! (`..`, `%2e%2e`, `%2f`, absolute, NUL, backslash) to a live server on a
//! filesystem root: every answer is the spec's error, and no file outside
//! the root (nor any new one inside it) appears or changes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::live::{client_from, error_code, live_with, raw};

/// Every file and directory under `dir` with its content (files) or
/// nothing (directories), for before/after comparison.
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let key = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(key, None);
                stack.push(p);
            } else {
                out.insert(key, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

const UUID: &str = "0b8c6f9e-2f7a-4d3c-9b1e-5a6d7c8e9f00";

#[tokio::test]
async fn traversal_in_names_digests_and_upload_ids_touches_nothing() {
    let srv = live_with(|c| c.storage.delete.enabled = true).await;
    let c = client_from("127.0.0.1");
    srv.push_image(&c, "ok", "v1", b"layer").await;
    // A neighbour of the root that a traversal would reach.
    std::fs::create_dir(srv.dir.path().join("outside")).unwrap();
    std::fs::write(srv.dir.path().join("outside/secret"), b"keep").unwrap();
    assert!(srv.root.join("docker/registry/v2").is_dir());
    let before = snapshot(srv.dir.path());

    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    let d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    // (method, target, expected status, expected code).
    let cases: Vec<(&str, String, u16, &str)> = vec![
        // Names.
        (
            "GET",
            "/v2/../../outside/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/ok/../../outside/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/%2e%2e/%2e%2e/outside/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/ok%2f..%2f..%2foutside/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2//outside/secret/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        ("GET", "/v2/ok%00/manifests/v1".into(), 400, "NAME_INVALID"),
        (
            "GET",
            "/v2/ok%5c..%5c..%5coutside/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/ok\\..\\..\\outside/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "PUT",
            "/v2/..%2f..%2fescape/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "PUT",
            "/v2/a/../../escape/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "POST",
            "/v2/%2e%2e/escape/blobs/uploads/".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "DELETE",
            "/v2/%2e%2e%2foutside/manifests/v1".into(),
            400,
            "NAME_INVALID",
        ),
        // Tags.
        (
            "PUT",
            "/v2/ok/manifests/..%2f..%2fescape".into(),
            400,
            "TAG_INVALID",
        ),
        ("PUT", "/v2/ok/manifests/%2e%2e".into(), 400, "TAG_INVALID"),
        // Digests.
        (
            "GET",
            "/v2/ok/blobs/sha256:..%2f..%2f..%2foutside%2fsecret".into(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            "/v2/ok/blobs/sha256:%2e%2e".into(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            "/v2/ok/blobs/sha256:../../outside".into(),
            404,
            "UNSUPPORTED",
        ),
        // Neither a digest nor a tag: no manifest by that name (as a bad tag).
        (
            "GET",
            "/v2/ok/manifests/sha256:..%2f..%2fx".into(),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "DELETE",
            "/v2/ok/blobs/sha256:..%5c..%5cx".into(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "POST",
            "/v2/ok/blobs/uploads/?digest=sha256:..%2f..%2fescape".into(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "POST",
            "/v2/ok/blobs/uploads/?digest=%2foutside%2fsecret".into(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "POST",
            "/v2/ok/blobs/uploads/?mount=sha256:..%2f..&from=..%2f..%2foutside".into(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "PUT",
            format!("/v2/ok/blobs/uploads/{UUID}?digest=sha256:..%2f..%2fescape"),
            400,
            "DIGEST_INVALID",
        ),
        // Upload ids.
        (
            "PATCH",
            "/v2/ok/blobs/uploads/..%2f..%2f..%2foutside".into(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "PATCH",
            "/v2/ok/blobs/uploads/%2e%2e".into(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "PUT",
            format!("/v2/ok/blobs/uploads/..?digest={d}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "GET",
            "/v2/ok/blobs/uploads/%00".into(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "DELETE",
            "/v2/ok/blobs/uploads/%2foutside%2fsecret".into(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "GET",
            "/v2/ok/blobs/uploads/%5c..%5c..".into(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "PATCH",
            "/v2/ok/blobs/uploads/../../../outside".into(),
            404,
            "UNSUPPORTED",
        ),
    ];
    let mut wrong = Vec::new();
    for (method, target, status, code) in &cases {
        let (got, resp) = raw(&srv.base, method, target.as_bytes(), body).await;
        let got_code = error_code(&resp);
        if (got, got_code.as_str()) != (*status, *code) {
            wrong.push(format!(
                "{method} {target}: {got} {got_code:?}, want {status} {code:?}"
            ));
        }
    }
    // A raw NUL byte in the request line.
    let (got, _) = raw(&srv.base, "GET", b"/v2/ok\0/manifests/v1", b"").await;
    if got != 400 {
        wrong.push(format!("raw NUL: {got}, want 400"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        snapshot(srv.dir.path()),
        before,
        "a file appeared or changed"
    );
    // And the registry still serves what it had.
    let r = c
        .get(format!("{}/v2/ok/manifests/v1", srv.base))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
