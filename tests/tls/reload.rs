//! Certificates replaced on disk are served without a restart; a broken
//! replacement is logged and the previous certificate keeps serving.

use std::time::Duration;

use crate::procs::{require_tools, run, wait_until};
use crate::{berth_cert, curl_ok, file_fingerprint, file_serial, TlsRegistry};
use std::path::Path;

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
}

/// Pads `path` with trailing newlines (ignored by PEM readers) to `len` bytes.
fn pad_pem(path: &Path, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() <= len, "{} is over {len} bytes", path.display());
    bytes.resize(len, b'\n');
    std::fs::write(path, bytes).unwrap();
}

/// Rewrites `dst` in place (same inode) with `src`'s PEM padded to `len`
/// bytes and puts its modification time back: every stamp the file poller
/// compares (mtime, size, inode) stays the same, as after an `rsync -t` of
/// a same-size renewal.
fn replace_unseen(src: &Path, dst: &Path, len: usize) {
    let mtime = std::fs::metadata(dst).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(src).unwrap();
    assert!(bytes.len() <= len);
    bytes.resize(len, b'\n');
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dst)
        .unwrap();
    std::io::Write::write_all(&mut f, &bytes).unwrap();
    f.set_modified(mtime).unwrap();
    f.sync_all().unwrap();
}

/// SIGHUP alone reloads: the renewed files keep every stamp the poller
/// looks at, so without the SIGHUP handler the old certificate would be
/// served forever and this test fails.
#[test]
fn sighup_reloads_what_the_file_poller_cannot_see() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    const LEN: usize = 16 * 1024;
    let reg = TlsRegistry::start_with(|certs| {
        pad_pem(&certs.join("server.crt"), LEN);
        pad_pem(&certs.join("server.key"), LEN);
        String::new()
    });
    let crt = reg.certs.join("server.crt");
    let first = file_fingerprint(&crt);
    assert_eq!(reg.served_fingerprint(), first, "initial certificate");
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&crt).unwrap());

    // A renewal by the same CA, made beside the served files.
    let staged = reg.tmp.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    for f in std::fs::read_dir(&reg.certs).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), staged.join(f.file_name())).unwrap();
    }
    berth_cert(
        &staged,
        reg.port,
        &["--host", "localhost", "--ip", "127.0.0.1"],
    );
    let renewed = file_fingerprint(&staged.join("server.crt"));
    assert_ne!(renewed, first);
    let before = std::fs::metadata(&crt).unwrap();
    replace_unseen(
        &staged.join("server.key"),
        &reg.certs.join("server.key"),
        LEN,
    );
    replace_unseen(&staged.join("server.crt"), &crt, LEN);
    let after = std::fs::metadata(&crt).unwrap();
    assert_eq!(file_fingerprint(&crt), renewed);
    assert_eq!(
        (after.modified().unwrap(), after.len()),
        (before.modified().unwrap(), before.len()),
        "the poller's stamps are unchanged"
    );
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&after), ino);

    run(std::process::Command::new("kill").args(["-HUP", &reg.proc.pid().to_string()]));
    wait_until(
        "the certificate after SIGHUP",
        Duration::from_secs(30),
        || reg.served_fingerprint() == renewed,
    );
    assert!(
        reg.log().contains("TLS certificate reloaded (SIGHUP)"),
        "{}",
        reg.log()
    );
    assert!(
        !reg.log().contains("reloaded (files changed)"),
        "the poller must not have seen the renewal: {}",
        reg.log()
    );
    let ca = reg.ca();
    curl_ok(&["--cacert", ca.to_str().unwrap(), &reg.url("/v2/")]);
}
