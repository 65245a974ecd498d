//! A berth server on a free loopback port over a filesystem root inside a
//! temporary directory (so a test can check nothing outside the root is
//! touched), and the requests the tests send to it.

use std::net::IpAddr;
use std::path::PathBuf;

use berth::config::Config;
use berth::oci::digest::Digest;

pub use crate::oci_bodies::{OCI_INDEX, OCI_MANIFEST};

/// A running server, stopped when dropped.
pub struct Live {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The storage root (`<dir>/root`).
    pub root: PathBuf,
    /// The temporary directory holding the root and its neighbours.
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server with deletes off (the default) and `configure` applied.
pub async fn live_with(configure: impl Fn(&mut Config)) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut cfg = Config::default();
    configure(&mut cfg);
    let (addr, task) = crate::loopback::serve_fs(cfg, &root).await;
    Live {
        base: format!("http://{addr}"),
        root,
        dir,
        task,
    }
}

/// A client whose connections come from `from` (any 127.0.0.0/8 address
/// works on Linux loopback), so the server sees distinct clients.
pub fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().ok())
        .build()
        .unwrap()
}

impl Live {
    /// Pushes a blob monolithically; returns its digest.
    pub async fn push_blob(&self, c: &reqwest::Client, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let r = c
            .post(format!("{}/v2/{repo}/blobs/uploads/?digest={d}", self.base))
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "blob push to {repo}");
        d
    }

    /// PUTs a manifest body; returns the response.
    pub async fn put_manifest(
        &self,
        c: &reqwest::Client,
        repo: &str,
        reference: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        c.put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Pushes a one-layer image tagged `tag`; returns (manifest, digest).
    pub async fn push_image(
        &self,
        c: &reqwest::Client,
        repo: &str,
        tag: &str,
        layer: &[u8],
    ) -> (Vec<u8>, Digest) {
        let cfg = self.push_blob(c, repo, b"{}").await;
        let l = self.push_blob(c, repo, layer).await;
        let m = image_manifest(&cfg, 2, &[(&l, layer.len())], None);
        let r = self
            .put_manifest(c, repo, tag, OCI_MANIFEST, m.clone())
            .await;
        assert_eq!(r.status(), 201, "manifest push to {repo}:{tag}");
        let d = Digest::sha256_of(&m);
        (m, d)
    }
}

/// An OCI image manifest over a config and layers, with optional
/// annotations (to make it any size).
pub fn image_manifest(
    config: &Digest,
    config_size: usize,
    layers: &[(&Digest, usize)],
    annotations: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut m = crate::oci_bodies::oci_image(
        config,
        config_size,
        layers,
        "application/vnd.oci.image.layer.v1.tar",
    );
    if let Some(a) = annotations {
        m["annotations"] = a;
    }
    serde_json::to_vec(&m).unwrap()
}

/// The first error code of a spec-format error body ("" when none).
pub fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Sends `method target` byte for byte (no client normalises the path) with
/// `body`, and returns the status and the response body.
pub async fn raw(base: &str, method: &str, target: &[u8], body: &[u8]) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(body);
    let _ = tcp.write_all(&req).await;
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}
