//! What a stored manifest references, read leniently: the collector must
//! keep everything any manifest in storage might need, including formats
//! berth refuses on push (schema1 written by registry:2) and manifests that
//! fail today's validation. Unknown JSON is simply "references nothing".

use serde_json::Value;

use crate::oci::digest::Digest;

/// The references of one manifest, split by what they keep alive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestRefs {
    /// Blobs the manifest needs: config, layers (foreign ones too: marking a
    /// digest that is not stored is harmless), schema1 `fsLayers`.
    pub blobs: Vec<Digest>,
    /// Child manifests of an index / manifest list.
    pub children: Vec<Digest>,
    /// The `subject` this manifest refers to (does not keep it alive).
    pub subject: Option<Digest>,
}

fn digest_at(v: &Value) -> Option<Digest> {
    v.get("digest")?.as_str()?.parse().ok()
}

fn digests_in(v: Option<&Value>, field: &str) -> Vec<Digest> {
    v.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get(field)?.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Extracts references from manifest bytes; `None` when the bytes are not
/// a JSON object (then only the manifest blob itself is kept).
pub fn manifest_refs(body: &[u8]) -> Option<ManifestRefs> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let mut blobs = Vec::new();
    if let Some(d) = obj.get("config").and_then(digest_at) {
        blobs.push(d);
    }
    blobs.extend(digests_in(obj.get("layers"), "digest"));
    // OCI artifact manifests (withdrawn draft) used `blobs`.
    blobs.extend(digests_in(obj.get("blobs"), "digest"));
    // Docker schema1 (as written by old clients into registry:2).
    blobs.extend(digests_in(obj.get("fsLayers"), "blobSum"));
    let children = digests_in(obj.get("manifests"), "digest");
    let subject = obj.get("subject").and_then(digest_at);
    Some(ManifestRefs {
        blobs,
        children,
        subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    #[test]
    fn table() {
        let (a, b, c, s) = (d("a"), d("b"), d("c"), d("s"));
        let cases: Vec<(String, Option<ManifestRefs>)> = vec![
            (
                format!(
                    r#"{{"schemaVersion":2,"config":{{"digest":"{a}"}},"layers":[{{"digest":"{b}"}}],"subject":{{"digest":"{s}"}}}}"#
                ),
                Some(ManifestRefs {
                    blobs: vec![a.clone(), b.clone()],
                    children: vec![],
                    subject: Some(s.clone()),
                }),
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"manifests":[{{"digest":"{a}"}},{{"digest":"{c}"}}]}}"#
                ),
                Some(ManifestRefs {
                    blobs: vec![],
                    children: vec![a.clone(), c.clone()],
                    subject: None,
                }),
            ),
            (
                format!(r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{c}"}}]}}"#),
                Some(ManifestRefs {
                    blobs: vec![c.clone()],
                    ..Default::default()
                }),
            ),
            (
                r#"{"layers":[{"digest":"not a digest"}]}"#.to_string(),
                Some(ManifestRefs::default()),
            ),
            ("[1,2]".to_string(), None),
            ("garbage".to_string(), None),
        ];
        for (body, want) in cases {
            assert_eq!(manifest_refs(body.as_bytes()), want, "{body}");
        }
    }
}
