//! Unit tests of the client's settings checks and URL building.
#![allow(clippy::unwrap_used)]

use super::*;

fn upstream(url: &str) -> anyhow::Result<HttpUpstream> {
    HttpUpstream::new(UpstreamSettings {
        label: "t".into(),
        remote_url: url.into(),
        username: Some("u".into()),
        password: Some("very-secret-pw".into()),
        ..Default::default()
    })
}

#[test]
fn remote_urls_are_checked() {
    assert!(upstream("https://registry-1.docker.io").is_ok());
    assert!(upstream("http://127.0.0.1:5000/").is_ok());
    for bad in [
        "ftp://x",
        "not a url",
        "https://u:p@host",
        "https://h/?q=1",
        "file:///x",
    ] {
        assert!(upstream(bad).is_err(), "{bad}");
    }
    let u = upstream("http://127.0.0.1:5000").unwrap();
    let url = u.endpoint("a", "blobs", "v1").unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:5000/v2/a/blobs/v1");
    let u = upstream("http://127.0.0.1:5000/prefix/").unwrap();
    let url = u.endpoint("library/alpine", "manifests", "3.20").unwrap();
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:5000/prefix/v2/library/alpine/manifests/3.20"
    );
    assert!(u.endpoint("../etc", "manifests", "x").is_err());
    assert!(u.endpoint("a", "manifests", "../../x").is_err());
    assert!(u.endpoint("a", "manifests", "t?x=1").is_err());
    assert!(!format!("{u:?}").contains("very-secret-pw"));
}

#[test]
fn ca_files_must_hold_certificates() {
    let dir = std::env::temp_dir().join(format!("berth-ca-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for ca in [junk, dir.join("missing.pem")] {
        let r = HttpUpstream::new(UpstreamSettings {
            label: "t".into(),
            remote_url: "https://r.example.com".into(),
            ca_file: Some(ca.clone()),
            ..Default::default()
        });
        assert!(r.is_err(), "{}", ca.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn accept_lists_every_stored_manifest_type() {
    let a = manifest_accept();
    for t in [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ] {
        assert!(a.contains(t), "{a}");
    }
}

#[test]
fn origins_compare_scheme_host_and_port() {
    let p = |s: &str| Url::parse(s).unwrap();
    assert!(same_origin(
        &p("https://a.example/x"),
        &p("https://a.example:443/y")
    ));
    assert!(!same_origin(
        &p("https://a.example"),
        &p("http://a.example")
    ));
    assert!(!same_origin(
        &p("http://a.example:1"),
        &p("http://a.example:2")
    ));
    assert!(!same_origin(&p("http://a.example"), &p("http://b.example")));
}
