//! Certificates replaced on disk are served without a restart; a broken
//! replacement is logged and the previous certificate keeps serving.

use std::time::Duration;

use crate::procs::{require_tools, run, wait_until};
use crate::{berth_cert, curl_ok, file_fingerprint, file_serial, TlsRegistry};

#[test]
fn new_certificate_files_are_served_without_restart() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("");
    let crt = reg.certs.join("server.crt");
    let first = file_fingerprint(&crt);
    assert!(!first.is_empty());
    assert_eq!(reg.served_fingerprint(), first, "initial certificate");
    let first_serial = file_serial(&crt);

    // Renew: same CA, new key and serial, written while berth serves.
    berth_cert(
        &reg.certs,
        reg.port,
        &["--host", "localhost", "--ip", "127.0.0.1"],
    );
    let second = file_fingerprint(&crt);
    assert_ne!(second, first);
    assert_ne!(file_serial(&crt), first_serial, "renewal has a new serial");
    wait_until(
        "new connections to get the renewed certificate",
        Duration::from_secs(30),
        || reg.served_fingerprint() == second,
    );
    let ca = reg.ca();
    curl_ok(&["--cacert", ca.to_str().unwrap(), &reg.url("/v2/")]);
    assert!(
        reg.log().contains("TLS certificate reloaded"),
        "{}",
        reg.log()
    );

    // Garbage replaces the certificate: logged, old one kept.
    std::fs::write(&crt, "not a certificate\n").unwrap();
    wait_until(
        "berth to log the failed reload",
        Duration::from_secs(30),
        || reg.log().contains("reload (files changed) failed"),
    );
    assert_eq!(
        reg.served_fingerprint(),
        second,
        "broken file must not replace the certificate"
    );
    curl_ok(&["--cacert", ca.to_str().unwrap(), &reg.url("/v2/")]);

    // A certificate that does not match the key: also refused.
    let other = reg.tmp.path().join("other");
    berth_cert(&other, reg.port, &["--host", "localhost"]);
    std::fs::copy(other.join("server.crt"), &crt).unwrap();
    wait_until(
        "berth to log the mismatched pair",
        Duration::from_secs(30),
        || reg.log().matches("reload (files changed) failed").count() >= 2,
    );
    assert_eq!(reg.served_fingerprint(), second);

    // SIGHUP reloads at once (files fixed by a renewal with the same CA).
    berth_cert(
        &reg.certs,
        reg.port,
        &["--host", "localhost", "--ip", "127.0.0.1"],
    );
    let third = file_fingerprint(&crt);
    run(std::process::Command::new("kill").args(["-HUP", &reg.proc.pid().to_string()]));
    wait_until(
        "the certificate after SIGHUP",
        Duration::from_secs(30),
        || reg.served_fingerprint() == third,
    );
    curl_ok(&["--cacert", ca.to_str().unwrap(), &reg.url("/v2/")]);
}
