//! Azure-only driver checks, run on Azurite: uploads resumed by another
//! instance (a replica), no uncommitted blocks left by cancel/delete, the
//! container layout and upload marker, zero-length objects, streamed moves,
//! and SAS redirect URLs.

use berth::storage::object_store::{DriverOptions, ObjectStoreDriver};
use berth::storage::StorageDriver;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::{Attribute, ObjectStore};
use tokio::io::AsyncReadExt;

use crate::azure::{Azurite, ACCOUNT, CONTAINER, KEY};
use crate::s3::fresh_root;

const MIB: usize = 1 << 20;

macro_rules! azure_cases {
    ($($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(s) = crate::azure::azurite() else { return };
                cases::$case(s).await;
            }
        )*
    };
}

azure_cases!(
    append_resumes_on_another_replica,
    no_uncommitted_blocks_left_behind,
    layout_marker_zero_length_and_streamed_move,
    sas_redirects
);

/// The container as object_store sees it, for checks below the driver.
fn raw(s: &Azurite) -> object_store::azure::MicrosoftAzure {
    MicrosoftAzureBuilder::new()
        .with_account(ACCOUNT)
        .with_access_key(KEY)
        .with_container_name(CONTAINER)
        .with_endpoint(s.endpoint.clone())
        .with_allow_http(true)
        .build()
        .unwrap()
}

