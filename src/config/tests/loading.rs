//! Real registry:2 configs (Debian's, the classic one, every typed key), defaults and the embedded default.

use super::*;

#[test]
fn debian_config_loads() {
    let (c, warnings) = load(DEBIAN_CONFIG).unwrap();
    assert_eq!(c.version, "0.1");
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/var/lib/docker-registry".into(),
            sync: FsSync::Group,
        }
    );
    assert!(c.storage.delete.enabled);
    assert_eq!(c.http.addr, ":5000");
    assert_eq!(c.listen_addr().unwrap().to_string(), "0.0.0.0:5000");
    assert_eq!(
        c.http.headers["X-Content-Type-Options"],
        vec!["nosniff".to_string()]
    );
    assert_eq!(c.log.fields["service"], Value::from("registry"));
    assert!(c.auth.is_some());
    let h = c.health.as_ref().unwrap();
    assert!(h.storagedriver.enabled);
    assert_eq!(h.storagedriver.interval, Duration::from_secs(10));
    assert_eq!(h.storagedriver.threshold, 3);
    // No unknown keys, and health is implemented: only storage.cache,
    // which berth replaces with its own caches, is noted.
    assert_eq!(
        warnings,
        vec![
            "`storage.cache` is accepted, not implemented: berth keeps its own bounded in-memory caches; nothing is cached in redis",
        ]
    );
}

#[test]
fn classic_config_loads() {
    let (c, warnings) = load(CLASSIC_CONFIG).unwrap();
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/var/lib/registry".into(),
            sync: FsSync::Group,
        }
    );
    assert!(!c.storage.delete.enabled);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.catalog.maxentries, 1000);
    assert_eq!(c.catalog.refreshinterval, Duration::from_secs(30));
    assert_eq!(c.catalog.indexlimit, 1_000_000);
    assert_eq!(
        warnings,
        vec![
            "`storage.cache` is accepted, not implemented: berth keeps its own bounded in-memory caches; nothing is cached in redis",
        ]
    );
}

#[test]
fn full_config_loads_every_typed_key() {
    let (c, warnings) = load(FULL_CONFIG).unwrap();
    assert!(
        warnings.iter().all(|w| !w.contains("unknown")),
        "{warnings:?}"
    );
    assert!(c.log.accesslog.disabled);
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.log.formatter, "json");
    let p = &c.storage.maintenance.uploadpurging;
    assert!(!p.enabled && p.dryrun);
    assert_eq!(p.age, Duration::from_secs(72 * 3600));
    assert_eq!(p.interval, Duration::from_secs(5400));
    assert!(c.storage.maintenance.readonly.enabled);
    assert!(c.storage.redirect.disable);
    assert_eq!(c.storage.filesystem.as_ref().unwrap().maxthreads, Some(100));
    assert_eq!(c.http.prefix, "/my/nested/registry/");
    assert_eq!(c.http.host, "https://myregistryaddress.org:5000");
    assert!(c.http.relativeurls);
    assert_eq!(c.http.draintimeout, Duration::from_secs(60));
    assert_eq!(c.http.tls.clientcas, vec!["/path/to/ca.pem".to_string()]);
    assert_eq!(c.http.tls.minimumtls, "tls1.2");
    assert_eq!(c.http.debug.addr, ":5001");
    assert!(c.http.debug.prometheus.enabled);
    assert!(c.http.http2.disabled);
    assert_eq!(c.catalog.maxentries, 250);
    assert_eq!(c.catalog.refreshinterval, Duration::from_secs(5));
    assert_eq!(c.catalog.indexlimit, 20_000);
    assert_eq!(
        c.listen_addr().unwrap(),
        ListenAddr {
            host: "localhost".into(),
            port: 5000
        }
    );
}

