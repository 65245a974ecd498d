//! `berth config check` runs exactly the validation `berth serve` runs, and
//! `serve` runs all of it before it binds, logs "serving" or starts
//! background work (issue 13, items 1, 2, 12, 13, 14).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

fn berth(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

/// Runs `berth serve CONFIG`, expected to exit by itself; killed (and the
/// test failed) if it is still running after a minute, i.e. it served.
fn serve_expecting_exit(config: &str) -> Output {
    let mut child = command(&["serve", config])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "berth serve kept running with {config}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A config serving from `root` on a free loopback port, plus `extra` YAML.
fn config(dir: &Path, extra: &str) -> String {
    let root = dir.join("root");
    write(
        dir,
        "config.yml",
        &format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n{extra}",
            root.display()
        ),
    )
}

/// ca.crt, server.crt and server.key made by `berth cert` in `dir/tls`.
fn certificates(dir: &Path) -> (String, String, String) {
    let out = dir.join("tls");
    let made = berth(&[
        "cert",
        "--host",
        "localhost",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let p = |n: &str| out.join(n).to_str().unwrap().to_owned();
    (p("ca.crt"), p("server.crt"), p("server.key"))
}

#[test]
fn config_check_fails_wherever_serve_would() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, crt, key) = certificates(d);
    let not_pem = write(d, "not.pem", "hello\n");
    let bad_htpasswd = write(d, "htpasswd", "alice:plaintext\n");
    let a_file = write(d, "a-file", "x");
    // (extra YAML, what the error must mention)
    let cases: Vec<(String, &str)> =
        vec![
        (
            "  tls:\n    certificate: /nonexistent/server.crt\n    key: /nonexistent/server.key\n"
                .into(),
            "/nonexistent/server.crt",
        ),
        (format!("  tls:\n    certificate: {crt}\n    key: {ca}\n"), "TLS"),
        (format!("  tls:\n    certificate: {not_pem}\n    key: {key}\n"), "not.pem"),
        (
            format!("  tls:\n    certificate: {crt}\n    key: {key}\n    minimumtls: tls1.0\n"),
            "minimumtls",
        ),
        (
            "  tls:\n    letsencrypt:\n      cachefile: /tmp/le\n      email: a@example.com\n"
                .into(),
            "letsencrypt",
        ),
        (
            format!("auth:\n  htpasswd:\n    realm: r\n    path: {bad_htpasswd}\n"),
            "auth.htpasswd.path",
        ),
        (
            "auth:\n  htpasswd:\n    realm: r\n    path: /nonexistent/htpasswd\n".into(),
            "auth.htpasswd.path",
        ),
        (
            "access:\n  anonymous:\n    - repositories: ['**']\n      actions: [fly]\n".into(),
            "fly",
        ),
        ("auth:\n  htpaswd:\n    path: /x\n".into(), "did you mean `htpasswd`?"),
    ];
    for (extra, want) in &cases {
        // `extra` goes under `http:` when it starts indented.
        let file = config(d, extra);
        let out = berth(&["config", "check", &file]);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "config check passed with:\n{extra}\n{stderr}"
        );
        assert!(stderr.contains(want), "{extra}: {stderr}");
        assert!(!stderr.contains("is valid"), "{stderr}");
    }
    // A storage root that is a regular file.
    let file = write(
        d,
        "file-root.yml",
        &format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {a_file}\n"),
    );
    let out = berth(&["config", "check", &file]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("storage.filesystem.rootdirectory") && stderr.contains("not a directory"),
        "{stderr}"
    );
    // And a good TLS setup passes.
    let file = config(
        d,
        &format!("  tls:\n    certificate: {crt}\n    key: {key}\n"),
    );
    let out = berth(&["config", "check", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn serve_checks_everything_before_serving_or_starting_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad_htpasswd = write(d, "htpasswd", "alice:plaintext\n");
    let a_file = write(d, "a-file", "x");
    let cases = [
        (
            config(d, &format!("auth:\n  htpasswd:\n    realm: r\n    path: {bad_htpasswd}\n")),
            "auth.htpasswd.path",
        ),
        (
            write(
                d,
                "typo.yml",
                "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:0\nauth:\n  htpaswd:\n    realm: r\n    path: /x\n",
            ),
            "did you mean `htpasswd`?",
        ),
        (
            write(
                d,
                "file-root.yml",
                &format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {a_file}\nhttp:\n  addr: 127.0.0.1:0\n"),
            ),
            "not a directory",
        ),
        (
            write(
                d,
                "rootdir-typo.yml",
                "version: 0.1\nstorage:\n  filesystem:\n    rootdir: /tmp/x\nhttp:\n  addr: 127.0.0.1:0\n",
            ),
            "did you mean `rootdirectory`?",
        ),
    ];
    for (file, want) in &cases {
        let out = serve_expecting_exit(file);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(want), "{file}: {stderr}");
        for never in ["serving", "purg", "listening"] {
            assert!(!stderr.contains(never), "{file}: {never:?} in {stderr}");
        }
    }
}

#[test]
fn strict_check_turns_warnings_into_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = config(d, "  adr: typo\n");
    let out = berth(&["config", "check", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = berth(&["config", "check", "--strict", &file]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("unknown configuration key `http.adr`"),
        "{stderr}"
    );
    assert!(stderr.contains("--strict"), "{stderr}");
    // Accepted-but-not-implemented keys are warnings too.
    let file = config(d, "redis:\n  addr: localhost:6379\n");
    let out = berth(&["config", "check", "--strict", &file]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`redis` is accepted, not implemented"),
        "{stderr}"
    );
    // `proxy` is implemented: no warning, and the check explains it.
    let file = config(d, "proxy:\n  remoteurl: https://registry-1.docker.io\n");
    let out = berth(&["config", "check", "--strict", &file]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("proxy: every name -> https://registry-1.docker.io"),
        "{stderr}"
    );
    // A clean file passes.
    let file = config(d, "");
    let out = berth(&["config", "check", "--strict", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn cert_with_bad_arguments_writes_nothing_and_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("certs");
    let o = out_dir.to_str().unwrap();
    for args in [
        vec![
            "cert",
            "--host",
            "localhost",
            "--days",
            "3650000",
            "--out",
            o,
        ],
        vec!["cert", "--host", "", "--out", o],
        vec!["cert", "--host", "not a name", "--out", o],
    ] {
        let out = berth(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!out_dir.exists(), "{args:?} wrote {o}");
    }
}

/// Secrets set to a marker in the file and in `REGISTRY_*` variables never
/// reach `config check`'s output nor `serve`'s start-up log (debug level).
#[test]
fn secrets_are_never_printed_by_check_or_serve() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(
        dir.path(),
        "log:\n  level: debug\nmirrors:\n  - prefix: hub\n    \
         remoteurl: http://127.0.0.1:9\n    username: bob\n    \
         password: SECRETMIRRORPW\nnotifications:\n  endpoints:\n    - name: ci\n      \
         url: http://hook:SECRETHOOKPW@127.0.0.1:9/hook?sig=SECRETHOOKQ\n      \
         headers:\n        Authorization: [Bearer SECRETBEARER]\n      hmacsecret: SECRETHMAC\n\
         redis:\n  addr: 127.0.0.1:9\n  password: SECRETREDIS\n",
    );
    let env = [("REGISTRY_HTTP_SECRET", "SECRETENV")];
    let out = command(&["config", "check", &file])
        .envs(env)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("<redacted>"), "{stdout}");
    for s in [&stdout, &stderr] {
        assert!(!s.contains("SECRET"), "a secret was printed:\n{s}");
    }

    let mut child = command(&["serve", &file])
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !log.contains("serving http") {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    log.push_str(&text(&out.stdout));
    assert!(log.contains("serving http"), "berth did not start:\n{log}");
    assert!(!log.contains("SECRET"), "a secret was logged:\n{log}");
}
