//! Loader tests: real registry:2 configs, warnings, errors, defaults.
#![allow(clippy::unwrap_used)]

use super::*;
use std::time::Duration;

/// Debian's `/etc/docker/registry/config.yml` (docker-registry 2.8.2), verbatim.
const DEBIAN_CONFIG: &str = "\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/docker/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
";

/// distribution's classic `cmd/registry/config-example.yml` (the registry:2 image default).
const CLASSIC_CONFIG: &str = "\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
";

/// A config using most typed keys, shaped like distribution's config-dev.yml
/// and the reference's option list.
const FULL_CONFIG: &str = "\
version: 0.1
log:
  accesslog:
    disabled: true
  level: debug
  formatter: json
  fields:
    service: registry
    environment: development
storage:
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /srv/registry
    maxthreads: 100
  maintenance:
    uploadpurging:
      enabled: false
      age: 72h
      interval: 1h30m
      dryrun: true
    readonly:
      enabled: true
  redirect:
    disable: true
  tag:
    concurrencylimit: 8
http:
  addr: localhost:5000
  net: tcp
  prefix: /my/nested/registry/
  host: https://myregistryaddress.org:5000
  secret: asecretforlocaldevelopment
  relativeurls: true
  draintimeout: 60s
  tls:
    certificate: /path/to/x509/public
    key: /path/to/x509/private
    clientcas:
      - /path/to/ca.pem
    minimumtls: tls1.2
    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
  debug:
    addr: :5001
    prometheus:
      enabled: true
      path: /metrics
  headers:
    X-Content-Type-Options: [nosniff]
  http2:
    disabled: true
catalog:
  maxentries: 250
";

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(yaml: &str) -> Result<(Config, Vec<String>), ConfigError> {
    Config::load_str(yaml, "test.yml", no_env())
}

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
        vec!["health is accepted but not implemented by berth yet; it is ignored"]
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
        ("PATH", "/usr/bin"),
    ]);
    let (c, _) = Config::load_str(DEBIAN_CONFIG, "debian.yml", vars).unwrap();
    assert_eq!(c.http.addr, "0.0.0.0:6000");
    assert!(!c.storage.delete.enabled);
    // A numeric YAML value still fills a string field, as in Go.
    assert_eq!(c.http.secret, "12345");
    assert_eq!(c.http.tls.certificate, "/certs/domain.crt");
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
        "storage: multiple storage drivers specified in configuration or environment: filesystem, inmemory"
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
fn unknown_keys_warn_with_full_path() {
    let yaml = "version: 0.1\nstorage:\n  filesystem:\n    rootdir: /x\n  delete:\n    enbled: true\nhttp:\n  adr: :5000\n  tls:\n    cert: x\nfoo: 1\n";
    let (_, warnings) = load(yaml).unwrap();
    for key in [
        "http.adr",
        "storage.filesystem.rootdir",
        "storage.delete.enbled",
        "http.tls.cert",
        "foo",
    ] {
        assert!(
            warnings.contains(&format!("unknown configuration key `{key}` (ignored)")),
            "{key} not in {warnings:?}"
        );
    }
}

#[test]
fn invalid_values_name_the_key() {
    let table: &[(&str, &str)] = &[
        (
            "version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: maybe\n",
            "storage.delete.enabled: invalid type: string \"maybe\", expected a boolean",
        ),
        (
            "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  relativeurls: [1]\n",
            "http.relativeurls: invalid type: sequence, expected a boolean",
        ),
        (
            "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      age: 3 days\n",
            "storage.maintenance.uploadpurging.age: ",
        ),
        (
            "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  draintimeout: 10\n",
            "", // integer nanoseconds are fine (Go semantics); checked below
        ),
        ("version: 0.2\nstorage:\n  inmemory:\n", "version: unsupported version \"0.2\""),
        ("storage:\n  inmemory:\n", "version: missing"),
        ("version: 0.1\nhttp:\n  addr: :5000\n", "storage: no storage configuration provided in test.yml"),
        (
            "version: 0.1\nstorage:\n  inmemory:\n  filesystem:\n    rootdirectory: /x\n",
            "storage: multiple storage drivers specified in configuration or environment: filesystem, inmemory",
        ),
        ("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 5000\n", "http.addr: "),
        ("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: \"::1:5000\"\n", "http.addr: "),
        ("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: \":http\"\n", "http.addr: "),
        ("version: 0.1\nstorage:\n  inmemory:\nlog:\n  level: loud\n", "log.level: "),
        ("version: 0.1\nstorage:\n  inmemory:\nlog:\n  formatter: xml\n", "log.formatter: "),
        ("version: 0.1\nstorage:\n  inmemory:\ncatalog:\n  maxentries: lots\n", "catalog.maxentries: "),
        ("version: 0.1\nstorage: [a]\n", "storage: "),
        (
            "version: 0.1\nstorage:\n  inmemory:\nauth:\n  htpasswd: {}\n  silly: {}\n",
            "auth: must provide exactly one type",
        ),
        ("version: 0.1\nhttp: [\n", "parsing test.yml: "),
    ];
    for (yaml, want) in table {
        match load(yaml) {
            Ok(_) if want.is_empty() => {}
            Ok(_) => panic!("{yaml:?} loaded, wanted error {want:?}"),
            Err(e) => {
                assert!(!want.is_empty(), "{yaml:?}: unexpected error {e}");
                assert!(
                    e.to_string().starts_with(want),
                    "{yaml:?}: got {e}, want {want:?}"
                );
            }
        }
    }
}

