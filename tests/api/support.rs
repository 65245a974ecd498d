//! In-process test registry: the real router over a memory, filesystem, S3
//! or Azure driver, driven with `oneshot` requests (no sockets to berth; the
//! S3 driver talks to the test binary's shared Garage, tests/common/s3.rs,
//! the Azure driver to its shared Azurite, tests/common/azure.rs).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::Router;
use berth::config::Config;
use berth::oci::digest::Digest;
use berth::registry::Registry;
use berth::storage::filesystem::FilesystemDriver;
use berth::storage::memory::MemoryDriver;
use berth::storage::StorageDriver;
use tempfile::TempDir;

/// The router and the registry layer under it.
struct Built {
    app: Router,
    registry: Registry,
}

impl Built {
    fn new(cfg: Config, driver: Arc<dyn StorageDriver>) -> Built {
        let registry = berth::app::registry_for(&cfg, driver);
        Built {
            app: berth::app::build_app_with(cfg, registry.clone()).expect("app"),
            registry,
        }
    }
}

/// A registry under test.
pub struct TestRegistry {
    built: Built,
    /// The storage root for filesystem-backed registries.
    pub root: Option<PathBuf>,
    pub kind: &'static str,
    _dir: Option<TempDir>,
}

pub use crate::oneshot::Resp;

/// The path part of a Location header.
pub fn path_of(location: &str) -> String {
    location
        .strip_prefix("http://registry.test")
        .unwrap_or(location)
        .to_string()
}

