//! What the browser test pushes through the API before it browses: a
//! multi-arch index, an SBOM referring to one of its images, and a private
//! repository.

use base64::Engine;
use berth::oci::digest::Digest;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Pushes through the API as alice.
struct Pusher {
    base: String,
    client: reqwest::Client,
    auth: String,
}

impl Pusher {
    async fn blob(&self, repo: &str, data: &[u8]) -> (Digest, usize) {
        let d = Digest::sha256_of(data);
        let r = self
            .client
            .post(format!("{}/v2/{repo}/blobs/uploads/?digest={d}", self.base))
            .header("authorization", &self.auth)
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "blob push to {repo}");
        (d, data.len())
    }

    async fn manifest(&self, repo: &str, reference: &str, media: &str, body: &[u8]) -> Digest {
        let r = self
            .client
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", media)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "manifest push {repo}:{reference}");
        Digest::sha256_of(body)
    }

    /// An image for `arch` with a config that has an entrypoint and a label.
    async fn image(&self, repo: &str, arch: &str) -> (Digest, usize) {
        let config = json!({
            "architecture": arch, "os": "linux", "created": "2026-11-30T12:00:00Z",
            "config": {"Entrypoint": ["/bin/server"], "Labels": {"org.opencontainers.image.title": "demo"}},
            "history": [{"created": "2026-11-30T12:00:00Z", "created_by": "COPY server /bin/server"}],
            "rootfs": {"type": "layers", "diff_ids": []}
        })
        .to_string();
        let (cd, cs) = self.blob(repo, config.as_bytes()).await;
        let layer = format!("layer for {arch} {}", "x".repeat(3000));
        let (ld, ls) = self.blob(repo, layer.as_bytes()).await;
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.to_string(), "size": ls}]
        }))
        .unwrap();
        let d = Digest::sha256_of(&m);
        self.manifest(repo, &d.to_string(), OCI_MANIFEST, &m).await;
        (d, m.len())
    }
}

/// A multi-arch index `public/multi:latest` (and `:old`), an SBOM referring
/// to its arm64 image, and `private/secret:v1`. Returns the arm64 digest.
pub async fn seed(base: &str) -> Digest {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:alicepw")
    );
    let p = Pusher {
        base: base.to_string(),
        client: reqwest::Client::new(),
        auth,
    };
    let (amd, amd_size) = p.image("public/multi", "amd64").await;
    let (arm, arm_size) = p.image("public/multi", "arm64").await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.to_string(), "size": amd_size, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.to_string(), "size": arm_size, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
        ]
    }))
    .unwrap();
    p.manifest("public/multi", "latest", OCI_INDEX, &index)
        .await;
    p.manifest("public/multi", "old", OCI_INDEX, &index).await;
    let (empty, _) = p.blob("public/multi", b"{}").await;
    let (sbom_layer, sbom_size) = p
        .blob("public/multi", br#"{"spdxVersion":"SPDX-2.3"}"#)
        .await;
    let sbom = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom_layer.to_string(), "size": sbom_size}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": arm.to_string(), "size": arm_size},
        "annotations": {"org.opencontainers.image.created": "2026-12-01T08:00:00Z"}
    }))
    .unwrap();
    let sd = Digest::sha256_of(&sbom);
    p.manifest("public/multi", &sd.to_string(), OCI_MANIFEST, &sbom)
        .await;
    let (secret, _) = p.image("private/secret", "amd64").await;
    let m = reqwest::Client::new()
        .get(format!("{base}/v2/private/secret/manifests/{secret}"))
        .header("authorization", &p.auth)
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    p.manifest("private/secret", "v1", OCI_MANIFEST, &m).await;
    arm
}
