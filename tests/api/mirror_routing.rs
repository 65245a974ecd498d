//! The pull-through cache through the HTTP API, with another in-process
//! berth as the upstream (reached through the `Upstream` trait, so no HTTP
//! client is involved): pulls by tag and digest under a prefix, pushes into
//! a prefix refused, containerd's `?ns=` authorized on the local name, and
//! registry:2's `proxy` mode refusing writes as registry:2 does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use berth::config::auth::AccessConfig;
use berth::mirror::{RemoteBlob, RemoteDescriptor, RemoteManifest, Upstream, UpstreamError};
use berth::oci::digest::Digest;
use berth::oci::name::{Reference, RepoName};
use berth::registry::pull_through::{FetchLimits, MirrorEntry, Mirrors, Mode};
use berth::registry::{Registry, RegistryError};

use crate::auth::{basic, htpasswd_config, rule, users};
use crate::support::*;

/// A berth registry layer answering as an upstream would.
pub(crate) struct Local {
    reg: Registry,
    blob_gets: AtomicUsize,
}

fn other(e: RegistryError) -> UpstreamError {
    UpstreamError::Unavailable(e.to_string())
}

#[async_trait]
impl Upstream for Local {
    async fn head_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<RemoteDescriptor>, UpstreamError> {
        Ok(self
            .get_manifest(name, reference)
            .await?
            .map(|m| RemoteDescriptor {
                digest: m.digest.unwrap(),
                media_type: m.media_type,
                size: m.body.len() as u64,
            }))
    }

    async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<RemoteManifest>, UpstreamError> {
        let name: RepoName = name.parse().unwrap();
        let reference: Reference = reference.parse().unwrap();
        match self.reg.get_manifest(&name, &reference).await {
            Ok(m) => Ok(Some(RemoteManifest {
                media_type: m.media_type,
                body: m.body,
                digest: Some(m.digest),
            })),
            Err(RegistryError::ManifestUnknown) => Ok(None),
            Err(e) => Err(other(e)),
        }
    }

    async fn head_blob(&self, name: &str, digest: &Digest) -> Result<Option<u64>, UpstreamError> {
        match self.reg.stat_blob(&name.parse().unwrap(), digest).await {
            Ok(info) => Ok(Some(info.size)),
            Err(RegistryError::BlobUnknown(_)) => Ok(None),
            Err(e) => Err(other(e)),
        }
    }

