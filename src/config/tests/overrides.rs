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
