//! `storage.{s3,azure,gcs}.idletimeout` (berth): default, file value,
//! `REGISTRY_STORAGE_*_IDLETIMEOUT`, and a misspelling refused with the
//! nearest key.

use std::time::Duration;

use super::*;

const S3: &str = "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: r\n";

#[test]
fn the_idle_timeout_defaults_to_a_minute_on_every_object_store() {
    let (c, _) = load(S3).unwrap();
    assert_eq!(c.storage.s3.unwrap().idletimeout, Duration::from_secs(60));
    let (c, _) = load(
        "version: 0.1\nstorage:\n  azure:\n    accountname: a\n    accountkey: k\n    container: c\n",
    )
    .unwrap();
    assert_eq!(
        c.storage.azure.unwrap().idletimeout,
        Duration::from_secs(60)
    );
    let (c, _) = load("version: 0.1\nstorage:\n  gcs:\n    bucket: b\n").unwrap();
    assert_eq!(c.storage.gcs.unwrap().idletimeout, Duration::from_secs(60));
}

#[test]
fn the_idle_timeout_comes_from_the_file_and_the_environment() {
    let (c, _) = load(&format!("{S3}    idletimeout: 5s\n")).unwrap();
    assert_eq!(c.storage.s3.unwrap().idletimeout, Duration::from_secs(5));
    let (c, _) = Config::load_str(
        S3,
        "t.yml",
        env(&[("REGISTRY_STORAGE_S3_IDLETIMEOUT", "90s")]),
    )
    .unwrap();
    assert_eq!(c.storage.s3.unwrap().idletimeout, Duration::from_secs(90));
    let (c, _) = load(&format!("{S3}    idletimeout: 0s\n")).unwrap();
    assert!(c.storage.s3.unwrap().idletimeout.is_zero());
}

#[test]
fn a_misspelt_idle_timeout_is_fatal_with_a_suggestion() {
    let err = load(&format!("{S3}    idletimout: 5s\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("storage.s3.idletimout"), "{err}");
    assert!(err.contains("did you mean `idletimeout`"), "{err}");
    let err = load(&format!("{S3}    idletimeout: soon\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("idletimeout"), "{err}");
}
