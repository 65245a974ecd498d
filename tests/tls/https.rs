//! curl against a TLS berth: certificate verification, HTTP/2 and HTTP/1.1,
//! plain HTTP on the TLS port, `http.http2.disabled`, `minimumtls`.

use std::process::Command;

use crate::procs::{output, require_tools, tempdir};
use crate::{berth_cert, curl, curl_fails, curl_ok, TlsRegistry};

#[test]
fn curl_verifies_with_the_ca_and_fails_without() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("");
    let ca = reg.ca();
    let ca = ca.to_str().unwrap();

    // By IP and by name: both are in the certificate.
    for url in [
        reg.url("/v2/"),
        format!("https://localhost:{}/v2/", reg.port),
    ] {
        let head = curl_ok(&["--cacert", ca, "-D", "-", "-o", "/dev/null", &url]);
        let status = head.lines().next().unwrap_or_default();
        assert!(status.contains(" 200"), "{url}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("docker-distribution-api-version: registry/2.0"),
            "{url}: {head}"
        );
    }

    // Without the CA the certificate is not trusted (curl exit 60).
    let err = curl_fails(&[&reg.url("/v2/")]);
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "curl without the CA: {err}"
    );
    // A name not in the certificate is refused even with the CA.
    let err = curl_fails(&[
        "--cacert",
        ca,
        "--resolve",
        &format!("elsewhere.example:{}:127.0.0.1", reg.port),
        &format!("https://elsewhere.example:{}/v2/", reg.port),
    ]);
    assert!(
        err.contains("elsewhere.example") || err.contains("SSL"),
        "{err}"
    );
}

#[test]
fn http2_and_http1_are_negotiated() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("");
    let ca = reg.ca();
    let ca = ca.to_str().unwrap();
    let url = reg.url("/v2/");
    let v = curl_ok(&[
        "--cacert",
        ca,
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &url,
    ]);
    assert_eq!(v, "2", "ALPN h2");
    let v = curl_ok(&[
        "--cacert",
        ca,
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &url,
    ]);
    assert_eq!(v, "1.1");
    // An error body arrives intact over HTTP/2.
    let body = curl_ok(&[
        "--cacert",
        ca,
        "--http2",
        &reg.url("/v2/none/manifests/latest"),
    ]);
    assert!(body.contains("MANIFEST_UNKNOWN"), "{body}");
}

#[test]
fn http2_disabled_serves_http1_only() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("  http2:\n    disabled: true\n");
    let ca = reg.ca();
    let v = curl_ok(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &reg.url("/v2/"),
    ]);
    assert_eq!(v, "1.1", "http2.disabled must not offer h2");
}

#[test]
fn plain_http_on_the_tls_port_gets_400_naming_https() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("");
    let out = curl(&["-i", &format!("http://127.0.0.1:{}/v2/", reg.port)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "plain HTTP must get an answer, not a hang or reset: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains(&format!(
            "this port speaks HTTPS; use https://127.0.0.1:{}",
            reg.port
        )),
        "{text}"
    );
    // The server is still fine afterwards.
    let ca = reg.ca();
    curl_ok(&["--cacert", ca.to_str().unwrap(), &reg.url("/v2/")]);
}

#[test]
fn minimum_tls13_refuses_tls12_clients() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("    minimumtls: tls1.3\n");
    let ca = reg.ca();
    let ca = ca.to_str().unwrap();
    let url = reg.url("/v2/");
    curl_fails(&["--cacert", ca, "--tls-max", "1.2", &url]);
    curl_ok(&["--cacert", ca, "--tlsv1.3", &url]);

    // The default (tls1.2) accepts a TLS 1.2-only client.
    let reg12 = TlsRegistry::start("");
    let ca12 = reg12.ca();
    curl_ok(&[
        "--cacert",
        ca12.to_str().unwrap(),
        "--tls-max",
        "1.2",
        &reg12.url("/v2/"),
    ]);
}

#[test]
fn tls10_is_a_clear_startup_error() {
    let tmp = tempdir("berth-tls10-");
    berth_cert(tmp.path(), 5000, &["--host", "localhost"]);
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(tmp.path().join("storage"))
            .env(
                "REGISTRY_HTTP_TLS_CERTIFICATE",
                tmp.path().join("server.crt"),
            )
            .env("REGISTRY_HTTP_TLS_KEY", tmp.path().join("server.key"))
            .env("REGISTRY_HTTP_TLS_MINIMUMTLS", "tls1.0"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "berth served with minimumtls tls1.0");
    assert!(err.contains("requires TLS 1.2 or later"), "{err}");
}

#[test]
fn sigterm_stops_the_tls_server_cleanly() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let mut reg = TlsRegistry::start("");
    let ca = reg.ca();
    curl_ok(&["--cacert", ca.to_str().unwrap(), &reg.url("/v2/")]);
    reg.proc.stop(std::time::Duration::from_secs(30));
    let log = reg.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("berth stopped"), "{log}");
    // Nothing listens any more.
    curl_fails(&["--cacert", ca.to_str().unwrap(), &reg.url("/v2/")]);
}

/// The `Location` header curl sees for a new upload sent with `extra` headers.
fn upload_location(reg: &TlsRegistry, extra: &[&str]) -> String {
    let ca = reg.ca();
    let mut args = vec![
        "--cacert",
        ca.to_str().unwrap(),
        "-X",
        "POST",
        "-D",
        "-",
        "-o",
        "/dev/null",
    ];
    for h in extra {
        args.extend(["-H", h]);
    }
    let url = reg.url("/v2/fwd/blobs/uploads/");
    args.push(&url);
    let head = curl_ok(&args);
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Location in:\n{head}"))
}

/// Issue 12 item 11 over TLS: URLs say `https://` (berth marks its TLS
/// requests itself); with `http.trustedproxies` set, a client that is not
/// one of them cannot turn that into `http://` or another host, while
/// without it the forwarded headers count, as in registry:2.
#[test]
fn locations_over_tls_and_forwarded_headers() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let forged = ["X-Forwarded-Proto: http", "X-Forwarded-Host: proxy.example"];
    let open = TlsRegistry::start("");
    let own = format!("https://{}/v2/fwd/blobs/uploads/", open.host());
    let loc = upload_location(&open, &[]);
    assert!(loc.starts_with(&own), "{loc}");
    let loc = upload_location(&open, &forged);
    assert!(
        loc.starts_with("http://proxy.example/v2/fwd/blobs/uploads/"),
        "{loc}"
    );

    let guarded = TlsRegistry::start("  trustedproxies: [192.0.2.1]\n");
    let own = format!("https://{}/v2/fwd/blobs/uploads/", guarded.host());
    for headers in [&forged[..], &forged[..1], &[]] {
        let loc = upload_location(&guarded, headers);
        assert!(loc.starts_with(&own), "{headers:?}: {loc}");
    }
}
