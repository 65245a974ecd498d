//! Unknown keys, invalid values, deprecated and unsupported settings: what warns, what fails and how the key is named.

use super::*;

#[test]
fn unknown_keys_warn_with_full_path() {
    let yaml = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n  delete:\n    enbled: true\nhttp:\n  adr: :5000\n  tls:\n    certificate: x\nfoo: 1\n";
    let (_, warnings) = load(yaml).unwrap();
    for key in ["http.adr", "storage.delete.enbled", "foo"] {
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
    let (c, _) = load("version: 0.1\nstorage:\n  filesytem:\n    rootdirectory: /srv\n").unwrap();
    let err = c.storage_driver().unwrap_err().to_string();
    assert!(err.contains("did you mean `filesystem`?"), "{err}");
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
        let (mut again, warnings) = load(&printed).unwrap();
        // Secrets print as `<redacted>` (config::redact); all else is kept.
        assert_eq!(again.to_yaml().unwrap(), printed);
        if !c.http.secret.is_empty() {
            assert_eq!(again.http.secret, "<redacted>");
            again.http.secret.clone_from(&c.http.secret);
        }
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

#[test]
fn typos_in_auth_tls_and_storage_drivers_are_refused_with_the_nearest_key() {
    // (yaml, key at fault, hint)
    let table: &[(&str, &str, &str)] = &[
        (
            "version: 0.1\nstorage:\n  inmemory:\nauth:\n  htpaswd:\n    realm: r\n    path: /p\n",
            "auth.htpaswd",
            "unknown authentication scheme `auth.htpaswd`; did you mean `htpasswd`?",
        ),
        (
            "version: 0.1\nstorage:\n  inmemory:\nauth:\n  htpasswd:\n    realm: r\n    pth: /p\n",
            "auth.htpasswd.pth",
            "did you mean `path`?",
        ),
        (
            "version: 0.1\nstorage:\n  inmemory:\nauth:\n  token:\n    realm: r\n    isuer: i\n",
            "auth.token.isuer",
            "did you mean `issuer`?",
        ),
        (
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectroy: /srv\n",
            "storage.filesystem.rootdirectroy",
            "did you mean `rootdirectory`?",
        ),
        (
            "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: r\n    regionendpont: http://x\n",
            "storage.s3.regionendpont",
            "did you mean `regionendpoint`?",
        ),
        (
            "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  tls:\n    certificate: c\n    kye: k\n",
            "http.tls.kye",
            "did you mean `key`?",
        ),
        (
            "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  tls:\n    letsencrypt:\n      cachefil: x\n",
            "http.tls.letsencrypt.cachefil",
            "did you mean `cachefile`?",
        ),
    ];
    for (yaml, key, hint) in table {
        match load(yaml) {
            Err(ConfigError::UnknownKey { key: k, message }) => {
                assert_eq!(&k, key, "{yaml}");
                assert!(message.contains(hint), "{yaml}: {message}");
            }
            other => panic!("{yaml}: {other:?}"),
        }
    }
    // The same typo from the environment names the variable.
    let err = Config::load_str(
        "version: 0.1\nstorage:\n  inmemory:\n",
        "f.yml",
        env(&[("REGISTRY_AUTH_HTPASWD_PATH", "/p")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("did you mean `htpasswd`?") && err.contains("REGISTRY_AUTH_HTPASWD_PATH"),
        "{err}"
    );
}

#[test]
fn errors_from_environment_variables_name_the_variable() {
    let table: &[(&[(&str, &str)], &str)] = &[
        (&[("REGISTRY_HTTP_ADDR", "5000")], "REGISTRY_HTTP_ADDR"),
        (
            &[("REGISTRY_STORAGE_DELETE_ENABLED", "maybe")],
            "REGISTRY_STORAGE_DELETE_ENABLED",
        ),
        (&[("REGISTRY_LOG_LEVEL", "loud")], "REGISTRY_LOG_LEVEL"),
        (&[("REGISTRY_HTTP", "[1]")], "REGISTRY_HTTP"),
        (&[("REGISTRY_HTTP_TLS", "{a: [}")], "REGISTRY_HTTP_TLS"),
    ];
    for (vars, var) in table {
        let err = Config::load_str("version: 0.1\nstorage:\n  inmemory:\n", "f.yml", env(vars))
            .unwrap_err()
            .to_string();
        assert!(err.contains(var), "{vars:?}: {err}");
    }
}

#[test]
fn messages_never_show_rust_type_names() {
    let table = [
        "version: 0.1\nstorage:\n  inmemory:\nhttp: 5\n",
        "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  tls: [a]\n",
        "version: 0.1\nstorage:\n  inmemory:\nlog: yes\n",
        "version: 0.1\nstorage:\n  inmemory:\n  maintenance: 1\n",
        "version: 0.1\nstorage:\n  filesystem:\n    sync: [a]\n",
        "version: 0.1\nstorage:\n  inmemory:\nauth:\n  htpasswd: 1\n",
        "version: 0.1\nstorage:\n  inmemory:\ncatalog:\n  maxentries: [1]\n",
        "version: 0.1\nstorage:\n  inmemory:\naccess:\n  users: 1\n",
        "version: 0.1\nstorage:\n  s3: 1\n",
    ];
    for yaml in table {
        let err = load(yaml).unwrap_err().to_string();
        for rust in [
            "struct", "enum", "Config", "FsSync", "Value", "::", "u64", "i64", "usize",
        ] {
            assert!(!err.contains(rust), "{yaml:?}: {err}");
        }
    }
}

#[test]
fn ui_section_defaults_and_strict_keys() {
    let (c, _) = load("version: 0.1\nstorage:\n  inmemory: {}\n").unwrap();
    assert!(c.ui.enabled, "the web UI is on by default");
    let (c, _) = load("version: 0.1\nstorage:\n  inmemory: {}\nui:\n  enabled: false\n").unwrap();
    assert!(!c.ui.enabled);
    let err = load("version: 0.1\nstorage:\n  inmemory: {}\nui:\n  enabeld: false\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`ui.enabeld`; did you mean `enabled`?"),
        "{err}"
    );
    let vars = env(&[("REGISTRY_UI_ENABLED", "false")]);
    let (c, _) =
        Config::load_str("version: 0.1\nstorage:\n  inmemory: {}\n", "t.yml", vars).unwrap();
    assert!(!c.ui.enabled, "REGISTRY_UI_ENABLED overrides");
}
