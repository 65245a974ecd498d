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
pub use batch::*;

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

/// Range requests and resumed downloads read from an offset; the end is empty, past it an error.
pub async fn reads_at_offsets(d: Driver) {
    let key = format!("{}/obj", base());
    let content = pseudo_random(3, 1000);
    put(&d, &key, &content).await;
    assert_eq!(read_from(&d, &key, 0).await, content);
    assert_eq!(read_from(&d, &key, 1).await, &content[1..]);
    assert_eq!(read_from(&d, &key, 500).await, &content[500..]);
    assert_eq!(read_from(&d, &key, 999).await, &content[999..]);
    assert_eq!(read_from(&d, &key, 1000).await, b"");
    for offset in [1001, 1_000_000, u64::MAX] {
        match d.reader(&key, offset).await {
            Err(StorageError::InvalidOffset { path, offset: o }) => {
                assert_eq!(path, key);
                assert_eq!(o, offset);
            }
            Err(e) => panic!("offset {offset}: wrong error {e}"),
            Ok(_) => panic!("offset {offset}: reader opened past the end"),
        }
    }
    let empty = format!("{key}-empty");
    put(&d, &empty, b"").await;
    assert_eq!(read_from(&d, &empty, 0).await, b"");
    assert_eq!(kind(&d.reader(&empty, 1).await), "invalid_offset");
}

/// Chunked uploads continue the same object across requests.
pub async fn append_across_close_and_reopen(d: Driver) {
    let key = format!("{}/_uploads/id/data", base());
    let chunks = [
        pseudo_random(4, 70_000),
        pseudo_random(5, 1),
        // Crosses two 4 MiB buffers from an unaligned start.
        pseudo_random(6, 9_000_000),
    ];
    let mut expected = Vec::new();

    let mut w = writer(&d, &key, false).await;
    w.write(&chunks[0]).await.expect("write");
    expected.extend_from_slice(&chunks[0]);
    assert_eq!(w.size(), expected.len() as u64);
    w.close().await.expect("close");
    // Closed content is there for the next writer (and readable).
    assert_eq!(
        d.stat(&key).await.expect("stat").size,
        expected.len() as u64
    );
    assert_eq!(get(&d, &key).await, expected);

    for chunk in &chunks[1..] {
        let mut w = writer(&d, &key, true).await;
        assert_eq!(w.size(), expected.len() as u64, "size after reopen");
        // Several small writes form one chunk.
        for part in chunk.chunks(40_000) {
            w.write(part).await.expect("write");
        }
        expected.extend_from_slice(chunk);
        assert_eq!(w.size(), expected.len() as u64);
        w.close().await.expect("close");
    }

    let w = writer(&d, &key, true).await;
    assert_eq!(w.size(), expected.len() as u64);
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &key).await, expected);
    assert_eq!(read_from(&d, &key, 70_000).await, &expected[70_000..]);

    // An empty object can be continued too.
    let empty = format!("{key}-empty");
    writer(&d, &empty, false)
        .await
        .close()
        .await
        .expect("close");
    let mut w = writer(&d, &empty, true).await;
    assert_eq!(w.size(), 0);
    w.write(b"abc").await.expect("write");
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &empty).await, b"abc");
}

/// A half-written object must never be served.
pub async fn writer_content_visible_only_after_commit(d: Driver) {
    let b = base();
    let fresh = format!("{b}/new/obj");
    let mut w = writer(&d, &fresh, false).await;
    w.write(&pseudo_random(7, 3 << 20)).await.expect("write");
    assert_eq!(kind(&d.get_content(&fresh).await), "not_found");
    assert_eq!(kind(&d.stat(&fresh).await), "not_found");
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &fresh).await, pseudo_random(7, 3 << 20));

    let existing = format!("{b}/existing");
    put(&d, &existing, b"old").await;
    let mut w = writer(&d, &existing, false).await;
    w.write(&pseudo_random(8, 2 << 20)).await.expect("write");
    assert_eq!(get(&d, &existing).await, b"old");
    assert_eq!(d.stat(&existing).await.expect("stat").size, 3);
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        sorted(vec![existing.clone(), fresh.clone()]),
        "an open writer shows up nowhere"
    );
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &existing).await, pseudo_random(8, 2 << 20));
}

