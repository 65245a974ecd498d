//! Runs the built `berth htpasswd` with the password on standard input, and
//! checks interoperability both ways with Apache's `htpasswd`
//! (apache2-utils; required under `CI=true`, else those tests skip).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth::auth::htpasswd::{verify_user, HtpasswdFile};

/// `berth htpasswd ARGS` with `stdin` as its standard input.
fn berth(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("htpasswd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused before it reads (a bad `--cost`) may exit first:
    // its closed pipe is not a test failure, its exit status is checked.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(out: Output) -> Output {
    assert!(out.status.success(), "failed: {}", stderr(&out));
    out
}

/// Asserts exit status 1 and returns stderr.
#[track_caller]
fn fails(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    stderr(&out)
}

fn apache(args: &[&str]) -> Output {
    Command::new("htpasswd")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// True when Apache's `htpasswd` is installed. When it is missing: fails
/// under `CI=true` or `BERTH_REQUIRE_TOOLS=1` (scripts/test.sh), else prints a note and returns false (test skipped), as
/// `tests/common/procs.rs` `require_tools` does for the interop tests.
fn require_htpasswd() -> bool {
    let found = Command::new("htpasswd")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        return true;
    }
    let on = |var: &str| std::env::var(var).is_ok_and(|v| v == "true" || v == "1");
    let ci = on("CI") || on("BERTH_REQUIRE_TOOLS");
    assert!(
        !ci,
        "required tool missing: htpasswd (CI=true or BERTH_REQUIRE_TOOLS=1; run scripts/install-test-deps.sh, package apache2-utils)"
    );
    eprintln!(
        "SKIPPED: htpasswd missing (apt-get install apache2-utils); under CI=true this fails"
    );
    false
}

#[test]
fn add_verify_delete() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let f = file.to_str().unwrap();

    let out = ok(berth(&["add", f, "alice", "--cost", "4"], "first pw\n"));
    assert!(stderr(&out).contains("added user \"alice\""));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("alice:$2y$04$"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The password is never printed.
    assert!(!stderr(&out).contains("first pw"));
    assert!(out.stdout.is_empty());

    ok(berth(&["verify", f, "alice"], "first pw\n"));
    ok(berth(&["verify", f, "alice"], "first pw")); // no trailing newline
    ok(berth(&["verify", f, "alice"], "first pw\r\nsecond line\n"));
    let msg = fails(berth(&["verify", f, "alice"], "wrong\n"));
    assert!(msg.contains("password incorrect"), "{msg}");
    assert!(!msg.contains("wrong"), "{msg}");
    fails(berth(&["verify", f, "alice"], "first pw \n")); // spaces count
    let msg = fails(berth(&["verify", f, "bob"], "first pw\n"));
    assert!(msg.contains("password incorrect"), "{msg}");

    // Replacing the password; a second user beside it.
    let out = ok(berth(&["add", f, "alice", "--cost", "4"], "second pw\n"));
    assert!(
        stderr(&out).contains("updated password"),
        "{}",
        stderr(&out)
    );
    ok(berth(&["add", f, "bob", "--cost", "4"], "bob pw\n"));
    ok(berth(&["verify", f, "alice"], "second pw\n"));
    fails(berth(&["verify", f, "alice"], "first pw\n"));
    assert_eq!(HtpasswdFile::open(&file).unwrap().users(), ["alice", "bob"]);

    ok(berth(&["delete", f, "alice"], ""));
    let msg = fails(berth(&["delete", f, "alice"], ""));
    assert!(msg.contains("not found"), "{msg}");
    fails(berth(&["verify", f, "alice"], "second pw\n"));
    ok(berth(&["verify", f, "bob"], "bob pw\n"));
}

#[test]
fn default_cost_is_10() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    ok(berth(&["add", file.to_str().unwrap(), "u"], "pw\n"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("u:$2y$10$"), "{text}");
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let f = file.to_str().unwrap();

    let msg = fails(berth(&["add", f, "alice", "--cost", "4"], ""));
    assert!(msg.contains("no password on standard input"), "{msg}");
    let msg = fails(berth(&["add", f, "alice", "--cost", "4"], "\n"));
    assert!(msg.contains("empty"), "{msg}");
    let msg = fails(berth(&["add", f, "a:b", "--cost", "4"], "pw\n"));
    assert!(msg.contains("':'"), "{msg}");
    for cost in ["3", "32", "x"] {
        let out = berth(&["add", f, "alice", "--cost", cost], "pw\n");
        assert!(!out.status.success(), "cost {cost}");
    }
    assert!(!file.exists(), "nothing created by refused commands");

    // Missing file: verify and delete say so.
    let msg = fails(berth(&["verify", f, "alice"], "pw\n"));
    assert!(msg.contains("does not exist"), "{msg}");
    let msg = fails(berth(&["delete", f, "alice"], ""));
    assert!(msg.contains("does not exist"), "{msg}");

    // A non-bcrypt entry is named, with the way out.
    std::fs::write(&file, "old:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=\n").unwrap();
    let msg = fails(berth(&["verify", f, "old"], "x\n"));
    assert!(msg.contains(":1:") && msg.contains("SHA-1"), "{msg}");
    assert!(msg.contains("berth htpasswd add"), "{msg}");
}

#[test]
fn apache_verifies_files_written_by_berth() {
    if !require_htpasswd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let f = file.to_str().unwrap();
    ok(berth(&["add", f, "alice", "--cost", "4"], "al1ce pw\n"));
    ok(berth(&["add", f, "bob", "--cost", "4"], "b0b\n"));

    ok(apache(&["-vb", f, "alice", "al1ce pw"]));
    ok(apache(&["-vb", f, "bob", "b0b"]));
    assert!(!apache(&["-vb", f, "alice", "b0b"]).status.success());

    // Apache edits berth's file; berth still reads it.
    ok(apache(&["-D", f, "bob"]));
    ok(apache(&["-Bb", "-C", "4", f, "carol", "c pw"]));
    ok(berth(&["verify", f, "carol"], "c pw\n"));
    ok(berth(&["verify", f, "alice"], "al1ce pw\n"));
    fails(berth(&["verify", f, "bob"], "b0b\n"));
}

#[test]
fn berth_verifies_files_written_by_apache() {
    if !require_htpasswd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let f = file.to_str().unwrap();
    // -Bbc: create, bcrypt at Apache's default cost (5).
    ok(apache(&["-Bbc", f, "alice", "s3cret"]));
    ok(apache(&["-Bb", "-C", "4", f, "bob", "p:w with spaces"]));

    ok(berth(&["verify", f, "alice"], "s3cret\n"));
    fails(berth(&["verify", f, "alice"], "S3cret\n"));
    ok(berth(&["verify", f, "bob"], "p:w with spaces\n"));
    assert!(verify_user(&file, "alice", "s3cret").unwrap());
    assert!(!verify_user(&file, "alice", "nope").unwrap());

    let store = HtpasswdFile::open(&file).unwrap();
    assert_eq!(store.users(), ["alice", "bob"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt.block_on(store.verify("alice", "s3cret")));
    assert!(rt.block_on(store.verify("bob", "p:w with spaces")));
    assert!(!rt.block_on(store.verify("bob", "s3cret")));

    // -Bbn output (stdout, no file) appended by hand verifies too.
    let line = ok(apache(&["-Bbn", "-C", "4", "carol", "c4rol"])).stdout;
    let mut text = std::fs::read(&file).unwrap();
    text.extend_from_slice(&line);
    std::fs::write(&file, text).unwrap();
    assert!(verify_user(&file, "carol", "c4rol").unwrap());
    assert!(HtpasswdFile::open(&file).is_ok());

    // berth replaces Apache's entry in place, keeping the others.
    ok(berth(&["add", f, "alice", "--cost", "4"], "new\n"));
    ok(apache(&["-vb", f, "alice", "new"]));
    ok(apache(&["-vb", f, "bob", "p:w with spaces"]));
    ok(apache(&["-vb", f, "carol", "c4rol"]));
}

#[test]
fn apache_weak_hashes_are_refused_by_the_store() {
    if !require_htpasswd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let f = file.to_str().unwrap();
    for (flag, kind) in [
        ("-m", "MD5"),
        ("-s", "SHA-1"),
        ("-d", "crypt"),
        ("-p", "plain"),
    ] {
        std::fs::write(&file, "").unwrap();
        ok(apache(&["-b", flag, f, "old", "pw"]));
        let msg = HtpasswdFile::open(Path::new(f)).unwrap_err().to_string();
        assert!(msg.contains(":1:") && msg.contains(kind), "{flag}: {msg}");
    }
}
