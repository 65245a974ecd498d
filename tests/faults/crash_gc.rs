//! Item 1 of issue 18, the GC part: berth killed with SIGKILL in the middle
//! of an online GC sweep, aimed by watching the sweep's own deletes on disk
//! (the kill fires as the first blob of a deleted image disappears, while
//! the others are still to go). After the restart live images are whole,
//! no blob file is partial, and the next run finishes the sweep.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::support::{digest_of, kill9, manifest, scan_fs_blobs, Api, Berth};
use crate::procs::{tempdir, wait_until};

fn blob_file(root: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

/// Pushes `layers` blobs of 64 KiB, a config and a manifest under `tag`;
/// returns (manifest digest, manifest bytes, blob digests).
async fn image(api: &Api, repo: &str, tag: &str, layers: u8) -> (String, Vec<u8>, Vec<String>) {
    let mut descs = Vec::new();
    for i in 0..layers {
        // Unique per tag and layer: nothing is shared between images.
        let seed = digest_of(format!("{tag}-{i}").as_bytes()).into_bytes();
        let data: Vec<u8> = seed.iter().copied().cycle().take(65536).collect();
        let sent = api.push_blob(repo, &data).await;
        assert_eq!(sent.status(), Some(201), "{}", sent.text());
        descs.push((digest_of(&data), data.len()));
    }
    let config = format!("{{\"tag\":\"{tag}\"}}").into_bytes();
    assert_eq!(api.push_blob(repo, &config).await.status(), Some(201));
    let bytes = manifest((&digest_of(&config), config.len()), &descs, tag);
    let sent = api.put_manifest(repo, tag, &bytes).await;
    assert_eq!(sent.status(), Some(201), "{}", sent.text());
    let mut blobs: Vec<String> = descs.into_iter().map(|d| d.0).collect();
    blobs.push(digest_of(&config));
    (digest_of(&bytes), bytes, blobs)
}

#[test]
fn kill9_in_the_middle_of_an_online_gc_sweep_on_filesystem() {
    let tmp = tempdir("berth-crash-gc-");
    let root = tmp.path().join("storage");
    let storage = format!(
        "  filesystem:\n    rootdirectory: {}\n  maintenance:\n    gc:\n      enabled: true\n      \
         interval: 1s\n      graceperiod: 2s\n",
        root.display()
    );
    let mut berth = Berth::start(&tmp.path().join("berth"), &storage);
    let api = Api::new(berth.url(""));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut live = Vec::new();
    for round in 0..4 {
        let (dead_blobs, dead_digest) = rt.block_on(async {
            live.push(image(&api, "sweep/app", &format!("live{round}"), 2).await);
            let (digest, _, blobs) = image(&api, "sweep/app", &format!("dead{round}"), 8).await;
            let sent = api
                .send(
                    "DELETE",
                    &format!("/v2/sweep/app/manifests/{digest}"),
                    &[],
                    None,
                )
                .await;
            assert_eq!(sent.status(), Some(202), "{}", sent.text());
            (blobs, digest)
        });
        let files: Vec<PathBuf> = dead_blobs.iter().map(|d| blob_file(&root, d)).collect();
        assert!(files.iter().all(|f| f.exists()), "dead blobs stored");
        // Kill as the sweep removes the first of them.
        let pid = berth.pid();
        let watcher = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if files.iter().any(|f| !f.exists()) {
                    kill9(pid);
                    return files.iter().filter(|f| f.exists()).count();
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            panic!("no sweep removed the deleted image's blobs within 60 s");
        });
        let left = watcher.join().expect("watcher");
        berth.kill9();
        berth.restart();
        eprintln!("crash/gc-sweep: round {round}: killed with {left} of 9 dead blobs still stored");
        // Nothing partial, live images whole, the deleted one stays deleted.
        scan_fs_blobs(&root);
        rt.block_on(async {
            for (digest, bytes, blobs) in &live {
                let (status, body) = api.get(&format!("/v2/sweep/app/manifests/{digest}")).await;
                assert_eq!(status, 200, "live manifest {digest} lost");
                assert_eq!(&body[..], &bytes[..]);
                for b in blobs {
                    assert!(
                        api.blob_intact("sweep/app", b).await.is_some(),
                        "live blob {b} lost"
                    );
                }
            }
            let (status, _) = api
                .get(&format!("/v2/sweep/app/manifests/{dead_digest}"))
                .await;
            assert_eq!(status, 404, "deleted manifest back");
        });
        // The next run after the restart finishes the sweep.
        let files: Vec<PathBuf> = dead_blobs.iter().map(|d| blob_file(&root, d)).collect();
        wait_until(
            "the sweep to finish after the restart",
            Duration::from_secs(60),
            || files.iter().all(|f| !f.exists()),
        );
    }
    berth.stop();
}
