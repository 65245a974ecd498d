//! `REGISTRY_*` environment overrides applied to the untyped YAML tree before
//! typed deserialization, following distribution's rules so the variables
//! people already set for registry:2 (in compose files, k8s manifests) keep
//! working:
//!
//! * only variables starting with `REGISTRY_` count; they are applied in
//!   lexical order of their names, so a parent (`REGISTRY_AUTH`) is applied
//!   before its children (`REGISTRY_AUTH_HTPASSWD_REALM`);
//! * the rest of the name is split on `_`; each segment matches an existing
//!   map key case-insensitively, and a key that does not exist yet is created
//!   lowercased (so a key containing `_` cannot be addressed);
//! * the value is parsed as YAML, so `true`, `5000`, `[a, b]` and `{k: v}`
//!   keep their types;
//! * the addressed key is replaced as a whole (`REGISTRY_STORAGE=inmemory`
//!   replaces the whole `storage` section, as in distribution);
//! * a variable leading into a list (`REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL`)
//!   is skipped, as distribution's parser skips it, with a warning here;
//! * descending through a scalar string turns it into a map keyed by that
//!   string, which is how `REGISTRY_STORAGE=s3` followed by
//!   `REGISTRY_STORAGE_S3_BUCKET=b` gives `storage: {s3: {bucket: b}}`.

use serde_yaml_ng::{Mapping, Value};

use super::ConfigError;

/// The prefix distribution reads overrides from.
pub const PREFIX: &str = "REGISTRY_";

/// Names the config file in distribution when no path argument is given; it
/// is not an override, so it is skipped here (the CLI reads it).
pub const CONFIGURATION_PATH_VAR: &str = "REGISTRY_CONFIGURATION_PATH";

/// Applies every `REGISTRY_*` variable in `vars` to `tree` and returns the
/// names of the variables that were applied, in the order they were applied.
///
/// Fails when a value is not valid YAML (or nested too deeply), naming the
/// variable; a duplicate key inside a value adds a warning naming it.
pub fn apply_env_overrides(
    tree: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && k != CONFIGURATION_PATH_VAR)
        .collect();
    vars.sort();
    let mut applied = Vec::new();
    for (name, raw) in vars {
        let segments: Vec<&str> = name[PREFIX.len()..].split('_').collect();
        if segments.iter().any(|s| s.is_empty()) {
            // `REGISTRY_`, `REGISTRY__X`, `REGISTRY_X_`: nothing sensible to address.
            continue;
        }
        let value =
            super::yaml::parse(&raw, &format!("{name}: "), warnings).map_err(|message| {
                ConfigError::Env {
                    var: name.clone(),
                    message,
                }
            })?;
        if !set_path(tree, &segments, value) {
            // registry:2's parser silently skips variables that lead into a
            // list; berth skips them too, but says so.
            warnings.push(format!(
                "{name} is ignored: it leads into a list, which REGISTRY_* variables cannot \
                 index (as in registry:2); set the whole list instead"
            ));
            continue;
        }
        applied.push(name);
    }
    Ok(applied)
}

/// Names the variable behind `err` when the key at fault (or one inside
/// it) was set by one of the `applied` variables: the longest match wins,
/// so `REGISTRY_HTTP_ADDR` is blamed over `REGISTRY_HTTP`.
pub fn blame(err: ConfigError, applied: &[String]) -> ConfigError {
    let (key, message) = match err {
        ConfigError::Invalid { key, message } => (key, message),
        ConfigError::UnknownKey { key, message } => {
            return match culprit(&key, applied) {
                Some(var) => ConfigError::UnknownKey {
                    message: format!("{message} (set by environment variable {var})"),
                    key,
                },
                None => ConfigError::UnknownKey { key, message },
            }
        }
        other => return other,
    };
    let message = match culprit(&key, applied) {
        Some(var) => format!("{message} (set by environment variable {var})"),
        None => message,
    };
    ConfigError::Invalid { key, message }
}

/// The applied variable whose key path is `key`, contains it, or lies
/// inside it.
fn culprit<'a>(key: &str, applied: &'a [String]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    let within = |outer: &str, inner: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    applied
        .iter()
        .filter_map(|var| {
            let path = var[PREFIX.len()..].to_ascii_lowercase().replace('_', ".");
            (within(&path, &key) || within(&key, &path)).then_some((path.len(), var.as_str()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, var)| var)
}

/// Sets `value` at `path` (upper-case segments matched case-insensitively);
/// false (nothing set) when the path leads into a list.
fn set_path(node: &mut Value, path: &[&str], value: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        *node = value;
        return true;
    };
    if matches!(node, Value::Sequence(_)) {
        return false;
    }
    let map = as_map_for_descent(node);
    let key = map
        .keys()
        .find(|k| key_matches(k, first))
        .cloned()
        .unwrap_or_else(|| Value::String(first.to_lowercase()));
    if rest.is_empty() {
        map.insert(key, value);
        return true;
    }
    let child = map.entry(key).or_insert(Value::Null);
    set_path(child, rest, value)
}

