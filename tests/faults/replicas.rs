//! Item 4 of issue 18: two `berth serve` processes on one storage (a
//! directory, or one Garage bucket and rootdirectory). One is killed (-9)
//! while uploads hop between them: the other completes every upload (or it
//! fails cleanly). One session driven from both at once, PATCH on one and
//! PUT on the other, the race forced by barriers read from the replicas'
//! `berth_http_uploads_in_flight` gauge and the upload's stored size (no
//! sleeps): no blob ever holds bytes other than its digest's.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::support::{digest_of, kill9, metric, seeded_rng, Api, Berth, Sent};
use crate::procs::tempdir;

const CHUNK: usize = 256 << 10;

/// One upload whose chunks alternate between the replicas; when `a` dies
/// mid-way the rest goes to `b`, from the offset `b` reports.
/// Returns (digest, outcome) where outcome is "completed" or "gone".
async fn hopping_upload(a: &Api, b: &Api, repo: &str, data: Vec<u8>) -> (String, &'static str) {
    let digest = digest_of(&data);
    let mut a_alive = true;
    let loc_path = |loc: &str| {
        loc.splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or(loc.into())
    };
    let loc = match a.open_upload(repo).await {
        Ok(loc) => loc_path(&loc),
        Err(Sent::Lost(_)) => {
            a_alive = false;
            loc_path(&b.open_upload(repo).await.expect("open on b"))
        }
        Err(e) => panic!("open: {}", e.text()),
    };
    let mut at = 0usize;
    let mut turn = 0;
    let mut rescued = !a_alive;
    while at < data.len() {
        let end = (at + CHUNK).min(data.len());
        let on_a = a_alive && turn % 2 == 0;
        turn += 1;
        let api = if on_a { a } else { b };
        let sent = api.patch(&loc, at as u64, &data[at..end]).await;
        match sent.status() {
            Some(202) => at = end,
            None if on_a => {
                a_alive = false;
                // Where does the upload stand, seen from the survivor?
                let st = b.send("GET", &loc, &[], None).await;
                assert_eq!(
                    st.status(),
                    Some(204),
                    "status on b after a died: {}",
                    st.text()
                );
                let now = st.upload_size().expect("Range") as usize;
                assert!(
                    now >= at && now <= end,
                    "upload at {now}, acknowledged {at}, chunk to {end}"
                );
                at = now;
                rescued = true;
            }
            _ => panic!("PATCH on {}: {}", if on_a { "a" } else { "b" }, sent.text()),
        }
    }
    let on_a = a_alive && turn % 2 == 0;
    let sent = if on_a { a } else { b }.finish(&loc, &digest, None).await;
    match sent.status() {
        Some(201) if rescued => (digest, "completed on b after a died"),
        Some(201) => (digest, "completed"),
        None => {
            // The PUT was cut on a: either it finished (the blob is whole)
            // or the session is still there to finish on b.
            let again = b.finish(&loc, &digest, None).await;
            match again.status() {
                Some(201) => (digest, "completed on b after a died"),
                Some(404) => {
                    assert!(
                        again.text().contains("BLOB_UPLOAD_UNKNOWN"),
                        "{}",
                        again.text()
                    );
                    (digest, "gone")
                }
                _ => panic!("PUT on b after a died: {}", again.text()),
            }
        }
        _ => panic!("PUT: {}", sent.text()),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Kill a replica while four uploads hop between it and the other.
fn one_replica_killed(test: &str, dir: &Path, storage: &str) {
    let mut rng = seeded_rng(test);
    let mut a = Berth::start(&dir.join("a"), storage);
    let mut b = Berth::start(&dir.join("b"), storage);
    let (api_a, api_b) = (Api::new(a.url("")), Api::new(b.url("")));
    let rt = rt();
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for round in 0..3 {
        let blobs: Vec<Vec<u8>> = (0..4)
            .map(|_| {
                let mut v = vec![0u8; rng.gen_range(CHUNK * 3..CHUNK * 8)];
                rng.fill(&mut v[..]);
                v
            })
            .collect();
        // Forced, not timed: `a` is killed while its gauge shows an upload
        // request in progress, at a seeded sighting of one.
        let sightings = rng.gen_range(1..4u32);
        let pid = a.pid();
        let done = Arc::new(AtomicBool::new(false));
        let results = rt.block_on(async {
            let (probe, all_done) = (api_a.clone(), done.clone());
            let killer = tokio::spawn(async move {
                let mut seen = 0;
                while seen < sightings && !all_done.load(Ordering::SeqCst) {
                    if metric(&probe, "berth_http_uploads_in_flight").await >= 1.0 {
                        seen += 1;
                    }
                }
                kill9(pid);
                seen
            });
            let tasks: Vec<_> = blobs
                .into_iter()
                .enumerate()
                .map(|(i, data)| {
                    let (x, y) = (api_a.clone(), api_b.clone());
                    tokio::spawn(
                        async move { hopping_upload(&x, &y, &format!("ha/r{i}"), data).await },
                    )
                })
                .collect();
            let mut out = Vec::new();
            for (i, t) in tasks.into_iter().enumerate() {
                out.push((i, t.await.expect("upload task")));
            }
            done.store(true, Ordering::SeqCst);
            let seen = killer.await.expect("killer");
            (out, seen)
        });
        let (results, seen) = results;
        assert_eq!(
            seen, sightings,
            "a finished every upload before it was killed"
        );
        for (i, (digest, outcome)) in results {
            let repo = format!("ha/r{i}");
            let found = rt.block_on(api_b.blob_intact(&repo, &digest));
            if outcome != "gone" {
                assert!(found.is_some(), "completed upload {digest} not served by b");
            }
            *outcomes.entry(outcome).or_default() += 1;
        }
        a.kill9();
        a.restart();
        eprintln!("{test}: round {round}: a killed at sighting {sightings} of an upload in flight");
    }
    eprintln!("{test}: {outcomes:?}");
    b.stop();
    a.stop();
}

#[test]
fn a_replica_killed_mid_upload_on_one_directory_leaves_the_other_completing() {
    let tmp = tempdir("berth-ha-kill-");
    let root = tmp.path().join("storage");
    let storage = format!("  filesystem:\n    rootdirectory: {}\n", root.display());
    one_replica_killed("replicas/kill/filesystem", tmp.path(), &storage);
    super::support::scan_fs_blobs(&root);
}

#[test]
fn a_replica_killed_mid_upload_on_one_bucket_leaves_the_other_completing() {
    if !crate::procs::require_tool("garage") {
        return;
    }
    let Some(garage) = crate::s3::garage() else {
        return;
    };
    let tmp = tempdir("berth-ha-kill-s3-");
    let root = crate::s3::fresh_root("ha-kill");
    one_replica_killed(
        "replicas/kill/garage",
        tmp.path(),
        &super::support::s3_storage(garage, &root),
    );
}

/// A streamed request body fed by the test, so a request can be held open
/// half-sent.
fn fed_body() -> (tokio::sync::mpsc::Sender<Bytes>, reqwest::Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    (tx, reqwest::Body::wrap_stream(stream))
}

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if ok().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The session's stored size as replica `api` reports it.
async fn stored(api: &Api, loc: &str) -> u64 {
    api.send("GET", loc, &[], None)
        .await
        .upload_size()
        .unwrap_or(0)
}

/// PATCH on `a` held open mid-body, PUT on `b` arriving meanwhile (and the
/// reverse): whatever wins, every blob served hashes to its digest.
async fn patch_and_put_race(
    a: &Api,
    b: &Api,
    patch_first: bool,
    fs: bool,
    claimed: Option<&Claimed>,
) -> (Option<u16>, Option<u16>) {
    let repo = "race/app";
    let chunk0 = vec![0xA0u8; CHUNK];
    let chunk1 = vec![0xA1u8; 16 * CHUNK];
    let last = vec![0xA2u8; CHUNK];
    let loc = a.open_upload(repo).await.expect("open");
    let loc = loc
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap_or(loc);
    assert_eq!(a.patch(&loc, 0, &chunk0).await.status(), Some(202));
    let honest = digest_of(&[&chunk0[..], &last[..]].concat());
    let grown = digest_of(&[&chunk0[..], &chunk1[..], &last[..]].concat());

    let (first, second) = if patch_first { (a, b) } else { (b, a) };
    let (tx, body) = fed_body();
    // The first request: a PATCH of chunk1 (or the PUT of `last`), its body
    // held half-sent.
    let url = if patch_first {
        format!("{}{loc}", first.base)
    } else {
        format!("{}{loc}?digest={honest}", first.base)
    };
    let mut req = first
        .client
        .request(
            if patch_first {
                reqwest::Method::PATCH
            } else {
                reqwest::Method::PUT
            },
            url,
        )
        .header("Content-Type", "application/octet-stream");
    let held = if patch_first { &chunk1 } else { &last };
    req = req.header("Content-Length", held.len().to_string());
    if patch_first {
        req = req.header(
            "Content-Range",
            format!("{}-{}", CHUNK, CHUNK + chunk1.len() - 1),
        );
    }
    let first_req = tokio::spawn(req.body(body).send());
    let half = held.len() / 2;
    tx.send(Bytes::copy_from_slice(&held[..half]))
        .await
        .expect("feed");
    // Barrier 1: the first replica is inside the request, and (PATCH) has
    // written part of the chunk: it holds the session.
    wait_for("the first request in flight", async || {
        metric(first, "berth_http_uploads_in_flight").await >= 1.0
    })
    .await;
    if patch_first && fs {
        // On a directory the PATCH also holds the data file's claim.
        wait_for("the PATCH to have written bytes", async || {
            stored(second, &loc).await > CHUNK as u64
        })
        .await;
    }
    if let Some(c) = claimed {
        // On a bucket with conditional writes: the first request holds the
        // session's claim object.
        wait_for("the first request to hold the claim", async || c.held()).await;
    }
    // The second request on the other replica.
    let second_req = {
        let second = second.clone();
        let loc = loc.clone();
        let chunk1 = chunk1.clone();
        let (honest, last) = (honest.clone(), last.clone());
        tokio::spawn(async move {
            if patch_first {
                second.finish(&loc, &honest, Some(last)).await
            } else {
                second.patch(&loc, CHUNK as u64, &chunk1).await
            }
        })
    };
    // Barrier 2: the second replica is serving its request too, or (where
    // nothing orders the two: a bucket without claims) has already
    // answered it, between two looks at the gauge.
    wait_for("the second request in flight or answered", async || {
        second_req.is_finished() || metric(second, "berth_http_uploads_in_flight").await >= 1.0
    })
    .await;
    tx.send(Bytes::copy_from_slice(&held[half..]))
        .await
        .expect("feed rest");
    drop(tx);
    let first_status = first_req
        .await
        .expect("task")
        .ok()
        .map(|r| r.status().as_u16());
    let second_status = second_req.await.expect("task").status();
    let after = a.send("GET", &loc, &[], None).await;
    eprintln!(
        "  upload status afterwards: {}",
        after.text().chars().take(100).collect::<String>()
    );
    // Whatever the outcome: a blob under either digest is whole.
    let mut served = Vec::new();
    for d in [&honest, &grown] {
        served.push(a.blob_intact(repo, d).await.is_some());
        assert_eq!(
            b.blob_intact(repo, d).await.is_some(),
            served[served.len() - 1]
        );
    }
    if fs || claimed.is_some() {
        // On a directory (or a bucket with claims) the claim serialises them: the PUT that came
        // second sees the grown upload and refuses the digest; the PATCH
        // that came second finds the session finished.
        let want = if patch_first {
            ((Some(202), Some(400)), [false, false])
        } else {
            ((Some(201), Some(404)), [true, false])
        };
        assert_eq!(
            ((first_status, second_status), [served[0], served[1]]),
            want
        );
    }
    (first_status, second_status)
}

/// A bucket whose store honours conditional writes: where its claim
/// objects can be seen (the names of every object under the root).
struct Claimed {
    names: Box<dyn Fn() -> Vec<String>>,
}

impl Claimed {
    /// On an S3 server, under `root`.
    fn s3(server: &'static crate::s3::S3Server, root: &str) -> Claimed {
        let prefix = format!("{root}/");
        Claimed {
            names: Box::new(move || server.object_keys(&prefix)),
        }
    }

    /// On Azurite, under `root` (first 5,000 blob names).
    fn azurite(server: &'static crate::azure::Azurite, root: &str) -> Claimed {
        let query = format!(
            "/{}?restype=container&comp=list&prefix={root}/",
            crate::azure::CONTAINER
        );
        Claimed {
            names: Box::new(move || {
                let (status, body) = server.signed("GET", &query).expect("List Blobs");
                assert_eq!(status, 200, "List Blobs: {body}");
                body.split("<Name>")
                    .skip(1)
                    .filter_map(|s| s.split("</Name>").next().map(str::to_string))
                    .collect()
            }),
        }
    }

    /// Some upload session's claim object exists.
    fn held(&self) -> bool {
        (self.names)().iter().any(|k| k.ends_with("/data~claim"))
    }
}

fn race_on(storage: &str, dir: &Path, fs: bool) {
    race_on_claimed(storage, dir, fs, None);
}

fn race_on_claimed(storage: &str, dir: &Path, fs: bool, claimed: Option<&Claimed>) {
    let mut a = Berth::start(&dir.join("a"), storage);
    let mut b = Berth::start(&dir.join("b"), storage);
    let (api_a, api_b) = (Api::new(a.url("")), Api::new(b.url("")));
    let rt = rt();
    for patch_first in [true, false] {
        for _ in 0..3 {
            let (first, second) =
                rt.block_on(patch_and_put_race(&api_a, &api_b, patch_first, fs, claimed));
            eprintln!(
                "race ({}): first {first:?}, second {second:?}",
                if patch_first {
                    "PATCH on a, then PUT on b"
                } else {
                    "PUT on b, then PATCH on a"
                }
            );
        }
    }
    b.stop();
    a.stop();
}

#[test]
fn patch_on_one_replica_and_put_on_the_other_never_store_a_wrong_blob_on_one_directory() {
    let tmp = tempdir("berth-ha-race-");
    let root = tmp.path().join("storage");
    race_on(
        &format!("  filesystem:\n    rootdirectory: {}\n", root.display()),
        tmp.path(),
        true,
    );
    super::support::scan_fs_blobs(&root);
}

#[test]
fn patch_on_one_replica_and_put_on_the_other_never_store_a_wrong_blob_on_one_bucket() {
    if !crate::procs::require_tool("garage") {
        return;
    }
    let Some(garage) = crate::s3::garage() else {
        return;
    };
    let tmp = tempdir("berth-ha-race-s3-");
    let root = crate::s3::fresh_root("ha-race");
    race_on(
        &super::support::s3_storage(garage, &root),
        tmp.path(),
        false,
    );
}

/// On a bucket whose store honours create-only writes (moto, as AWS S3
/// since 2024) each upload session is claimed across replicas, so the race
/// has the exact outcomes of a directory.
#[test]
fn patch_on_one_replica_and_put_on_the_other_run_in_order_on_a_bucket_with_conditional_writes() {
    let Some(moto) = crate::s3::moto() else {
        return;
    };
    // moto needs its bucket made.
    let _ = moto.signed("PUT", &format!("/{}", crate::s3::BUCKET));
    let tmp = tempdir("berth-ha-claim-");
    let root = crate::s3::fresh_root("ha-claim");
    let claimed = Claimed::s3(moto, &root);
    race_on_claimed(
        &super::support::s3_storage(moto, &root),
        tmp.path(),
        false,
        Some(&claimed),
    );
    assert!(!claimed.held(), "a claim was left behind");
}

/// The same on Azurite (Azure honours `If-None-Match: *`).
#[test]
fn patch_on_one_replica_and_put_on_the_other_run_in_order_on_azurite() {
    let Some(azurite) = crate::azure::azurite() else {
        return;
    };
    let tmp = tempdir("berth-ha-claim-az-");
    let root = crate::s3::fresh_root("ha-claim");
    let claimed = Claimed::azurite(azurite, &root);
    let storage = format!(
        "  azure:\n    accountname: {}\n    accountkey: {}\n    container: {}\n\
         \x20   serviceurl: {}\n    rootdirectory: /{root}\n    chunksize: 5242880\n\
         \x20 redirect:\n    disable: true\n",
        crate::azure::ACCOUNT,
        crate::azure::KEY,
        crate::azure::CONTAINER,
        azurite.endpoint,
    );
    race_on_claimed(&storage, tmp.path(), false, Some(&claimed));
    assert!(!claimed.held(), "a claim was left behind");
}
