//! Media type detection, the referrers index, descriptor round trips and
//! arbitrary input.

use super::*;

#[test]
fn detects_media_type() {
    let (image, index) = without_body_media_types();
    let table: [(&[u8], Option<&str>); 12] = [
        (DOCKER_V2.as_bytes(), Some(DOCKER_MANIFEST)),
        (DOCKER_LIST.as_bytes(), Some(DOCKER_MANIFEST_LIST)),
        (OCI_IMAGE.as_bytes(), Some(OCI_MANIFEST)),
        (OCI_IDX.as_bytes(), Some(OCI_INDEX)),
        (image.as_bytes(), Some(OCI_MANIFEST)),
        (index.as_bytes(), Some(OCI_INDEX)),
        (br#"{"schemaVersion":2,"layers":[]}"#, Some(OCI_MANIFEST)),
        (
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
            Some(DOCKER_MANIFEST_V1_SIGNED),
        ),
        (br#"{"schemaVersion":2}"#, None),
        (b"[]", None),
        (b"garbage", None),
        (b"", None),
    ];
    for (body, want) in table {
        assert_eq!(
            detect_media_type(body).as_deref(),
            want,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn referrers_index_shape() {
    let artifact = ok(None, OCI_ARTIFACT);
    let with_everything = Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest: Digest::sha256_of(OCI_ARTIFACT.as_bytes()),
        size: OCI_ARTIFACT.len() as u64,
        artifact_type: artifact.artifact_type.clone(),
        annotations: artifact.annotations.clone(),
        platform: Some(serde_json::json!({"os": "linux", "architecture": "amd64"})),
        urls: Some(vec!["https://example.com".into()]),
    };
    let bare = Descriptor {
        media_type: OCI_INDEX.into(),
        digest: sha('b').parse().expect("digest"),
        size: 10,
        artifact_type: None,
        annotations: None,
        platform: None,
        urls: None,
    };
    let got = referrers_index(&[with_everything.clone(), bare]);
    let want = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": with_everything.digest.to_string(),
                "size": OCI_ARTIFACT.len(),
                "artifactType": "application/vnd.example.sbom.v1",
                "annotations": {"org.opencontainers.image.created": "2023-01-02T03:04:05Z"}
            },
            {"mediaType": OCI_INDEX, "digest": sha('b'), "size": 10}
        ]
    });
    assert_eq!(got, want);
    assert_eq!(
        referrers_index(&[]),
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    );
}

#[test]
fn descriptor_serde_round_trip() {
    let p = ok(None, DOCKER_LIST);
    let d = &p.manifests[1];
    let json = serde_json::to_value(d).expect("serialize");
    assert!(json.get("urls").is_none() && json.get("artifactType").is_none());
    let back: Descriptor = serde_json::from_value(json).expect("deserialize");
    assert_eq!(&back, d);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let fixtures = [
        DOCKER_V2,
        DOCKER_LIST,
        OCI_IMAGE,
        OCI_IDX,
        OCI_ARTIFACT,
        DOCKER_FOREIGN,
        OCI_NONDIST,
    ];
    let cts = [
        None,
        Some(OCI_MANIFEST),
        Some(DOCKER_MANIFEST_LIST),
        Some(";"),
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64: deterministic, no extra dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let run = |body: &[u8], n: u64| {
        let ct = cts.get((n % 4) as usize).copied().flatten();
        let _ = parse(ct, body);
        let _ = detect_media_type(body);
    };
    for f in fixtures {
        let bytes = f.as_bytes();
        for end in 0..=bytes.len() {
            run(&bytes[..end], end as u64);
        }
        for _ in 0..500 {
            let mut m = bytes.to_vec();
            let r = next();
            let pos = (r % m.len() as u64) as usize;
            m[pos] = (r >> 32) as u8;
            run(&m, r);
        }
    }
    for _ in 0..2000 {
        let len = (next() % 64) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        run(&body, len as u64);
    }
    // Deep nesting stays within serde_json's recursion limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    run(deep.as_bytes(), 0);
}
