//! Item 2 of issue 18: the storage root on a small filesystem that fills
//! up, a process out of file descriptors, a root that turns read-only.
//! Pushes fail with a 5xx in the spec's error format naming the cause,
//! reads keep working, nothing partial is left, and once the cause is gone
//! pushes work again with no restart.

use std::io::Write;
use std::path::Path;

use super::mounts::Mount;
use super::support::{digest_of, manifest, scan_fs_blobs, temp_files, Api, Berth, Sent};
use crate::procs::tempdir;

fn fs_storage(root: &Path) -> String {
    format!("  filesystem:\n    rootdirectory: {}\n", root.display())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The answer is a 5xx with distribution's JSON error envelope whose
/// message names `cause`; returns the message.
pub fn assert_clear_5xx(what: &str, sent: &Sent, cause: &str) -> String {
    let Sent::Answer(status, headers, body) = sent else {
        panic!("{what}: no answer: {}", sent.text());
    };
    assert!(status.is_server_error(), "{what}: {}", sent.text());
    assert!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "{what}: not JSON: {headers:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(body).expect("error body is JSON");
    let e = &v["errors"][0];
    assert!(e["code"].is_string(), "{what}: no error code: {v}");
    let message = e["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.to_lowercase().contains(cause),
        "{what}: message {message:?} does not name {cause:?} ({v})"
    );
    message
}

/// No upload session is left by a monolithic push that failed, no temp
/// file anywhere, every blob file whole.
pub fn nothing_partial(root: &Path, sessions_allowed: usize) {
    let stray = temp_files(root);
    assert!(stray.is_empty(), "temp files left: {stray:?}");
    scan_fs_blobs(root);
    let uploads: Vec<_> = walk_uploads(root);
    assert!(
        uploads.len() <= sessions_allowed,
        "upload sessions left: {uploads:?}"
    );
}

fn walk_uploads(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("docker/registry/v2/repositories")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name() == "_uploads" {
                out.extend(
                    std::fs::read_dir(&p)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path()),
                );
            } else if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// Fills the filesystem of `dir` with one file until the write fails.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5au8; 64 << 10];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "filling: {e}");
                break;
            }
        }
    }
    let _ = f.sync_all();
    written
}

#[test]
fn a_full_disk_refuses_pushes_clearly_keeps_reads_and_recovers_without_restart() {
    let tmp = tempdir("berth-full-");
    let Some(mnt) = Mount::small(&tmp.path().join("mnt"), 32) else {
        return;
    };
    let root = mnt.dir.join("storage");
    let mut berth = Berth::start(&tmp.path().join("berth"), &fs_storage(&root));
    let api = Api::new(berth.url(""));
    let rt = rt();
    rt.block_on(async {
        let before = blob(1 << 20, 1);
        let sent = api.push_blob("full/app", &before).await;
        assert_eq!(sent.status(), Some(201), "{}", sent.text());
        // An upload under way when the disk fills up.
        let loc = api.open_upload("full/app").await.expect("open upload");
        let chunked = blob(3 << 20, 2);
        let sent = api.patch(&loc, 0, &chunked[..1 << 20]).await;
        assert_eq!(sent.status(), Some(202), "{}", sent.text());
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let sent = api.push_blob("full/app", &config).await;
        assert_eq!(sent.status(), Some(201), "{}", sent.text());
        let image = manifest(
            (&digest_of(&config), config.len()),
            &[(digest_of(&before), before.len())],
            "full",
        );

        let filled = fill(&mnt.dir.join("filler"));
        eprintln!("disk full: filler of {} MiB", filled >> 20);

        let big = blob(2 << 20, 3);
        let sent = api.push_blob("full/app", &big).await;
        let msg = assert_clear_5xx("monolithic push on a full disk", &sent, "storage full");
        eprintln!("monolithic push: {} {msg}", sent.status().unwrap_or(0));
        let sent = api.patch(&loc, 1 << 20, &chunked[1 << 20..2 << 20]).await;
        assert_clear_5xx("PATCH on a full disk", &sent, "storage full");
        let sent = api.put_manifest("full/app", "v1", &image).await;
        assert_clear_5xx("manifest PUT on a full disk", &sent, "storage full");
        assert_eq!(
            api.get("/v2/full/app/manifests/v1").await.0,
            404,
            "tag visible"
        );
        match api.open_upload("full/other").await {
            Ok(_) => {}
            Err(sent) => drop(assert_clear_5xx(
                "POST upload on a full disk",
                &sent,
                "storage full",
            )),
        }

        // Reads keep working.
        assert_eq!(
            api.blob_intact("full/app", &digest_of(&before)).await,
            Some(1 << 20)
        );
        assert_eq!(api.get("/v2/").await.0, 200);
        // The cut upload is the only session (it may be continued); the
        // failed monolithic push left nothing.
        nothing_partial(&root, 2);

        // Space comes back: the same process takes pushes again.
        std::fs::remove_file(mnt.dir.join("filler")).expect("free space");
        let sent = api.push_blob("full/app", &big).await;
        assert_eq!(
            sent.status(),
            Some(201),
            "push after space came back: {}",
            sent.text()
        );
        assert_eq!(
            api.blob_intact("full/app", &digest_of(&big)).await,
            Some(2 << 20)
        );
        let sent = api.put_manifest("full/app", "v1", &image).await;
        assert_eq!(
            sent.status(),
            Some(201),
            "manifest after space came back: {}",
            sent.text()
        );
        // The interrupted upload continues from where the server says.
        let status = api.send("GET", &loc, &[], None).await;
        assert_eq!(status.status(), Some(204), "{}", status.text());
        let at = status.upload_size().expect("Range") as usize;
        assert!((1 << 20..=2 << 20).contains(&at), "upload at {at}");
        let sent = api.patch(&loc, at as u64, &chunked[at..]).await;
        assert_eq!(sent.status(), Some(202), "{}", sent.text());
        let sent = api.finish(&loc, &digest_of(&chunked), None).await;
        assert_eq!(sent.status(), Some(201), "{}", sent.text());
        assert_eq!(
            api.blob_intact("full/app", &digest_of(&chunked)).await,
            Some(3 << 20)
        );
    });
    nothing_partial(&root, 1);
    berth.stop();
}
