//! Runs the built `berth` binary: version, `config check` and `config print`.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn berth(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args);
    // Start from a clean slate of REGISTRY_* so the host cannot leak in.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, yaml: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn version_prints_crate_version_and_git_commit() {
    let out = berth(&["--version"], &[]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let rest = stdout
        .trim()
        .strip_prefix(&format!("berth {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{stdout}"));
    let commit = rest.strip_suffix(')').unwrap_or_else(|| panic!("{stdout}"));
    // This test runs from a git checkout, so the commit is known.
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert!(
            head.starts_with(commit) || commit.starts_with(&head),
            "{commit} vs HEAD {head}"
        ),
        None => assert_eq!(commit, "unknown"),
    }
    // Subcommands report the same.
    let sub = berth(&["serve", "--version"], &[]);
    assert_eq!(
        text(&sub.stdout),
        stdout.replacen("berth", "berth-serve", 1)
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_berth()"),
        ("zsh", "#compdef berth"),
        ("fish", "complete -c berth"),
    ] {
        let out = berth(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("garbage-collect"), "{shell}");
    }
    let out = berth(&["completions", "tcsh"], &[]);
    assert!(!out.status.success());
}

#[test]
fn man_page_is_roff_naming_the_subcommands() {
    let out = berth(&["man"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH berth 1"), "{page}");
    for word in [
        "serve",
        "garbage\\-collect",
        "healthcheck",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(page.contains(word), "{word} missing from:\n{page}");
    }
}

#[test]
fn config_check_good_file_prints_effective_yaml_with_env_override() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("registry");
    let root = root.to_str().unwrap();
    let file = write(
        &dir,
        "config.yml",
        &format!("version: 0.1\nlog:\n  fields:\n    service: registry\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: :5000\n  adr: typo\n  headers:\n    X-Content-Type-Options: [nosniff]\n"),
    );
    let out = berth(
        &["config", "check", &file],
        &[
            ("REGISTRY_HTTP_ADDR", "0.0.0.0:6000"),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let printed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&stdout).unwrap();
    assert_eq!(printed["http"]["addr"].as_str(), Some("0.0.0.0:6000"));
    assert_eq!(
        printed["storage"]["delete"]["enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        printed["storage"]["filesystem"]["rootdirectory"].as_str(),
        Some(root)
    );
    assert!(
        stderr.contains("unknown configuration key `http.adr`"),
        "{stderr}"
    );
}

#[test]
fn config_check_bad_file_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "bad.yml",
        "version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: maybe\n",
    );
    let out = berth(&["config", "check", &file], &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("storage.delete.enabled: invalid type: string \"maybe\", expected a boolean"),
        "{stderr}"
    );
}

#[test]
fn config_check_rejects_two_drivers_and_unsupported_driver() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "c.yml", "version: 0.1\nstorage:\n  inmemory:\n");
    let out = berth(
        &["config", "check", &file],
        &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/x")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("filesystem, inmemory"),
        "{}",
        text(&out.stderr)
    );

    let out = berth(&["config", "check", &file], &[("REGISTRY_STORAGE", "s3")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("storage.s3"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_check_accepts_a_registry2_s3_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "s3.yml",
        "version: 0.1\nstorage:\n  s3:\n    accesskey: AKIA\n    secretkey: s\n    region: eu-west-1\n    \
         bucket: registry\n    rootdirectory: /r\n    secure: \"true\"\n    v4auth: true\n    \
         chunksize: 5242880\n    multipartcopythresholdsize: 33554432\n",
    );
    let out = berth(&["config", "check", &file], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("bucket: registry"));
    // A distribution-invalid value is refused, naming the key.
    let out = berth(
        &["config", "check", &file],
        &[("REGISTRY_STORAGE_S3_CHUNKSIZE", "1000")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("storage.s3.chunksize"));
}

#[test]
fn config_check_accepts_a_registry2_azure_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "azure.yml",
        "version: 0.1\nstorage:\n  azure:\n    accountname: acct\n    accountkey: a2V5\n    \
         container: registry\n    realm: core.windows.net\n    rootdirectory: /r\n",
    );
    let out = berth(&["config", "check", &file], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("container: registry"));
    // distribution 3's keys, from the environment too.
    let out = berth(
        &["config", "check", &file],
        &[
            (
                "REGISTRY_STORAGE_AZURE_SERVICEURL",
                "http://127.0.0.1:10000/acct",
            ),
            (
                "REGISTRY_STORAGE_AZURE_CREDENTIALS_TYPE",
                "default_credentials",
            ),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = berth(
        &["config", "check", &file],
        &[("REGISTRY_STORAGE_AZURE_CONTAINER", "")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("storage.azure.container"));
}

#[test]
fn config_check_accepts_a_registry2_gcs_config() {
    let dir = tempfile::tempdir().unwrap();
    // A service-account key file as GCP hands them out (the key is a test key).
    let pem = include_str!("fixtures/token-rsa.key");
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "registry@p.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let keyfile = write(&dir, "key.json", &key.to_string());
    let file = write(
        &dir,
        "gcs.yml",
        &format!(
            "version: 0.1\nstorage:\n  gcs:\n    bucket: registry\n    keyfile: {keyfile}\n    \
             rootdirectory: /r\n    chunksize: \"5242880\"\n"
        ),
    );
    let out = berth(&["config", "check", &file], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("bucket: registry"));
    // A key file serve could not read fails the check too.
    let out = berth(
        &["config", "check", &file],
        &[("REGISTRY_STORAGE_GCS_KEYFILE", "/nonexistent/key.json")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/key.json"));
    let out = berth(
        &["config", "check", &file],
        &[("REGISTRY_STORAGE_GCS_CHUNKSIZE", "1000")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("storage.gcs.chunksize"));
}

#[test]
fn config_check_missing_file_fails() {
    let out = berth(&["config", "check", "/nonexistent/berth.yml"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/berth.yml"));
}

#[test]
fn config_print_without_file_shows_embedded_default() {
    let out = berth(&["config", "print"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(printed["http"]["addr"].as_str(), Some("127.0.0.1:5000"));
    assert_eq!(
        printed["storage"]["filesystem"]["rootdirectory"].as_str(),
        Some("./data")
    );
}

#[test]
fn config_print_uses_registry_configuration_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "c.yml", "version: 0.1\nstorage:\n  inmemory:\n");
    let out = berth(
        &["config", "print"],
        &[("REGISTRY_CONFIGURATION_PATH", &file)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text(&out.stdout)).unwrap();
    assert!(printed["storage"]["inmemory"].is_mapping());
}

#[test]
fn serve_rejects_bad_addr_flag_before_starting() {
    let out = berth(&["serve", "--addr", "nonsense"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("http.addr"),
        "{}",
        text(&out.stderr)
    );
}

/// `GET path` over a raw HTTP/1.0 connection; (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

/// The `host:port` after `prefix` in a log message.
fn addr_after(msg: &str, prefix: &str) -> String {
    let rest = &msg[msg.find(prefix).unwrap() + prefix.len()..];
    rest.split('/').next().unwrap().to_string()
}

#[test]
fn serve_json_logs_carry_log_fields_and_the_debug_listener_serves_health() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "config.yml",
        "version: 0.1\nlog:\n  formatter: json\n  fields:\n    service: registry\n    environment: test\n\
         storage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:0\n  debug:\n    addr: 127.0.0.1:0\n    \
         prometheus:\n      enabled: true\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", &file])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let (mut main, mut debug) = (None, None);
    while main.is_none() {
        let line = lines.next().expect("berth exited before serving").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let msg = v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if msg.starts_with("debug server listening on http://") {
            debug = Some(addr_after(&msg, "http://"));
        }
        if msg.contains(" serving http://") {
            main = Some(addr_after(&msg, "serving http://"));
        }
        seen.push(v);
    }
    let (main, debug) = (main.unwrap(), debug.expect("debug listener line"));
    let (status, body) = http_get(&debug, "/debug/health");
    assert_eq!((status, body.as_str()), (200, "{}"));
    assert_eq!(http_get(&debug, "/metrics").0, 200);
    assert_eq!(http_get(&main, "/metrics").0, 404);
    assert_eq!(http_get(&main, "/v2/").0, 200);
    // An access-log line, written by a request task, has the fields too.
    let access = loop {
        let line = lines.next().expect("an access-log line").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let is_access = v["target"] == "berth::access";
        seen.push(v.clone());
        if is_access {
            break v;
        }
    };
    assert_eq!(access["service"], "registry");
    for v in &seen {
        assert_eq!(v["service"], "registry", "{v}");
        assert_eq!(v["environment"], "test", "{v}");
    }
    // SIGTERM stops both listeners and the process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(std::net::TcpStream::connect(&debug).is_err());
}

#[test]
fn config_check_lists_notification_endpoints_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "n.yml",
        "version: 0.1\nstorage:\n  inmemory:\nnotifications:\n  endpoints:\n    - name: ci\n      url: https://bot:pw123@ci.example/hook\n      headers:\n        Authorization: [Bearer tok987]\n      hmacsecret: hm456\n    - name: old\n      url: http://old.example/x\n      disabled: true\n",
    );
    let out = berth(&["config", "check", &file], &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notifications endpoint \"ci\": https://ci.example/hook (timeout 1s, threshold 10, backoff 1s, headers Authorization, signed)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("notifications endpoint \"old\" (disabled): http://old.example/x"),
        "{stderr}"
    );
    for secret in ["pw123", "tok987", "hm456"] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
}

#[test]
fn config_check_fails_on_a_missing_notification_cafile() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "n.yml",
        "version: 0.1\nstorage:\n  inmemory:\nnotifications:\n  endpoints:\n    - name: ci\n      url: https://ci.example/hook\n      cafile: /nonexistent/ca.pem\n",
    );
    let out = berth(&["config", "check", &file], &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notifications endpoint \"ci\": cafile /nonexistent/ca.pem"),
        "{stderr}"
    );
}
