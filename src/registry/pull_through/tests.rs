//! The cache against the in-memory fake upstream (`test_fake.rs`) over
//! in-memory storage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;

use super::test_fake::*;
use super::*;
use bytes::Bytes;

use crate::oci::name::Reference;
use crate::registry::{Registry, RegistryError, RegistryOptions};
use crate::storage::memory::MemoryDriver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_misses_make_one_upstream_fetch_and_stream_before_it_ends() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Arc::new(Fake {
        gate: Some(gate.clone()),
        ..Fake::default()
    });
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = fake.put_blob(data.clone());
    let reg = mirrored(fake.clone(), Duration::from_secs(60));
    let n = name("hub/library/app");
    // The first client gets its first bytes while the upstream is held
    // after its first chunk: streaming, not store-then-serve.
    let MirrorBlob::Fetching { size, stream } = reg.mirror_blob(&n, &digest, false).await.unwrap()
    else {
        panic!("expected a fetch");
    };
    assert_eq!(size, Some(data.len() as u64));
    let mut first = stream.stream(0, None);
    let chunk = first.next().await.unwrap().unwrap();
    assert_eq!(&chunk[..], &data[..chunk.len()]);
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (reg, n, d) = (reg.clone(), n.clone(), digest.clone());
            tokio::spawn(async move { read_all(&reg, &n, &d).await })
        })
        .collect();
    gate.add_permits(1000);
    for r in readers {
        assert_eq!(r.await.unwrap().unwrap(), data);
    }
    assert_eq!(fake.get_blob.load(Ordering::SeqCst), 1);
    // Once stored, the blob is an ordinary linked blob.
    let mirrors = reg.mirrors().unwrap().clone();
    for _ in 0..100 {
        if mirrors.fetches.running() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = reg.stat_blob(&n, &digest).await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    let stats = &mirrors.entries()[0].stats;
    assert_eq!(
        stats.bytes_fetched.load(Ordering::SeqCst),
        data.len() as u64
    );
}

#[tokio::test]
async fn corrupted_bytes_store_nothing_and_every_reader_fails() {
    let fake = Arc::new(Fake::default());
    fake.corrupt.store(true, Ordering::SeqCst);
    let data = vec![7u8; 300_000];
    let digest = fake.put_blob(data);
    let reg = mirrored(fake.clone(), Duration::from_secs(60));
    let n = name("hub/library/app");
    let (a, b) = tokio::join!(read_all(&reg, &n, &digest), read_all(&reg, &n, &digest));
    for r in [a, b] {
        let err = r.expect_err("a corrupted blob must not stream to the end");
        assert!(err.contains("hash"), "{err}");
    }
    assert!(matches!(
        reg.stat_blob(&n, &digest).await,
        Err(RegistryError::BlobUnknown(_))
    ));
    assert_eq!(reg.global_blob_size(&digest).await.unwrap(), None);
}

#[tokio::test]
async fn a_range_is_served_from_the_fetch() {
    let fake = Arc::new(Fake::default());
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
    let digest = fake.put_blob(data.clone());
    let reg = mirrored(fake, Duration::from_secs(60));
    let n = name("hub/x");
    let MirrorBlob::Fetching { stream, .. } = reg.mirror_blob(&n, &digest, false).await.unwrap()
    else {
        panic!("expected a fetch");
    };
    let mut s = stream.stream(100_000, Some(50_000));
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    assert_eq!(out, &data[100_000..150_000]);
}

#[tokio::test]
async fn upstream_down_serves_the_cache_and_unknown_stays_unknown() {
    let fake = Arc::new(Fake::default());
    let d = fake.put_manifest("1.0", MANIFEST);
    let reg = mirrored(fake.clone(), Duration::ZERO);
    let n = name("hub/library/app");
    let m = reg.serve_manifest(&n, &tag("1.0"), false).await.unwrap();
    assert_eq!(m.digest, d);
    fake.down.store(true, Ordering::SeqCst);
    let m = reg.serve_manifest(&n, &tag("1.0"), false).await.unwrap();
    assert_eq!(m.digest, d);
    assert_eq!(&m.body[..], MANIFEST.as_bytes());
    let by_digest = Reference::Digest(d.clone());
    let before = fake.get_manifest.load(Ordering::SeqCst);
    reg.serve_manifest(&n, &by_digest, false).await.unwrap();
    assert_eq!(
        fake.get_manifest.load(Ordering::SeqCst),
        before,
        "by digest: never asked again"
    );
    // Nothing cached: a clear error, not a hang or a 500.
    let err = reg
        .serve_manifest(&n, &tag("2.0"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestUnavailable(ref m) if m.contains("unreachable")),
        "{err:?}"
    );
    // The fetched repository is an ordinary one now (catalog, tags).
    assert!(reg.repository_exists(&n).await.unwrap());
}