#[test]
fn maxentries_zero_follows_distribution_on_load_but_fails_validate() {
    let (mut c, warnings) =
        load("version: 0.1\nstorage:\n  inmemory:\ncatalog:\n  maxentries: 0\n").unwrap();
    assert_eq!(c.catalog.maxentries, 1000);
    assert!(
        warnings.iter().any(|w| w.contains("catalog.maxentries")),
        "{warnings:?}"
    );
    c.catalog.maxentries = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "catalog.maxentries: must be greater than 0"
    );
}

#[test]
fn deprecated_loglevel_moves_to_log_level() {
    let (c, warnings) = load("version: 0.1\nloglevel: debug\nstorage:\n  inmemory:\n").unwrap();
    assert_eq!(c.log.level, "debug");
    assert!(warnings.iter().any(|w| w.contains("loglevel")));
}

#[test]
fn listen_addr_forms() {
    let table: &[(&str, Option<&str>)] = &[
        (":5000", Some("0.0.0.0:5000")),
        ("0.0.0.0:5000", Some("0.0.0.0:5000")),
        ("127.0.0.1:0", Some("127.0.0.1:0")),
        ("[::1]:5000", Some("[::1]:5000")),
        ("[::]:5000", Some("[::]:5000")),
        ("localhost:5000", Some("localhost:5000")),
        ("5000", None),
        ("", None),
        (":", None),
        (":99999", None),
        (":http", None),
        ("::1:5000", None),
        ("[nothost]:5000", None),
        ("[::1]5000", None),
    ];
    for (input, want) in table {
        let got = ListenAddr::parse(input).ok().map(|a| a.to_string());
        assert_eq!(got.as_deref(), *want, "input {input:?}");
    }
}

#[test]
fn unsupported_and_unknown_drivers() {
    let (c, _) = load("version: 0.1\nstorage:\n  swift:\n    container: b\n").unwrap();
    assert!(c
        .storage_driver()
        .unwrap_err()
        .to_string()
        .contains("not supported by berth yet"));
    let (c, _) = load("version: 0.1\nstorage:\n  floppy: {}\n").unwrap();
    assert!(c
        .storage_driver()
        .unwrap_err()
        .to_string()
        .contains("unknown storage driver"));
}

#[test]
fn azure_and_gcs_sections_are_typed() {
    let (c, _) = load(
        "version: 0.1\nstorage:\n  azure:\n    accountname: a\n    accountkey: k\n    container: c\n",
    )
    .unwrap();
    match c.storage_driver().unwrap() {
        StorageDriverConfig::Azure { config } => assert_eq!(config.container, "c"),
        other => panic!("{other:?}"),
    }
    let (c, _) = load("version: 0.1\nstorage:\n  gcs:\n    bucket: b\n").unwrap();
    match c.storage_driver().unwrap() {
        StorageDriverConfig::Gcs { config } => assert_eq!(config.bucket, "b"),
        other => panic!("{other:?}"),
    }
    let (c, _) = load("version: 0.1\nstorage:\n  azure:\n    accountname: a\n").unwrap();
    let err = c.storage_driver().unwrap_err().to_string();
    assert!(err.starts_with("storage.azure.container"), "{err}");
}

#[test]
fn set_filesystem_root_replaces_the_driver() {
    let (mut c, _) =
        load("version: 0.1\nstorage:\n  s3:\n    bucket: b\n  delete:\n    enabled: true\n")
            .unwrap();
    c.set_filesystem_root("/srv/r".into());
    c.validate().unwrap();
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/srv/r".into(),
            sync: FsSync::Group,
        }
    );
    assert!(c.storage.delete.enabled);
}

#[test]
fn printed_yaml_loads_back_to_the_same_config() {
    for yaml in [DEBIAN_CONFIG, CLASSIC_CONFIG, FULL_CONFIG] {
        let (c, _) = load(yaml).unwrap();
        let printed = c.to_yaml().unwrap();
        let (again, warnings) = load(&printed).unwrap();
        assert_eq!(again, c, "{printed}");
        assert!(
            warnings.iter().all(|w| !w.contains("unknown")),
            "{warnings:?}\n{printed}"
        );
    }
}

#[test]
fn filesystem_sync_mode() {
    let (c, _) =
        load("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n    sync: file\n")
            .unwrap();
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/r".into(),
            sync: FsSync::File,
        }
    );
    let err = load("version: 0.1\nstorage:\n  filesystem:\n    sync: sometimes\n").unwrap_err();
    assert!(err.to_string().contains("sync"), "{err}");
}
