//! Unknown keys, invalid values, deprecated and unsupported settings: what warns, what fails and how the key is named.

use super::*;

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
        (
            "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  trustedproxies: [10.0.0.0/8, nginx]\n",
            "http.trustedproxies[1]: \"nginx\" is not an address",
        ),
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
