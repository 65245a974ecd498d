//! The one storage driver test suite. Every backend must pass it unchanged, so
//! the registry layer can rely on one behaviour whatever the storage.
//!
//! Each case is an async fn taking an `Arc<dyn StorageDriver>` and working
//! under its own random prefix, so cases may share a bucket and run in
//! parallel. A backend is instantiated with one line:
//!
//! ```ignore
//! #[macro_use]
//! #[path = "common/driver_suite.rs"]
//! mod driver_suite;
//! storage_driver_suite!(s3, driver_suite::Fixture::new(make_s3().await));
//! ```
//!
//! The fixture expression is evaluated inside each `#[tokio::test]`, so it may
//! `.await`, and it keeps alive whatever the driver needs (e.g. a `TempDir`).
//!
//! Cases live here (objects, keys, moves, deletes, stat) and, by topic, in
//! `driver_suite_{reads,writers,listing,concurrency,batch}.rs`.
#![allow(dead_code)]

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth::storage::{FileWriter, StorageDriver, StorageError, StorageResult};
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// A driver under test plus whatever must outlive it (a temp dir, a server).
pub struct Fixture {
    /// Shared so cases can hand it to spawned tasks.
    pub driver: Arc<dyn StorageDriver>,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Fixture {
    /// A fixture for a driver that needs nothing else alive.
    pub fn new(driver: impl StorageDriver) -> Self {
        Self {
            driver: Arc::new(driver),
            _keep: None,
        }
    }

    /// A fixture that keeps `keep` alive as long as the driver is tested.
    pub fn with(driver: impl StorageDriver, keep: impl Any + Send + Sync) -> Self {
        Self {
            driver: Arc::new(driver),
            _keep: Some(Box::new(keep)),
        }
    }
}

/// Generates one `#[tokio::test]` per suite case for the given fixture
/// expression. Adding a case means adding its name to this list only.
#[macro_export]
macro_rules! storage_driver_suite {
    // `optional`: the expression gives `Option<Fixture>`; `None` skips (a
    // server that is not installed, outside CI).
    ($module:ident, optional $fixture:expr) => {
        $crate::storage_driver_suite!(@list $module, $fixture);
    };
    ($module:ident, $fixture:expr) => {
        $crate::storage_driver_suite!(@list $module, Some($fixture));
    };
    (@list $module:ident, $fixture:expr) => {
        $crate::storage_driver_suite!(@cases $module, $fixture;
            put_get_round_trip,
            overwrite_replaces,
            missing_keys_are_not_found,
            invalid_keys_are_rejected,
            reads_at_offsets,
            append_across_close_and_reopen,
            writer_content_visible_only_after_commit,
            cancel_discards,
            dropped_writer_leaves_nothing,
            list_direct_children,
            list_many_keys,
            list_follows_adds_and_deletes,
            has_children_of_dirs,
            move_creates_and_replaces,
            concurrent_moves_to_same_destination,
            delete_tree,
            walk_recursive_lexical,
            stat_describes_objects_and_dirs,
            large_object_streamed,
            read_stream_ranges,
            concurrent_writers_same_key,
            readers_during_replace,
            deferred_writes_then_sync,
            batch_applies_in_order,
            batch_stops_at_first_error,
            batch_completes_uploads,
            commit_to_publishes_the_writers_bytes,
        );
    };
    (@cases $module:ident, $fixture:expr; $($case:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture: Option<$crate::driver_suite::Fixture> = $fixture;
                    let Some(fixture) = fixture else { return };
                    $crate::driver_suite::$case(fixture.driver.clone()).await;
                }
            )*
        }
    };
}

#[path = "driver_suite_batch.rs"]
mod batch;
#[path = "driver_suite_concurrency.rs"]
mod concurrency;
#[path = "driver_suite_listing.rs"]
mod listing;
#[path = "driver_suite_reads.rs"]
mod reads;
#[path = "driver_suite_writers.rs"]
mod writers;
pub use batch::*;
pub use concurrency::*;
pub use listing::*;
pub use reads::*;
pub use writers::*;