/// Cancelled uploads leave nothing; a cancelled replacement leaves the old object.
pub async fn cancel_discards(d: Driver) {
    let b = base();
    // Cancelling an upload removes everything the chain wrote.
    let upload = format!("{b}/_uploads/u/data");
    let mut w = writer(&d, &upload, false).await;
    w.write(b"first").await.expect("write");
    w.close().await.expect("close");
    let mut w = writer(&d, &upload, true).await;
    w.write(b"second").await.expect("write");
    w.cancel().await.expect("cancel");
    assert_eq!(kind(&d.get_content(&upload).await), "not_found");
    assert_eq!(kind(&d.writer(&upload, true).await), "not_found");

    // A fresh writer's cancel leaves nothing.
    let fresh = format!("{b}/fresh");
    let mut w = writer(&d, &fresh, false).await;
    w.write(b"data").await.expect("write");
    w.cancel().await.expect("cancel");
    assert_eq!(kind(&d.stat(&fresh).await), "not_found");

    // A replacing writer's cancel keeps what was there before it.
    let kept = format!("{b}/kept");
    put(&d, &kept, b"before").await;
    let mut w = writer(&d, &kept, false).await;
    w.write(b"replacement").await.expect("write");
    w.cancel().await.expect("cancel");
    assert_eq!(get(&d, &kept).await, b"before");
    assert_eq!(d.walk(&b).await.expect("walk"), vec![kept]);
}

/// A client that disconnects mid-request must not leave partial data or state.
pub async fn dropped_writer_leaves_nothing(d: Driver) {
    let b = base();
    let key = format!("{b}/deep/er/obj");
    let mut w = writer(&d, &key, false).await;
    // Past two of the filesystem writer's 4 MiB buffers: a write is in
    // flight when the writer is dropped.
    w.write(&pseudo_random(9, 9 << 20)).await.expect("write");
    w.write(b"tail").await.expect("write");
    drop(w);
    assert_eq!(kind(&d.get_content(&key).await), "not_found");
    assert_eq!(kind(&d.stat(&key).await), "not_found");
    assert_eq!(kind(&d.stat(&format!("{b}/deep")).await), "not_found");
    assert_eq!(kind(&d.walk(&b).await), "not_found");

    // Dropping over existing content keeps it.
    let existing = format!("{b}/existing");
    put(&d, &existing, b"before").await;
    let mut w = writer(&d, &existing, false).await;
    w.write(b"lost").await.expect("write");
    drop(w);
    assert_eq!(get(&d, &existing).await, b"before");

    // Dropping an append writer puts the object back to where it started.
    let upload = format!("{b}/_uploads/x/data");
    let mut w = writer(&d, &upload, false).await;
    w.write(b"kept part").await.expect("write");
    w.close().await.expect("close");
    let mut w = writer(&d, &upload, true).await;
    w.write(&pseudo_random(10, 9 << 20)).await.expect("write");
    w.write(b"lost part").await.expect("write");
    drop(w);
    assert_eq!(get(&d, &upload).await, b"kept part");
    let w = writer(&d, &upload, true).await;
    assert_eq!(w.size(), 9);
    drop(w);

    assert_eq!(
        d.walk(&b).await.expect("walk"),
        sorted(vec![existing, upload])
    );
}

/// Catalog and tag listing rely on `list` returning children only, deduplicated.
pub async fn list_direct_children(d: Driver) {
    let b = base();
    for key in ["a", "b/c", "b/d", "e/f/g", "e/h", "a-x"] {
        put(&d, &format!("{b}/p/{key}"), key.as_bytes()).await;
    }
    assert_eq!(
        sorted(d.list(&format!("{b}/p")).await.expect("list")),
        vec![
            format!("{b}/p/a"),
            format!("{b}/p/a-x"),
            format!("{b}/p/b"),
            format!("{b}/p/e"),
        ]
    );
    assert_eq!(
        sorted(d.list(&format!("{b}/p/b")).await.expect("list")),
        vec![format!("{b}/p/b/c"), format!("{b}/p/b/d")]
    );
    assert_eq!(
        sorted(d.list(&format!("{b}/p/e")).await.expect("list")),
        vec![format!("{b}/p/e/f"), format!("{b}/p/e/h")]
    );
    assert_eq!(d.list(&b).await.expect("list"), vec![format!("{b}/p")]);
    assert!(d.stat(&format!("{b}/p/e/f")).await.expect("stat").is_dir);
    assert!(!d.stat(&format!("{b}/p/e/h")).await.expect("stat").is_dir);
    // A key that only shares a string prefix is not a child.
    assert_eq!(kind(&d.list(&format!("{b}/p/a-")).await), "not_found");
}

