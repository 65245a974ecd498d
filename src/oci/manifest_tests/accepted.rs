//! Manifests of every kind berth accepts, and what it reads from them.

use super::*;

#[test]
fn docker_schema2() {
    for ct in [Some(DOCKER_MANIFEST), None, Some("application/json")] {
        let p = ok(ct, DOCKER_V2);
        assert_eq!(p.media_type, DOCKER_MANIFEST);
        assert_eq!(p.kind, ManifestKind::Image);
        let config = p.config.clone().expect("config");
        assert_eq!(config.size, 1469);
        assert_eq!(
            digests(&p.blobs),
            [
                "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412",
                "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54"
            ]
        );
        assert_eq!(p.blobs[0], config);
        assert!(p.manifests.is_empty());
        assert_eq!(p.subject, None);
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        assert_eq!(p.annotations, None);
    }
}

#[test]
fn docker_manifest_list() {
    let p = ok(Some(DOCKER_MANIFEST_LIST), DOCKER_LIST);
    assert_eq!(p.media_type, DOCKER_MANIFEST_LIST);
    assert_eq!(p.kind, ManifestKind::Index);
    assert_eq!(p.config, None);
    assert!(p.blobs.is_empty());
    assert_eq!(p.manifests.len(), 2);
    assert_eq!(p.manifests[0].media_type, DOCKER_MANIFEST);
    assert_eq!(p.manifests[0].size, 525);
    assert_eq!(
        p.manifests[1].platform,
        Some(serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"}))
    );
    assert_eq!(p.artifact_type, None);
}

#[test]
fn oci_image_manifest() {
    let p = ok(Some(OCI_MANIFEST), OCI_IMAGE);
    assert_eq!(p.media_type, OCI_MANIFEST);
    assert_eq!(p.kind, ManifestKind::Image);
    assert_eq!(p.blobs.len(), 4);
    assert_eq!(
        p.artifact_type.as_deref(),
        Some("application/vnd.oci.image.config.v1+json")
    );
    let ann = p.annotations.expect("annotations");
    assert_eq!(
        ann.get("com.example.key2").map(String::as_str),
        Some("value2")
    );
}

#[test]
fn oci_index() {
    let p = ok(Some(&format!("{OCI_INDEX}; charset=utf-8")), OCI_IDX);
    assert_eq!(p.media_type, OCI_INDEX);
    assert_eq!(p.kind, ManifestKind::Index);
    assert_eq!(
        digests(&p.manifests),
        [
            "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
            "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
        ]
    );
    assert!(p.manifests.iter().all(|m| m.platform.is_some()));
    assert!(p.blobs.is_empty());
    assert!(p.annotations.is_some());
}

#[test]
fn oci_artifact_with_subject() {
    let p = ok(Some(OCI_MANIFEST), OCI_ARTIFACT);
    assert_eq!(
        p.artifact_type.as_deref(),
        Some("application/vnd.example.sbom.v1")
    );
    let config = p.config.clone().expect("config");
    assert_eq!(config.media_type, OCI_EMPTY_CONFIG);
    assert_eq!(config.digest.to_string(), EMPTY_DIGEST);
    assert_eq!(config.size, 2);
    // Config and the empty layer both must exist (same digest, kept twice).
    assert_eq!(digests(&p.blobs), [EMPTY_DIGEST, EMPTY_DIGEST]);
    let subject = p.subject.expect("subject");
    assert_eq!(subject.media_type, OCI_MANIFEST);
    assert_eq!(subject.size, 7682);
    assert_eq!(
        subject.digest.to_string(),
        "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
    );
}

#[test]
fn index_with_subject_and_artifact_type() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","artifactType":"application/x.sig",
        "manifests":[],"subject":{{"mediaType":"{OCI_INDEX}","digest":"{}","size":3}}}}"#,
        sha('a')
    );
    let p = ok(None, &body);
    assert_eq!(p.kind, ManifestKind::Index);
    assert!(p.manifests.is_empty());
    assert_eq!(p.artifact_type.as_deref(), Some("application/x.sig"));
    assert_eq!(p.subject.map(|s| s.digest.to_string()), Some(sha('a')));
}

#[test]
fn oci_artifact_with_empty_layers() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/x.a",
        "config":{{"mediaType":"{OCI_EMPTY_CONFIG}","digest":"{EMPTY_DIGEST}","size":2}},"layers":[]}}"#
    );
    let p = ok(Some(OCI_MANIFEST), &body);
    assert_eq!(digests(&p.blobs), [EMPTY_DIGEST]);
}

#[test]
fn media_type_inferred_without_body_media_type() {
    let (image, index) = without_body_media_types();
    assert!(!image.contains(OCI_MANIFEST) && !index.contains(OCI_INDEX));
    let table: [(Option<&str>, &str, &str, ManifestKind); 8] = [
        (None, &image, OCI_MANIFEST, ManifestKind::Image),
        (
            Some("application/json"),
            &image,
            OCI_MANIFEST,
            ManifestKind::Image,
        ),
        (
            Some("application/octet-stream"),
            &image,
            OCI_MANIFEST,
            ManifestKind::Image,
        ),
        (
            Some(OCI_MANIFEST),
            &image,
            OCI_MANIFEST,
            ManifestKind::Image,
        ),
        (None, &index, OCI_INDEX, ManifestKind::Index),
        (
            Some("Application/JSON; charset=utf-8"),
            &index,
            OCI_INDEX,
            ManifestKind::Index,
        ),
        (Some(""), &index, OCI_INDEX, ManifestKind::Index),
        (Some(OCI_INDEX), &index, OCI_INDEX, ManifestKind::Index),
    ];
    for (ct, body, mt, kind) in table {
        let p = ok(ct, body);
        assert_eq!((p.media_type.as_str(), p.kind), (mt, kind), "{ct:?}");
    }
}

#[test]
fn foreign_layers_excluded() {
    let p = ok(Some(DOCKER_MANIFEST), DOCKER_FOREIGN);
    // Foreign layer with urls skipped; foreign layer without urls and the
    // regular layer must be uploaded.
    assert_eq!(digests(&p.blobs), [sha('1'), sha('3'), sha('4')]);

    let p = ok(Some(OCI_MANIFEST), OCI_NONDIST);
    assert_eq!(digests(&p.blobs), [sha('1'), sha('3')]);

    // A regular layer carrying urls is still required.
    let body = OCI_NONDIST.replace("nondistributable.v1.tar+gzip", "v1.tar+gzip");
    let p = ok(Some(OCI_MANIFEST), &body);
    assert_eq!(digests(&p.blobs), [sha('1'), sha('2'), sha('3')]);

    // Foreign URLs must be plain http(s) without fragment.
    for bad in [
        "ftp://example.com/layer",
        "https://example.com/layer#x",
        "/relative",
    ] {
        let body = OCI_NONDIST.replace("https://example.com/layer", bad);
        match parse(Some(OCI_MANIFEST), body.as_bytes()) {
            Err(ManifestError::Invalid(m)) => assert!(m.contains("layers[0].urls[0]"), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}
