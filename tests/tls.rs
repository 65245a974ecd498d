//! TLS end to end: `berth cert` makes a CA and server certificate, `berth
//! serve` serves HTTPS with it on 127.0.0.1, and real clients (curl,
//! openssl, skopeo, podman, docker) talk to it, verifying the certificate
//! against that CA. See docs/tls.md.

#![allow(clippy::unwrap_used)]

#[path = "common/clients.rs"]
mod clients;
#[path = "common/procs.rs"]
mod procs;

mod tls {
    mod client_certs;
    mod early;
    mod https;
    mod images;
    mod reload;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use procs::{daemon_command, free_port, output, run, tempdir, wait_until, Proc};

/// Runs the built `berth cert --out DIR --port PORT ARGS...`, asserting
/// success; returns what it printed.
pub fn berth_cert(dir: &Path, port: u16, args: &[&str]) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("cert")
        .arg("--out")
        .arg(dir)
        .args(["--port", &port.to_string()])
        .args(args))
}

/// A `berth serve` with TLS on 127.0.0.1, its certificates made by
/// `berth cert`; stopped on drop.
pub struct TlsRegistry {
    /// The address berth listens on (127.0.0.1 unless started with
    /// [`Self::start_on`]).
    pub ip: std::net::IpAddr,
    pub port: u16,
    /// `ca.crt`, `ca.key`, `server.crt`, `server.key` (+ whatever the test
    /// adds).
    pub certs: PathBuf,
    pub proc: Proc,
    // Last: removed after the server stopped.
    pub tmp: tempfile::TempDir,
}

impl TlsRegistry {
    /// Makes certificates for `localhost` and 127.0.0.1 and starts berth
    /// with `extra_http` appended to the config right after `http.tls.key`
    /// (indent 4 for more `http.tls` keys, 2 for other `http` keys).
    pub fn start(extra_http: &str) -> TlsRegistry {
        Self::start_with(|_| extra_http.to_string())
    }

    /// [`Self::start`] with the extra config returned by `prepare(certs_dir)`,
    /// which runs before the server starts (to add client CAs and the like).
    pub fn start_with(prepare: impl FnOnce(&Path) -> String) -> TlsRegistry {
        Self::start_on([127, 0, 0, 1].into(), prepare)
    }

    /// [`Self::start_with`] listening on `ip` (also put in the certificate).
    pub fn start_on(ip: std::net::IpAddr, prepare: impl FnOnce(&Path) -> String) -> TlsRegistry {
        let tmp = tempdir("berth-tls-");
        let port = free_port();
        let certs = tmp.path().join("certs");
        let ip_arg = ip.to_string();
        let printed = berth_cert(
            &certs,
            port,
            &["--host", "localhost", "--ip", "127.0.0.1", "--ip", &ip_arg],
        );
        assert!(
            printed.contains(&format!("/etc/docker/certs.d/localhost:{port}/ca.crt")),
            "berth cert output:\n{printed}"
        );
        let extra_http = prepare(&certs);
        let config = tmp.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n  tls:\n    \
                 certificate: {certs}/server.crt\n    key: {certs}/server.key\n{extra_http}",
                root = tmp.path().join("storage").display(),
                certs = certs.display(),
            ),
        )
        .unwrap();
        let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("serve").arg("--config").arg(&config);
        let mut proc = Proc::spawn("berth (TLS)", cmd, &tmp.path().join("berth.log"));
        let log = proc.log.clone();
        wait_until(
            "berth to log that it serves https",
            Duration::from_secs(30),
            || {
                proc.assert_running();
                std::fs::read_to_string(&log).is_ok_and(|l| l.contains("serving https://"))
            },
        );
        TlsRegistry {
            ip,
            port,
            certs,
            proc,
            tmp,
        }
    }

    /// The CA file `berth cert` wrote.
    pub fn ca(&self) -> PathBuf {
        self.certs.join("ca.crt")
    }

    /// `https://IP:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.ip, self.port)
    }

    /// `IP:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// berth's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.proc.log).unwrap_or_default()
    }

    /// SHA-256 fingerprint of the certificate new connections get, as
    /// `openssl x509 -fingerprint -sha256` prints it.
    pub fn served_fingerprint(&self) -> String {
        let out = output(Command::new("sh").arg("-c").arg(format!(
            "openssl s_client -connect {}:{} -servername localhost </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256",
            self.ip, self.port
        )));
        fingerprint_line(&out)
    }
}

/// Fingerprint of a PEM certificate file.
pub fn file_fingerprint(path: &Path) -> String {
    let out = output(
        Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(path),
    );
    fingerprint_line(&out)
}

/// Serial number of a PEM certificate file (hex).
pub fn file_serial(path: &Path) -> String {
    run(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(path))
    .trim()
    .to_string()
}

fn fingerprint_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `curl -sS --max-time 20 ARGS` (the bound only keeps a broken server from
/// hanging the test; nothing asserts on time).
pub fn curl(args: &[&str]) -> Output {
    output(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args),
    )
}

/// [`curl`] that must succeed; returns stdout.
pub fn curl_ok(args: &[&str]) -> String {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`curl`] that must fail; returns stderr.
pub fn curl_fails(args: &[&str]) -> String {
    let out = curl(args);
    assert!(
        !out.status.success(),
        "curl {args:?} succeeded but should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}
