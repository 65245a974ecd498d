//! A private dockerd for the client tests, and the certs.d entry that makes
//! it trust a test CA; re-exported from `procs.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{daemon_command, find_tool, output, run, tempdir, wait_until, Proc};

/// A private docker daemon (vfs storage, no networking) for push and pull,
/// with its own data/exec roots and socket; stopped and removed on drop
/// (see its `Drop`).
pub struct Dockerd {
    proc: Proc,
    sock: PathBuf,
    // Dropped after `proc` (declaration order): the daemon is gone before
    // its directories are removed.
    dir: tempfile::TempDir,
}

impl Drop for Dockerd {
    /// dockerd leaves its network namespace bind-mounted at
    /// `exec/netns/default` even after a clean stop, and a mounted path
    /// cannot be removed: every run left its temp dir (~77 MiB) and a mount
    /// behind. Stop the daemon, then detach that mount, so the directory
    /// goes with it.
    fn drop(&mut self) {
        self.proc.stop(Duration::from_secs(15));
        let netns = self.dir.path().join("exec/netns/default");
        let _ = Command::new("umount").arg("-l").arg(&netns).output();
    }
}

impl Dockerd {
    pub fn start() -> Dockerd {
        Dockerd::start_with(&[])
    }

    /// Like [`Dockerd::start`], with extra daemon flags
    /// (`--registry-mirror URL`).
    pub fn start_with(extra: &[&str]) -> Dockerd {
        let dir = tempdir("berth-dkd-");
        let d = dir.path();
        for sub in ["data", "exec", "cli"] {
            std::fs::create_dir(d.join(sub)).expect("mkdir");
        }
        std::fs::write(d.join("daemon.json"), "{}").expect("write daemon.json");
        let sock = d.join("docker.sock");
        let mut cmd = daemon_command(find_tool("dockerd").expect("dockerd"));
        cmd.arg("--config-file")
            .arg(d.join("daemon.json"))
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--bridge=none",
            ])
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(extra);
        let proc = Proc::spawn("dockerd", cmd, &d.join("dockerd.log"));
        let mut dockerd = Dockerd { proc, sock, dir };
        wait_until(
            "dockerd to answer `docker info`",
            Duration::from_secs(60),
            || {
                dockerd.proc.assert_running();
                output(
                    dockerd
                        .docker()
                        .args(["info", "--format", "{{.ServerVersion}}"]),
                )
                .status
                .success()
            },
        );
        dockerd
    }

    /// A `docker` CLI command talking to this daemon (with a private
    /// client config directory).
    pub fn docker(&self) -> Command {
        let mut c = Command::new(find_tool("docker").expect("docker"));
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .env_remove("DOCKER_CONTEXT");
        c
    }

    /// `docker login HOST` with the password on stdin; whether it worked.
    pub fn login(&self, host: &str, user: &str, password: &str) -> bool {
        use std::io::Write as _;
        let mut child = self
            .docker()
            .args(["login", "--username", user, "--password-stdin", host])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().status.success()
    }

    /// `DOCKER_HOST` for other programs that talk to this daemon.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Runs `docker ARGS`, asserting success; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        run(self.docker().args(args))
    }

    /// `docker image inspect -f FORMAT IMAGE`, trimmed.
    pub fn inspect(&self, image: &str, format: &str) -> String {
        self.run(&["image", "inspect", "-f", format, image])
            .trim()
            .to_string()
    }

    /// Pushes and returns (digest printed by docker, full output).
    pub fn push(&self, image: &str) -> (String, String) {
        let out = self.run(&["push", image]);
        let digest = out
            .lines()
            .find_map(|l| {
                let rest = &l[l.find("digest: ")? + "digest: ".len()..];
                Some(rest.split_whitespace().next()?.to_string())
            })
            .unwrap_or_else(|| panic!("no digest in docker push output:\n{out}"));
        (digest, out)
    }
}

/// `/etc/docker/certs.d/HOST:PORT/ca.crt`, the fixed place dockerd reads;
/// removed on drop (the port is unique to the test).
pub struct DockerCertsD(PathBuf);

impl DockerCertsD {
    pub fn install(host_port: &str, ca: &Path) -> DockerCertsD {
        let dir = PathBuf::from("/etc/docker/certs.d").join(host_port);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {} (run as root): {e}", dir.display()));
        std::fs::copy(ca, dir.join("ca.crt")).unwrap();
        DockerCertsD(dir)
    }
}

impl Drop for DockerCertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