#[tokio::test]
async fn a_moved_tag_is_followed_after_the_interval_only() {
    let fake = Arc::new(Fake::default());
    let old = fake.put_manifest("latest", MANIFEST);
    let reg = mirrored(fake.clone(), Duration::from_millis(300));
    let n = name("hub/library/app");
    assert_eq!(
        reg.serve_manifest(&n, &tag("latest"), false)
            .await
            .unwrap()
            .digest,
        old
    );
    let moved = MANIFEST.replace(
        "\"layers\":[]",
        "\"layers\":[],\"annotations\":{\"v\":\"2\"}",
    );
    let new = fake.put_manifest("latest", &moved);
    let heads = fake.head_manifest.load(Ordering::SeqCst);
    // Within the interval: the cached tag, no upstream call.
    assert_eq!(
        reg.serve_manifest(&n, &tag("latest"), true)
            .await
            .unwrap()
            .digest,
        old
    );
    assert_eq!(fake.head_manifest.load(Ordering::SeqCst), heads);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let m = reg.serve_manifest(&n, &tag("latest"), false).await.unwrap();
    assert_eq!(m.digest, new);
    assert_eq!(&m.body[..], moved.as_bytes());
    assert_eq!(
        reg.resolve(&n, &tag("latest")).await.unwrap(),
        new,
        "re-tagged locally"
    );
}

#[tokio::test]
async fn head_of_an_uncached_manifest_does_not_download_it() {
    let fake = Arc::new(Fake::default());
    let d = fake.put_manifest("1", MANIFEST);
    let reg = mirrored(fake.clone(), Duration::from_secs(60));
    let n = name("hub/a");
    // By digest: answered from the upstream's HEAD alone.
    let m = reg
        .serve_manifest(&n, &Reference::Digest(d.clone()), true)
        .await
        .unwrap();
    assert!(m.body.is_empty());
    assert_eq!((m.digest, m.size), (d.clone(), MANIFEST.len() as u64));
    assert_eq!(fake.get_manifest.load(Ordering::SeqCst), 0);
    assert!(!reg.repository_exists(&n).await.unwrap());
}

#[tokio::test]
async fn head_of_an_uncached_tag_caches_the_tag() {
    // docker and containerd resolve a tag with HEAD, then GET by digest:
    // the HEAD must cache the tag, or it stops resolving when the upstream
    // goes down.
    let fake = Arc::new(Fake::default());
    let d = fake.put_manifest("1", MANIFEST);
    let reg = mirrored(fake.clone(), Duration::from_secs(60));
    let n = name("hub/a");
    let m = reg.serve_manifest(&n, &tag("1"), true).await.unwrap();
    assert!(m.body.is_empty());
    assert_eq!(
        (m.digest.clone(), m.size),
        (d.clone(), MANIFEST.len() as u64)
    );
    assert_eq!(fake.get_manifest.load(Ordering::SeqCst), 1);
    assert_eq!(reg.resolve(&n, &tag("1")).await.unwrap(), d);
}

#[tokio::test]
async fn a_corrupted_manifest_is_not_stored() {
    let fake = Arc::new(Fake::default());
    let d = fake.put_manifest("1", MANIFEST);
    // The upstream answers the digest with other bytes.
    fake.manifests.lock().unwrap().insert(
        d.to_string(),
        (d.clone(), Bytes::from_static(b"{\"layers\":[]}")),
    );
    let reg = mirrored(fake, Duration::from_secs(60));
    let n = name("hub/a");
    let err = reg
        .serve_manifest(&n, &Reference::Digest(d.clone()), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestUnavailable(_)),
        "{err:?}"
    );
    assert!(!reg.repository_exists(&n).await.unwrap());
}

#[tokio::test]
async fn pushes_into_a_prefix_are_denied_and_proxy_mode_refuses_all_writes() {
    let fake = Arc::new(Fake::default());
    let reg = mirrored(fake.clone(), Duration::from_secs(60));
    let err = reg
        .check_mirror_write(&name("hub/library/app"), WriteKind::Push)
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Denied(m) if m.starts_with("hub/ is a pull-through mirror") && m.contains("https://upstream.test")),
        "{err:?}"
    );
    assert!(reg
        .check_mirror_write(&name("hub/library/app"), WriteKind::Delete)
        .is_ok());
    assert!(reg
        .check_mirror_write(&name("mine/app"), WriteKind::Push)
        .is_ok());
    assert!(reg
        .check_mirror_write(&name("hubx/app"), WriteKind::Push)
        .is_ok());
    let proxy = registry_with(Mode::Proxy(entry("", fake, Duration::ZERO)));
    for kind in [WriteKind::Push, WriteKind::Delete] {
        assert!(matches!(
            proxy.check_mirror_write(&name("library/app"), kind),
            Err(RegistryError::Unsupported(_))
        ));
    }
}