#[test]
fn defaults_when_keys_are_missing() {
    let (c, _) = load("version: 0.1\nstorage:\n  inmemory:\n").unwrap();
    assert_eq!(c.storage_driver().unwrap(), StorageDriverConfig::InMemory);
    assert_eq!(c.http.addr, "127.0.0.1:5000");
    assert_eq!(c.log.level, "info");
    let p = &c.storage.maintenance.uploadpurging;
    assert!(p.enabled && !p.dryrun);
    assert_eq!(p.age, Duration::from_secs(168 * 3600));
    assert_eq!(p.interval, Duration::from_secs(24 * 3600));
    assert_eq!(c.http.draintimeout, Duration::ZERO);
    assert_eq!(c.catalog.maxentries, 1000);
    // A bare `filesystem:` gets distribution's default root.
    let (c, _) = load("version: 0.1\nstorage:\n  filesystem:\n").unwrap();
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/var/lib/registry".into(),
            sync: FsSync::Group,
        }
    );
    // Empty values in typed sections mean the default, like Go's zero values.
    let (c, _) = load(
        "version: 0.1\nlog:\nhttp:\n  addr:\n  relativeurls:\nstorage:\n  inmemory:\n  delete:\n",
    )
    .unwrap();
    assert_eq!(c.http.addr, "127.0.0.1:5000");
    assert!(!c.http.relativeurls);
}

#[test]
fn embedded_default_is_loopback_and_data_dir() {
    let (c, warnings) = Config::load(None, no_env()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c, Config::embedded_default());
    assert_eq!(
        c.listen_addr().unwrap().socket_addr(),
        Some("127.0.0.1:5000".parse().unwrap())
    );
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "./data".into(),
            sync: FsSync::Group,
        }
    );
    // A storage driver from the environment replaces the default driver.
    let (c, _) = Config::load(None, env(&[("REGISTRY_STORAGE", "inmemory")])).unwrap();
    assert_eq!(c.storage_driver().unwrap(), StorageDriverConfig::InMemory);
    let (c, _) = Config::load(
        None,
        env(&[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/x")]),
    )
    .unwrap();
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/x".into(),
            sync: FsSync::Group,
        }
    );
    // A storage setting that is not a driver keeps the default driver.
    let (c, _) = Config::load(None, env(&[("REGISTRY_STORAGE_DELETE_ENABLED", "true")])).unwrap();
    assert!(c.storage.delete.enabled);
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "./data".into(),
            sync: FsSync::Group,
        }
    );
}

#[test]
fn health_section_of_the_reference_loads() {
    let yaml = "version: 0.1\nstorage: inmemory\nhealth:\n  storagedriver:\n    enabled: true\n    interval: 10s\n    threshold: 3\n  file:\n    - file: /path/to/checked/file\n      interval: 10s\n  http:\n    - uri: http://server.to.check/must/return/200\n      headers:\n        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]\n      statuscode: 200\n      timeout: 3s\n      interval: 10s\n      threshold: 3\n  tcp:\n    - addr: redis-server.domain.com:6379\n      timeout: 3s\n      interval: 10s\n      threshold: 3\n";
    let (c, warnings) = load(yaml).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let h = c.health.unwrap();
    assert_eq!(h.file[0].file, "/path/to/checked/file");
    assert_eq!(h.http[0].statuscode, 200);
    assert_eq!(h.http[0].timeout, Duration::from_secs(3));
    assert_eq!(h.http[0].headers["Authorization"].len(), 1);
    assert_eq!(h.tcp[0].addr, "redis-server.domain.com:6379");
    assert_eq!(h.tcp[0].threshold, 3);
    // https checks are not run, and say so.
    let yaml = "version: 0.1\nstorage: inmemory\nhealth:\n  http:\n    - uri: https://x.example/\n";
    let (_, warnings) = load(yaml).unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("https://x.example/")),
        "{warnings:?}"
    );
}

#[test]
fn http_prefix_forms() {
    for (given, want) in [
        ("", ""),
        ("/", ""),
        ("registry", "/registry"),
        ("/a/b/", "/a/b"),
    ] {
        assert_eq!(http_prefix(given).unwrap(), want, "{given:?}");
    }
    assert!(http_prefix("/a b/").is_err());
}

