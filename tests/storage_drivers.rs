//! Runs the shared driver suite against every backend: memory, filesystem,
//! the S3 driver on a real Garage and a moto server (tests/common/s3.rs),
//! and the Azure driver on Azurite (tests/common/azure.rs); plus the checks
//! the suite cannot see: filesystem temp files and layout (here), S3
//! multipart state, replicas and redirects (`s3_cases`), Azure blocks
//! (`azure_cases`). The GCS driver has no emulator that speaks its API
//! (docs/storage.md); its unit tests are in src/storage/object_store/gcs.rs.
#![allow(clippy::unwrap_used)]

#[macro_use]
#[path = "common/driver_suite.rs"]
mod driver_suite;
#[path = "common/azure.rs"]
mod azure;
#[path = "storage_drivers/azure_cases.rs"]
mod azure_cases;
#[path = "common/clients.rs"]
mod clients;
#[path = "storage_drivers/fs_list_cache.rs"]
mod fs_list_cache;
#[path = "storage_drivers/fs_moves.rs"]
mod fs_moves;
#[path = "storage_drivers/gated_store.rs"]
mod gated_store;
#[path = "common/procs.rs"]
mod procs;
#[path = "common/s3.rs"]
mod s3;
#[path = "storage_drivers/s3_cases.rs"]
mod s3_cases;

use std::path::{Path, PathBuf};

use berth::storage::filesystem::FilesystemDriver;
use berth::storage::memory::MemoryDriver;
use berth::storage::StorageDriver;
use bytes::Bytes;
use driver_suite::{kind, Fixture};

fn filesystem_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    Fixture::with(FilesystemDriver::new(dir.path()), dir)
}

/// The filesystem driver in per-file mode (`storage.filesystem.sync: file`).
fn filesystem_fsync_each_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    Fixture::with(FilesystemDriver::with_sync(dir.path(), true), dir)
}

/// The filesystem driver behind the metrics wrapper: every call, and the
/// writers' batched commits, must still behave as the driver's own.
fn metered_filesystem_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner: std::sync::Arc<dyn StorageDriver> =
        std::sync::Arc::new(FilesystemDriver::new(dir.path()));
    let metrics = std::sync::Arc::new(berth::metrics::Metrics::default());
    Fixture::with(berth::storage::metered::Metered::new(inner, metrics), dir)
}

storage_driver_suite!(memory, Fixture::new(MemoryDriver::new()));
storage_driver_suite!(metered_filesystem, metered_filesystem_fixture());
storage_driver_suite!(filesystem, filesystem_fixture());
storage_driver_suite!(filesystem_fsync_each, filesystem_fsync_each_fixture());
storage_driver_suite!(garage, optional s3_fixture(s3::garage()));
storage_driver_suite!(moto, optional s3_fixture(s3::moto()));
storage_driver_suite!(azurite, optional azurite_fixture());

/// An Azure driver on the shared Azurite under a fresh root; `None` when
/// Azurite is not installed.
fn azurite_fixture() -> Option<Fixture> {
    let server = azure::azurite()?;
    Some(Fixture::new(server.driver(&s3::fresh_root("suite"), true)))
}

/// An S3 driver on `server` under a fresh root (each case also works under
/// its own random prefix); `None` when the server is not installed.
fn s3_fixture(server: Option<&'static s3::S3Server>) -> Option<Fixture> {
    let server = server?;
    Some(Fixture::new(server.driver(&s3::fresh_root("suite"), true)))
}

/// Every file under `dir` whose name marks it as a temp file.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().starts_with(".tmp") {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn fs_keys_map_to_files_under_root() {
    let dir = tempfile::tempdir().unwrap();
    let d = FilesystemDriver::new(dir.path());
    let key = "/docker/registry/v2/repositories/library/alpine/_layers/sha256/ab/link";
    d.put_content(key, Bytes::from_static(b"sha256:ab"))
        .await
        .unwrap();
    let on_disk = dir.path().join(&key[1..]);
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"sha256:ab");

    // Data written by another registry in place is served as is.
    let other = dir
        .path()
        .join("docker/registry/v2/blobs/sha256/cd/cdef/data");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(&other, b"blob").unwrap();
    let content = d
        .get_content("/docker/registry/v2/blobs/sha256/cd/cdef/data")
        .await
        .unwrap();
    assert_eq!(content, Bytes::from_static(b"blob"));
}

