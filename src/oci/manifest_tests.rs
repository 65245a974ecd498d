//! Tests of manifest parsing, kept apart so the module stays readable: the
//! fixtures and helpers here, the cases by topic in `manifest_tests/`.

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

/// The OCI image and index fixtures without their body `mediaType`, so the
/// kind must come from the header or the shape.
fn without_body_media_types() -> (String, String) {
    let image = OCI_IMAGE.replace(
        r#""mediaType": "application/vnd.oci.image.manifest.v1+json","#,
        "",
    );
    let index = OCI_IDX.replace(
        r#""mediaType": "application/vnd.oci.image.index.v1+json","#,
        "",
    );
    (image, index)
}

fn sha(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

#[path = "manifest_tests/accepted.rs"]
mod accepted;
#[path = "manifest_tests/errors.rs"]
mod errors;
#[path = "manifest_tests/shapes.rs"]
mod shapes;
