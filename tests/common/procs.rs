//! Process plumbing for tests that drive real servers and real clients:
//! tool checks, kill-on-drop guards, free ports, readiness waits, a private
//! registries under test (berth or distribution); random data and tarballs
//! come from `tarballs.rs`, a private dockerd from `dockerd.rs`, both
//! re-exported here.
//!
//! Every process started here is put in its own process group and the whole
//! group is stopped on drop (SIGTERM, then SIGKILL), so a failing test leaves
//! nothing running.

#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "tarballs.rs"]
mod tarballs;
pub use tarballs::*;

#[path = "dockerd.rs"]
mod dockerd;
// Not every test binary drives docker.
#[allow(unused_imports)]
pub use dockerd::*;

// ---------------------------------------------------------------- tools

/// Full path of `name` on `PATH` (plus the sbin directories, for dockerd).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// True when a missing tool must fail the test instead of skipping it: under
/// CI (`CI=true`, which `.ci/run` sets) and whenever the suite runs through
/// `scripts/test.sh`, which installs every tool first and exports
/// `BERTH_REQUIRE_TOOLS=1`, so no test there returns early counted as ok.
pub fn in_ci() -> bool {
    let on = |var: &str| std::env::var(var).is_ok_and(|v| v == "true" || v == "1");
    on("CI") || on("BERTH_REQUIRE_TOOLS")
}

/// Returns true when every tool is installed. When one is missing: panics
/// under `CI=true` (the test fails), otherwise prints a note and returns
/// false so the caller can `return` (the test is skipped).
pub fn require_tools(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| find_tool(n).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if in_ci() {
        panic!(
            "required tool(s) missing: {} (CI=true or BERTH_REQUIRE_TOOLS=1; run scripts/install-test-deps.sh)",
            missing.join(", ")
        );
    }
    eprintln!(
        "SKIPPED: required tool(s) missing: {} (install with scripts/install-test-deps.sh; under CI=true, BERTH_REQUIRE_TOOLS=1 or scripts/test.sh this fails)",
        missing.join(", ")
    );
    false
}

/// Single-tool form of [`require_tools`].
pub fn require_tool(name: &str) -> bool {
    require_tools(&[name])
}

// ---------------------------------------------------------------- commands

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion (stdin closed) and returns its output,
/// whatever its exit status.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)))
}

/// Runs a command, panics with its output unless it succeeds, returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let started = Instant::now();
    let out = output(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        describe(cmd),
        out.status
    );
    if started.elapsed() > Duration::from_secs(5) {
        eprintln!(
            "  ({:.1}s) {}",
            started.elapsed().as_secs_f64(),
            describe(cmd)
        );
    }
    stdout
}

/// Runs a command that is expected to fail; returns stdout+stderr.
pub fn run_fails(cmd: &mut Command) -> String {
    let out = output(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "`{}` succeeded but should have failed:\n{text}",
        describe(cmd)
    );
    text
}

// ---------------------------------------------------------------- processes

