//! Reading the JSON of a pushed manifest: typed fields, annotations and
//! descriptors, with error messages that name the offending path
//! (`layers[2].digest`). Split from `manifest.rs`, which decides what a
//! manifest is; this decides whether each part of it is well-formed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::digest::Digest;
use super::manifest::{
    invalid, Descriptor, ManifestError, DOCKER_FOREIGN_LAYER, MAX_DESCRIPTOR_SIZE,
    OCI_NONDISTRIBUTABLE_LAYER_PREFIX,
};

/// A field present with a non-null value (Go's decoder, which registry:2 uses,
/// treats `null` as absent too).
pub(super) fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(super) fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, ManifestError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{path} must be a string"))),
    }
}

pub(super) fn opt_annotations(
    obj: &Map<String, Value>,
    path: &str,
) -> Result<Option<BTreeMap<String, String>>, ManifestError> {
    let Some(v) = field(obj, "annotations") else {
        return Ok(None);
    };
    let Value::Object(map) = v else {
        return Err(invalid(format!("{path} must be an object of strings")));
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            _ => return Err(invalid(format!("{path}[{k:?}] must be a string"))),
        }
    }
    Ok(Some(out))
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Parses and checks one descriptor; `path` names it in error messages.
pub(super) fn descriptor(v: &Value, path: &str) -> Result<Descriptor, ManifestError> {
    let Value::Object(obj) = v else {
        return Err(invalid(format!("{path} must be an object")));
    };
    let media_type = match field(obj, "mediaType") {
        None => return Err(invalid(format!("{path}.mediaType is required"))),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err(invalid(format!("{path}.mediaType must not be empty")))
        }
        Some(_) => return Err(invalid(format!("{path}.mediaType must be a string"))),
    };
    let digest = match field(obj, "digest") {
        None => return Err(invalid(format!("{path}.digest is required"))),
        Some(Value::String(s)) => s
            .parse::<Digest>()
            .map_err(|e| invalid(format!("{path}.digest: {e}")))?,
        Some(_) => return Err(invalid(format!("{path}.digest must be a string"))),
    };
    let size = match field(obj, "size") {
        None => return Err(invalid(format!("{path}.size is required"))),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if s <= MAX_DESCRIPTOR_SIZE => s,
            _ => {
                return Err(invalid(format!(
                    "{path}.size must be a non-negative integer, got {n}"
                )))
            }
        },
        Some(_) => {
            return Err(invalid(format!(
                "{path}.size must be a non-negative integer"
            )))
        }
    };
    let artifact_type = opt_string(obj, "artifactType", &join(path, "artifactType"))?;
    let annotations = opt_annotations(obj, &join(path, "annotations"))?;
    let platform = match field(obj, "platform") {
        None => None,
        Some(p @ Value::Object(_)) => Some(p.clone()),
        Some(_) => return Err(invalid(format!("{path}.platform must be an object"))),
    };
    let urls = match field(obj, "urls") {
        None => None,
        Some(Value::Array(items)) => {
            let mut urls = Vec::with_capacity(items.len());
            for (i, u) in items.iter().enumerate() {
                match u {
                    Value::String(s) => urls.push(s.clone()),
                    _ => return Err(invalid(format!("{path}.urls[{i}] must be a string"))),
                }
            }
            Some(urls)
        }
        Some(_) => return Err(invalid(format!("{path}.urls must be an array"))),
    };
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type,
        annotations,
        platform,
        urls,
    })
}

pub(super) fn descriptor_list(
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Vec<Descriptor>, ManifestError> {
    match field(obj, key) {
        None => Err(invalid(format!("{key} is required"))),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| descriptor(v, &format!("{key}[{i}]")))
            .collect(),
        Some(_) => Err(invalid(format!("{key} must be an array"))),
    }
}

/// Layers clients fetch from their `urls` instead of the registry.
pub(super) fn is_foreign_layer(d: &Descriptor) -> bool {
    let foreign_type = d.media_type == DOCKER_FOREIGN_LAYER
        || d.media_type.starts_with(OCI_NONDISTRIBUTABLE_LAYER_PREFIX);
    foreign_type && d.urls.as_ref().is_some_and(|u| !u.is_empty())
}

/// registry:2 refuses foreign-layer URLs that are not plain http(s) or that
/// carry a fragment, since clients will fetch them.
pub(super) fn check_foreign_urls(d: &Descriptor, path: &str) -> Result<(), ManifestError> {
    for (i, u) in d.urls.iter().flatten().enumerate() {
        let lower = u.to_ascii_lowercase();
        let scheme_ok = lower.starts_with("http://") || lower.starts_with("https://");
        if !scheme_ok || u.contains('#') || u.chars().any(char::is_whitespace) {
            return Err(invalid(format!(
                "{path}.urls[{i}]: {u:?} is not an http(s) URL without fragment"
            )));
        }
    }
    Ok(())
}
