//! `REGISTRY_*` environment overrides on top of the file, as distribution applies them.

use super::*;

#[test]
fn env_overrides_apply_on_top_of_the_file() {
    let vars = env(&[
        ("REGISTRY_HTTP_ADDR", "0.0.0.0:6000"),
        ("REGISTRY_STORAGE_DELETE_ENABLED", "false"),
        ("REGISTRY_HTTP_SECRET", "12345"),
        ("REGISTRY_AUTH", "htpasswd"),
        ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
        ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
        ("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/domain.crt"),
        ("REGISTRY_HTTP_TRUSTEDPROXIES", "[10.0.0.0/8, 127.0.0.1]"),
        ("PATH", "/usr/bin"),
    ]);
    let (c, _) = Config::load_str(DEBIAN_CONFIG, "debian.yml", vars).unwrap();
    assert_eq!(c.http.addr, "0.0.0.0:6000");
    assert!(!c.storage.delete.enabled);
    // A numeric YAML value still fills a string field, as in Go.
    assert_eq!(c.http.secret, "12345");
    assert_eq!(c.http.tls.certificate, "/certs/domain.crt");
    assert_eq!(c.http.trustedproxies, ["10.0.0.0/8", "127.0.0.1"]);
    let htpasswd = c.auth.and_then(|a| a.htpasswd).unwrap();
    assert_eq!(htpasswd.realm, "Registry Realm");
    assert_eq!(htpasswd.path, "/auth/htpasswd");
}

#[test]
fn env_storage_overrides_mirror_distribution() {
    // REGISTRY_STORAGE replaces the whole storage section.
    let (c, _) = Config::load_str(
        DEBIAN_CONFIG,
        "d.yml",
        env(&[("REGISTRY_STORAGE", "inmemory")]),
    )
    .unwrap();
    assert_eq!(c.storage_driver().unwrap(), StorageDriverConfig::InMemory);
    assert!(!c.storage.delete.enabled);
    assert!(c.storage.cache.is_none());
    // Adding a second driver key is an error naming both.
    let err = Config::load_str(
        "version: 0.1\nstorage:\n  inmemory:\n",
        "f.yml",
        env(&[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/x")]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "storage: multiple storage drivers specified in configuration or environment: \
         filesystem, inmemory (set by environment variable REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY)"
    );
    // REGISTRY_STORAGE=s3 then children: parses into the typed s3 section.
    let (c, _) = Config::load_str(
        DEBIAN_CONFIG,
        "d.yml",
        env(&[
            ("REGISTRY_STORAGE", "s3"),
            ("REGISTRY_STORAGE_S3_BUCKET", "b"),
            (
                "REGISTRY_STORAGE_S3_REGIONENDPOINT",
                "http://127.0.0.1:3900",
            ),
            ("REGISTRY_STORAGE_S3_CHUNKSIZE", "6291456"),
        ]),
    )
    .unwrap();
    assert_eq!(c.storage.driver_names(), vec!["s3".to_string()]);
    match c.storage_driver().unwrap() {
        StorageDriverConfig::S3 { config } => {
            assert_eq!(config.bucket, "b");
            assert_eq!(config.chunksize, 6 << 20);
            assert!(config.path_style());
        }
        other => panic!("{other:?}"),
    }
    // Without a bucket the s3 section is refused, naming the key.
    let (c, _) =
        Config::load_str(DEBIAN_CONFIG, "d.yml", env(&[("REGISTRY_STORAGE", "s3")])).unwrap();
    let err = c.storage_driver().unwrap_err().to_string();
    assert!(err.starts_with("storage.s3.bucket"), "{err}");
}

#[test]
fn notifications_load_from_the_file_and_the_environment() {
    let yaml = "version: 0.1\nstorage:\n  inmemory:\nnotifications:\n  events:\n    includereferences: true\n  endpoints:\n    - name: ci\n      url: https://ci.example/hook\n      headers:\n        Authorization: [Bearer x]\n      timeout: 500ms\n      threshold: 3\n      backoff: 2s\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        actions: [pull]\n      hmacsecret: s\n";
    let (c, w) = Config::load_str(yaml, "n.yml", env(&[])).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let n = c.notifications.as_ref().unwrap();
    assert!(n.events.includereferences);
    let e = &n.endpoints[0];
    assert_eq!((e.name.as_str(), e.threshold), ("ci", 3));
    assert_eq!(e.timeout, Duration::from_millis(500));
    assert_eq!(e.headers["Authorization"], ["Bearer x"]);
    assert_eq!(e.ignore.actions, ["pull"]);
    assert_eq!(e.hmacsecret, "s");
    // registry:2's parser cannot index the endpoints list: the whole list
    // is given as one YAML value, and scalar keys above it as usual.
    let (c, _) = Config::load_str(
        yaml,
        "n.yml",
        env(&[
            ("REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES", "false"),
            (
                "REGISTRY_NOTIFICATIONS_ENDPOINTS",
                "[{name: a, url: 'http://h/x', timeout: 2s}, {name: b, url: 'http://i/y', disabled: true}]",
            ),
        ]),
    )
    .unwrap();
    let n = c.notifications.unwrap();
    assert!(!n.events.includereferences);
    assert_eq!(n.endpoints.len(), 2);
    assert_eq!(n.endpoints[0].timeout, Duration::from_secs(2));
    assert!(n.endpoints[1].disabled);
    // Indexing into the list does not work: registry:2 skips such a
    // variable silently, berth skips it with a warning.
    let (c, w) = Config::load_str(
        yaml,
        "n.yml",
        env(&[("REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL", "http://h/z")]),
    )
    .unwrap();
    assert_eq!(
        c.notifications.unwrap().endpoints[0].url,
        "https://ci.example/hook"
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL is ignored"),
        "{w:?}"
    );
}

#[test]
fn notifications_typos_and_bad_urls_are_refused() {
    let base =
        "version: 0.1\nstorage:\n  inmemory:\nnotifications:\n  endpoints:\n    - name: ci\n";
    let err = Config::load_str(
        &format!("{base}      url: http://h/x\n      treshold: 3\n"),
        "n.yml",
        env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("did you mean `threshold`?"), "{err}");
    let err = Config::load_str(
        &format!("{base}      url: ftp://u:secret@h/x\n"),
        "n.yml",
        env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("notifications.endpoints[0].url"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}