    async fn get_blob(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<RemoteBlob>, UpstreamError> {
        self.blob_gets.fetch_add(1, Ordering::SeqCst);
        let Some(size) = self.head_blob(name, digest).await? else {
            return Ok(None);
        };
        let stream = self.reg.blob_stream(digest, 0, size).await.map_err(other)?;
        Ok(Some(RemoteBlob {
            size: Some(size),
            stream,
        }))
    }

    fn label(&self) -> &str {
        "local-upstream"
    }
}

fn entry(prefix: &str, upstream: Arc<Local>) -> Arc<MirrorEntry> {
    Arc::new(MirrorEntry {
        prefix: prefix.into(),
        remote: "https://upstream.test".into(),
        docker_hub: true,
        hosts: vec!["docker.io".into()],
        tag_revalidate: Duration::from_secs(60),
        upstream,
        stats: Default::default(),
    })
}

pub(crate) fn mirror_of(
    upstream: Arc<Local>,
    proxy: bool,
    configure: impl Fn(&mut berth::config::Config),
) -> TestRegistry {
    let mode = if proxy {
        Mode::Proxy(entry("", upstream))
    } else {
        Mode::Prefixes(vec![entry("dockerhub", upstream)])
    };
    TestRegistry::memory_wrapped(configure, |r| {
        r.with_mirrors(Mirrors::new(mode, FetchLimits::default()))
    })
}

pub(crate) async fn upstream_with_alpine() -> (TestRegistry, Arc<Local>, Vec<u8>, Digest) {
    let up = TestRegistry::memory_with(|c| c.storage.delete.enabled = true);
    let (manifest, digest) = up.push_image("library/alpine", "3.20", "alpine").await;
    let local = Arc::new(Local {
        reg: up.registry().clone(),
        blob_gets: AtomicUsize::new(0),
    });
    (up, local, manifest, digest)
}

#[tokio::test]
async fn mirror_pulls_by_tag_and_digest_under_a_prefix_beside_local_pushes() {
    let (_up, upstream, manifest, digest) = upstream_with_alpine().await;
    let reg = mirror_of(upstream.clone(), false, |c| c.storage.delete.enabled = true);
    // Docker Hub: `dockerhub/alpine` is `library/alpine` upstream.
    let r = reg.get("/v2/dockerhub/alpine/manifests/3.20").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(&r.body[..], &manifest[..]);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.to_string().as_str())
    );
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer: Digest = parsed["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let h = reg
        .head(&format!("/v2/dockerhub/alpine/blobs/{layer}"))
        .await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.header("content-length"), Some("15"));
    let b = reg
        .get(&format!("/v2/dockerhub/alpine/blobs/{layer}"))
        .await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(&b.body[..], b"layer of alpine");
    let r = reg
        .get(&format!("/v2/dockerhub/library/alpine/manifests/{digest}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Unknown upstream: the spec's errors.
    let r = reg.get("/v2/dockerhub/alpine/manifests/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&r.body).contains("MANIFEST_UNKNOWN"));
    let missing = Digest::sha256_of(b"missing");
    let r = reg
        .get(&format!("/v2/dockerhub/alpine/blobs/{missing}"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&r.body).contains("BLOB_UNKNOWN"));

    // Pushes into the prefix are refused, naming it; local pushes work.
    let r = reg
        .req(
            Method::POST,
            "/v2/dockerhub/mine/blobs/uploads/",
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("DENIED")
            && text.contains("dockerhub/ is a pull-through mirror")
            && text.contains("upstream.test"),
        "{text}"
    );
    let r = reg
        .put_manifest("dockerhub/alpine", "mine", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    reg.push_image("team/app", "1", "app").await;
    // The catalog lists the cached repository beside the local one.
    let r = reg.get("/v2/_catalog").await;
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("team/app") && text.contains("dockerhub/alpine"),
        "{text}"
    );
    // Cached content deletes like local content.
    let r = reg
        .req(
            Method::DELETE,
            &format!("/v2/dockerhub/alpine/manifests/{digest}"),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn mirror_ns_requests_are_authorized_on_the_local_cache_name() {
    let (_up, upstream, manifest, _) = upstream_with_alpine().await;
    let dir = users();
    let mut access = AccessConfig::default();
    access
        .users
        .insert("alice".into(), vec![rule(&["dockerhub/**"], &["pull"])]);
    access
        .users
        .insert("bob".into(), vec![rule(&["library/**"], &["pull", "push"])]);
    let reg = mirror_of(upstream, false, htpasswd_config(&dir, Some(access)));
    let uri = "/v2/library/alpine/manifests/3.20?ns=docker.io";
    let alice = basic("alice", "alicepw");
    let r = reg
        .req(
            Method::GET,
            uri,
            &[("authorization", &alice)],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(&r.body[..], &manifest[..]);
    // The same bytes, one cache: the prefixed name now hits.
    let r = reg
        .req(
            Method::GET,
            "/v2/dockerhub/library/alpine/manifests/3.20",
            &[("authorization", &alice)],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // bob's rule is on the upstream's name, which is not what is served.
    let bob = basic("bob", "bobpw");
    let r = reg
        .req(
            Method::GET,
            uri,
            &[("authorization", &bob)],
            axum::body::Body::empty(),
        )
        .await;
    assert!(
        r.status == StatusCode::FORBIDDEN || r.status == StatusCode::UNAUTHORIZED,
        "{}",
        r.status
    );
    // An ns host no entry lists leaves the name local.
    let r = reg
        .req(
            Method::GET,
            "/v2/library/alpine/manifests/3.20?ns=quay.io",
            &[("authorization", &bob)],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mirror_proxy_mode_refuses_writes_like_registry2() {
    let (_up, upstream, manifest, digest) = upstream_with_alpine().await;
    let reg = mirror_of(upstream, true, |c| c.storage.delete.enabled = true);
    let r = reg.get("/v2/library/alpine/manifests/3.20").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &manifest[..]);
    let empty = axum::body::Body::empty;
    for (method, uri) in [
        (
            Method::POST,
            "/v2/library/alpine/blobs/uploads/".to_string(),
        ),
        (Method::PUT, "/v2/library/alpine/manifests/x".to_string()),
        (
            Method::DELETE,
            format!("/v2/library/alpine/manifests/{digest}"),
        ),
        (Method::DELETE, format!("/v2/library/alpine/blobs/{digest}")),
        (Method::POST, "/v2/other/blobs/uploads/".to_string()),
    ] {
        let r = reg
            .req(
                method.clone(),
                &uri,
                &[("content-type", OCI_MANIFEST)],
                empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("UNSUPPORTED"), "{text}");
    }
}
