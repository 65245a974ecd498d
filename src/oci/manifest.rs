//! Manifest media types, and parsing/validation of pushed manifests.
//!
//! The registry stores and serves manifest bytes verbatim; this module only
//! decides whether a push is acceptable and extracts what the registry needs
//! from it: the blobs and child manifests that must already exist, the
//! `subject` for the referrers API, and the media type to serve it with.
//!
//! Validation follows the OCI image-spec v1.1 and what distribution
//! (registry:2) accepts, so clients that work against registry:2 keep working.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::digest::Digest;
use super::manifest_fields::{
    check_foreign_urls, descriptor, descriptor_list, field, is_foreign_layer, opt_annotations,
    opt_string,
};

/// OCI image manifest; also used for OCI 1.1 artifacts.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform images, nested indexes).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest schema 2, what `docker push` sends.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list, the Docker predecessor of the OCI index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The OCI 1.1 empty descriptor media type (`{}`), used as config of artifacts.
pub const OCI_EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// Docker schema 1 manifest, unsigned. Recognised only to refuse it clearly.
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1 manifest, signed. Recognised to refuse pushes clearly and
/// to label any such manifest already in storage.
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker layers that clients fetch from `urls`, so they are never uploaded.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Prefix of the OCI non-distributable layer media types (tar, +gzip, +zstd),
/// which, like Docker foreign layers, may live outside the registry.
pub const OCI_NONDISTRIBUTABLE_LAYER_PREFIX: &str =
    "application/vnd.oci.image.layer.nondistributable.";
/// Largest manifest accepted by default (4 MiB, like distribution and zot);
/// `limits.manifestsize` changes it.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// Largest `size` a descriptor may carry: the specs define it as int64.
pub(super) const MAX_DESCRIPTOR_SIZE: u64 = i64::MAX as u64;

/// A content descriptor as it appears in manifests. Kept close to the
/// image-spec so it can be echoed back in the referrers index unchanged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the referenced content is; free-form (any RFC 6838 type).
    pub media_type: String,
    /// Content address of the referenced blob or manifest.
    pub digest: Digest,
    /// Exact length in bytes, so clients can verify what they fetch.
    pub size: u64,
    /// Artifact type of a referenced manifest (indexes, referrers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Free-form metadata, surfaced by the referrers API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform of an index entry, kept as-is because the registry only
    /// passes it through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Value>,
    /// Where foreign/non-distributable content can be fetched instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// Whether a manifest describes one image (or artifact) or a set of manifests;
/// decides what must exist before a push is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// OCI image manifest or Docker schema2 manifest.
    Image,
    /// OCI image index or Docker manifest list.
    Index,
}

/// What the registry needs to know about an accepted manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    /// The media type to store and serve it with.
    pub media_type: String,
    /// Image or index, derived from the media type.
    pub kind: ManifestKind,
    /// For images: the config descriptor.
    pub config: Option<Descriptor>,
    /// Blobs that must exist in the repository before the manifest is accepted
    /// (config + layers of an image, minus non-distributable/foreign layers that carry `urls`).
    /// In manifest order; a digest may appear more than once.
    pub blobs: Vec<Descriptor>,
    /// For indexes: child manifests that must exist in the repository.
    pub manifests: Vec<Descriptor>,
    /// OCI 1.1 `subject`.
    pub subject: Option<Descriptor>,
    /// For the referrers API: `artifactType`, or for an image without it, the config's mediaType.
    pub artifact_type: Option<String>,
    /// Top-level annotations.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Why a manifest push was refused. All map to MANIFEST_INVALID; the variants
/// exist so the HTTP layer can word the message and pick a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Malformed or inconsistent content -> MANIFEST_INVALID.
    #[error("manifest invalid: {0}")]
    Invalid(String),
    /// Body over [`MAX_MANIFEST_SIZE`]; refused before parsing to bound memory.
    #[error("manifest too large: {size} bytes, limit {limit}")]
    TooLarge {
        /// Size of the pushed body.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// A manifest format berth does not store (schema1, unknown types)
    /// -> MANIFEST_INVALID too, with a clear message.
    #[error("unsupported manifest media type: {0}")]
    Unsupported(String),
}

