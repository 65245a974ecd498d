//! The filesystem driver's listing cache seen from outside: two driver
//! instances on one directory (as replicas share storage) and plain file
//! operations (another process or host) change large directories after
//! they were listed and cached; every listing must show the change at once.

use std::path::Path;
use std::time::Duration;

use berth::storage::filesystem::FilesystemDriver;
use berth::storage::StorageDriver;
use bytes::Bytes;

/// Longer than the cache's 2 s racy-timestamp margin: listings taken after
/// this are trusted, and cached.
const SETTLE: Duration = Duration::from_millis(2300);

async fn names(d: &FilesystemDriver, key: &str) -> Vec<String> {
    let mut out: Vec<String> = d
        .list(key)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.rsplit('/').next().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn expected(prefix: &str, range: impl Iterator<Item = u32>) -> Vec<String> {
    let mut v: Vec<String> = range.map(|i| format!("{prefix}{i:03}")).collect();
    v.sort();
    v
}

async fn link(d: &FilesystemDriver, key: String) {
    d.put_content(&key, Bytes::from_static(b"sha256:x"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_cached_listings_follow_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    let reader = FilesystemDriver::new(dir.path());
    let writer = FilesystemDriver::new(dir.path());
    let tags = "/r/_manifests/tags";
    let repos = "/repos";
    for i in 0..100 {
        link(&writer, format!("{tags}/t{i:03}/current/link")).await;
        link(
            &writer,
            format!("{repos}/r{i:03}/_manifests/revisions/sha256/ab/link"),
        )
        .await;
    }
    tokio::time::sleep(SETTLE).await;
    for _ in 0..2 {
        assert_eq!(names(&reader, tags).await, expected("t", 0..100));
        assert_eq!(names(&reader, repos).await, expected("r", 0..100));
    }

    // Another driver instance adds and removes tags and repositories.
    link(&writer, format!("{tags}/t100/current/link")).await;
    assert_eq!(names(&reader, tags).await, expected("t", 0..101));
    writer.delete(&format!("{tags}/t000")).await.unwrap();
    assert_eq!(names(&reader, tags).await, expected("t", 1..101));
    writer.delete(&format!("{repos}/r050")).await.unwrap();
    assert_eq!(
        names(&reader, repos).await,
        expected("r", (0..100).filter(|&i| i != 50))
    );

    // Settled again, then another process changes the directories.
    tokio::time::sleep(SETTLE).await;
    assert_eq!(names(&reader, tags).await, expected("t", 1..101));
    let root = dir.path();
    std::fs::remove_dir_all(root.join("r/_manifests/tags/t001")).unwrap();
    assert_eq!(names(&reader, tags).await, expected("t", 2..101));
    std::fs::create_dir(root.join("repos/r050")).unwrap();
    assert_eq!(names(&reader, repos).await, expected("r", 0..100));

    // The whole directory deleted and recreated with other entries.
    tokio::time::sleep(SETTLE).await;
    assert_eq!(names(&reader, repos).await, expected("r", 0..100));
    recreate(&root.join("repos"), 100..180);
    assert_eq!(names(&reader, repos).await, expected("r", 100..180));
    std::fs::remove_dir_all(root.join("repos")).unwrap();
    assert!(reader.list(repos).await.unwrap_err().is_not_found());
    assert!(!reader.has_children(repos).await.unwrap());
}

fn recreate(dir: &Path, range: std::ops::Range<u32>) {
    std::fs::remove_dir_all(dir).unwrap();
    for i in range {
        std::fs::create_dir_all(dir.join(format!("r{i:03}"))).unwrap();
    }
}
