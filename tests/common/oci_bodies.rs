//! OCI manifest bodies the in-process tests push (api, hostile).
#![allow(dead_code)]

use berth::oci::digest::Digest;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image manifest as JSON: a config and layers (digest, size), the
/// layers of media type `layer_type`; callers add `subject`, annotations.
pub fn oci_image(
    config: &Digest,
    config_size: usize,
    layers: &[(&Digest, usize)],
    layer_type: &str,
) -> serde_json::Value {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": layer_type, "digest": d.to_string(), "size": s}))
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_size},
        "layers": layers,
    })
}
