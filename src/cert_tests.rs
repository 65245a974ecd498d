use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::RootCertStore;

use super::*;
use crate::tls::read_certs;

fn request(dir: &Path) -> CertRequest {
    CertRequest {
        hosts: vec!["registry.example".into(), "localhost".into()],
        ips: vec![
            "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
            "::1"
                .parse()
                .unwrap_or(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
        ],
        out: dir.to_path_buf(),
        days: 30,
    }
}

/// Verifies `w.server_cert` for `name` with rustls' webpki verifier trusting
/// only `w.ca_cert`.
fn verify(w: &Written, name: &str) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    for ca in read_certs(&w.ca_cert).map_err(|e| rustls::Error::General(e.to_string()))? {
        roots.add(ca)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let chain = read_certs(&w.server_cert).map_err(|e| rustls::Error::General(e.to_string()))?;
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &server_name, &[], UnixTime::now())
        .map(|_| ())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[test]
fn certificate_verifies_for_every_san_and_nothing_else() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let w = make(&request(dir.path()))?;
    assert!(!w.ca_reused);
    for name in ["registry.example", "localhost", "127.0.0.1", "::1"] {
        verify(&w, name).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    }
    for other in ["other.example", "10.0.0.1", "registry.example.evil"] {
        assert!(verify(&w, other).is_err(), "{other} must not verify");
    }
    Ok(())
}

#[test]
fn key_files_are_private() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let w = make(&request(dir.path()))?;
    assert_eq!(mode(&w.ca_key), 0o600, "ca.key mode");
    assert_eq!(mode(&w.server_key), 0o600, "server.key mode");
    assert_eq!(mode(&w.server_cert), 0o644, "server.crt mode");
    // Renewal keeps the mode.
    let w = make(&request(dir.path()))?;
    assert_eq!(mode(&w.server_key), 0o600, "server.key mode after renewal");
    Ok(())
}

#[test]
fn second_run_reuses_the_ca_and_issues_a_new_certificate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = make(&request(dir.path()))?;
    let ca_before = std::fs::read(&first.ca_cert)?;
    let ca_key_before = std::fs::read(&first.ca_key)?;
    let cert_before = std::fs::read(&first.server_cert)?;

    let mut req = request(dir.path());
    req.hosts = vec!["renewed.example".into()];
    let second = make(&req)?;
    assert!(second.ca_reused);
    assert_eq!(
        std::fs::read(&second.ca_cert)?,
        ca_before,
        "ca.crt rewritten"
    );
    assert_eq!(
        std::fs::read(&second.ca_key)?,
        ca_key_before,
        "ca.key rewritten"
    );
    assert_ne!(std::fs::read(&second.server_cert)?, cert_before);
    // Signed by the same CA: verifies with the CA clients already have.
    verify(&second, "renewed.example").map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(verify(&second, "registry.example").is_err());
    Ok(())
}

#[test]
fn half_a_ca_is_an_error_not_a_new_ca() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let w = make(&request(dir.path()))?;
    std::fs::remove_file(&w.ca_key)?;
    let err = make(&request(dir.path()))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("only one of"), "{err}");
    assert!(!w.ca_key.exists(), "a lone ca.crt must not get a new key");
    Ok(())
}

#[test]
fn needs_a_name() {
    let dir = std::env::temp_dir().join("berth-cert-no-name");
    let req = CertRequest {
        hosts: vec![],
        ips: vec![],
        out: dir,
        days: 1,
    };
    assert!(make(&req).is_err());
}

#[test]
fn bad_arguments_write_nothing() -> anyhow::Result<()> {
    let parent = tempfile::tempdir()?;
    let out = parent.path().join("certs");
    let bad: Vec<(CertRequest, &str)> = vec![
        (
            CertRequest {
                days: 3_650_000,
                ..request(&out)
            },
            "--days 3650000 is too long",
        ),
        (
            CertRequest {
                days: u32::MAX,
                ..request(&out)
            },
            "too long",
        ),
        (
            CertRequest {
                days: 0,
                ..request(&out)
            },
            "--days must be at least 1",
        ),
        (
            CertRequest {
                hosts: vec![String::new()],
                ..request(&out)
            },
            "--host \"\" is not a valid DNS name",
        ),
        (
            CertRequest {
                hosts: vec!["registry.example".into(), "bad host".into()],
                ..request(&out)
            },
            "--host \"bad host\"",
        ),
        (
            CertRequest {
                hosts: vec!["-x.example".into()],
                ..request(&out)
            },
            "not a valid DNS name",
        ),
        (
            CertRequest {
                hosts: vec!["a..b".into()],
                ..request(&out)
            },
            "not a valid DNS name",
        ),
    ];
    for (req, want) in bad {
        let err = make(&req).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(want), "{:?} {}: {err}", req.hosts, req.days);
        assert!(
            !out.exists(),
            "{:?} {}: wrote {}",
            req.hosts,
            req.days,
            out.display()
        );
    }
    // The longest validity allowed works.
    let w = make(&CertRequest {
        days: MAX_DAYS,
        ..request(&out)
    })?;
    assert!(w.server_cert.exists());
    Ok(())
}

#[test]
fn dns_names() {
    for good in ["localhost", "a.b-c.example", "*.example.com", "x1.", "A"] {
        assert!(valid_dns_name(good), "{good}");
    }
    let long_label = "a".repeat(64);
    for bad in [
        "",
        ".",
        "*",
        "a b",
        "a_b",
        "-a",
        "a-",
        "a..b",
        "*.*.x",
        long_label.as_str(),
    ] {
        assert!(!valid_dns_name(bad), "{bad}");
    }
}

#[test]
fn instructions_name_every_client_location() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let req = request(dir.path());
    let w = make(&req)?;
    let text = instructions(&req, &w, 5443);
    for want in [
        "/etc/docker/certs.d/registry.example:5443/ca.crt",
        "/etc/containers/certs.d/127.0.0.1:5443/ca.crt",
        "/etc/containerd/certs.d/[::1]:5443/hosts.toml",
        "ca = \"/etc/containerd/certs.d/localhost:5443/ca.crt\"",
        "update-ca-certificates",
        "REGISTRY_HTTP_TLS_CERTIFICATE=",
        "certificate: ",
    ] {
        assert!(text.contains(want), "instructions lack {want:?}:\n{text}");
    }
    Ok(())
}
