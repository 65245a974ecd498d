//! Manifests: push, pull, validation, tags, deletes, referrers.

use axum::http::{Method, StatusCode};
use berth::oci::digest::Digest;

use crate::support::*;

#[tokio::test]
async fn push_and_pull_by_tag_and_digest() {
    for reg in TestRegistry::all() {
        let (body, d) = reg.push_image("a/b/c/d/e/f/g/h", "v1", "deep").await;
        for reference in ["v1".to_string(), d.to_string()] {
            let r = reg
                .get(&format!("/v2/a/b/c/d/e/f/g/h/manifests/{reference}"))
                .await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.body.as_ref(), body.as_slice(), "bytes served verbatim");
            assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
            assert_eq!(
                r.header("docker-content-digest"),
                Some(d.to_string().as_str())
            );
            let h = reg
                .head(&format!("/v2/a/b/c/d/e/f/g/h/manifests/{reference}"))
                .await;
            assert_eq!(h.status, StatusCode::OK);
            assert_eq!(
                h.header("content-length"),
                Some(body.len().to_string().as_str())
            );
            assert!(h.body.is_empty());
        }
        let r = reg.get("/v2/a/b/c/d/e/f/g/h/manifests/nope").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
        );
        let r = reg.get(&format!("/v2/other/manifests/{d}")).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "a manifest is visible only in its repository"
        );
    }
}

#[tokio::test]
async fn put_response_headers() {
    for reg in TestRegistry::all() {
        let cd = reg.push_blob("p", b"{}").await;
        let m = image_manifest(&cd, 2, &[], None);
        let r = reg.put_manifest("p", "latest", OCI_MANIFEST, &m).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let d = Digest::sha256_of(&m);
        assert_eq!(
            r.header("docker-content-digest"),
            Some(d.to_string().as_str())
        );
        assert_eq!(
            r.header("location"),
            Some(format!("http://registry.test/v2/p/manifests/{d}").as_str())
        );
        // By digest, matching.
        let r = reg
            .put_manifest("p", &d.to_string(), OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        // By digest, not matching.
        let other = Digest::sha256_of(b"x");
        let r = reg
            .put_manifest("p", &other.to_string(), OCI_MANIFEST, &m)
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
        );
    }
}

#[tokio::test]
async fn manifest_validation_errors() {
    for reg in TestRegistry::all() {
        let cd = reg.push_blob("v", b"{}").await;
        let missing = Digest::sha256_of(b"missing layer");
        let m = image_manifest(&cd, 2, &[(missing.clone(), 13)], None);
        let r = reg.put_manifest("v", "t", OCI_MANIFEST, &m).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
        );
        assert_eq!(
            r.json()["errors"][0]["detail"]["digest"],
            missing.to_string()
        );

        let r = reg.put_manifest("v", "t", OCI_MANIFEST, b"not json").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
        );

        let big = vec![b' '; 4 * 1024 * 1024 + 1];
        let r = reg.put_manifest("v", "t", OCI_MANIFEST, &big).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID")
        );

        // Nothing was tagged by the failures.
        assert_eq!(
            reg.get("/v2/v/manifests/t").await.status,
            StatusCode::NOT_FOUND
        );
    }
}

fn index(children: &[(&Digest, usize, &str)], media_type: &str, child_type: &str) -> Vec<u8> {
    let manifests: Vec<_> = children
        .iter()
        .map(|(d, s, arch)| serde_json::json!({"mediaType": child_type, "digest": d.to_string(), "size": s, "platform": {"architecture": arch, "os": "linux"}}))
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}),
    )
    .unwrap()
}

#[tokio::test]
async fn index_requires_its_children() {
    for reg in TestRegistry::all() {
        let (m1, d1) = reg.push_image("multi", "amd64", "amd").await;
        let (m2, d2) = reg.push_image("multi", "arm64", "arm").await;
        let missing = Digest::sha256_of(b"no such manifest");
        let bad = index(
            &[(&d1, m1.len(), "amd64"), (&missing, 10, "arm64")],
            OCI_INDEX,
            OCI_MANIFEST,
        );
        let r = reg.put_manifest("multi", "latest", OCI_INDEX, &bad).await;
        assert_eq!(r.error_code(), "MANIFEST_BLOB_UNKNOWN");
        let good = index(
            &[(&d1, m1.len(), "amd64"), (&d2, m2.len(), "arm64")],
            OCI_INDEX,
            OCI_MANIFEST,
        );
        let r = reg.put_manifest("multi", "latest", OCI_INDEX, &good).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = reg.get("/v2/multi/manifests/latest").await;
        assert_eq!(r.header("content-type"), Some(OCI_INDEX));
        assert_eq!(r.body.as_ref(), good.as_slice());
    }
}

#[tokio::test]
async fn docker_types_and_tag_changing_media_type() {
    for reg in TestRegistry::all() {
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let cd = reg.push_blob("dk", config).await;
        let ld = reg.push_blob("dk", b"layer").await;
        let docker = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": cd.to_string()},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 5, "digest": ld.to_string()}],
        }))
        .unwrap();
        let r = reg.put_manifest("dk", "t", DOCKER_MANIFEST, &docker).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let dd = Digest::sha256_of(&docker);
        let list = index(
            &[(&dd, docker.len(), "amd64")],
            DOCKER_LIST,
            DOCKER_MANIFEST,
        );
        let r = reg.put_manifest("dk", "list", DOCKER_LIST, &list).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(
            reg.get("/v2/dk/manifests/list")
                .await
                .header("content-type"),
            Some(DOCKER_LIST)
        );
        assert_eq!(
            reg.get("/v2/dk/manifests/t").await.header("content-type"),
            Some(DOCKER_MANIFEST)
        );
        // Re-point tag t at an OCI index: its media type follows.
        let r = reg.put_manifest("dk", "t", DOCKER_LIST, &list).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(
            reg.get("/v2/dk/manifests/t").await.header("content-type"),
            Some(DOCKER_LIST)
        );
    }
}