async fn raw_keys(s: &Azurite, root: &str) -> Vec<String> {
    let mut keys: Vec<String> = raw(s)
        .list(Some(&Path::from(root)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

/// The blob name an upload's blocks go to: the private object its state
/// records (the data blob itself for uploads without one).
async fn block_blob(s: &Azurite, data: &str) -> String {
    let state = raw(s)
        .get(&Path::parse(format!("{data}~upload")).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&state).unwrap();
    json["object"].as_str().unwrap_or(data).to_string()
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn driver_kind<T>(r: &berth::storage::StorageResult<T>) -> &'static str {
    crate::driver_suite::kind(r)
}

mod cases {
    use super::*;

    /// Chunks of one upload land on different replicas: each picks the
    /// upload up from the container (blocks, tail) and continues it.
    pub async fn append_resumes_on_another_replica(s: &Azurite) {
        let root = fresh_root("replica");
        let a = s.small_block_driver(&root, true);
        let b = s.small_block_driver(&root, true);
        let key = "/docker/registry/v2/repositories/r/_uploads/u/data";
        let name = format!("{root}{key}");
        let mut expected = Vec::new();

        a.writer(key, false).await.unwrap().close().await.unwrap();
        // 2.5 MiB on A: two 1 MiB blocks plus a tail.
        let mut w = a.writer(key, true).await.unwrap();
        let chunk = pattern(1, 5 * MIB / 2);
        w.write(&chunk).await.unwrap();
        expected.extend_from_slice(&chunk);
        w.close().await.unwrap();
        let blocks = block_blob(s, &name).await;
        assert_ne!(
            blocks, name,
            "an append writer's blocks go to a private blob"
        );
        assert_eq!(s.uncommitted_blocks(&blocks), 2);
        assert_eq!(s.uncommitted_blocks(&name), 0);
        assert_eq!(b.stat(key).await.unwrap().size, expected.len() as u64);
        let dir = key.strip_suffix("/data").unwrap();
        assert_eq!(b.walk(dir).await.unwrap(), vec![key]);

        // B continues: its size includes A's blocks and tail.
        let mut w = b.writer(key, true).await.unwrap();
        assert_eq!(w.size(), expected.len() as u64);
        let chunk = pattern(2, 3 * MIB + 17);
        w.write(&chunk).await.unwrap();
        expected.extend_from_slice(&chunk);
        w.close().await.unwrap();
        assert_eq!(a.stat(key).await.unwrap().size, expected.len() as u64);
        assert_eq!(driver_kind(&a.get_content(key).await), "backend");

        let mut w = a.writer(key, true).await.unwrap();
        w.write(b"x").await.unwrap();
        expected.push(b'x');
        w.close().await.unwrap();
        let w = b.writer(key, true).await.unwrap();
        assert_eq!(w.size(), expected.len() as u64);
        w.commit().await.unwrap();

        assert_eq!(a.get_content(key).await.unwrap(), expected);
        assert_eq!(raw_keys(s, &root).await, vec![name.clone()]);
        assert_eq!(s.uncommitted_blocks(&name), 0);
        assert_eq!(s.uncommitted_blocks(&blocks), 0);
    }

    /// Azure cannot abort a block upload; cancelling or deleting an upload
    /// replaces its blob first, which drops the uncommitted blocks.
    pub async fn no_uncommitted_blocks_left_behind(s: &Azurite) {
        let root = fresh_root("orphans");
        let d = s.small_block_driver(&root, true);

        let key = "/up/1/data";
        let name = format!("{root}{key}");
        let mut w = d.writer(key, false).await.unwrap();
        w.write(&pattern(3, 3 * MIB)).await.unwrap();
        w.close().await.unwrap();
        assert_eq!(s.uncommitted_blocks(&name), 3, "the check sees blocks");
        let w = d.writer(key, true).await.unwrap();
        w.cancel().await.unwrap();
        assert_eq!(s.uncommitted_blocks(&name), 0);
        assert!(raw_keys(s, &root).await.is_empty());

        // Deleting the upload's directory (cancel, purge) drops them too.
        let key = "/up/2/data";
        let name = format!("{root}{key}");
        let mut w = d.writer(key, false).await.unwrap();
        w.write(&pattern(4, 5 * MIB / 2)).await.unwrap();
        w.close().await.unwrap();
        d.put_content("/up/2/startedat", Bytes::from_static(b"now"))
            .await
            .unwrap();
        assert_eq!(s.uncommitted_blocks(&name), 2);
        d.delete("/up").await.unwrap();
        assert_eq!(s.uncommitted_blocks(&name), 0);
        assert!(raw_keys(s, &root).await.is_empty());

        // The same for an append writer's private blob: cancelled, and
        // deleted with its directory.
        for (i, cancel) in [(3, true), (4, false)] {
            let key = format!("/up/{i}/data");
            let name = format!("{root}{key}");
            d.writer(&key, false).await.unwrap().close().await.unwrap();
            let mut w = d.writer(&key, true).await.unwrap();
            w.write(&pattern(5, 5 * MIB / 2)).await.unwrap();
            w.close().await.unwrap();
            let blocks = block_blob(s, &name).await;
            assert_ne!(blocks, name);
            assert_eq!(s.uncommitted_blocks(&blocks), 2);
            if cancel {
                d.writer(&key, true).await.unwrap().cancel().await.unwrap();
            } else {
                d.delete(&format!("/up/{i}")).await.unwrap();
            }
            assert_eq!(s.uncommitted_blocks(&blocks), 0, "cancel={cancel}");
            assert!(raw_keys(s, &root).await.is_empty(), "cancel={cancel}");
        }
    }

    /// distribution's layout under `rootdirectory`, the identifier-safe
    /// upload marker, empty objects through every path, and a move above
    /// the copy limit streamed through a block upload.
    pub async fn layout_marker_zero_length_and_streamed_move(s: &Azurite) {
        let root = fresh_root("layout");
        let d = s.small_block_driver(&format!("/{root}/"), true);
        let upload = "/docker/registry/v2/repositories/r/_uploads/u/data";
        let blob = "/docker/registry/v2/blobs/sha256/e3/e3b0/data";
        d.writer(upload, false)
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        let head = raw(s)
            .get_opts(
                &Path::from(format!("{root}{upload}")),
                object_store::GetOptions {
                    head: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(head
            .attributes
            .get(&Attribute::Metadata("berthupload".into()))
            .is_some());
        let w = d.writer(upload, true).await.unwrap();
        assert_eq!(w.size(), 0);
        w.commit().await.unwrap();
        d.move_object(upload, blob).await.unwrap();
        assert_eq!(d.get_content(blob).await.unwrap().len(), 0);
        assert_eq!(d.stat(blob).await.unwrap().size, 0);
        let mut r = d.reader(blob, 0).await.unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert!(out.is_empty());
        d.put_content("/empty", Bytes::new()).await.unwrap();
        assert_eq!(d.stat("/empty").await.unwrap().size, 0);
        assert_eq!(
            raw_keys(s, &root).await,
            vec![format!("{root}{blob}"), format!("{root}/empty")]
        );

        let opts = DriverOptions {
            chunk_size: MIB,
            copy_limit: MIB as u64,
            discard_blocks: true,
            ..DriverOptions::default()
        };
        let small = ObjectStoreDriver::new("azure", raw(s), &root, opts);
        let content = pattern(7, 3 * MIB + 3);
        small
            .put_content("/src", Bytes::from(content.clone()))
            .await
            .unwrap();
        small.move_object("/src", "/dst").await.unwrap();
        assert_eq!(small.get_content("/dst").await.unwrap(), content);
        assert_eq!(driver_kind(&small.stat("/src").await), "not_found");
        assert_eq!(s.uncommitted_blocks(&format!("{root}/dst")), 0);
    }

    /// Blob downloads may be redirected to a SAS URL that the client
    /// fetches from the storage account directly; with redirects off there
    /// is none.
    pub async fn sas_redirects(s: &Azurite) {
        let root = fresh_root("redirect");
        let d = s.small_block_driver(&root, true);
        let key = "/docker/registry/v2/blobs/sha256/ab/abcd/data";
        d.put_content(key, Bytes::from_static(b"layer bytes"))
            .await
            .unwrap();
        let url = d.redirect_url(key).await.unwrap().expect("a SAS URL");
        assert!(url.starts_with(&s.endpoint), "{url}");
        let body = reqwest::get(&url).await.unwrap();
        assert_eq!(body.status(), 200);
        assert_eq!(body.bytes().await.unwrap().as_ref(), b"layer bytes");
        let off = s.small_block_driver(&root, false);
        assert_eq!(off.redirect_url(key).await.unwrap(), None);
    }
}
