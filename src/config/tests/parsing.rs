//! Parsing as registry:2's go-yaml v2 parses: YAML 1.1 booleans, merge
//! keys, duplicate keys; and refusing deeply nested input before parsing.

use super::*;

#[test]
fn yaml11_booleans_where_a_bool_is_expected() {
    for (word, want) in [
        ("yes", true),
        ("Yes", true),
        ("YES", true),
        ("on", true),
        ("ON", true),
        ("y", true),
        ("True", true),
        ("no", false),
        ("No", false),
        ("off", false),
        ("Off", false),
        ("n", false),
        ("FALSE", false),
    ] {
        let yaml = format!(
            "version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: {word}\n  redirect:\n    disable: {word}\nhttp:\n  relativeurls: {word}\n"
        );
        let (c, _) = load(&yaml).unwrap_or_else(|e| panic!("{word}: {e}"));
        assert_eq!(c.storage.delete.enabled, want, "{word}");
        assert_eq!(c.storage.redirect.disable, want, "{word}");
        assert_eq!(c.http.relativeurls, want, "{word}");
        // And from the environment.
        let (c, _) = Config::load_str(
            "version: 0.1\nstorage:\n  inmemory:\n",
            "f.yml",
            env(&[("REGISTRY_STORAGE_DELETE_ENABLED", word)]),
        )
        .unwrap();
        assert_eq!(c.storage.delete.enabled, want, "env {word}");
    }
    // go-yaml v2 takes no other spellings; neither does berth.
    for word in ["yEs", "oN", "2", "enabled"] {
        let yaml = format!("version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: {word}\n");
        let err = load(&yaml).unwrap_err().to_string();
        assert!(err.starts_with("storage.delete.enabled: "), "{err}");
    }
    // A string field keeps the word as written.
    let (c, _) = load("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  secret: yes\n").unwrap();
    assert_eq!(c.http.secret, "yes");
}

#[test]
fn merge_keys_are_applied() {
    let yaml = "\
version: 0.1
x-defaults: &fs
  rootdirectory: /srv/registry
  sync: file
storage:
  filesystem:
    <<: *fs
    sync: group
";
    let (c, warnings) = load(yaml).unwrap();
    assert_eq!(
        c.storage_driver().unwrap(),
        StorageDriverConfig::Filesystem {
            root: "/srv/registry".into(),
            sync: FsSync::Group,
        }
    );
    assert_eq!(
        warnings,
        vec!["unknown configuration key `x-defaults` (ignored)"]
    );
}

#[test]
fn duplicate_keys_warn_and_the_last_wins() {
    let yaml = "\
version: 0.1
storage:
  inmemory:
  delete:
    enabled: false
http:
  addr: :5000
http:
  addr: :6000
  headers:
    X-Content-Type-Options: [nosniff]
";
    let (c, warnings) = load(yaml).unwrap();
    assert_eq!(c.http.addr, ":6000");
    assert_eq!(
        warnings,
        vec!["duplicate key `http`: the last value is used (as registry:2 does)"]
    );
}

#[test]
fn deeply_nested_input_is_refused_before_parsing() {
    let deep = format!("version: 0.1\nstorage: {}", "[".repeat(100_000));
    match load(&deep) {
        Err(ConfigError::Syntax { message, .. }) => {
            assert!(message.contains("nested more than 64 levels"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let err = Config::load_str(
        "version: 0.1\nstorage:\n  inmemory:\n",
        "f.yml",
        env(&[("REGISTRY_HTTP_HEADERS", &"{a: ".repeat(10_000))]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("REGISTRY_HTTP_HEADERS") && err.contains("nested more than"),
        "{err}"
    );
}
