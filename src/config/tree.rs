//! The untyped YAML tree before it becomes `Config`: parsing, distribution's
//! shorthand forms normalised, nulls dropped, and key paths for warnings.

use serde_yaml_ng::{Mapping, Value};

use super::*;

/// Parses YAML text into a tree; an empty file is an empty mapping.
/// Duplicate keys add warnings (see [`super::yaml`]).
pub(super) fn parse_tree(
    yaml: &str,
    source_name: &str,
    warnings: &mut Vec<String>,
) -> Result<Value, ConfigError> {
    let tree = super::yaml::parse(yaml, "", warnings).map_err(|message| ConfigError::Syntax {
        source_name: source_name.into(),
        message,
    })?;
    Ok(match tree {
        Value::Null => Value::Mapping(Mapping::new()),
        other => other,
    })
}

/// Driver keys of a `storage:` mapping.
pub(super) fn storage_driver_keys(m: &Mapping) -> Vec<String> {
    m.keys()
        .filter_map(Value::as_str)
        .filter(|k| !STORAGE_RESERVED_KEYS.contains(k))
        .map(str::to_owned)
        .collect()
}

/// Sections whose content is kept raw: nulls inside are meaningful there.
pub(super) const RAW_TOP_LEVEL: &[&str] = &[
    "auth",
    "notifications",
    "redis",
    "health",
    "validation",
    "compatibility",
    "middleware",
    "reporting",
];

/// Brings the untyped tree to the shape the typed structs expect, the way
/// distribution's custom unmarshalers do:
/// * `storage: inmemory` / `auth: htpasswd` (a bare name) → `{name: {}}`;
/// * a driver key with no parameters (`inmemory:`) → `{}` so it counts;
/// * deprecated top-level `loglevel` → `log.level` unless that is set;
/// * `key:` with nothing after it in a typed section → the default, like
///   Go's zero value (the entry is dropped).
pub(super) fn normalize_tree(
    tree: &mut Value,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Value::Mapping(root) = tree else {
        return Ok(());
    };
    for section in ["storage", "auth"] {
        if let Some(v) = root.get_mut(section) {
            match v {
                Value::String(name) => {
                    let mut m = Mapping::new();
                    m.insert(Value::String(name.clone()), Value::Mapping(Mapping::new()));
                    *v = Value::Mapping(m);
                }
                Value::Mapping(m) if section == "storage" => {
                    for (k, val) in m.iter_mut() {
                        let reserved = k
                            .as_str()
                            .is_some_and(|k| STORAGE_RESERVED_KEYS.contains(&k));
                        if !reserved && val.is_null() {
                            *val = Value::Mapping(Mapping::new());
                        }
                    }
                }
                Value::Mapping(m) => {
                    // auth: one scheme, parameters may be empty.
                    for (_, val) in m.iter_mut() {
                        if val.is_null() {
                            *val = Value::Mapping(Mapping::new());
                        }
                    }
                    if m.len() > 1 {
                        let names: Vec<String> = m
                            .keys()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect();
                        return Err(ConfigError::invalid(
                            "auth",
                            format!(
                                "must provide exactly one type, provided: {}",
                                names.join(", ")
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(level) = root.remove("loglevel") {
        warnings.push("`loglevel` is deprecated; use `log.level`".into());
        let log = root
            .entry(Value::from("log"))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if log.is_null() {
            *log = Value::Mapping(Mapping::new());
        }
        if let Value::Mapping(log) = log {
            if log.get("level").is_none_or(Value::is_null) && !level.is_null() {
                log.insert("level".into(), level);
            }
        }
    }
    // Drop nulls in typed sections; keep raw sections and driver params as is.
    root.retain(|k, v| !(v.is_null() && k.as_str().is_some_and(|k| !RAW_TOP_LEVEL.contains(&k))));
    for (k, v) in root.iter_mut() {
        match k.as_str() {
            Some(name) if RAW_TOP_LEVEL.contains(&name) => {}
            Some("storage") => {
                if let Value::Mapping(m) = v {
                    for (sk, sv) in m.iter_mut() {
                        if sk.as_str().is_some_and(|s| {
                            [
                                "delete",
                                "maintenance",
                                "redirect",
                                "filesystem",
                                "s3",
                                "azure",
                                "gcs",
                            ]
                            .contains(&s)
                        }) {
                            drop_nulls(sv);
                        }
                    }
                }
            }
            Some("log") => {
                if let Value::Mapping(m) = v {
                    m.retain(|_, v| !v.is_null());
                    for (lk, lv) in m.iter_mut() {
                        if lk.as_str() != Some("fields") && lk.as_str() != Some("hooks") {
                            drop_nulls(lv);
                        }
                    }
                }
            }
            _ => drop_nulls(v),
        }
    }
    Ok(())
}

/// Removes null-valued entries from every mapping under `v`.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            m.retain(|_, v| !v.is_null());
            for (_, child) in m.iter_mut() {
                drop_nulls(child);
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// `http.adr`-style path for a serde_ignored path (Option/newtype wrappers
/// are invisible in YAML, so they are skipped).
pub(super) fn format_path(path: &serde_ignored::Path<'_>) -> String {
    fn walk(path: &serde_ignored::Path<'_>, out: &mut Vec<String>) {
        use serde_ignored::Path as P;
        match path {
            P::Root => {}
            P::Seq { parent, index } => {
                walk(parent, out);
                out.push(index.to_string());
            }
            P::Map { parent, key } => {
                walk(parent, out);
                out.push(key.clone());
            }
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                walk(parent, out)
            }
        }
    }
    let mut parts = Vec::new();
    walk(path, &mut parts);
    parts.join(".")
}