/// registry:2's sample files (tests/fixtures/registry2, distribution v2.8.2).
fn fixture(name: &str) -> &'static str {
    match name {
        "config-example.yml" => {
            include_str!("../../../tests/fixtures/registry2/config-example.yml")
        }
        "config-dev.yml" => include_str!("../../../tests/fixtures/registry2/config-dev.yml"),
        "config-cache.yml" => include_str!("../../../tests/fixtures/registry2/config-cache.yml"),
        "configuration-reference.yml" => {
            include_str!("../../../tests/fixtures/registry2/configuration-reference.yml")
        }
        other => panic!("no fixture {other}"),
    }
}

fn not_implemented(key: &str) -> String {
    let n = unimplemented::NOT_IMPLEMENTED
        .iter()
        .find(|n| n.key == key)
        .unwrap_or_else(|| panic!("{key} is not in the table"));
    format!("`{}` is accepted, not implemented: {}", n.key, n.instead)
}

#[test]
fn registry2_sample_files_load_with_the_expected_warnings() {
    let table: &[(&str, &[&str])] = &[
        ("config-example.yml", &["storage.cache"]),
        ("config-dev.yml", &["log.hooks", "storage.cache", "redis"]),
        ("config-cache.yml", &["storage.cache", "redis"]),
    ];
    for (name, keys) in table {
        let (c, warnings) = load(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: Vec<String> = unimplemented::NOT_IMPLEMENTED
            .iter()
            .filter(|n| keys.contains(&n.key))
            .map(|n| not_implemented(n.key))
            .collect();
        assert_eq!(want.len(), keys.len(), "{name}");
        assert_eq!(warnings, want, "{name}");
        assert!(matches!(
            c.storage_driver().unwrap(),
            StorageDriverConfig::Filesystem { .. }
        ));
    }
}

#[test]
fn registry2_reference_example_refused_like_registry2_then_loads_with_one_of_each() {
    let full = fixture("configuration-reference.yml");
    // As in registry:2: several auth schemes (and drivers) are refused.
    let err = load(full).unwrap_err().to_string();
    assert!(
        err.starts_with("auth: must provide exactly one type"),
        "{err}"
    );
    // With one driver and one scheme, as an operator would write it.
    let cut = |text: &str, from: &str, to: &str| -> String {
        let a = text.find(from).unwrap();
        let b = text.find(to).unwrap();
        format!("{}{}", &text[..a], &text[b..])
    };
    let one = cut(full, "  azure:\n", "  delete:\n    enabled: false\n");
    let one = cut(&one, "  silly:\n", "  htpasswd:\n    realm: basic-realm\n");
    // The reference's placeholders are YAML lists, which registry:2's
    // string fields refuse too.
    let one = one
        .replace("[username]", "username")
        .replace("[password]", "password");
    // The sample's `headers: <http.Header>` placeholder is not a header map
    // (registry:2 refuses it too): give it one.
    let one = one.replace(
        "headers: <http.Header>",
        "headers:\n        Authorization: [Bearer t]",
    );
    let (c, warnings) = load(&one).unwrap_or_else(|e| panic!("{e}\n{one}"));
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/var/lib/registry".into(),
            sync: FsSync::Group,
        }
    );
    assert_eq!(c.auth.as_ref().and_then(|a| a.scheme()), Some("htpasswd"));
    assert_eq!(c.log.level, "debug");
    // The duplicate `middleware.storage` (the last one wins), the
    // deprecated `loglevel`, and every section berth does not implement.
    let mut want = vec![
        "duplicate key `middleware.storage`: the last value is used (as registry:2 does)"
            .to_string(),
        "`loglevel` is deprecated; use `log.level`".to_string(),
    ];
    for key in [
        "log.hooks",
        "http.tls.letsencrypt",
        "storage.filesystem.maxthreads",
        "storage.cache",
        "redis",
        "validation",
        "compatibility",
        "middleware",
        "reporting",
    ] {
        want.push(not_implemented(key));
    }
    assert_eq!(warnings, want);
    let middleware = c.middleware.as_ref().unwrap();
    assert_eq!(middleware["storage"][0]["name"], Value::from("redirect"));
}