/// Listings beyond one backend page (1,000 on object stores) must be complete.
pub async fn list_many_keys(d: Driver) {
    let b = base();
    let dir = format!("{b}/many");
    let keys: Vec<String> = (0..1500).map(|i| format!("{dir}/k{i:05}")).collect();
    stream::iter(keys.iter().cloned())
        .map(|k| {
            let d = d.clone();
            async move { d.put_content(&k, Bytes::from(k.clone())).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .expect("puts");
    let listed = d.list(&dir).await.expect("list");
    assert_eq!(listed.len(), 1500, "no duplicates, none missing");
    assert_eq!(sorted(listed), keys);
    assert_eq!(d.walk(&b).await.expect("walk"), keys);
    assert_eq!(get(&d, &keys[1234]).await, keys[1234].as_bytes());
}

/// A listing reflects every add and delete made before it, at once (the
/// filesystem driver caches large listings; the cache must never lag).
pub async fn list_follows_adds_and_deletes(d: Driver) {
    let b = base();
    let dir = format!("{b}/tags");
    let mut keys: Vec<String> = (0..100).map(|i| format!("{dir}/t{i:03}")).collect();
    for k in &keys {
        put(&d, &format!("{k}/current/link"), b"x").await;
    }
    for _ in 0..2 {
        assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
    }
    d.delete(&keys[42]).await.expect("delete");
    let gone = keys.remove(42);
    assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
    put(&d, &format!("{dir}/t999/current/link"), b"x").await;
    keys.push(format!("{dir}/t999"));
    assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
    put(&d, &format!("{gone}/current/link"), b"x").await;
    keys.insert(42, gone);
    assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
}

/// `has_children` agrees with `list`: true for a directory with children,
/// false for an emptied, missing or object key.
pub async fn has_children_of_dirs(d: Driver) {
    let b = base();
    let has = |k: String| {
        let d = d.clone();
        async move { d.has_children(&k).await.expect("has_children") }
    };
    assert!(!has(format!("{b}/nothing")).await);
    put(&d, &format!("{b}/dir/sub/obj"), b"x").await;
    assert!(has(format!("{b}/dir")).await);
    assert!(has(format!("{b}/dir/sub")).await);
    assert!(
        !has(format!("{b}/dir/sub/obj")).await,
        "an object has no children"
    );
    assert!(
        !has(format!("{b}/di")).await,
        "a string prefix is not a directory"
    );
    d.delete(&format!("{b}/dir/sub/obj")).await.expect("delete");
    assert!(!has(format!("{b}/dir/sub")).await);
    assert_eq!(kind(&d.has_children("/bad//key").await), "invalid_path");
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

/// Garbage collection walks everything, and its order must be stable across backends.
pub async fn walk_recursive_lexical(d: Driver) {
    let b = base();
    // Chosen so that a depth-first order differs from lexical order
    // ('-' and '.' sort before '/').
    let rel = ["a/b", "a-b", "a.c", "a/c/d", "a/c/e/f", "z", "A", "0"];
    for r in rel {
        put(&d, &format!("{b}/w/{r}"), r.as_bytes()).await;
    }
    let mut expected: Vec<String> = rel.iter().map(|r| format!("{b}/w/{r}")).collect();
    expected.sort();
    let walked = d.walk(&format!("{b}/w")).await.expect("walk");
    assert_eq!(walked, expected);
    let sub = d.walk(&format!("{b}/w/a")).await.expect("walk sub");
    assert_eq!(
        sub,
        vec![
            format!("{b}/w/a/b"),
            format!("{b}/w/a/c/d"),
            format!("{b}/w/a/c/e/f")
        ]
    );
    let unique: BTreeSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len());
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

/// Layers are large: a 101 MiB object must stream in and out intact.
pub async fn large_object_streamed(d: Driver) {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: u64 = 101;
    let key = format!("{}/blobs/large/data", base());
    let mut w = writer(&d, &key, false).await;
    let mut written = Sha256::new();
    for i in 0..CHUNKS {
        let chunk = pseudo_random(1000 + i, CHUNK);
        written.update(&chunk);
        w.write(&chunk).await.expect("write");
    }
    assert_eq!(w.size(), CHUNKS * CHUNK as u64);
    w.commit().await.expect("commit");
    let written = written.finalize();

    assert_eq!(
        d.stat(&key).await.expect("stat").size,
        CHUNKS * CHUNK as u64
    );
    let mut r = d.reader(&key, 0).await.expect("reader");
    let mut read = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
        read.update(&buf[..n]);
    }
    assert_eq!(total, CHUNKS * CHUNK as u64);
    assert_eq!(read.finalize(), written, "sha256 of content read back");

    // The same through read_stream, the blob GET path.
    let size = CHUNKS * CHUNK as u64;
    let mut s = d.read_stream(&key, 0, size).await.expect("read_stream");
    let mut streamed = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.expect("stream chunk");
        total += chunk.len() as u64;
        streamed.update(&chunk);
    }
    assert_eq!(total, size);
    assert_eq!(streamed.finalize(), written, "sha256 of content streamed");

    // A read near the end starts at the right byte.
    let tail = read_from(&d, &key, CHUNKS * CHUNK as u64 - 100).await;
    let last = pseudo_random(1000 + CHUNKS - 1, CHUNK);
    assert_eq!(tail, &last[CHUNK - 100..]);
}

/// Blob GETs, whole and ranged, stream exactly the bytes asked for, across
/// chunk boundaries; a length past the end is an error, never a short body.
pub async fn read_stream_ranges(d: Driver) {
    const MIB: u64 = 1 << 20;
    let key = format!("{}/obj", base());
    let size = 3 * MIB + 17;
    let content = pseudo_random(7, size as usize);
    put(&d, &key, &content).await;
    let table = [
        (0, size),
        (1, size - 1),
        (0, MIB),
        (MIB - 5, 10),
        (MIB, MIB),
        (123, 2 * MIB + 7),
        (size - 1, 1),
        (size, 0),
        (0, 0),
        (500, 0),
    ];
    for (offset, len) in table {
        let got = stream_from(&d, &key, offset, len)
            .await
            .unwrap_or_else(|(n, e)| panic!("{offset}+{len}: error after {n} bytes: {e}"));
        let want = &content[offset as usize..(offset + len) as usize];
        assert!(
            got == want,
            "{offset}+{len}: {} bytes, not the range",
            got.len()
        );
    }
    // Asking for more than is there: the stream must fail, after at most
    // the bytes that exist, all of them correct.
    for (offset, len) in [(0, size + 1), (size - 10, 11), (size, 1)] {
        match stream_from(&d, &key, offset, len).await {
            Ok(got) => panic!("{offset}+{len}: ended cleanly after {} bytes", got.len()),
            Err((n, e)) => {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof,
                    "{offset}+{len}: {e}"
                );
                assert!(n as u64 <= size - offset, "{offset}+{len}: {n} bytes");
            }
        }
    }
    for offset in [size + 1, u64::MAX] {
        assert_eq!(
            kind(&d.read_stream(&key, offset, 0).await),
            "invalid_offset",
            "{offset}"
        );
    }
    let missing = format!("{key}-missing");
    assert_eq!(kind(&d.read_stream(&missing, 0, 1).await), "not_found");
    let dir = key
        .rsplit_once('/')
        .map(|(dir, _)| dir.to_string())
        .unwrap_or_default();
    assert_eq!(kind(&d.read_stream(&dir, 0, 1).await), "not_found");
    // A stream dropped part-way leaves the object readable and deletable.
    let mut s = d.read_stream(&key, 0, size).await.expect("read_stream");
    assert!(s.next().await.is_some_and(|c| c.is_ok()));
    drop(s);
    assert_eq!(
        stream_from(&d, &key, 0, 10).await.ok().as_deref(),
        Some(&content[..10])
    );
    d.delete(&key).await.expect("delete");
    assert_eq!(kind(&d.read_stream(&key, 0, 1).await), "not_found");
}

/// Concurrent pushes of one key must end with one writer's content, never a mix.
pub async fn concurrent_writers_same_key(d: Driver) {
    let key = format!("{}/same", base());
    put(&d, &key, &version(0)).await;
    // Streaming writers all open before any writes, so their writes
    // interleave; whole-object puts land in between.
    let streaming: Vec<u8> = vec![1, 3, 5, 7];
    let opened = Arc::new(tokio::sync::Barrier::new(streaming.len()));
    let handles: Vec<_> = (1..=8u8)
        .map(|v| {
            let d = d.clone();
            let key = key.clone();
            let opened = opened.clone();
            let streams = streaming.contains(&v);
            tokio::spawn(async move {
                if !streams {
                    return d.put_content(&key, Bytes::from(version(v))).await;
                }
                let mut w = d.writer(&key, false).await?;
                opened.wait().await;
                for part in version(v).chunks(300_000) {
                    w.write(part).await?;
                    tokio::task::yield_now().await;
                }
                w.commit().await
            })
        })
        .collect();
    for h in handles {
        h.await.expect("join").expect("each writer succeeds");
    }
    let content = get(&d, &key).await;
    check_whole(&content);
    assert_ne!(content[0], 0, "every writer committed after the first put");
}

/// Version `v` of an object: length and every byte identify the version.
fn version(v: u8) -> Vec<u8> {
    vec![v; (1 << 20) + usize::from(v) * 1000]
}

fn check_whole(content: &[u8]) {
    let v = *content.first().expect("never empty");
    assert_eq!(content, version(v).as_slice(), "torn read");
}

/// Pulls running while a tag is rewritten must see a whole old or whole new object.
pub async fn readers_during_replace(d: Driver) {
    let key = format!("{}/hot", base());
    put(&d, &key, &version(1)).await;
    let writer_task = {
        let d = d.clone();
        let key = key.clone();
        tokio::spawn(async move {
            for v in 2..=30u8 {
                if v % 2 == 0 {
                    d.put_content(&key, Bytes::from(version(v))).await?;
                } else {
                    let mut w = d.writer(&key, false).await?;
                    for part in version(v).chunks(100_000) {
                        w.write(part).await?;
                    }
                    w.commit().await?;
                }
            }
            StorageResult::Ok(())
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let d = d.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let mut seen = BTreeSet::new();
                for i in 0..40 {
                    let content = if i % 2 == 0 {
                        d.get_content(&key).await.expect("get").to_vec()
                    } else {
                        read_from(&d, &key, 0).await
                    };
                    check_whole(&content);
                    seen.insert(content[0]);
                    let info = d.stat(&key).await.expect("stat never misses");
                    assert!(info.size >= 1 << 20);
                }
                seen
            })
        })
        .collect();
    writer_task.await.expect("join").expect("writer");
    for r in readers {
        let seen = r.await.expect("reader");
        assert!(!seen.is_empty());
    }
    assert_eq!(get(&d, &key).await, version(30));
}