impl TestRegistry {
    /// One registry per backend, each with `configure` applied.
    pub fn all_with(configure: impl Fn(&mut Config)) -> Vec<TestRegistry> {
        let mut out = Vec::new();
        let mut cfg = Config::default();
        configure(&mut cfg);
        let mem: Arc<dyn StorageDriver> = Arc::new(MemoryDriver::new());
        out.push(TestRegistry {
            built: Built::new(cfg.clone(), mem),
            root: None,
            kind: "memory",
            _dir: None,
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn StorageDriver> = Arc::new(FilesystemDriver::new(dir.path()));
        out.push(TestRegistry {
            built: Built::new(cfg.clone(), fs),
            root: Some(dir.path().to_path_buf()),
            kind: "filesystem",
            _dir: Some(dir),
        });
        // Garage, under a fresh prefix of the shared bucket. Redirects are
        // off in the driver so blob GETs answer 200 with the bytes, as the
        // assertions expect; presigned redirects are tested in
        // tests/storage_drivers.rs and tests/interop/s3.rs.
        if let Some(garage) = crate::s3::garage() {
            let s3: Arc<dyn StorageDriver> =
                Arc::new(garage.driver(&crate::s3::fresh_root("api"), false));
            out.push(TestRegistry {
                built: Built::new(cfg.clone(), s3),
                root: None,
                kind: "garage",
                _dir: None,
            });
        }
        // Azurite likewise (redirects off).
        if let Some(azurite) = crate::azure::azurite() {
            let az: Arc<dyn StorageDriver> =
                Arc::new(azurite.driver(&crate::s3::fresh_root("api"), false));
            out.push(TestRegistry {
                built: Built::new(cfg, az),
                root: None,
                kind: "azurite",
                _dir: None,
            });
        }
        out
    }

    /// A memory-backed registry with `configure` applied (auth tests).
    pub fn memory_with(configure: impl Fn(&mut Config)) -> TestRegistry {
        let mut cfg = Config::default();
        configure(&mut cfg);
        TestRegistry {
            built: Built::new(cfg, Arc::new(MemoryDriver::new())),
            root: None,
            kind: "memory",
            _dir: None,
        }
    }

    /// A registry over any driver (instrumented ones in tests).
    pub fn with_driver(
        driver: Arc<dyn StorageDriver>,
        configure: impl Fn(&mut Config),
    ) -> TestRegistry {
        let mut cfg = Config::default();
        configure(&mut cfg);
        TestRegistry {
            built: Built::new(cfg, driver),
            root: None,
            kind: "custom",
            _dir: None,
        }
    }

    /// A registry over a memory driver whose registry layer `wrap` extends
    /// (the pull-through cache with a test upstream).
    pub fn memory_wrapped(
        configure: impl Fn(&mut Config),
        wrap: impl FnOnce(Registry) -> Registry,
    ) -> TestRegistry {
        let mut cfg = Config::default();
        configure(&mut cfg);
        let registry = wrap(berth::app::registry_for(
            &cfg,
            Arc::new(MemoryDriver::new()),
        ));
        TestRegistry {
            built: Built {
                app: berth::app::build_app_with(cfg, registry.clone()).expect("app"),
                registry,
            },
            root: None,
            kind: "memory",
            _dir: None,
        }
    }

    /// A filesystem-backed registry over an existing root (replica tests).
    pub fn filesystem_at(root: &std::path::Path, configure: impl Fn(&mut Config)) -> TestRegistry {
        let mut cfg = Config::default();
        configure(&mut cfg);
        TestRegistry {
            built: Built::new(cfg, Arc::new(FilesystemDriver::new(root))),
            root: Some(root.to_path_buf()),
            kind: "filesystem",
            _dir: None,
        }
    }

    /// Two registries per backend on one storage, as two replicas behind a
    /// load balancer: separate processes' state (upload locks, caches),
    /// separate driver instances where the backend has them.
    pub fn replica_pairs() -> Vec<(TestRegistry, TestRegistry)> {
        Self::replica_pairs_with(|d| d)
    }

    /// `replica_pairs` with the second replica's driver wrapped (to slow
    /// one step down and open a race window).
    pub fn replica_pairs_with(
        wrap_b: impl Fn(Arc<dyn StorageDriver>) -> Arc<dyn StorageDriver>,
    ) -> Vec<(TestRegistry, TestRegistry)> {
        let app = |d: Arc<dyn StorageDriver>| {
            let mut cfg = Config::default();
            cfg.storage.delete.enabled = true;
            Built::new(cfg, d)
        };
        let pair = |a: Arc<dyn StorageDriver>, b: Arc<dyn StorageDriver>, kind, dir| {
            let one = TestRegistry {
                built: app(a),
                root: None,
                kind,
                _dir: dir,
            };
            let two = TestRegistry {
                built: app(wrap_b(b)),
                root: None,
                kind,
                _dir: None,
            };
            (one, two)
        };
        let mut out = Vec::new();
        let mem: Arc<dyn StorageDriver> = Arc::new(MemoryDriver::new());
        out.push(pair(mem.clone(), mem, "memory", None));
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (
            Arc::new(FilesystemDriver::new(dir.path())),
            Arc::new(FilesystemDriver::new(dir.path())),
        );
        out.push(pair(a, b, "filesystem", Some(dir)));
        if let Some(garage) = crate::s3::garage() {
            let root = crate::s3::fresh_root("replicas");
            let (a, b) = (garage.driver(&root, false), garage.driver(&root, false));
            out.push(pair(Arc::new(a), Arc::new(b), "garage", None));
        }
        if let Some(azurite) = crate::azure::azurite() {
            let root = crate::s3::fresh_root("replicas");
            let (a, b) = (azurite.driver(&root, false), azurite.driver(&root, false));
            out.push(pair(Arc::new(a), Arc::new(b), "azurite", None));
        }
        out
    }

    /// One registry per backend with deletes enabled.
    pub fn all() -> Vec<TestRegistry> {
        Self::all_with(|c| c.storage.delete.enabled = true)
    }

    pub async fn req(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        crate::oneshot::send(&self.built.app, method, uri, headers, body.into()).await
    }

    /// The registry layer behind the router (index refreshes, GC runs).
    pub fn registry(&self) -> &Registry {
        &self.built.registry
    }

    /// Rebuilds the in-memory repository index from storage, as the
    /// background refresher does on its interval; listings then come from it.
    pub async fn refresh_index(&self) {
        let out = self.built.registry.refresh_repo_index().await.unwrap();
        assert!(
            matches!(out, berth::registry::repo_index::RefreshOutcome::Ready(_)),
            "{out:?}"
        );
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.req(Method::GET, uri, &[], Body::empty()).await
    }

    pub async fn head(&self, uri: &str) -> Resp {
        self.req(Method::HEAD, uri, &[], Body::empty()).await
    }

    /// Pushes a blob monolithically and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                data.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {:?}", self.kind, r.body);
        d
    }

    /// Pushes a manifest and returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Resp {
        self.req(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            body.to_vec(),
        )
        .await
    }

    /// Pushes a config and one layer, then an OCI image manifest naming
    /// them; returns (manifest bytes, manifest digest).
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, Digest) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let layer = format!("layer of {seed}").into_bytes();
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let ld = self.push_blob(repo, &layer).await;
        let manifest = image_manifest(&cd, config.len(), &[(ld, layer.len())], None);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}: {:?}",
            self.kind,
            String::from_utf8_lossy(&r.body)
        );
        let d = Digest::sha256_of(&manifest);
        (manifest, d)
    }
}

pub use crate::oci_bodies::{OCI_INDEX, OCI_MANIFEST};
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An OCI image manifest body.
pub fn image_manifest(
    config: &Digest,
    config_size: usize,
    layers: &[(Digest, usize)],
    subject: Option<(&Digest, usize)>,
) -> Vec<u8> {
    let layers: Vec<(&Digest, usize)> = layers.iter().map(|(d, s)| (d, *s)).collect();
    let mut m = crate::oci_bodies::oci_image(
        config,
        config_size,
        &layers,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    if let Some((d, s)) = subject {
        m["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": s});
    }
    serde_json::to_vec_pretty(&m).expect("json")
}