#[tokio::test]
async fn delete_by_tag_untags_and_by_digest_removes() {
    for reg in TestRegistry::all() {
        let (_, d) = reg.push_image("del", "one", "x").await;
        let r = reg
            .put_manifest(
                "del",
                "two",
                OCI_MANIFEST,
                &reg.get("/v2/del/manifests/one").await.body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = reg
            .req(Method::DELETE, "/v2/del/manifests/one", &[], "")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(
            reg.get("/v2/del/manifests/one").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            reg.get(&format!("/v2/del/manifests/{d}")).await.status,
            StatusCode::OK
        );
        assert_eq!(
            reg.get("/v2/del/tags/list").await.json()["tags"],
            serde_json::json!(["two"])
        );
        let r = reg
            .req(Method::DELETE, &format!("/v2/del/manifests/{d}"), &[], "")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(
            reg.get(&format!("/v2/del/manifests/{d}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            reg.get("/v2/del/manifests/two").await.status,
            StatusCode::NOT_FOUND
        );
        // Its last manifest gone, the repository holds no tag. As in
        // registry:2, which lists `_manifests/tags`: on the filesystem the
        // empty directory stays (an empty list), on stores without
        // directories nothing is left (NAME_UNKNOWN, and _catalog no longer
        // lists it on any backend).
        let r = reg.get("/v2/del/tags/list").await;
        if reg.kind == "filesystem" {
            assert_eq!(r.json()["tags"], serde_json::json!([]), "{}", reg.kind);
        } else {
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
                "{}",
                reg.kind
            );
        }
        let r = reg
            .req(Method::DELETE, &format!("/v2/del/manifests/{d}"), &[], "")
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
        );
    }
    for reg in TestRegistry::all_with(|_| {}) {
        let (_, d) = reg.push_image("keep", "one", "x").await;
        for reference in ["one".to_string(), d.to_string()] {
            let r = reg
                .req(
                    Method::DELETE,
                    &format!("/v2/keep/manifests/{reference}"),
                    &[],
                    "",
                )
                .await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
            );
        }
        assert_eq!(
            reg.get("/v2/keep/manifests/one").await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn referrers_api() {
    for reg in TestRegistry::all() {
        let (subject_body, subject) = reg.push_image("ref", "v1", "subject").await;
        let empty = reg.push_blob("ref", b"{}").await;
        let sig = reg.push_blob("ref", b"signature").await;
        let artifact = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig.to_string(), "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": subject_body.len()},
            "annotations": {"org.example": "yes"},
        }))
        .unwrap();
        let ad = Digest::sha256_of(&artifact);
        let r = reg
            .put_manifest("ref", &ad.to_string(), OCI_MANIFEST, &artifact)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.header("oci-subject"), Some(subject.to_string().as_str()));
        // A second referrer with another type, through an image config.
        let sbom_cfg = reg.push_blob("ref", b"{\"sbom\":1}").await;
        let sbom = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example.sbom", "digest": sbom_cfg.to_string(), "size": 10},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": subject_body.len()},
        }))
        .unwrap();
        let sd = Digest::sha256_of(&sbom);
        assert_eq!(
            reg.put_manifest("ref", &sd.to_string(), OCI_MANIFEST, &sbom)
                .await
                .status,
            StatusCode::CREATED
        );

        let r = reg.get(&format!("/v2/ref/referrers/{subject}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), Some(OCI_INDEX));
        let idx = r.json();
        assert_eq!(idx["schemaVersion"], 2);
        assert_eq!(idx["mediaType"], OCI_INDEX);
        let list = idx["manifests"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        let sig_entry = list
            .iter()
            .find(|m| m["digest"] == ad.to_string())
            .expect("signature listed");
        assert_eq!(
            sig_entry["artifactType"],
            "application/vnd.example.signature"
        );
        assert_eq!(sig_entry["size"], artifact.len());
        assert_eq!(sig_entry["mediaType"], OCI_MANIFEST);
        assert_eq!(sig_entry["annotations"]["org.example"], "yes");
        let sbom_entry = list
            .iter()
            .find(|m| m["digest"] == sd.to_string())
            .expect("sbom listed");
        assert_eq!(sbom_entry["artifactType"], "application/vnd.example.sbom");

        let r = reg
            .get(&format!(
                "/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sbom"
            ))
            .await;
        assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
        let list = r.json()["manifests"].as_array().unwrap().clone();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["digest"], sd.to_string());

        let unknown = Digest::sha256_of(b"no subject");
        let r = reg.get(&format!("/v2/ref/referrers/{unknown}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["manifests"], serde_json::json!([]));

        // Deleting a referrer removes it from the index.
        let r = reg
            .req(Method::DELETE, &format!("/v2/ref/manifests/{ad}"), &[], "")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = reg.get(&format!("/v2/ref/referrers/{subject}")).await;
        assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
    }
}