/// Deferred writes are visible (and atomic) at once, and `sync` makes them
/// durable without error, also when many requests sync together.
pub async fn deferred_writes_then_sync(d: Driver) {
    let b = base();
    let link = format!("{b}/_layers/sha256/abcd/link");
    d.put_deferred(&link, Bytes::from_static(b"sha256:abcd"))
        .await
        .expect("put_deferred");
    assert_eq!(get(&d, &link).await, b"sha256:abcd");
    d.put_deferred(&link, Bytes::from_static(b"sha256:ef01"))
        .await
        .expect("put_deferred over");
    assert_eq!(get(&d, &link).await, b"sha256:ef01");

    let src = format!("{b}/_uploads/u/data");
    let mut w = writer(&d, &src, false).await;
    w.write(&pseudo_random(5, 70_000)).await.expect("write");
    w.commit_deferred().await.expect("commit_deferred");
    assert_eq!(get(&d, &src).await, pseudo_random(5, 70_000));
    let dest = format!("{b}/blobs/sha256/ab/abcd/data");
    d.move_deferred(&src, &dest).await.expect("move_deferred");
    assert_eq!(get(&d, &dest).await, pseudo_random(5, 70_000));
    assert_eq!(kind(&d.stat(&src).await), "not_found");
    assert_eq!(
        kind(&d.move_deferred(&src, &dest).await),
        "not_found",
        "a deferred move of nothing fails like move_object"
    );

    let syncs: Vec<_> = (0..16)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move { d.sync().await })
        })
        .collect();
    for s in syncs {
        s.await.expect("task").expect("sync");
    }
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        vec![link.clone(), dest.clone()],
        "exactly the written objects, no temp files"
    );
}