type Driver = Arc<dyn StorageDriver>;

/// A fresh key prefix, so cases never see each other's objects.
fn base() -> String {
    format!("/suite-{}", uuid::Uuid::new_v4().simple())
}

/// The error class of a result, for readable assertions on any `T`.
pub fn kind<T>(r: &StorageResult<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(StorageError::NotFound(_)) => "not_found",
        Err(StorageError::InvalidPath(_)) => "invalid_path",
        Err(StorageError::InvalidOffset { .. }) => "invalid_offset",
        Err(StorageError::Exhausted { .. }) => "exhausted",
        Err(StorageError::Backend { .. }) => "backend",
    }
}

async fn read_from(d: &Driver, key: &str, offset: u64) -> Vec<u8> {
    let mut r = d.reader(key, offset).await.expect("reader");
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.expect("read");
    out
}

/// Everything `read_stream` yields for `len` bytes at `offset`, or the
/// error that ended the stream (with how many bytes came before it).
async fn stream_from(
    d: &Driver,
    key: &str,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, (usize, std::io::Error)> {
    let mut s = d
        .read_stream(key, offset, len)
        .await
        .unwrap_or_else(|e| panic!("read_stream {key} at {offset}: {e}"));
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        match chunk {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(e) => return Err((out.len(), e)),
        }
    }
    Ok(out)
}

async fn put(d: &Driver, key: &str, content: &[u8]) {
    d.put_content(key, Bytes::copy_from_slice(content))
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

async fn get(d: &Driver, key: &str) -> Vec<u8> {
    d.get_content(key)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .to_vec()
}

async fn writer(d: &Driver, key: &str, append: bool) -> Box<dyn FileWriter> {
    match d.writer(key, append).await {
        Ok(w) => w,
        Err(e) => panic!("writer {key} append={append}: {e}"),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Deterministic pseudo-random bytes (xorshift), so big contents are not
/// trivially compressible or uniform, and are reproducible without storing.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Links, manifests and blobs must come back byte for byte, whatever the bytes.
pub async fn put_get_round_trip(d: Driver) {
    let b = base();
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"hello, registry".to_vec()),
        ("empty", Vec::new()),
        ("binary", all_bytes),
        ("nul-and-newlines", b"\0\n\r\n\0\xff".to_vec()),
        ("biggish", pseudo_random(1, 300_000)),
    ];
    for (name, content) in &cases {
        let key = format!("{b}/dir/{name}");
        put(&d, &key, content).await;
        assert_eq!(&get(&d, &key).await, content, "{name}");
        assert_eq!(&read_from(&d, &key, 0).await, content, "{name} via reader");
        let info = d.stat(&key).await.expect("stat");
        assert_eq!(info.size, content.len() as u64, "{name}");
        assert!(!info.is_dir);
        assert_eq!(info.path, key);
    }
}

/// Tags move: a new put must fully replace the old content, including a longer one.
pub async fn overwrite_replaces(d: Driver) {
    let key = format!("{}/a/b", base());
    put(&d, &key, &pseudo_random(2, 10_000)).await;
    put(&d, &key, b"short").await;
    assert_eq!(get(&d, &key).await, b"short");
    assert_eq!(d.stat(&key).await.expect("stat").size, 5);
    put(&d, &key, b"").await;
    assert_eq!(get(&d, &key).await, b"");
    // A non-append writer replaces too, and starts empty.
    put(&d, &key, b"old content").await;
    let mut w = writer(&d, &key, false).await;
    assert_eq!(w.size(), 0);
    w.write(b"new").await.expect("write");
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &key).await, b"new");
}

