//! S3-only driver checks, run on Garage and moto: uploads resumed by
//! another instance (a replica), no multipart uploads left behind, the
//! bucket layout, streamed moves of objects too big for one copy, and
//! presigned redirect URLs.

use std::time::Duration;

use berth::storage::object_store::{DriverOptions, ObjectStoreDriver};
use berth::storage::StorageDriver;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::ObjectStore;
use tokio::io::AsyncReadExt;

use crate::s3::{fresh_root, S3Server, BUCKET};

const MIB: usize = 1 << 20;

macro_rules! s3_cases {
    ($module:ident, $server:expr) => {
        mod $module {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn append_resumes_on_another_replica() {
                let Some(s) = $server else { return };
                super::append_resumes_on_another_replica(s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn no_multipart_upload_left_behind() {
                let Some(s) = $server else { return };
                super::no_multipart_upload_left_behind(s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn layout_zero_length_and_streamed_move() {
                let Some(s) = $server else { return };
                super::layout_zero_length_and_streamed_move(s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn presigned_redirects() {
                let Some(s) = $server else { return };
                super::presigned_redirects(s).await;
            }
        }
    };
}

s3_cases!(garage, crate::s3::garage());
s3_cases!(moto, crate::s3::moto());

/// The bucket as object_store sees it, for checks below the driver.
fn raw(s: &S3Server) -> impl ObjectStore {
    AmazonS3Builder::new()
        .with_endpoint(&s.endpoint)
        .with_allow_http(true)
        .with_region(s.region)
        .with_bucket_name(BUCKET)
        .with_access_key_id(&s.access_key)
        .with_secret_access_key(&s.secret_key)
        .build()
        .unwrap()
}

async fn raw_keys(s: &S3Server, root: &str) -> Vec<String> {
    let store = raw(s);
    let mut keys: Vec<String> = store
        .list(Some(&Path::from(root)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// Chunks of one upload land on different replicas: each opens the upload
/// afresh from the bucket (id, parts, tail) and continues it.
async fn append_resumes_on_another_replica(s: &S3Server) {
    let root = fresh_root("replica");
    let a = s.driver(&root, true);
    let b = s.driver(&root, true);
    let key = "/docker/registry/v2/repositories/r/_uploads/u/data";
    let mut expected = Vec::new();

    // Started as the registry does: an empty object, closed.
    a.writer(key, false).await.unwrap().close().await.unwrap();
    // 7 MiB on A: one 5 MiB part plus a 2 MiB tail.
    let mut w = a.writer(key, true).await.unwrap();
    let chunk = pattern(1, 7 * MIB);
    w.write(&chunk).await.unwrap();
    expected.extend_from_slice(&chunk);
    w.close().await.unwrap();
    assert_eq!(b.stat(key).await.unwrap().size, expected.len() as u64);
    let state = format!("{root}{}~upload", key);
    assert!(raw_keys(s, &root).await.contains(&state));
    // The state object is invisible through the driver.
    let dir = key.strip_suffix("/data").unwrap();
    assert_eq!(b.walk(dir).await.unwrap(), vec![key]);
    assert_eq!(b.list(dir).await.unwrap(), vec![key]);

    // B continues: its size includes A's part and tail.
    let mut w = b.writer(key, true).await.unwrap();
    assert_eq!(w.size(), expected.len() as u64);
    let chunk = pattern(2, 4 * MIB + 17);
    w.write(&chunk).await.unwrap();
    expected.extend_from_slice(&chunk);
    w.close().await.unwrap();
    assert_eq!(a.stat(key).await.unwrap().size, expected.len() as u64);
    // Parts are not readable before commit; that is said, not faked.
    assert_eq!(driver_kind(&a.get_content(key).await), "backend");

    // A small chunk on A, then commit on B.
    let mut w = a.writer(key, true).await.unwrap();
    w.write(b"x").await.unwrap();
    expected.push(b'x');
    w.close().await.unwrap();
    let w = b.writer(key, true).await.unwrap();
    assert_eq!(w.size(), expected.len() as u64);
    w.commit().await.unwrap();

    assert_eq!(a.get_content(key).await.unwrap(), expected);
    assert_eq!(raw_keys(s, &root).await, vec![format!("{root}{key}")]);
    assert!(s.multipart_uploads(&root).is_empty());
}

fn driver_kind<T>(r: &berth::storage::StorageResult<T>) -> &'static str {
    crate::driver_suite::kind(r)
}

/// Cancelled, deleted (purged) and abandoned uploads abort their multipart
/// uploads: nothing of them stays in the bucket.
async fn no_multipart_upload_left_behind(s: &S3Server) {
    let root = fresh_root("orphans");
    let d = s.driver(&root, true);

    // Cancel after a resume.
    let key = "/up/1/data";
    let mut w = d.writer(key, false).await.unwrap();
    w.write(&pattern(3, 6 * MIB)).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(s.multipart_uploads(&root).len(), 1);
    let w = d.writer(key, true).await.unwrap();
    w.cancel().await.unwrap();
    assert!(s.multipart_uploads(&root).is_empty());
    assert!(raw_keys(s, &root).await.is_empty());

    // Deleting the upload's directory (cancel, purge) aborts it too.
    let key = "/up/2/data";
    let mut w = d.writer(key, false).await.unwrap();
    w.write(&pattern(4, 11 * MIB)).await.unwrap();
    w.close().await.unwrap();
    d.put_content("/up/2/startedat", Bytes::from_static(b"now"))
        .await
        .unwrap();
    assert_eq!(s.multipart_uploads(&root).len(), 1);
    d.delete("/up").await.unwrap();
    assert!(s.multipart_uploads(&root).is_empty());
    assert!(raw_keys(s, &root).await.is_empty());

    // A fresh writer cancelled or dropped mid-way aborts what it opened.
    let mut w = d.writer("/big/a", false).await.unwrap();
    w.write(&pattern(5, 12 * MIB)).await.unwrap();
    w.cancel().await.unwrap();
    assert!(s.multipart_uploads(&root).is_empty());
    let mut w = d.writer("/big/b", false).await.unwrap();
    w.write(&pattern(6, 12 * MIB)).await.unwrap();
    drop(w);
    for _ in 0..100 {
        if s.multipart_uploads(&root).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        s.multipart_uploads(&root).is_empty(),
        "dropped writer left an upload"
    );
    assert!(raw_keys(s, &root).await.is_empty());
}

/// distribution's key layout under `rootdirectory`; empty objects through
/// every path; moves above the copy limit stream through a multipart upload.
async fn layout_zero_length_and_streamed_move(s: &S3Server) {
    let root = fresh_root("layout");
    let d = s.driver(&format!("/{root}/"), true);
    let blob = "/docker/registry/v2/blobs/sha256/e3/e3b0/data";
    let w = d
        .writer("/docker/registry/v2/repositories/r/_uploads/u/data", false)
        .await
        .unwrap();
    w.close().await.unwrap();
    let w = d
        .writer("/docker/registry/v2/repositories/r/_uploads/u/data", true)
        .await
        .unwrap();
    assert_eq!(w.size(), 0);
    w.commit().await.unwrap();
    d.move_object("/docker/registry/v2/repositories/r/_uploads/u/data", blob)
        .await
        .unwrap();
    assert_eq!(d.get_content(blob).await.unwrap().len(), 0);
    assert_eq!(d.stat(blob).await.unwrap().size, 0);
    let mut r = d.reader(blob, 0).await.unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    assert!(out.is_empty());
    assert_eq!(raw_keys(s, &root).await, vec![format!("{root}{blob}")]);

    // A driver whose single-copy limit is 1 MiB must stream a 12 MiB move:
    // the source's read stops after 7 MiB until the destination started a
    // 5 MiB part (a copy that read it all first would fail at that gate).
    let cfg = s.config(&root);
    let store = AmazonS3Builder::new()
        .with_endpoint(&s.endpoint)
        .with_allow_http(true)
        .with_region(s.region)
        .with_bucket_name(BUCKET)
        .with_access_key_id(&cfg.accesskey)
        .with_secret_access_key(&cfg.secretkey)
        .build()
        .unwrap();
    let opts = DriverOptions {
        chunk_size: 5 * MIB,
        copy_limit: MIB as u64,
        ..DriverOptions::default()
    };
    let source = Path::from(format!("{}/src", root.trim_matches('/')));
    let gated = crate::gated_store::GatedStore::new(store, source, 7 * MIB);
    let parts = gated.parts();
    let small = ObjectStoreDriver::new("s3", gated, &root, opts);
    let content = pattern(7, 12 * MIB + 3);
    small
        .put_content("/src", Bytes::from(content.clone()))
        .await
        .unwrap();
    small.move_object("/src", "/dst").await.unwrap();
    assert_eq!(
        parts.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "12 MiB in 5 MiB parts"
    );
    assert_eq!(small.get_content("/dst").await.unwrap(), content);
    assert_eq!(driver_kind(&small.stat("/src").await), "not_found");
    assert!(s.multipart_uploads(&root).is_empty());
}

/// Blob downloads may be redirected to a presigned URL that the client
/// fetches from the server directly; with redirects off there is none.
async fn presigned_redirects(s: &S3Server) {
    let root = fresh_root("redirect");
    let d = s.driver(&root, true);
    let key = "/docker/registry/v2/blobs/sha256/ab/abcd/data";
    d.put_content(key, Bytes::from_static(b"layer bytes"))
        .await
        .unwrap();
    let url = d.redirect_url(key).await.unwrap().expect("a presigned URL");
    assert!(url.starts_with(&s.endpoint), "{url}");
    let body = reqwest::get(&url).await.unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.bytes().await.unwrap().as_ref(), b"layer bytes");
    let off = s.driver(&root, false);
    assert_eq!(off.redirect_url(key).await.unwrap(), None);
}