pub(super) fn invalid(msg: impl Into<String>) -> ManifestError {
    ManifestError::Invalid(msg.into())
}

fn schema1_unsupported(what: &str) -> ManifestError {
    ManifestError::Unsupported(format!(
        "{what}: Docker schema1 manifests are deprecated and not supported; \
         push a schema2 or OCI manifest instead"
    ))
}

/// The lowercase `type/subtype` of a Content-Type, parameters dropped;
/// `None` when absent or blank.
fn media_type_essence(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?;
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.is_empty() {
        None
    } else {
        Some(essence.to_ascii_lowercase())
    }
}

/// Content-Types that say nothing about which manifest format is pushed.
fn is_generic_content_type(ct: &str) -> bool {
    matches!(ct, "application/json" | "application/octet-stream")
}

fn kind_of(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

fn is_schema1(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_V1 || media_type == DOCKER_MANIFEST_V1_SIGNED
}

/// Decides the media type to store the manifest under, from the body's
/// `mediaType`, the request Content-Type and the body's shape.
fn resolve_media_type(
    content_type: Option<&str>,
    obj: &Map<String, Value>,
) -> Result<String, ManifestError> {
    let ct = media_type_essence(content_type);
    let body_mt = match field(obj, "mediaType") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(invalid("mediaType must be a string")),
    };

    // Schema 1 first, whatever else the request says, for a clear message.
    if let Some(c) = ct.as_deref().filter(|c| is_schema1(c)) {
        return Err(schema1_unsupported(c));
    }
    if let Some(m) = body_mt.filter(|m| is_schema1(m)) {
        return Err(schema1_unsupported(m));
    }
    if field(obj, "schemaVersion").and_then(Value::as_i64) == Some(1) {
        return Err(schema1_unsupported("schemaVersion 1"));
    }

    let specific_ct = ct.filter(|c| !is_generic_content_type(c));
    if let Some(m) = body_mt {
        if let Some(c) = specific_ct.as_deref() {
            if c != m {
                return Err(invalid(format!(
                    "mediaType in manifest should be '{c}' not '{m}'"
                )));
            }
        }
        if kind_of(m).is_none() {
            return Err(ManifestError::Unsupported(m.to_string()));
        }
        return Ok(m.to_string());
    }

    match specific_ct.as_deref() {
        // Like registry:2: Docker formats must name themselves in the body,
        // otherwise the stored bytes would later be served as OCI.
        Some(c @ (DOCKER_MANIFEST | DOCKER_MANIFEST_LIST)) => Err(invalid(format!(
            "mediaType in manifest should be '{c}' not ''"
        ))),
        Some(c @ (OCI_MANIFEST | OCI_INDEX)) => Ok(c.to_string()),
        Some(c) => Err(ManifestError::Unsupported(c.to_string())),
        None => {
            let has_config = field(obj, "config").is_some();
            let has_manifests = field(obj, "manifests").is_some();
            match (has_config, has_manifests) {
                (true, false) => Ok(OCI_MANIFEST.to_string()),
                (false, true) => Ok(OCI_INDEX.to_string()),
                (true, true) => Err(invalid(
                    "ambiguous manifest: has both config and manifests and no mediaType",
                )),
                (false, false) => Err(invalid(
                    "cannot determine manifest type: no mediaType, config or manifests",
                )),
            }
        }
    }
}

/// Parses a manifest as pushed with the request's Content-Type (None when
/// absent), refusing anything registry:2 would refuse or that the registry
/// could not later serve consistently.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest, ManifestError> {
    parse_limited(content_type, body, MAX_MANIFEST_SIZE)
}

