//! The filesystem driver's moves seen on disk: an object alone in its
//! directory moves with the directory (no inode made or freed, which ext4
//! without a journal makes slow to reuse); anything else moves as a file,
//! and the directories left behind keep their other entries.

use std::os::unix::fs::MetadataExt;

use berth::storage::filesystem::FilesystemDriver;
use berth::storage::StorageDriver;
use bytes::Bytes;

fn ino(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_lone_object_moves_with_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = FilesystemDriver::new(root);
    d.put_content("/r/_uploads/u1/data", Bytes::from_static(b"blob"))
        .await
        .unwrap();
    let upload_dir = ino(&root.join("r/_uploads/u1"));
    d.move_object("/r/_uploads/u1/data", "/blobs/sha256/ab/abcd/data")
        .await
        .unwrap();
    assert_eq!(
        ino(&root.join("blobs/sha256/ab/abcd")),
        upload_dir,
        "the upload's directory became the blob's"
    );
    assert_eq!(
        std::fs::read(root.join("blobs/sha256/ab/abcd/data")).unwrap(),
        b"blob"
    );
    assert!(!root.join("r/_uploads/u1").exists());
    assert!(
        root.join("r/_uploads").is_dir(),
        "only the lone directory moved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_object_with_siblings_or_existing_destination_moves_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = FilesystemDriver::new(root);
    let put = |key: &'static str, v: &'static [u8]| {
        let d = d.clone();
        async move { d.put_content(key, Bytes::from_static(v)).await.unwrap() }
    };
    // A sibling (a saved hash state) keeps the directory where it is.
    put("/r/_uploads/u2/data", b"two").await;
    put("/r/_uploads/u2/hashstates/sha256/0", b"state").await;
    let upload_dir = ino(&root.join("r/_uploads/u2"));
    d.move_object("/r/_uploads/u2/data", "/blobs/sha256/ab/u2/data")
        .await
        .unwrap();
    assert_ne!(ino(&root.join("blobs/sha256/ab/u2")), upload_dir);
    assert_eq!(ino(&root.join("r/_uploads/u2")), upload_dir);
    assert!(root.join("r/_uploads/u2/hashstates/sha256/0").is_file());
    assert!(!root.join("r/_uploads/u2/data").exists());

    // An existing destination directory is kept; the file replaces its data.
    put("/blobs/sha256/ab/u3/data", b"old").await;
    put("/r/_uploads/u3/data", b"new").await;
    let dest_dir = ino(&root.join("blobs/sha256/ab/u3"));
    d.move_object("/r/_uploads/u3/data", "/blobs/sha256/ab/u3/data")
        .await
        .unwrap();
    assert_eq!(ino(&root.join("blobs/sha256/ab/u3")), dest_dir);
    assert_eq!(
        std::fs::read(root.join("blobs/sha256/ab/u3/data")).unwrap(),
        b"new"
    );
    assert!(
        root.join("r/_uploads/u3").is_dir(),
        "left empty, as distribution does"
    );

    // A different file name never moves the directory.
    put("/r/_uploads/u4/data", b"four").await;
    let upload_dir = ino(&root.join("r/_uploads/u4"));
    d.move_object("/r/_uploads/u4/data", "/elsewhere/u4/other")
        .await
        .unwrap();
    assert_ne!(ino(&root.join("elsewhere/u4")), upload_dir);
    assert_eq!(
        std::fs::read(root.join("elsewhere/u4/other")).unwrap(),
        b"four"
    );
}
