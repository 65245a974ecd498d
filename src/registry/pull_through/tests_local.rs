//! The cache over the filesystem driver, where the spool is the fetch's
//! upload data file in storage and becomes the blob by rename.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;

use super::test_fake::*;
use super::*;
use crate::oci::digest::Digest;
use crate::registry::{Registry, RegistryError};
use crate::storage::filesystem::FilesystemDriver;

/// A mirror of `fake` under `hub/` over a filesystem driver at `root`.
fn on_disk(root: &Path, fake: Arc<Fake>) -> Registry {
    let driver = Arc::new(FilesystemDriver::new(root));
    registry_on(
        driver,
        Mode::Prefixes(vec![entry("hub", fake, Duration::from_secs(60))]),
    )
}

fn repositories(root: &Path) -> PathBuf {
    root.join("docker/registry/v2/repositories")
}

/// The upload data files under `hub/library/app`.
fn upload_files(root: &Path) -> Vec<PathBuf> {
    let uploads = repositories(root).join("hub/library/app/_uploads");
    let Ok(dirs) = std::fs::read_dir(&uploads) else {
        return Vec::new();
    };
    dirs.map(|d| d.unwrap().path().join("data"))
        .filter(|p| p.exists())
        .collect()
}

fn blob_file(root: &Path, d: &Digest) -> PathBuf {
    let hex = d.hex();
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

/// Waits until no fetch runs (its clean-up included).
async fn settle(reg: &Registry) {
    let mirrors = reg.mirrors().unwrap().clone();
    for _ in 0..500 {
        if mirrors.fetches.running() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fetch did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_is_the_upload_in_storage_and_is_renamed_into_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let fake = Arc::new(Fake {
        gate: Some(gate.clone()),
        ..Fake::default()
    });
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = fake.put_blob(data.clone());
    let reg = on_disk(dir.path(), fake.clone());
    let n = name("hub/library/app");
    let MirrorBlob::Fetching { stream, .. } = reg.mirror_blob(&n, &digest, false).await.unwrap()
    else {
        panic!("expected a fetch");
    };
    let mut s = stream.stream(0, None);
    let first = s.next().await.unwrap().unwrap();
    // The upstream is held after its first chunk: what arrived so far goes
    // to the upload's data file, in storage (written alongside the
    // readers, so it may land just after they got it).
    let spooled = upload_files(dir.path());
    assert_eq!(spooled.len(), 1, "one upload data file: {spooled:?}");
    let mut meta = std::fs::metadata(&spooled[0]).unwrap();
    for _ in 0..500 {
        if meta.len() >= first.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        meta = std::fs::metadata(&spooled[0]).unwrap();
    }
    assert_eq!(meta.len(), first.len() as u64);
    assert!(!blob_file(dir.path(), &digest).exists());
    gate.add_permits(1000);
    let mut got = first.to_vec();
    while let Some(c) = s.next().await {
        got.extend_from_slice(&c.unwrap());
    }
    assert_eq!(got, data);
    settle(&reg).await;
    // The same file (inode) is now the blob: renamed, not copied; the
    // upload is gone and the blob is linked.
    let blob = blob_file(dir.path(), &digest);
    assert_eq!(std::fs::read(&blob).unwrap(), data);
    assert_eq!(std::fs::metadata(&blob).unwrap().ino(), meta.ino());
    assert!(upload_files(dir.path()).is_empty());
    assert_eq!(
        reg.stat_blob(&n, &digest).await.unwrap().size,
        data.len() as u64
    );
    assert_eq!(fake.get_blob.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn corrupted_bytes_leave_nothing_in_storage() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    fake.corrupt.store(true, Ordering::SeqCst);
    let digest = fake.put_blob(vec![9u8; 500_000]);
    let reg = on_disk(dir.path(), fake.clone());
    let n = name("hub/library/app");
    let err = read_all(&reg, &n, &digest).await.expect_err("corrupted");
    assert!(err.contains("hash"), "{err}");
    settle(&reg).await;
    // No upload, and no directory made for it: the name was never stored.
    assert!(!repositories(dir.path()).join("hub").exists());
    assert!(!blob_file(dir.path(), &digest).exists());
    assert!(matches!(
        reg.stat_blob(&n, &digest).await,
        Err(RegistryError::BlobUnknown(_))
    ));
}

#[tokio::test]
async fn a_blob_the_upstream_lacks_leaves_nothing_in_storage() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let digest = Digest::sha256_of(b"not upstream");
    let reg = on_disk(dir.path(), fake.clone());
    let n = name("hub/library/app");
    let err = reg.mirror_blob(&n, &digest, false).await.err();
    assert!(
        matches!(err, Some(RegistryError::BlobUnknown(_))),
        "{err:?}"
    );
    settle(&reg).await;
    assert!(!repositories(dir.path()).join("hub").exists());
    assert_eq!(fake.get_blob.load(Ordering::SeqCst), 1);
}