/// The registry maps `NotFound` to 404s, so every operation must report it the same way.
pub async fn missing_keys_are_not_found(d: Driver) {
    let b = base();
    let missing = format!("{b}/missing/key");
    assert_eq!(kind(&d.get_content(&missing).await), "not_found");
    assert_eq!(kind(&d.stat(&missing).await), "not_found");
    assert_eq!(kind(&d.reader(&missing, 0).await), "not_found");
    assert_eq!(kind(&d.list(&missing).await), "not_found");
    assert_eq!(kind(&d.walk(&missing).await), "not_found");
    assert_eq!(kind(&d.delete(&missing).await), "not_found");
    assert_eq!(kind(&d.writer(&missing, true).await), "not_found");
    let dest = format!("{b}/dest");
    assert_eq!(kind(&d.move_object(&missing, &dest).await), "not_found");
    assert_eq!(
        kind(&d.stat(&dest).await),
        "not_found",
        "failed move created dest"
    );
    match d.get_content(&missing).await {
        Err(e) => assert!(e.is_not_found()),
        Ok(_) => panic!("missing key read"),
    }

    // A directory is not an object, and an object is not a directory.
    let obj = format!("{b}/dir/obj");
    put(&d, &obj, b"x").await;
    let dir = format!("{b}/dir");
    assert_eq!(kind(&d.get_content(&dir).await), "not_found");
    assert_eq!(kind(&d.reader(&dir, 0).await), "not_found");
    assert_eq!(kind(&d.list(&obj).await), "not_found");
    assert_eq!(kind(&d.walk(&obj).await), "not_found");
    assert_eq!(
        kind(&d.get_content(&format!("{obj}/below")).await),
        "not_found"
    );
}

/// No key may escape the storage root or reach the backend in a form other drivers refuse.
pub async fn invalid_keys_are_rejected(d: Driver) {
    let b = base();
    let good = format!("{b}/good");
    put(&d, &good, b"g").await;
    let bad = [
        String::new(),
        "/".to_string(),
        "relative/key".to_string(),
        format!("{b}/../escape"),
        format!("{b}/./x"),
        format!("{b}//double"),
        format!("{b}/trailing/"),
        format!("{b}/with space"),
        format!("{b}/percent%2f"),
        format!("{b}/back\\slash"),
        format!("{b}/ümlaut"),
        "/..".to_string(),
    ];
    for key in &bad {
        assert_eq!(
            kind(&d.get_content(key).await),
            "invalid_path",
            "get {key:?}"
        );
        assert_eq!(
            kind(&d.put_content(key, Bytes::from_static(b"x")).await),
            "invalid_path",
            "put {key:?}"
        );
        assert_eq!(kind(&d.reader(key, 0).await), "invalid_path", "{key:?}");
        assert_eq!(kind(&d.writer(key, false).await), "invalid_path", "{key:?}");
        assert_eq!(kind(&d.writer(key, true).await), "invalid_path", "{key:?}");
        assert_eq!(kind(&d.stat(key).await), "invalid_path", "{key:?}");
        assert_eq!(kind(&d.list(key).await), "invalid_path", "{key:?}");
        assert_eq!(kind(&d.walk(key).await), "invalid_path", "{key:?}");
        assert_eq!(kind(&d.delete(key).await), "invalid_path", "{key:?}");
        assert_eq!(
            kind(&d.move_object(key, &good).await),
            "invalid_path",
            "{key:?}"
        );
        assert_eq!(
            kind(&d.move_object(&good, key).await),
            "invalid_path",
            "{key:?}"
        );
    }
    // Nothing above touched the valid object.
    assert_eq!(get(&d, &good).await, b"g");
    assert_eq!(d.walk(&b).await.expect("walk"), vec![good]);
}

