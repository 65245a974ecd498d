//! Shared pieces: an image written straight into distribution's storage
//! layout (served by berth and docker-registry alike), registries started
//! with a config tail, htpasswd files, a token signing key and its
//! certificate, and the client under test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth::mirror::{HttpUpstream, Upstream, UpstreamError, UpstreamSettings};
use berth::oci::digest::Digest;
use futures::StreamExt;

use crate::clients::http;
#[allow(unused_imports)] // tests/mirror.rs includes this file too
pub use crate::procs::htpasswd_add;
use crate::procs::{daemon_command, find_tool, free_port, wait_until, Proc};

/// A multi-thread runtime: servers spawned on it keep answering while the
/// test blocks on something else.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One single-layer OCI image in a storage root.
pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub layer: Vec<u8>,
    pub layer_digest: Digest,
}

fn write(path: PathBuf, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn v2(root: &Path) -> PathBuf {
    root.join("docker/registry/v2")
}

fn put_blob(root: &Path, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let hex = d.hex();
    write(
        v2(root).join(format!("blobs/sha256/{}/{hex}/data", &hex[..2])),
        data,
    );
    write(
        v2(root).join(format!("repositories/{repo}/_layers/sha256/{hex}/link")),
        d.to_string().as_bytes(),
    );
    d
}

/// Writes an image of `layer_size` pseudo-random bytes as `repo:tag`.
pub fn seed_image(root: &Path, repo: &str, tag: &str, layer_size: usize) -> Image {
    let mut seed = repo.len() as u64 * 7919 + layer_size as u64;
    let layer: Vec<u8> = (0..layer_size)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = put_blob(root, repo, config);
    let layer_digest = put_blob(root, repo, &layer);
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest.to_string(),
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let digest = Digest::sha256_of(&manifest);
    let hex = digest.hex().to_string();
    write(
        v2(root).join(format!("blobs/sha256/{}/{hex}/data", &hex[..2])),
        &manifest,
    );
    let repo_dir = v2(root).join(format!("repositories/{repo}/_manifests"));
    let link = digest.to_string();
    write(
        repo_dir.join(format!("revisions/sha256/{hex}/link")),
        link.as_bytes(),
    );
    write(
        repo_dir.join(format!("tags/{tag}/current/link")),
        link.as_bytes(),
    );
    write(
        repo_dir.join(format!("tags/{tag}/index/sha256/{hex}/link")),
        link.as_bytes(),
    );
    Image {
        manifest,
        digest,
        layer,
        layer_digest,
    }
}

/// A registry process on 127.0.0.1 serving `root` with `tail` appended to
/// its config; stopped on drop.
pub struct Server {
    pub port: u16,
    _proc: Proc,
}

impl Server {
    /// `berth serve`.
    pub fn berth(dir: &Path, root: &Path, tail: &str) -> Server {
        let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("serve").arg("--config");
        Server::start("berth", cmd, dir, root, tail)
    }

    /// Debian's `docker-registry` (distribution 2.8.2).
    pub fn distribution(dir: &Path, root: &Path, tail: &str) -> Server {
        let mut cmd = daemon_command(find_tool("docker-registry").unwrap());
        // AWS_CA_BUNDLE set to a PEM bundle makes 2.8.2 panic at start.
        cmd.env_remove("AWS_CA_BUNDLE").arg("serve");
        Server::start("docker-registry", cmd, dir, root, tail)
    }

    /// `tail` may say `{PORT}` for the server's own port; for TLS servers
    /// readiness is a TCP connect (the probe speaks plain HTTP).
    fn start(what: &str, mut cmd: Command, dir: &Path, root: &Path, tail: &str) -> Server {
        let port = free_port();
        let tail = tail.replace("{PORT}", &port.to_string());
        let tls = tail.contains("  tls:");
        let cfg = dir.join(format!("{what}-{port}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n{tail}",
                root.display()
            ),
        )
        .unwrap();
        cmd.arg(&cfg);
        let mut proc = Proc::spawn(what, cmd, &dir.join(format!("{what}-{port}.log")));
        let url = format!("http://127.0.0.1:{port}/v2/");
        wait_until(
            &format!("{what} to answer"),
            Duration::from_secs(30),
            || {
                proc.assert_running();
                if tls {
                    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                } else {
                    http("GET", &url).is_ok()
                }
            },
        );
        Server { port, _proc: proc }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A P-256 signing key (PKCS#8 PEM) for berth's issuer and a self-signed
/// certificate of it for distribution's `rootcertbundle`; returns their paths.
pub fn token_key(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["berth-token".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (k, c) = (dir.join("token.key"), dir.join("token.crt"));
    std::fs::write(&k, key.serialize_pem()).unwrap();
    std::fs::write(&c, cert.pem()).unwrap();
    (k, c)
}

/// The client under test for `remote_url`.
pub fn upstream(
    remote_url: &str,
    creds: Option<(&str, &str)>,
    realm_hosts: &[&str],
) -> Arc<HttpUpstream> {
    Arc::new(
        HttpUpstream::new(UpstreamSettings {
            label: "test".into(),
            remote_url: remote_url.into(),
            username: creds.map(|c| c.0.to_string()),
            password: creds.map(|c| c.1.to_string()),
            token_realm_hosts: realm_hosts.iter().map(|s| s.to_string()).collect(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            read_idle_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .unwrap(),
    )
}

/// Reads a remote blob whole.
pub async fn read_blob(up: &dyn Upstream, repo: &str, digest: &Digest) -> Result<Vec<u8>, String> {
    let blob = up
        .get_blob(repo, digest)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("blob not found")?;
    let mut out = Vec::new();
    let mut s = blob.stream;
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The full pull of `img` as `repo:tag`: HEAD and GET of the manifest by
/// tag and digest, HEAD and GET of the layer; asserts every byte.
pub async fn assert_pulls(up: &dyn Upstream, repo: &str, tag: &str, img: &Image) {
    let d = up
        .head_manifest(repo, tag)
        .await
        .unwrap()
        .expect("HEAD manifest by tag");
    assert_eq!(d.digest, img.digest);
    assert_eq!(d.size, img.manifest.len() as u64);
    assert_eq!(d.media_type, "application/vnd.oci.image.manifest.v1+json");
    let m = up
        .get_manifest(repo, tag)
        .await
        .unwrap()
        .expect("GET manifest by tag");
    assert_eq!(m.body.as_ref(), &img.manifest[..]);
    assert_eq!(m.digest.as_ref(), Some(&img.digest));
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    let by_digest = img.digest.to_string();
    let m = up
        .get_manifest(repo, &by_digest)
        .await
        .unwrap()
        .expect("GET by digest");
    assert_eq!(m.body.as_ref(), &img.manifest[..]);
    let size = up.head_blob(repo, &img.layer_digest).await.unwrap();
    assert_eq!(size, Some(img.layer.len() as u64));
    let bytes = read_blob(up, repo, &img.layer_digest).await.unwrap();
    assert!(
        bytes == img.layer,
        "layer bytes differ ({} vs {})",
        bytes.len(),
        img.layer.len()
    );
}

/// Not found upstream: unknown tag, repository and blob.
pub async fn assert_not_found(up: &dyn Upstream, repo: &str) {
    assert!(up.head_manifest(repo, "nope").await.unwrap().is_none());
    assert!(up.get_manifest(repo, "nope").await.unwrap().is_none());
    let missing = Digest::sha256_of(b"missing");
    assert!(up.head_blob(repo, &missing).await.unwrap().is_none());
    assert!(up.get_blob(repo, &missing).await.unwrap().is_none());
}

/// Asserts `r` is `Denied`.
pub fn assert_denied<T: std::fmt::Debug>(r: Result<T, UpstreamError>) {
    match r {
        Err(UpstreamError::Denied(_)) => {}
        other => panic!("expected Denied, got {other:?}"),
    }
}

/// Asserts `r` is `Unavailable`.
pub fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, UpstreamError>) {
    match r {
        Err(UpstreamError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
