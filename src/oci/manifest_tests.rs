//! Tests of manifest parsing, kept apart so the module stays readable.

use super::*;

const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// hello-world:latest (linux/amd64) as `docker push` sends it.
const DOCKER_V2: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
  "mediaType": "application/vnd.docker.container.image.v1+json",
  "size": 1469,
  "digest": "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412"
   },
   "layers": [
  {
     "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
     "size": 2479,
     "digest": "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54"
  }
   ]
}"#;

const DOCKER_LIST: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
   "manifests": [
  {
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "size": 525,
     "digest": "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4",
     "platform": {
        "architecture": "amd64",
        "os": "linux"
     }
  },
  {
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "size": 525,
     "digest": "sha256:7e9b6e7ba2842c91cf49f3e214d04a7a496f8214356f41d81a6e6dcad11f11e3",
     "platform": {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8"
     }
  }
   ]
}"#;

const OCI_IMAGE: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
"mediaType": "application/vnd.oci.image.config.v1+json",
"digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
"size": 7023
  },
  "layers": [
{
  "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
  "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
  "size": 32654
},
{
  "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
  "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
  "size": 16724
},
{
  "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
  "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
  "size": 73109
}
  ],
  "annotations": {
"com.example.key1": "value1",
"com.example.key2": "value2"
  }
}"#;

const OCI_IDX: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
{
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "size": 7143,
  "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
  "platform": {
    "architecture": "ppc64le",
    "os": "linux"
  }
},
{
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "size": 7682,
  "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
  "platform": {
    "architecture": "amd64",
    "os": "linux"
  }
}
  ],
  "annotations": {
"com.example.key1": "value1"
  }
}"#;

/// An ORAS-style signature artifact attached to an image via `subject`.
const OCI_ARTIFACT: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example.sbom.v1",
  "config": {
"mediaType": "application/vnd.oci.empty.v1+json",
"digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
"size": 2,
"data": "e30="
  },
  "layers": [
{
  "mediaType": "application/vnd.oci.empty.v1+json",
  "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  "size": 2
}
  ],
  "subject": {
"mediaType": "application/vnd.oci.image.manifest.v1+json",
"digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
"size": 7682
  },
  "annotations": {
"org.opencontainers.image.created": "2023-01-02T03:04:05Z"
  }
}"#;

/// A Windows image: the base layer is foreign, fetched from Microsoft.
const DOCKER_FOREIGN: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
  "mediaType": "application/vnd.docker.container.image.v1+json",
  "size": 1819,
  "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"
   },
   "layers": [
  {
     "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
     "size": 102661372,
     "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "urls": ["https://mcr.microsoft.com/v2/windows/nanoserver/blobs/sha256:2222222222222222222222222222222222222222222222222222222222222222"]
  },
  {
     "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
     "size": 100,
     "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333"
  },
  {
     "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
     "size": 1000,
     "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444"
  }
   ]
}"#;

const OCI_NONDIST: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
"mediaType": "application/vnd.oci.image.config.v1+json",
"digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
"size": 10
  },
  "layers": [
{
  "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
  "size": 20,
  "urls": ["https://example.com/layer"]
},
{
  "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
  "size": 30,
  "urls": []
}
  ]
}"#;

fn digests(ds: &[Descriptor]) -> Vec<String> {
    ds.iter().map(|d| d.digest.to_string()).collect()
}

fn ok(ct: Option<&str>, body: &str) -> ParsedManifest {
    match parse(ct, body.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("expected success for {ct:?}, got {e}"),
    }
}