/// Finishing an upload moves it into the blob store, replacing any existing copy.
pub async fn move_creates_and_replaces(d: Driver) {
    let b = base();
    let src = format!("{b}/_uploads/u/data");
    let dest = format!("{b}/blobs/sha256/ab/abcd/data");
    let content = pseudo_random(11, 100_000);
    put(&d, &src, &content).await;
    d.move_object(&src, &dest).await.expect("move");
    assert_eq!(get(&d, &dest).await, content);
    assert_eq!(kind(&d.get_content(&src).await), "not_found");
    assert_eq!(kind(&d.move_object(&src, &dest).await), "not_found");
    assert_eq!(get(&d, &dest).await, content, "failed move left dest alone");

    // Moving onto an existing object replaces it.
    let other = format!("{b}/other");
    put(&d, &other, b"replacement").await;
    d.move_object(&other, &dest).await.expect("move over");
    assert_eq!(get(&d, &dest).await, b"replacement");
    assert_eq!(kind(&d.stat(&other).await), "not_found");
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        vec![dest.clone()],
        "nothing left behind but the destination"
    );
}

/// Two pushes of the same layer finishing together must both succeed.
pub async fn concurrent_moves_to_same_destination(d: Driver) {
    // Two pushes of the same blob finish at the same time: both succeed.
    let b = base();
    let dest = format!("{b}/blobs/sha256/cd/cdef/data");
    let content = pseudo_random(12, 1 << 20);
    let n = 6;
    for i in 0..n {
        put(&d, &format!("{b}/_uploads/{i}/data"), &content).await;
    }
    let results = futures::future::join_all((0..n).map(|i| {
        let d = d.clone();
        let dest = dest.clone();
        let src = format!("{b}/_uploads/{i}/data");
        tokio::spawn(async move { d.move_object(&src, &dest).await })
    }))
    .await;
    for r in results {
        r.expect("join").expect("move");
    }
    assert_eq!(get(&d, &dest).await, content);
}

/// Deleting a repository or upload removes its whole tree and nothing beside it.
pub async fn delete_tree(d: Driver) {
    let b = base();
    for key in ["keep", "t/a", "t/sub/b", "t/sub/deeper/c", "t2/x"] {
        put(&d, &format!("{b}/{key}"), b"x").await;
    }
    d.delete(&format!("{b}/t")).await.expect("delete tree");
    for key in ["t/a", "t/sub/b", "t/sub/deeper/c"] {
        assert_eq!(
            kind(&d.get_content(&format!("{b}/{key}")).await),
            "not_found"
        );
    }
    assert_eq!(kind(&d.stat(&format!("{b}/t")).await), "not_found");
    assert_eq!(kind(&d.delete(&format!("{b}/t")).await), "not_found");
    // A sibling sharing the string prefix survives.
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        vec![format!("{b}/keep"), format!("{b}/t2/x")]
    );
    d.delete(&format!("{b}/keep")).await.expect("delete object");
    assert_eq!(
        kind(&d.get_content(&format!("{b}/keep")).await),
        "not_found"
    );
    assert_eq!(kind(&d.delete(&format!("{b}/keep")).await), "not_found");
    assert_eq!(d.walk(&b).await.expect("walk"), vec![format!("{b}/t2/x")]);
}

/// Content-Length, Last-Modified and object-vs-directory checks come from `stat`.
pub async fn stat_describes_objects_and_dirs(d: Driver) {
    let b = base();
    let before = SystemTime::now() - Duration::from_secs(300);
    let key = format!("{b}/d/obj");
    put(&d, &key, &[7u8; 1234]).await;
    let info = d.stat(&key).await.expect("stat");
    assert_eq!(info.size, 1234);
    assert!(!info.is_dir);
    let modified = info.modified.expect("objects have a modification time");
    assert!(modified > before, "modified {modified:?} too old");
    assert!(modified < SystemTime::now() + Duration::from_secs(300));

    let dir = d.stat(&format!("{b}/d")).await.expect("stat dir");
    assert!(dir.is_dir);
    assert_eq!(dir.size, 0);
    assert_eq!(dir.path, format!("{b}/d"));
}
