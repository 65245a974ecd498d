//! Keys berth accepts (so a registry:2 configuration loads) but does not act
//! on: each one present in a configuration is reported once at start and by
//! `berth config check`, with what berth does instead. When a key becomes
//! implemented, delete its row here (and its row in docs/configuration.md).

use serde_yaml_ng::Value;

/// One accepted-but-not-implemented key: its dotted path and what berth
/// does instead.
pub struct NotImplemented {
    /// Dotted key path, e.g. `http.prefix` (a whole section: `proxy`).
    pub key: &'static str,
    /// What berth does instead, completing "… is accepted, not implemented: ".
    pub instead: &'static str,
}

/// Every key berth accepts without implementing it. The single list: the
/// docs table and the tests follow it.
pub const NOT_IMPLEMENTED: &[NotImplemented] = &[
    NotImplemented { key: "log.hooks", instead: "no hooks (mail) run; errors are only logged" },
    NotImplemented { key: "log.reportcaller", instead: "log lines do not name the calling function" },
    NotImplemented { key: "http.tls.letsencrypt", instead: "no ACME certificates are fetched: the files in http.tls.certificate/key are served, and without them berth refuses to start" },
    NotImplemented { key: "auth.token.autoredirect", instead: "the configured realm is used as is" },
    NotImplemented { key: "storage.filesystem.maxthreads", instead: "berth bounds filesystem work with its own blocking pool" },
    NotImplemented { key: "storage.cache", instead: "berth keeps its own bounded in-memory caches; nothing is cached in redis" },
    NotImplemented { key: "storage.tag", instead: "tag lookups are not limited in concurrency" },
    NotImplemented { key: "storage.s3.multipartcopychunksize", instead: "copies use the object store client's defaults" },
    NotImplemented { key: "storage.s3.multipartcopymaxconcurrency", instead: "copies use the object store client's defaults" },
    NotImplemented { key: "storage.s3.multipartcopythresholdsize", instead: "copies use the object store client's defaults" },
    NotImplemented { key: "storage.s3.useragent", instead: "berth's own user agent is sent" },
    NotImplemented { key: "storage.s3.usedualstack", instead: "the endpoint is used as configured" },
    NotImplemented { key: "storage.s3.accelerate", instead: "the endpoint is used as configured" },
    NotImplemented { key: "storage.s3.objectacl", instead: "objects get the bucket's default ACL" },
    NotImplemented { key: "storage.s3.loglevel", instead: "S3 requests are logged with berth's log.level" },
    NotImplemented { key: "storage.s3.checksumdisabled", instead: "the object store client's checksums are used" },
    NotImplemented { key: "storage.s3.checksumalgorithm", instead: "the object store client's checksums are used" },
    NotImplemented { key: "storage.azure.copy_status_poll_max_retry", instead: "the object store client's retry policy is used" },
    NotImplemented { key: "storage.azure.copy_status_poll_delay", instead: "the object store client's retry policy is used" },
    NotImplemented { key: "storage.azure.max_retries", instead: "the object store client's retry policy is used" },
    NotImplemented { key: "storage.azure.retry_delay", instead: "the object store client's retry policy is used" },
    NotImplemented { key: "storage.gcs.useragent", instead: "berth's own user agent is sent" },
    NotImplemented { key: "storage.gcs.maxconcurrency", instead: "the object store client's limits are used" },
    NotImplemented { key: "redis", instead: "nothing uses redis" },
    NotImplemented { key: "validation", instead: "manifests' foreign layer URLs are not checked against allow/deny lists" },
    NotImplemented { key: "compatibility", instead: "schema1 manifests are refused (UNSUPPORTED); no schema1 signing key is used" },
    NotImplemented { key: "middleware", instead: "no registry/repository/storage middleware (e.g. cloudfront redirects) runs" },
    NotImplemented { key: "reporting", instead: "errors are not sent to bugsnag or newrelic" },
];

/// One warning per [`NOT_IMPLEMENTED`] key set (to anything but an empty or
/// zero value) in `tree`, the configuration after `REGISTRY_*` overrides.
pub fn warnings(tree: &Value) -> Vec<String> {
    NOT_IMPLEMENTED
        .iter()
        .filter(|n| is_set(tree, n.key))
        .map(|n| format!("`{}` is accepted, not implemented: {}", n.key, n.instead))
        .collect()
}

/// True when `path` leads to a value that says something (not null, empty,
/// `false` or `""`).
fn is_set(tree: &Value, path: &str) -> bool {
    let mut node = tree;
    for segment in path.split('.') {
        match node.as_mapping().and_then(|m| m.get(segment)) {
            Some(child) => node = child,
            None => return false,
        }
    }
    match node {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_key_set_is_reported_once_with_what_berth_does() {
        let tree: Value = serde_yaml_ng::from_str(
            "http:\n  prefix: /r/\n  secret: ''\nlog:\n  reportcaller: false\n  fields: {a: b}\nredis:\n  addr: x\n",
        )
        .unwrap();
        assert_eq!(
            warnings(&tree),
            vec!["`redis` is accepted, not implemented: nothing uses redis",]
        );
    }

    #[test]
    fn keys_are_unique_and_documented() {
        let docs = include_str!("../../docs/configuration.md");
        for (i, n) in NOT_IMPLEMENTED.iter().enumerate() {
            assert!(
                NOT_IMPLEMENTED[..i].iter().all(|m| m.key != n.key),
                "{} twice",
                n.key
            );
            let row = format!("| `{}` | accepted, not implemented: {} |", n.key, n.instead);
            assert!(
                docs.contains(&row),
                "docs/configuration.md lacks the row\n{row}"
            );
        }
    }
}
