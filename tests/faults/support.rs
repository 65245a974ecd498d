//! What every fault test needs: a `berth serve` child process on a config
//! the test writes (so it can be killed with SIGKILL and started again on
//! the same storage), a seeded RNG whose seed is printed, and a small async
//! client for the registry API that tells an acknowledged write from one
//! whose answer never came.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest as _, Sha256};

use crate::procs::{daemon_command, free_port, wait_until, Proc};

pub use super::api::{Api, Sent};

/// A seeded RNG: `BERTH_FAULT_SEED` replays a run, otherwise a fresh seed.
/// The seed is printed so a failure can be replayed.
pub fn seeded_rng(test: &str) -> StdRng {
    let seed = std::env::var("BERTH_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("{test}: seed {seed} (replay with BERTH_FAULT_SEED={seed})");
    StdRng::seed_from_u64(seed)
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A `berth serve` on 127.0.0.1 with the config it was started with; it can
/// be killed (-9) and started again on the same port and storage.
pub struct Berth {
    pub port: u16,
    pub dir: PathBuf,
    config: PathBuf,
    proc: Option<Proc>,
    starts: u32,
    prepare: Option<fn(&mut Command)>,
}

impl Berth {
    /// Writes a config whose `storage:` section holds `storage` (YAML lines
    /// indented by two spaces, `delete.enabled: true` added), metrics on
    /// the main listener (the replica tests' barriers read them), and
    /// starts it.
    pub fn start(dir: &Path, storage: &str) -> Berth {
        Self::start_prepared(dir, storage, None)
    }

    /// [`Berth::start`] with `prepare` applied to the command first (limits,
    /// another uid).
    pub fn start_prepared(dir: &Path, storage: &str, prepare: Option<fn(&mut Command)>) -> Berth {
        std::fs::create_dir_all(dir).expect("berth dir");
        let port = free_port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n{storage}  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  debug:\n    prometheus:\n      enabled: true\n"
            ),
        )
        .expect("write config");
        let mut b = Berth {
            port,
            dir: dir.to_path_buf(),
            config,
            proc: None,
            starts: 0,
            prepare,
        };
        b.restart();
        b
    }

    /// Starts the server (again) and waits until `GET /v2/` answers 200.
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "restart of a running berth");
        self.starts += 1;
        let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("serve").arg("--config").arg(&self.config);
        if let Some(prepare) = self.prepare {
            prepare(&mut cmd);
        }
        let log = self.dir.join(format!("berth-{}.log", self.starts));
        let mut proc = Proc::spawn("berth", cmd, &log);
        let url = self.url("/v2/");
        wait_until("berth to answer GET /v2/", Duration::from_secs(60), || {
            proc.assert_running();
            crate::clients::http("GET", &url).is_ok_and(|r| r.status == 200)
        });
        self.proc = Some(proc);
    }

    /// The pid of the running server.
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().expect("berth running").pid()
    }

    /// SIGKILL now, and wait until the process is gone (the port is free).
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            kill9(p.pid());
            p.stop(Duration::from_secs(5));
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// All log text of every start so far.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("berth-{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Sends SIGKILL to `pid` (no grace, no clean-up: a crash).
pub fn kill9(pid: u32) {
    // SAFETY: kill(2) with a pid we started; no memory is involved.
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// An OCI image manifest over `config` and `layers` (digest, size), with an
/// annotation to make it unique.
pub fn manifest(config: (&str, usize), layers: &[(String, usize)], note: &str) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d, "size": s
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.0, "size": config.1
        },
        "layers": layers,
        "annotations": { "note": note }
    }))
    .expect("manifest json")
}

/// Every `blobs/sha256/xx/<hex>/data` under a filesystem root hashes to its
/// `<hex>`; returns how many were checked. Panics on a stray or partial one.
pub fn scan_fs_blobs(root: &Path) -> usize {
    let blobs = root.join("docker/registry/v2/blobs/sha256");
    let mut checked = 0;
    let Ok(prefixes) = std::fs::read_dir(&blobs) else {
        return 0;
    };
    for prefix in prefixes {
        let prefix = prefix.expect("read blobs dir").path();
        for dir in std::fs::read_dir(&prefix).expect("read prefix dir") {
            let dir = dir.expect("entry").path();
            let hex = dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let data = dir.join("data");
            if !data.exists() {
                // An empty blob directory (a collected blob) shows nothing.
                continue;
            }
            let bytes = std::fs::read(&data).expect("read blob data");
            assert_eq!(
                digest_of(&bytes),
                format!("sha256:{hex}"),
                "blob data under {} does not match its name ({} bytes)",
                dir.display(),
                bytes.len()
            );
            checked += 1;
        }
    }
    checked
}

/// Files under `root` whose name says they are temporary (`.tmp`, `~`),
/// i.e. left behind by a write that did not finish.
pub fn temp_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(".tmp") || name.contains('~') || name.starts_with('.') {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// A `storage.s3` section (two-space indented) for `server` under `root`,
/// redirects off so blob bytes come through berth.
pub fn s3_storage(server: &crate::s3::S3Server, root: &str) -> String {
    format!(
        "  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {}\n    regionendpoint: {}\n\
         \x20   bucket: {}\n    rootdirectory: /{root}\n    forcepathstyle: true\n    chunksize: 5242880\n\
         \x20 redirect:\n    disable: true\n",
        server.access_key,
        server.secret_key,
        server.region,
        server.endpoint,
        crate::s3::BUCKET,
    )
}

/// A gauge or counter from the registry's `/metrics` (0 when absent).
pub async fn metric(api: &Api, name: &str) -> f64 {
    let (status, body) = api.get("/metrics").await;
    assert_eq!(status, 200, "GET /metrics");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}