#[tokio::test]
async fn names_route_to_upstream_names() {
    let fake = Arc::new(Fake::default());
    let reg = mirrored(fake.clone(), Duration::from_secs(60));
    let m = reg.mirrors().unwrap();
    let up = |s: &str| m.route(&name(s)).map(|r| r.upstream_name);
    assert_eq!(up("hub/alpine").as_deref(), Some("library/alpine"));
    assert_eq!(up("hub/library/alpine").as_deref(), Some("library/alpine"));
    assert_eq!(up("hub/bitnami/redis").as_deref(), Some("bitnami/redis"));
    assert_eq!(up("hub"), None);
    assert_eq!(up("local/alpine"), None);
    assert_eq!(
        reg.mirror_ns_name("Docker.io", &name("library/alpine")),
        Some(name("hub/library/alpine"))
    );
    assert_eq!(reg.mirror_ns_name("ghcr.io", &name("library/alpine")), None);
    let proxy = registry_with(Mode::Proxy(entry("", fake, Duration::ZERO)));
    let pm = proxy.mirrors().unwrap();
    assert_eq!(
        pm.route(&name("alpine"))
            .map(|r| r.upstream_name)
            .as_deref(),
        Some("alpine")
    );
    assert_eq!(proxy.mirror_ns_name("docker.io", &name("alpine")), None);
}

#[tokio::test]
async fn too_many_fetches_answer_429() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Arc::new(Fake {
        gate: Some(gate.clone()),
        ..Fake::default()
    });
    let a = fake.put_blob(vec![1u8; 200_000]);
    let b = fake.put_blob(vec![2u8; 200_000]);
    let limits = FetchLimits {
        max_concurrent: 1,
        ..FetchLimits::default()
    };
    let reg = Registry::new(Arc::new(MemoryDriver::new()), RegistryOptions::default())
        .with_mirrors(Mirrors::new(
            Mode::Prefixes(vec![entry("hub", fake, Duration::ZERO)]),
            limits,
        ));
    let n = name("hub/x");
    let _held = reg.mirror_blob(&n, &a, false).await.unwrap();
    let err = reg.mirror_blob(&n, &b, false).await.err().unwrap();
    assert!(
        matches!(err, RegistryError::TooManyRequests { .. }),
        "{err:?}"
    );
    gate.add_permits(100);
}

#[tokio::test]
async fn a_stalled_upstream_is_cut_off() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Arc::new(Fake {
        gate: Some(gate),
        ..Fake::default()
    });
    let d = fake.put_blob(vec![3u8; 300_000]);
    let limits = FetchLimits {
        idle_timeout: Duration::from_millis(200),
        ..FetchLimits::default()
    };
    let reg = Registry::new(Arc::new(MemoryDriver::new()), RegistryOptions::default())
        .with_mirrors(Mirrors::new(
            Mode::Prefixes(vec![entry("hub", fake, Duration::ZERO)]),
            limits,
        ));
    let err = read_all(&reg, &name("hub/x"), &d).await.unwrap_err();
    assert!(err.contains("sent nothing"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_manifest_misses_make_one_upstream_call_each() {
    let fake = Arc::new(Fake::default());
    let d = fake.put_manifest("1.0", MANIFEST);
    let reg = mirrored(fake.clone(), Duration::from_secs(60));
    let n = name("hub/library/app");
    let pulls: Vec<_> = (0..16)
        .map(|i| {
            let (reg, n, d) = (reg.clone(), n.clone(), d.clone());
            tokio::spawn(async move {
                let reference = if i % 2 == 0 {
                    tag("1.0")
                } else {
                    Reference::Digest(d)
                };
                reg.serve_manifest(&n, &reference, false).await
            })
        })
        .collect();
    for p in pulls {
        assert_eq!(p.await.unwrap().unwrap().digest, d);
    }
    assert_eq!(fake.get_manifest.load(Ordering::SeqCst), 1);
    assert_eq!(fake.head_manifest.load(Ordering::SeqCst), 1);
}
