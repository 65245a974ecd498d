//! Notifications (webhooks) end to end: a receiver on 127.0.0.1 started by
//! the test, `berth serve` as a process, real docker pushes and pulls, and
//! Debian's `docker-registry` (distribution 2.8.2) for envelope
//! compatibility. See docs/notifications.md.

#![allow(clippy::unwrap_used)]

#[path = "common/clients.rs"]
mod clients;
#[path = "common/procs.rs"]
mod procs;

mod events {
    mod compat;
    mod delivery;
    mod docker;
    mod mirror;
    pub mod receiver;
}

use std::path::Path;
use std::time::Duration;

use procs::{daemon_command, free_port, wait_until, Proc};
use serde_json::Value;

pub use events::receiver::Receiver;

/// A `berth serve` with a debug listener, configured by `config_tail`
/// (YAML after `storage`, `http`).
pub struct Berth {
    pub port: u16,
    pub debug: u16,
    pub proc: Proc,
}

impl Berth {
    /// Starts berth with filesystem storage at `root` (config in `dir`).
    pub fn start(dir: &Path, root: &Path, config_tail: &str) -> Berth {
        Berth::start_with(
            dir,
            &format!("  filesystem:\n    rootdirectory: {}\n", root.display()),
            config_tail,
        )
    }

    /// Starts berth with `storage` (the YAML lines under `storage:`).
    pub fn start_with(dir: &Path, storage: &str, config_tail: &str) -> Berth {
        let port = free_port();
        let debug = free_port();
        let cfg = dir.join(format!("berth-{port}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n{storage}  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  debug:\n    addr: 127.0.0.1:{debug}\n    prometheus:\n      enabled: true\n{config_tail}"
            ),
        )
        .unwrap();
        let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("serve").arg("--config").arg(&cfg);
        let mut proc = Proc::spawn("berth", cmd, &dir.join(format!("berth-{port}.log")));
        let url = format!("http://127.0.0.1:{debug}/debug/health");
        wait_until("berth to answer", Duration::from_secs(30), || {
            proc.assert_running();
            clients::http("GET", &url).is_ok_and(|r| r.status == 200)
        });
        Berth { port, debug, proc }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The first endpoint's counters from `/debug/events`.
    pub fn status(&self) -> Value {
        let v = clients::get_json(&format!("http://127.0.0.1:{}/debug/events", self.debug));
        v["endpoints"][0].clone()
    }

    /// The debug listener's `/metrics` text.
    pub fn metrics(&self) -> String {
        let r = clients::http("GET", &format!("http://127.0.0.1:{}/metrics", self.debug)).unwrap();
        String::from_utf8(r.body).unwrap()
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &self.proc.pid().to_string()])
            .status();
        self.proc.stop(Duration::from_secs(5));
    }
}

/// The YAML of one endpoint named `hook` posting to `url`, plus `extra`
/// lines (indented 6 spaces).
pub fn endpoint(url: &str, extra: &str) -> String {
    format!(
        "notifications:\n  endpoints:\n    - name: hook\n      url: {url}\n      timeout: 2s\n      threshold: 3\n      backoff: 200ms\n      maxbackoff: 1s\n{extra}"
    )
}

/// Tiny async registry client for the tests that do not need docker.
pub mod api {
    /// `sha256:<hex>` of `data`.
    pub fn digest(data: &[u8]) -> String {
        crate::procs::sha256(data)
    }

    /// Runs `f` on a fresh runtime.
    pub fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Blob upload as a POST then one PUT (what distribution 2.8 takes;
    /// it ignores `POST ?digest=`); returns the digest.
    pub async fn push_blob(c: &reqwest::Client, base: &str, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = c
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "upload start");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let loc = if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = c
            .put(format!("{loc}{sep}digest={d}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "blob push");
        d
    }

    /// An OCI image manifest over `config` and `layers` (digest, size).
    pub fn manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
            "layers": layers,
        }))
        .unwrap()
    }

    /// PUT a manifest by `reference`; returns its digest.
    pub async fn put_manifest(
        c: &reqwest::Client,
        base: &str,
        repo: &str,
        reference: &str,
        body: &[u8],
    ) -> String {
        let r = c
            .put(format!("{base}/v2/{repo}/manifests/{reference}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "manifest push");
        digest(body)
    }

    /// Pushes a small image (config + two layers) as `repo:tag`; returns
    /// (config, layer digests, manifest digest).
    pub async fn push_image(
        c: &reqwest::Client,
        base: &str,
        repo: &str,
        tag: &str,
        seed: &str,
    ) -> (String, Vec<String>, String) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let l1 = format!("layer one {seed}");
        let l2 = format!("layer two {seed}");
        let cd = push_blob(c, base, repo, config.as_bytes()).await;
        let d1 = push_blob(c, base, repo, l1.as_bytes()).await;
        let d2 = push_blob(c, base, repo, l2.as_bytes()).await;
        let m = manifest((&cd, config.len()), &[(&d1, l1.len()), (&d2, l2.len())]);
        let md = put_manifest(c, base, repo, tag, &m).await;
        (cd, vec![d1, d2], md)
    }
}
