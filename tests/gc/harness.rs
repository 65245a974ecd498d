//! In-process fixtures for GC tests: the real router and the registry behind
//! it (same in-process tracker), over memory or filesystem storage.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::Router;
use berth::config::Config;
use berth::oci::digest::Digest;
use berth::registry::gc::{no_events, run_once, GcOptions, GcReport};
use berth::registry::Registry;
use berth::storage::filesystem::FilesystemDriver;
use berth::storage::memory::MemoryDriver;
use berth::storage::paths::StoragePath;
use berth::storage::StorageDriver;
use serde_json::json;
use tempfile::TempDir;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A registry under test with its storage.
#[derive(Clone)]
pub struct Fixture {
    pub app: Router,
    pub registry: Registry,
    pub driver: Arc<dyn StorageDriver>,
    pub kind: &'static str,
    #[allow(dead_code)]
    pub root: Option<PathBuf>,
    _dir: Option<Arc<TempDir>>,
}

pub use crate::oneshot::Resp;

fn config() -> Config {
    let mut c = Config::default();
    c.storage.delete.enabled = true;
    c
}

impl Fixture {
    fn over(driver: Arc<dyn StorageDriver>, kind: &'static str, dir: Option<TempDir>) -> Fixture {
        let cfg = config();
        let registry = berth::app::registry_for(&cfg, driver.clone());
        let app = berth::app::build_app_with(cfg, registry.clone()).expect("app");
        Fixture {
            app,
            registry,
            driver,
            kind,
            root: dir.as_ref().map(|d| d.path().to_path_buf()),
            _dir: dir.map(Arc::new),
        }
    }

    /// Memory-backed.
    pub fn memory() -> Fixture {
        Fixture::over(Arc::new(MemoryDriver::new()), "memory", None)
    }

    /// Filesystem-backed, in a fresh temporary directory.
    pub fn filesystem() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = Arc::new(FilesystemDriver::new(dir.path()));
        Fixture::over(fs, "filesystem", Some(dir))
    }

    /// One of each.
    pub fn all() -> Vec<Fixture> {
        vec![Fixture::memory(), Fixture::filesystem()]
    }

    pub async fn req(&self, method: Method, uri: &str, ct: Option<&str>, body: Vec<u8>) -> Resp {
        let headers: Vec<(&str, &str)> = ct.map(|ct| ("content-type", ct)).into_iter().collect();
        crate::oneshot::send(&self.app, method, uri, &headers, Body::from(body)).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.req(Method::GET, uri, None, Vec::new()).await
    }

    /// Pushes a blob in one POST; panics unless 201.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                None,
                data.to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}: push blob {d}",
            self.kind
        );
        d
    }

    /// Pushes a manifest; panics unless 201. Returns its digest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, ct: &str, body: &[u8]) -> Digest {
        let r = self
            .req(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                Some(ct),
                body.to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}: put manifest {repo}:{reference}: {}",
            self.kind,
            String::from_utf8_lossy(&r.body)
        );
        Digest::sha256_of(body)
    }

    /// Deletes a manifest by digest; panics unless 202.
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) {
        let r = self
            .req(
                Method::DELETE,
                &format!("/v2/{repo}/manifests/{digest}"),
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "{}: delete {digest}",
            self.kind
        );
    }

    /// True when the blob's data is in global storage.
    pub async fn blob_stored(&self, digest: &Digest) -> bool {
        self.driver
            .stat(&StoragePath::BlobData { digest }.to_key())
            .await
            .is_ok()
    }

    /// One collection.
    pub async fn gc(&self, opts: &GcOptions) -> GcReport {
        run_once(&self.registry, opts, &no_events)
            .await
            .unwrap_or_else(|e| panic!("{}: gc failed: {e}", self.kind))
    }
}

/// An image pushed through the API: its manifest and every blob.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Digest,
    pub body: Vec<u8>,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

impl Image {
    /// Manifest, config and layers.
    pub fn all_blobs(&self) -> Vec<Digest> {
        let mut v = vec![self.manifest.clone(), self.config.clone()];
        v.extend(self.layers.iter().cloned());
        v
    }
}

/// An OCI image manifest body naming `config` and `layers` (sizes given).
pub fn image_manifest(
    config: (&Digest, usize),
    layers: &[(Digest, usize)],
    subject: Option<(&Digest, usize)>,
) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": s}))
        .collect();
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0.to_string(), "size": config.1},
        "layers": layers,
    });
    if let Some((d, s)) = subject {
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": s});
    }
    serde_json::to_vec(&m).expect("json")
}

/// An OCI index body over `children` (digest, size).
pub fn index_manifest(children: &[(Digest, usize)]) -> Vec<u8> {
    let ms: Vec<_> = children
        .iter()
        .map(|(d, s)| {
            json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": s,
                             "platform": {"architecture": "amd64", "os": "linux"}})
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ms}))
        .expect("json")
}

impl Fixture {
    /// Pushes config `seed` and `layers` (raw bytes), then a manifest under
    /// `reference` (tag or, with `None`, its own digest), with an optional
    /// subject.
    pub async fn push_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        seed: &str,
        layers: &[&[u8]],
        subject: Option<&Image>,
    ) -> Image {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let mut ls = Vec::new();
        for l in layers {
            ls.push((self.push_blob(repo, l).await, l.len()));
        }
        let body = image_manifest(
            (&cd, config.len()),
            &ls,
            subject.map(|s| (&s.manifest, s.body.len())),
        );
        let digest = Digest::sha256_of(&body);
        let reference = tag.map_or_else(|| digest.to_string(), str::to_string);
        self.put_manifest(repo, &reference, OCI_MANIFEST, &body)
            .await;
        Image {
            manifest: digest,
            body,
            config: cd,
            layers: ls.into_iter().map(|(d, _)| d).collect(),
        }
    }
}