#[tokio::test]
async fn fs_temp_file_invisible_until_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = FilesystemDriver::new(dir.path());
    d.put_content("/a/sibling", Bytes::from_static(b"s"))
        .await
        .unwrap();
    let mut w = d.writer("/a/obj", false).await.unwrap();
    // Past the first 64 KiB buffer and a full 4 MiB one: the second write
    // waits for the first, which opened the temp file (a smaller body may
    // still have its first write, and the open, in flight here).
    w.write(&vec![1u8; 9 << 20]).await.unwrap();

    assert!(
        !dir.path().join("a/obj").exists(),
        "destination written early"
    );
    let temps = temp_files(dir.path());
    assert_eq!(temps.len(), 1, "one temp file while writing: {temps:?}");
    assert_eq!(temps[0].parent().unwrap(), dir.path().join("a"));
    assert_eq!(d.list("/a").await.unwrap(), vec!["/a/sibling".to_string()]);
    assert_eq!(d.walk("/a").await.unwrap(), vec!["/a/sibling".to_string()]);

    w.commit().await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("a/obj")).unwrap().len(),
        9 << 20
    );
    assert!(temp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn fs_no_temp_leftovers_after_drop_cancel_or_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = FilesystemDriver::new(dir.path());

    let mut w = d.writer("/x/dropped", false).await.unwrap();
    w.write(b"data").await.unwrap();
    drop(w);
    assert!(temp_files(dir.path()).is_empty());
    assert!(
        !dir.path().join("x").exists(),
        "directories made for it stay"
    );

    let mut w = d.writer("/x/cancelled", false).await.unwrap();
    w.write(b"data").await.unwrap();
    w.cancel().await.unwrap();
    assert!(temp_files(dir.path()).is_empty());

    // Committing over a directory fails, and cleans up after itself.
    d.put_content("/y/dir/child", Bytes::from_static(b"c"))
        .await
        .unwrap();
    let r = d.put_content("/y/dir", Bytes::from_static(b"x")).await;
    assert_eq!(kind(&r), "backend");
    let mut w = d.writer("/y/dir", false).await.unwrap();
    w.write(&vec![2u8; 2 << 20]).await.unwrap();
    assert_eq!(kind(&w.commit().await), "backend");
    let w = d.writer("/y/dir", false).await.unwrap();
    assert_eq!(kind(&w.close().await), "backend");
    // Writing below an object fails too.
    let r = d
        .put_content("/y/dir/child/below", Bytes::from_static(b"x"))
        .await;
    assert_eq!(kind(&r), "backend");
    assert!(temp_files(dir.path()).is_empty());
    assert_eq!(
        d.walk("/y").await.unwrap(),
        vec!["/y/dir/child".to_string()]
    );
}

#[tokio::test]
async fn fs_foreign_names_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let d = FilesystemDriver::new(dir.path());
    d.put_content("/r/ok", Bytes::from_static(b"ok"))
        .await
        .unwrap();
    std::fs::write(dir.path().join("r/.tmp~leftover"), b"partial").unwrap();
    std::fs::create_dir(dir.path().join("r/lost+found")).unwrap();
    std::fs::write(dir.path().join("r/lost+found/x"), b"x").unwrap();
    assert_eq!(d.list("/r").await.unwrap(), vec!["/r/ok".to_string()]);
    assert_eq!(d.walk("/r").await.unwrap(), vec!["/r/ok".to_string()]);
}

#[tokio::test]
async fn fs_append_writer_keeps_file_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let d = FilesystemDriver::new(dir.path());
    let key = "/repo/_uploads/u1/data";
    let mut w = d.writer(key, false).await.unwrap();
    w.write(b"abc").await.unwrap();
    w.close().await.unwrap();
    let mut w = d.writer(key, true).await.unwrap();
    w.write(b"def").await.unwrap();
    w.close().await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(&key[1..])).unwrap(),
        b"abcdef"
    );
    assert!(temp_files(dir.path()).is_empty());
    let w = d.writer(key, true).await.unwrap();
    w.cancel().await.unwrap();
    assert!(!dir.path().join(&key[1..]).exists());
}

#[test]
fn names_identify_backends() {
    assert_eq!(MemoryDriver::new().name(), "inmemory");
    assert_eq!(FilesystemDriver::new("/nonexistent").name(), "filesystem");
}
