//! Secrets out of printed configuration: `berth config print` and
//! `config check` show the effective configuration, which holds storage
//! keys, upstream passwords, webhook headers and signing secrets. Every
//! such value is replaced by [`REDACTED`] in the serialized tree, so the
//! output stays valid YAML with every other value as loaded.

use serde_yaml_ng::{Mapping, Value};

/// What a secret value is printed as.
pub const REDACTED: &str = "<redacted>";

/// Paths (dot-separated; `*` is any list index or map key) whose value is
/// a secret. A mapping or list at such a path has every leaf redacted.
const SECRET_PATHS: &[&str] = &[
    "http.secret",
    "storage.s3.accesskey",
    "storage.s3.secretkey",
    "storage.s3.sessiontoken",
    "storage.azure.accountkey",
    "storage.azure.connectionstring",
    "storage.azure.credentials.secret",
    "proxy.password",
    "mirrors.*.password",
    "notifications.endpoints.*.headers.*",
    "notifications.endpoints.*.hmacsecret",
    "health.http.*.headers.*",
];

/// Sections kept as raw YAML (drivers berth does not implement, `redis`,
/// `reporting`, `middleware`, `storage.cache`): any key in them whose name
/// looks secret is redacted, at any depth.
const RAW_SECTIONS: &[&str] = &["redis", "reporting", "middleware"];

/// `storage:` keys with typed sections (redacted by [`SECRET_PATHS`]).
const TYPED_STORAGE_KEYS: &[&str] = &[
    "filesystem",
    "s3",
    "azure",
    "gcs",
    "delete",
    "maintenance",
    "redirect",
    "tag",
];

/// Fields of a GCS service account key that are not secret; every other
/// value under `storage.gcs.credentials` is redacted (`private_key`, ...).
const GCS_PUBLIC: &[&str] = &[
    "type",
    "project_id",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
    "universe_domain",
];

/// Redacts every secret in a serialized configuration tree: the
/// [`SECRET_PATHS`], secret-looking keys in raw sections, a GCS key's
/// private parts, and the user information and query values of every URL.
pub fn redact_tree(root: &mut Value) {
    for path in SECRET_PATHS {
        let parts: Vec<&str> = path.split('.').collect();
        at_path(root, &parts, &mut redact_all);
    }
    for path in RAW_SECTIONS {
        let parts: Vec<&str> = path.split('.').collect();
        at_path(root, &parts, &mut redact_secret_keys);
    }
    at_path(root, &["storage", "gcs", "credentials"], &mut |v| {
        if let Value::Mapping(m) = v {
            for (k, v) in m.iter_mut() {
                if !k.as_str().is_some_and(|k| GCS_PUBLIC.contains(&k)) {
                    redact_all(v);
                }
            }
        } else {
            redact_all(v);
        }
    });
    // Unknown driver keys (`storage.<name>`) are raw too.
    if let Some(Value::Mapping(storage)) = get_mut(root, "storage") {
        for (k, v) in storage.iter_mut() {
            if !k.as_str().is_some_and(|k| TYPED_STORAGE_KEYS.contains(&k)) {
                redact_secret_keys(v);
            }
        }
    }
    redact_urls(root);
}

/// `url` without user information and with every query value replaced:
/// `https://u:p@host/hook?token=x` is `https://host/hook?token=<redacted>`.
/// Not a URL: returned unchanged.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((a, _)) => (a, Some(REDACTED)),
        None => (rest, None),
    };
    let (main, query) = match before_fragment.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (before_fragment, None),
    };
    let (authority, path) = match main.find('/') {
        Some(i) => main.split_at(i),
        None => (main, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut out = format!("{scheme}://{host}{path}");
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn looks_like_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

fn redact_urls(v: &mut Value) {
    match v {
        Value::String(s) if looks_like_url(s) => *s = url(s),
        Value::Sequence(items) => items.iter_mut().for_each(redact_urls),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| redact_urls(v)),
        Value::Tagged(t) => redact_urls(&mut t.value),
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match v {
        Value::Mapping(m) => m.get_mut(key),
        _ => None,
    }
}

/// Calls `f` on every value at `path` (`*` matching every key or index).
fn at_path(v: &mut Value, path: &[&str], f: &mut dyn FnMut(&mut Value)) {
    let Some((first, rest)) = path.split_first() else {
        f(v);
        return;
    };
    match (v, *first) {
        (Value::Mapping(m), "*") => m.iter_mut().for_each(|(_, v)| at_path(v, rest, f)),
        (Value::Sequence(items), "*") => items.iter_mut().for_each(|v| at_path(v, rest, f)),
        (Value::Mapping(m), key) => {
            if let Some(v) = m.get_mut(key) {
                at_path(v, rest, f);
            }
        }
        _ => {}
    }
}

/// Replaces every non-empty leaf under `v` (the keys of a mapping stay).
fn redact_all(v: &mut Value) {
    match v {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::Sequence(items) => items.iter_mut().for_each(redact_all),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| redact_all(v)),
        Value::Tagged(t) => redact_all(&mut t.value),
        other => *other = Value::String(REDACTED.into()),
    }
}

/// A key naming a secret in a section berth keeps raw.
fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "key", "credential", "licen"]
        .iter()
        .any(|w| k.contains(w))
}

fn redact_secret_keys(v: &mut Value) {
    match v {
        Value::Mapping(m) => redact_mapping(m),
        Value::Sequence(items) => items.iter_mut().for_each(redact_secret_keys),
        Value::Tagged(t) => redact_secret_keys(&mut t.value),
        _ => {}
    }
}

fn redact_mapping(m: &mut Mapping) {
    for (k, v) in m.iter_mut() {
        if k.as_str().is_some_and(secret_name) {
            redact_all(v);
        } else {
            redact_secret_keys(v);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_user_information_and_query_values() {
        assert_eq!(
            url("https://u:p@hook.example:8443/x?token=abc&flag#frag"),
            "https://hook.example:8443/x?token=<redacted>&<redacted>#<redacted>"
        );
        assert_eq!(url("http://h/p"), "http://h/p");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn raw_sections_lose_secret_looking_keys_only() {
        let mut v: Value = serde_yaml_ng::from_str(
            "redis:\n  addr: r:6379\n  password: pw\n  tls:\n    clientkey: k\n",
        )
        .unwrap();
        redact_tree(&mut v);
        let out = serde_yaml_ng::to_string(&v).unwrap();
        assert!(out.contains("addr: r:6379"), "{out}");
        assert!(!out.contains("pw\n") && !out.contains(": k\n"), "{out}");
    }
}