/// A command for a background process: when `setpriv` (util-linux) is
/// there, the process also gets SIGTERM if the test thread that started it
/// dies without running its guard's drop (test binary killed, Ctrl-C).
pub fn daemon_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match find_tool("setpriv") {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "TERM", "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A background process in its own process group, stopped on drop. Its
/// stdout and stderr go to `log`; when the test is panicking the tail of the
/// log is printed to help diagnose.
pub struct Proc {
    name: String,
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin closed and output appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let out = File::create(log).expect("create log file");
        let err = out.try_clone().expect("dup log file");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (`{}`): {e}", describe(&cmd)));
        Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics (with the log) if the process has already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); log:\n{}",
                self.name,
                self.log_tail(60)
            );
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .args(["-s", sig, "--", &format!("-{}", self.child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Kills the process group with SIGKILL only (a crash: no handler runs,
    /// nothing is flushed) and reaps the leader; panics unless SIGKILL is
    /// what ended it.
    pub fn kill_hard(&mut self) {
        self.signal_group("KILL");
        let status = self.child.wait().expect("wait for the killed process");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{} ended by {status}, not by SIGKILL",
            self.name
        );
    }

    /// Stops the process group: SIGTERM, up to `grace` to exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            // Leader gone; still sweep the group for stragglers.
            self.signal_group("KILL");
            return;
        }
        self.signal_group("TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                self.signal_group("KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of {} log ({}):\n{}\n----",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        }
        self.stop(Duration::from_secs(15));
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct ports that were free a moment ago on 127.0.0.1: every
/// listener stays open until all are chosen, so the system cannot hand the
/// same port out twice (one cluster's nodes once got a port twice).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// Polls `ready` every 100 ms until it returns true; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scratch directory under /tmp (short paths: unix sockets live there).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create temp dir")
}

// ---------------------------------------------------------------- registries

/// Which registry implementation serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// This crate's `berth serve`.
    Berth,
    /// CNCF distribution 2.8.2 (`docker-registry` from Debian).
    Distribution,
}

impl Server {
    /// The registry the client tests target: berth, unless
    /// `BERTH_INTEROP_SERVER=distribution` (used to validate the tests
    /// themselves against the reference implementation).
    pub fn under_test() -> Server {
        match std::env::var("BERTH_INTEROP_SERVER").as_deref() {
            Ok("distribution") => Server::Distribution,
            Ok("berth") | Err(_) => Server::Berth,
            Ok(other) => panic!("BERTH_INTEROP_SERVER={other}: expected berth or distribution"),
        }
    }

    /// Tools this server needs on the machine.
    pub fn tools(self) -> &'static [&'static str] {
        match self {
            Server::Berth => &[],
            Server::Distribution => &["docker-registry"],
        }
    }
}

/// How to start a registry.
#[derive(Debug, Clone, Copy)]
pub struct RegistryOpts {
    /// Pass a YAML config file with `storage.delete.enabled: true` (berth is
    /// otherwise started with `--addr`/`--root` flags only).
    pub delete_enabled: bool,
}

/// A running registry on 127.0.0.1, stopped on drop (its storage is not
/// removed: it belongs to the caller).
pub struct Registry {
    pub server: Server,
    pub port: u16,
    pub root: PathBuf,
    proc: Proc,
    _conf: tempfile::TempDir,
}

impl Registry {
    /// Starts `server` on a free port with filesystem storage at `root`,
    /// waiting until `GET /v2/` answers 200.
    pub fn start(server: Server, root: &Path, opts: RegistryOpts) -> Registry {
        let conf = tempdir("berth-reg-");
        let port = free_port();
        let config = conf.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: {del}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                root = root.display(),
                del = opts.delete_enabled
            ),
        )
        .expect("write registry config");
        let log = conf.path().join("registry.log");
        let cmd = match server {
            Server::Berth => {
                let mut c = daemon_command(env!("CARGO_BIN_EXE_berth"));
                c.arg("serve");
                if opts.delete_enabled {
                    c.arg("--config").arg(&config);
                } else {
                    c.args(["--addr", &format!("127.0.0.1:{port}")])
                        .arg("--root")
                        .arg(root);
                }
                c
            }
            Server::Distribution => {
                let mut c = daemon_command(find_tool("docker-registry").expect("docker-registry"));
                // AWS_CA_BUNDLE set to a PEM bundle makes 2.8.2 panic at start.
                c.env_remove("AWS_CA_BUNDLE").arg("serve").arg(&config);
                c
            }
        };
        let mut proc = Proc::spawn(&format!("{server:?} registry"), cmd, &log);
        let url = format!("http://127.0.0.1:{port}/v2/");
        wait_until(
            &format!("{server:?} to answer GET /v2/"),
            Duration::from_secs(30),
            || {
                proc.assert_running();
                crate::clients::http("GET", &url).is_ok_and(|r| r.status == 200)
            },
        );
        Registry {
            server,
            port,
            root: root.to_path_buf(),
            proc,
            _conf: conf,
        }
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the server now (its storage stays).
    pub fn stop(mut self) {
        self.proc.stop(Duration::from_secs(10));
    }
}

/// `berth htpasswd add FILE USER` (bcrypt, cost 4) with the password on
/// stdin, asserting success.
pub fn htpasswd_add(file: &Path, user: &str, password: &str) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["htpasswd", "add"])
        .arg(file)
        .arg(user)
        .args(["--cost", "4"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "berth htpasswd add {user}");
}
