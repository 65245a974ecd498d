//! The cache's test upstream: an in-memory fake that counts calls and can
//! be down, corrupt bytes, or hold a blob's body back until released; and
//! the helpers the cache's tests share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;

use super::*;
use crate::mirror::{RemoteBlob, RemoteDescriptor, RemoteManifest, UpstreamError};
use crate::oci::digest::Digest;
use crate::oci::name::{Reference, RepoName};
use crate::registry::{Registry, RegistryOptions};
use crate::storage::memory::MemoryDriver;

/// An upstream registry in memory.
#[derive(Default)]
pub(super) struct Fake {
    pub(super) manifests: Mutex<HashMap<String, (Digest, Bytes)>>,
    pub(super) tags: Mutex<HashMap<String, Digest>>,
    pub(super) blobs: Mutex<HashMap<Digest, Bytes>>,
    pub(super) down: AtomicBool,
    pub(super) corrupt: AtomicBool,
    /// When set, blob bodies send their first chunk, then wait for permits.
    pub(super) gate: Option<Arc<Semaphore>>,
    pub(super) head_manifest: AtomicUsize,
    pub(super) get_manifest: AtomicUsize,
    pub(super) get_blob: AtomicUsize,
    pub(super) head_blob: AtomicUsize,
}

pub(super) const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

impl Fake {
    pub(super) fn put_manifest(&self, tag: &str, body: &str) -> Digest {
        let d = Digest::sha256_of(body.as_bytes());
        self.manifests
            .lock()
            .unwrap()
            .insert(d.to_string(), (d.clone(), Bytes::from(body.to_string())));
        self.tags.lock().unwrap().insert(tag.into(), d.clone());
        d
    }

    pub(super) fn put_blob(&self, data: Vec<u8>) -> Digest {
        let d = Digest::sha256_of(&data);
        self.blobs
            .lock()
            .unwrap()
            .insert(d.clone(), Bytes::from(data));
        d
    }

    fn check(&self) -> Result<(), UpstreamError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(UpstreamError::Unavailable("connection refused".into()));
        }
        Ok(())
    }

    fn lookup(&self, reference: &str) -> Option<(Digest, Bytes)> {
        let key = match self.tags.lock().unwrap().get(reference) {
            Some(d) => d.to_string(),
            None => reference.to_string(),
        };
        self.manifests.lock().unwrap().get(&key).cloned()
    }
}

#[async_trait]
impl crate::mirror::Upstream for Fake {
    async fn head_manifest(
        &self,
        _name: &str,
        reference: &str,
    ) -> Result<Option<RemoteDescriptor>, UpstreamError> {
        self.head_manifest.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(self
            .lookup(reference)
            .map(|(digest, body)| RemoteDescriptor {
                digest,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: body.len() as u64,
            }))
    }

    async fn get_manifest(
        &self,
        _name: &str,
        reference: &str,
    ) -> Result<Option<RemoteManifest>, UpstreamError> {
        self.get_manifest.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(self.lookup(reference).map(|(digest, body)| RemoteManifest {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            body,
            digest: Some(digest),
        }))
    }

    async fn head_blob(&self, _name: &str, digest: &Digest) -> Result<Option<u64>, UpstreamError> {
        self.head_blob.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(self
            .blobs
            .lock()
            .unwrap()
            .get(digest)
            .map(|b| b.len() as u64))
    }

    async fn get_blob(
        &self,
        _name: &str,
        digest: &Digest,
    ) -> Result<Option<RemoteBlob>, UpstreamError> {
        self.get_blob.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        let Some(mut data) = self.blobs.lock().unwrap().get(digest).map(|b| b.to_vec()) else {
            return Ok(None);
        };
        if self.corrupt.load(Ordering::SeqCst) {
            let last = data.len() - 1;
            data[last] ^= 0xff;
        }
        let size = Some(data.len() as u64);
        let chunks: Vec<Bytes> = data.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
        let gate = self.gate.clone();
        let stream = futures::stream::iter(chunks.into_iter().enumerate()).then(move |(i, c)| {
            let gate = gate.clone();
            async move {
                if let (Some(g), true) = (gate, i > 0) {
                    g.acquire().await.expect("gate").forget();
                }
                Ok::<_, std::io::Error>(c)
            }
        });
        Ok(Some(RemoteBlob {
            size,
            stream: Box::pin(stream),
        }))
    }

    fn label(&self) -> &str {
        "fake"
    }
}

pub(super) fn entry(prefix: &str, fake: Arc<Fake>, revalidate: Duration) -> Arc<MirrorEntry> {
    Arc::new(MirrorEntry {
        prefix: prefix.into(),
        remote: "https://upstream.test".into(),
        docker_hub: true,
        hosts: vec!["docker.io".into()],
        tag_revalidate: revalidate,
        upstream: fake,
        stats: MirrorStats::default(),
    })
}

pub(super) fn registry_with(mode: Mode) -> Registry {
    registry_on(Arc::new(MemoryDriver::new()), mode)
}

/// A registry over `driver` whose mirrors are `mode`.
pub(super) fn registry_on(driver: Arc<dyn crate::storage::StorageDriver>, mode: Mode) -> Registry {
    let options = RegistryOptions {
        delete_enabled: true,
        ..RegistryOptions::default()
    };
    Registry::new(driver, options).with_mirrors(Mirrors::new(mode, FetchLimits::default()))
}

pub(super) fn mirrored(fake: Arc<Fake>, revalidate: Duration) -> Registry {
    registry_with(Mode::Prefixes(vec![entry("hub", fake, revalidate)]))
}

pub(super) fn name(s: &str) -> RepoName {
    s.parse().unwrap()
}

pub(super) fn tag(s: &str) -> Reference {
    Reference::Tag(s.parse().unwrap())
}

pub(super) async fn read_all(reg: &Registry, n: &RepoName, d: &Digest) -> Result<Vec<u8>, String> {
    let blob = reg
        .mirror_blob(n, d, false)
        .await
        .map_err(|e| e.to_string())?;
    let MirrorBlob::Fetching { stream, .. } = blob else {
        return Err("not a fetch".into());
    };
    let mut s = stream.stream(0, None);
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    Ok(out)
}
