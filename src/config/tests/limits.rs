//! `limits:`: defaults, file values, `REGISTRY_LIMITS_*` overrides, and a
//! misspelt key refused with the nearest one.

use super::*;

#[test]
fn limits_have_safe_defaults() {
    let (c, _) = load("version: 0.1\nstorage:\n  inmemory:\n").unwrap();
    assert_eq!(c.limits.uploads, 512);
    assert_eq!(c.limits.uploadsperclient, 64);
    assert_eq!(c.limits.manifestsize, 4 << 20);
    assert_eq!(c.limits.uploadsessionsperrepository, 1000);
    assert_eq!(c.limits.uploadrateperclient, 32 << 20);
}

#[test]
fn limits_come_from_the_file_and_the_environment() {
    let yaml = "version: 0.1\nstorage:\n  inmemory:\nlimits:\n  uploads: 7\n  manifestsize: 1024\n";
    let env = [
        (
            "REGISTRY_LIMITS_UPLOADSPERCLIENT".to_string(),
            "3".to_string(),
        ),
        (
            "REGISTRY_LIMITS_UPLOADSESSIONSPERREPOSITORY".to_string(),
            "0".to_string(),
        ),
        (
            "REGISTRY_LIMITS_UPLOADRATEPERCLIENT".to_string(),
            "1048576".to_string(),
        ),
    ];
    let (c, _) = Config::load_str(yaml, "test.yml", env).unwrap();
    assert_eq!(c.limits.uploads, 7);
    assert_eq!(c.limits.manifestsize, 1024);
    assert_eq!(c.limits.uploadsperclient, 3);
    assert_eq!(c.limits.uploadsessionsperrepository, 0);
    assert_eq!(c.limits.uploadrateperclient, 1 << 20);
}

#[test]
fn a_misspelt_upload_rate_is_fatal_with_a_suggestion() {
    let err = load("version: 0.1\nstorage:\n  inmemory:\nlimits:\n  uploadratepercient: 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `uploadrateperclient`"), "{err}");
}

#[test]
fn a_misspelt_limit_is_fatal_with_a_suggestion() {
    let err = load("version: 0.1\nstorage:\n  inmemory:\nlimits:\n  uploadsperclien: 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.uploadsperclien"), "{err}");
    assert!(err.contains("did you mean `uploadsperclient`"), "{err}");
}

#[test]
fn a_zero_manifest_size_is_refused() {
    let err = load("version: 0.1\nstorage:\n  inmemory:\nlimits:\n  manifestsize: 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("limits.manifestsize: "), "{err}");
}
