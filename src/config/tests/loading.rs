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
    assert!(c.auth.is_some() && c.health.is_some());
    // No unknown keys; only the "not implemented" notices.
    assert!(
        warnings.iter().all(|w| !w.contains("unknown")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("health")),
        "{warnings:?}"
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
    assert_eq!(
        warnings,
        vec![
            "`log.fields` is accepted, not implemented: the fields are not added to log lines",
            "`storage.cache` is accepted, not implemented: berth keeps its own bounded in-memory caches; nothing is cached in redis",
            "`health` is accepted, not implemented: `/healthz` checks storage on each request; no periodic storagedriver/file/http/tcp checks run and requests are not failed with 503",
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
