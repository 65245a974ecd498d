//! Manifests berth refuses, and the error each one gets.

use super::*;

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