/// [`parse`] with the size limit `limits.manifestsize` sets instead of the
/// default 4 MiB; `usize::MAX` for manifests already stored.
pub fn parse_limited(
    content_type: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<ParsedManifest, ManifestError> {
    if body.len() > limit {
        return Err(ManifestError::TooLarge {
            size: body.len(),
            limit,
        });
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(invalid("manifest must be a JSON object"));
    };

    let media_type = resolve_media_type(content_type, &obj)?;
    let kind =
        kind_of(&media_type).ok_or_else(|| ManifestError::Unsupported(media_type.clone()))?;

    match field(&obj, "schemaVersion") {
        None => return Err(invalid("schemaVersion is required")),
        Some(v) if v.as_i64() == Some(2) => {}
        Some(v) => return Err(invalid(format!("unrecognized manifest schema version {v}"))),
    }

    let subject = field(&obj, "subject")
        .map(|v| descriptor(v, "subject"))
        .transpose()?;
    let artifact_type = opt_string(&obj, "artifactType", "artifactType")?;
    let annotations = opt_annotations(&obj, "annotations")?;

    match kind {
        ManifestKind::Image => {
            // An image that also lists manifests could be read as an index by
            // some clients (image-spec advisory GHSA-77vh-xpmg-72qh).
            if field(&obj, "manifests").is_some() {
                return Err(invalid(format!(
                    "manifests is not allowed in an image manifest ({media_type})"
                )));
            }
            let config = match field(&obj, "config") {
                None => return Err(invalid("config is required")),
                Some(v) => descriptor(v, "config")?,
            };
            let layers = descriptor_list(&obj, "layers")?;
            let mut blobs = Vec::with_capacity(layers.len() + 1);
            blobs.push(config.clone());
            for (i, layer) in layers.into_iter().enumerate() {
                if is_foreign_layer(&layer) {
                    check_foreign_urls(&layer, &format!("layers[{i}]"))?;
                } else {
                    blobs.push(layer);
                }
            }
            let artifact_type = artifact_type.or_else(|| Some(config.media_type.clone()));
            Ok(ParsedManifest {
                media_type,
                kind,
                config: Some(config),
                blobs,
                manifests: Vec::new(),
                subject,
                artifact_type,
                annotations,
            })
        }
        ManifestKind::Index => {
            for key in ["config", "layers"] {
                if field(&obj, key).is_some() {
                    return Err(invalid(format!(
                        "{key} is not allowed in an index ({media_type})"
                    )));
                }
            }
            let manifests = descriptor_list(&obj, "manifests")?;
            Ok(ParsedManifest {
                media_type,
                kind,
                config: None,
                blobs: Vec::new(),
                manifests,
                subject,
                artifact_type,
                annotations,
            })
        }
    }
}

/// Media type of stored manifest bytes, for serving (the stored bytes are
/// served verbatim, and storage keeps no separate content type): from
/// `mediaType`, else inferred (`manifests` → OCI index, `config`/`layers` →
/// OCI manifest, schemaVersion 1 → signed schema1).
pub fn detect_media_type(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    if let Some(m) = field(obj, "mediaType").and_then(Value::as_str) {
        if !m.is_empty() {
            return Some(m.to_string());
        }
    }
    if field(obj, "schemaVersion").and_then(Value::as_i64) == Some(1) {
        return Some(DOCKER_MANIFEST_V1_SIGNED.to_string());
    }
    if field(obj, "manifests").is_some() {
        return Some(OCI_INDEX.to_string());
    }
    if field(obj, "config").is_some() || field(obj, "layers").is_some() {
        return Some(OCI_MANIFEST.to_string());
    }
    None
}

/// Builds the OCI image index body served by GET /v2/<name>/referrers/<digest>;
/// the distribution-spec asks for exactly these descriptor fields.
pub fn referrers_index(descriptors: &[Descriptor]) -> Value {
    let manifests: Vec<Value> = descriptors
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.insert("mediaType".into(), Value::String(d.media_type.clone()));
            m.insert("digest".into(), Value::String(d.digest.to_string()));
            m.insert("size".into(), Value::from(d.size));
            if let Some(t) = &d.artifact_type {
                m.insert("artifactType".into(), Value::String(t.clone()));
            }
            if let Some(a) = &d.annotations {
                let a: Map<String, Value> = a
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                m.insert("annotations".into(), Value::Object(a));
            }
            Value::Object(m)
        })
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    })
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