/// Makes `node` a mapping so we can descend into it: null and non-string
/// scalars become an empty map, a string `s` becomes `{s: {}}` (distribution's
/// "driver name" shorthand for `storage` and `auth`).
fn as_map_for_descent(node: &mut Value) -> &mut Mapping {
    if !matches!(node, Value::Mapping(_)) {
        let mut m = Mapping::new();
        if let Value::String(s) = node {
            m.insert(Value::String(s.clone()), Value::Mapping(Mapping::new()));
        }
        *node = Value::Mapping(m);
    }
    match node {
        Value::Mapping(m) => m,
        // Just made it a mapping above.
        _ => unreachable!("node was replaced by a mapping"),
    }
}

/// True when the YAML key `k` addresses the env segment `segment`.
fn key_matches(k: &Value, segment: &str) -> bool {
    let text = match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return false,
    };
    text.eq_ignore_ascii_case(segment)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    fn apply(base: &str, vars: &[(&str, &str)]) -> Value {
        let mut tree = yaml(base);
        apply_env_overrides(
            &mut tree,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &mut Vec::new(),
        )
        .unwrap();
        tree
    }

    #[test]
    fn override_table() {
        let fs = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n  delete:\n    enabled: false\nhttp:\n  addr: :5000\n";
        // (file, variables, expected tree)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let table: &[Case] = &[
            // Plain leaf replacement.
            (
                fs,
                &[("REGISTRY_HTTP_ADDR", "0.0.0.0:5000")],
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n  delete:\n    enabled: false\nhttp:\n  addr: 0.0.0.0:5000\n",
            ),
            // Values are YAML: true is a bool, 5000 a number.
            (
                fs,
                &[("REGISTRY_STORAGE_DELETE_ENABLED", "true"), ("REGISTRY_CATALOG_MAXENTRIES", "5000")],
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\ncatalog:\n  maxentries: 5000\n",
            ),
            (
                fs,
                &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/var/lib/registry")],
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: false\nhttp:\n  addr: :5000\n",
            ),
            // Missing parents are created, lowercased.
            (
                "version: 0.1\n",
                &[("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/domain.crt"), ("REGISTRY_HTTP_TLS_KEY", "/certs/domain.key")],
                "version: 0.1\nhttp:\n  tls:\n    certificate: /certs/domain.crt\n    key: /certs/domain.key\n",
            ),
            // Scalar parent then children: the scalar becomes a map keyed by it.
            // Given in reverse order to show sorting puts the parent first.
            (
                "version: 0.1\n",
                &[
                    ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
                    ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
                    ("REGISTRY_AUTH", "htpasswd"),
                ],
                "version: 0.1\nauth:\n  htpasswd:\n    path: /auth/htpasswd\n    realm: Registry Realm\n",
            ),
            (
                fs,
                &[("REGISTRY_STORAGE", "s3"), ("REGISTRY_STORAGE_S3_BUCKET", "b")],
                "version: 0.1\nstorage:\n  s3:\n    bucket: b\nhttp:\n  addr: :5000\n",
            ),
            // Setting the parent replaces the whole section, as distribution does.
            (
                fs,
                &[("REGISTRY_STORAGE", "inmemory")],
                "version: 0.1\nstorage: inmemory\nhttp:\n  addr: :5000\n",
            ),
            // A driver key set on a file using another driver: both are kept
            // (and validation then reports two drivers, like distribution).
            (
                "storage:\n  s3:\n    bucket: b\n",
                &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/x")],
                "storage:\n  s3:\n    bucket: b\n  filesystem:\n    rootdirectory: /x\n",
            ),
            // Existing keys match case-insensitively and keep their spelling.
            (
                "http:\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
                &[("REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS", "[a, b]")],
                "http:\n  headers:\n    X-Content-Type-Options: [a, b]\n",
            ),
            // Maps as values.
            (
                "version: 0.1\n",
                &[("REGISTRY_LOG_FIELDS", "{service: registry}")],
                "version: 0.1\nlog:\n  fields:\n    service: registry\n",
            ),
            // Not our prefix, the config-path variable, and empty segments: ignored.
            (
                "version: 0.1\n",
                &[
                    ("HTTP_ADDR", ":1"),
                    ("REGISTRYHTTP", "x"),
                    ("REGISTRY_CONFIGURATION_PATH", "/etc/x.yml"),
                    ("REGISTRY_", "x"),
                    ("REGISTRY_HTTP__ADDR", "x"),
                ],
                "version: 0.1\n",
            ),
            // A key with an underscore cannot be addressed: the segments
            // become nested keys instead (same as distribution).
            (
                "proxy:\n  remote_url: a\n",
                &[("REGISTRY_PROXY_REMOTE_URL", "b")],
                "proxy:\n  remote_url: a\n  remote:\n    url: b\n",
            ),
            // An empty value is YAML null.
            (
                "storage:\n  filesystem: {}\n",
                &[("REGISTRY_STORAGE", ""), ("REGISTRY_STORAGE_INMEMORY", "")],
                "storage:\n  inmemory: null\n",
            ),
        ];
        for (base, vars, want) in table {
            assert_eq!(apply(base, vars), yaml(want), "base {base:?} vars {vars:?}");
        }
    }

    #[test]
    fn bad_yaml_value_names_the_variable() {
        let mut tree = yaml("version: 0.1\n");
        let err = apply_env_overrides(
            &mut tree,
            [("REGISTRY_HTTP_SECRET".to_string(), "a: b: c".to_string())],
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("REGISTRY_HTTP_SECRET"), "{err}");
    }
}