fn sha(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

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
    let image = OCI_IMAGE.replace(
        r#""mediaType": "application/vnd.oci.image.manifest.v1+json","#,
        "",
    );
    let index = OCI_IDX.replace(
        r#""mediaType": "application/vnd.oci.image.index.v1+json","#,
        "",
    );
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

/// Expected outcome of an error case.
enum Want {
    Invalid(&'static str),
    Unsupported(&'static str),
}

#[test]
fn error_cases() {
    let schema1 = r#"{"schemaVersion":1,"name":"library/x","tag":"latest","architecture":"amd64",
        "fsLayers":[],"history":[],"signatures":[]}"#;
    let no_config = OCI_IMAGE.replace(r#""config": {"#, r#""cfg": {"#);
    let bad_layer_digest = OCI_IMAGE.replace(
        "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
        "sha256:EC4B",
    );
    let negative_size = OCI_IMAGE.replace("32654", "-1");
    let float_size = OCI_IMAGE.replace("32654", "1.5");
    let string_size = OCI_IMAGE.replace("32654", "\"1\"");
    let huge_size = OCI_IMAGE.replace("32654", "9223372036854775808");
    let md5_digest = OCI_IMAGE.replace(
        "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    );
    let no_layers = DOCKER_V2.replace(r#""layers""#, r#""lay""#);
    let no_layers_oci = OCI_IMAGE.replace(r#""layers""#, r#""lay""#);
    let list_as_image = DOCKER_V2.replace(DOCKER_MANIFEST, DOCKER_MANIFEST_LIST);
    let image_as_list = DOCKER_LIST.replace(DOCKER_MANIFEST_LIST, DOCKER_MANIFEST);
    let index_with_config = OCI_IDX.replace(
        r#""manifests": ["#,
        &format!(
            r#""config": {{"mediaType":"x/y","digest":"{}","size":1}}, "manifests": ["#,
            sha('c')
        ),
    );
    let image_with_manifests =
        OCI_IMAGE.replace(r#""layers": ["#, r#""manifests": [], "layers": ["#);
    let schema3 = OCI_IMAGE.replace(r#""schemaVersion": 2"#, r#""schemaVersion": 3"#);
    let no_schema = OCI_IMAGE.replace(r#""schemaVersion": 2,"#, "");
    let docker_no_mt = DOCKER_V2.replace(
        r#""mediaType": "application/vnd.docker.distribution.manifest.v2+json","#,
        "",
    );
    let artifact_mt = OCI_IMAGE.replace(
        OCI_MANIFEST,
        "application/vnd.oci.artifact.manifest.v1+json",
    );
    let bare = r#"{"schemaVersion":2}"#;
    let ambiguous = format!(
        r#"{{"schemaVersion":2,"manifests":[],"config":{{"mediaType":"a/b","digest":"{}","size":1}},"layers":[]}}"#,
        sha('d')
    );
    let bad_subject = OCI_ARTIFACT.replace(r#""size": 7682"#, r#""size": null"#);
    let bad_annotation = OCI_IMAGE.replace(r#""value2""#, "2");
    let bad_platform = DOCKER_LIST.replace(
        r#""platform": {
        "architecture": "amd64",
        "os": "linux"
     }"#,
        r#""platform": "linux/amd64""#,
    );
    assert_ne!(bad_platform, DOCKER_LIST);
    let missing_media = OCI_IDX.replace(
        r#""mediaType": "application/vnd.oci.image.manifest.v1+json",
  "size": 7682"#,
        r#""size": 7682"#,
    );
    assert_ne!(missing_media, OCI_IDX);

    let table: Vec<(Option<&str>, Vec<u8>, Want)> = vec![
        // Content-Type and body disagree.
        (
            Some(DOCKER_MANIFEST),
            OCI_IMAGE.into(),
            Want::Invalid("mediaType in manifest should be"),
        ),
        (
            Some(OCI_INDEX),
            OCI_IMAGE.into(),
            Want::Invalid("should be 'application/vnd.oci.image.index.v1+json'"),
        ),
        (
            Some(OCI_MANIFEST),
            DOCKER_V2.into(),
            Want::Invalid("mediaType in manifest should be"),
        ),
        // Schema 1, by body or by Content-Type.
        (None, schema1.into(), Want::Unsupported("schema1")),
        (
            Some(DOCKER_MANIFEST_V1_SIGNED),
            schema1.into(),
            Want::Unsupported("deprecated"),
        ),
        (
            Some(DOCKER_MANIFEST_V1),
            OCI_IMAGE.into(),
            Want::Unsupported("schema1"),
        ),
        (
            Some(OCI_MANIFEST),
            schema1.into(),
            Want::Unsupported("schema1"),
        ),
        // Missing/invalid fields.
        (
            Some(OCI_MANIFEST),
            no_config.into(),
            Want::Invalid("config is required"),
        ),
        (
            None,
            bad_layer_digest.into(),
            Want::Invalid("layers[2].digest"),
        ),
        (
            None,
            md5_digest.into(),
            Want::Invalid("config.digest: unsupported digest algorithm"),
        ),
        (
            None,
            negative_size.into(),
            Want::Invalid("layers[0].size must be a non-negative integer"),
        ),
        (
            None,
            float_size.into(),
            Want::Invalid("layers[0].size must be a non-negative integer"),
        ),
        (
            None,
            string_size.into(),
            Want::Invalid("layers[0].size must be a non-negative integer"),
        ),
        (None, huge_size.into(), Want::Invalid("layers[0].size")),
        (None, no_layers.into(), Want::Invalid("layers is required")),
        (
            None,
            no_layers_oci.into(),
            Want::Invalid("layers is required"),
        ),
        (
            None,
            bad_subject.into(),
            Want::Invalid("subject.size is required"),
        ),
        (
            None,
            bad_annotation.into(),
            Want::Invalid("annotations[\"com.example.key2\"]"),
        ),
        (
            None,
            bad_platform.into(),
            Want::Invalid("manifests[0].platform must be an object"),
        ),
        (
            None,
            missing_media.into(),
            Want::Invalid("manifests[1].mediaType is required"),
        ),
        // Shape does not match the declared type.
        (
            None,
            list_as_image.into(),
            Want::Invalid("config is not allowed in an index"),
        ),
        (
            None,
            image_as_list.into(),
            Want::Invalid("manifests is not allowed in an image"),
        ),
        (
            None,
            index_with_config.into(),
            Want::Invalid("config is not allowed"),
        ),
        (
            None,
            image_with_manifests.into(),
            Want::Invalid("manifests is not allowed"),
        ),
        (None, ambiguous.into(), Want::Invalid("ambiguous")),
        (None, bare.into(), Want::Invalid("cannot determine")),
        (
            Some(DOCKER_MANIFEST),
            docker_no_mt.into(),
            Want::Invalid("should be 'application/vnd.docker"),
        ),
        // Schema version.
        (
            None,
            schema3.into(),
            Want::Invalid("unrecognized manifest schema version 3"),
        ),
        (
            None,
            no_schema.into(),
            Want::Invalid("schemaVersion is required"),
        ),
        // Not a JSON object.
        (None, b"not json".to_vec(), Want::Invalid("not valid JSON")),
        (None, Vec::new(), Want::Invalid("not valid JSON")),
        (
            None,
            b"[1,2,3]".to_vec(),
            Want::Invalid("must be a JSON object"),
        ),
        (
            None,
            b"\"x\"".to_vec(),
            Want::Invalid("must be a JSON object"),
        ),
        (
            None,
            format!("{OCI_IMAGE} trailing").into(),
            Want::Invalid("not valid JSON"),
        ),
        // Unknown types.
        (
            None,
            artifact_mt.into(),
            Want::Unsupported("application/vnd.oci.artifact.manifest.v1+json"),
        ),
        (
            Some("text/plain"),
            bare.into(),
            Want::Unsupported("text/plain"),
        ),
    ];
    for (i, (ct, body, want)) in table.into_iter().enumerate() {
        let got = parse(ct, &body);
        match (&got, &want) {
            (Err(ManifestError::Invalid(m)), Want::Invalid(s))
            | (Err(ManifestError::Unsupported(m)), Want::Unsupported(s)) => {
                assert!(m.contains(s), "case {i}: {m:?} should contain {s:?}")
            }
            _ => panic!("case {i} ({ct:?}): got {got:?}"),
        }
    }
}

#[test]
fn too_large_checked_before_parsing() {
    let body = vec![b'x'; MAX_MANIFEST_SIZE + 1];
    assert_eq!(
        parse(Some(OCI_MANIFEST), &body),
        Err(ManifestError::TooLarge {
            size: MAX_MANIFEST_SIZE + 1,
            limit: MAX_MANIFEST_SIZE
        })
    );
    // Exactly the limit is parsed (and here valid, padded with whitespace).
    let mut body = OCI_IMAGE.as_bytes().to_vec();
    body.resize(MAX_MANIFEST_SIZE, b' ');
    assert!(parse(Some(OCI_MANIFEST), &body).is_ok());
}

#[test]
fn detects_media_type() {
    let image = OCI_IMAGE.replace(
        r#""mediaType": "application/vnd.oci.image.manifest.v1+json","#,
        "",
    );
    let index = OCI_IDX.replace(
        r#""mediaType": "application/vnd.oci.image.index.v1+json","#,
        "",
    );
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
