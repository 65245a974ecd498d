//! `flood` (issue 18 item 6): another client's pull latency while one
//! client address floods uploads. The puller (127.0.0.2) pushes a small
//! image, then alternates windows: `--pulls` pulls (manifest + blob, bytes
//! checked) with the server quiet, and as many while the flooder
//! (127.0.0.1) holds `--hogs` uploads streaming as fast as it can (PATCHes
//! of `--patch` bytes, each session deleted afterwards so the disk does not
//! fill) and `--extra` tasks send upload requests back to back (429s past
//! the per-client limit). Prints medians, p99s and their ratios.
//!
//! The puller runs on its own thread and runtime, so the flood's client
//! work does not delay its timing beyond what the shared CPUs do.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::args::Args;
use crate::net::runtime;
use crate::rawhttp::Conn;
use crate::util::{digest, fill_random, nonce, pct_ms, random_bytes, round};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What the flood did in one window.
#[derive(Default)]
struct Tally {
    bytes: Arc<AtomicU64>,
    patches: AtomicU64,
    refused: AtomicU64,
    admitted: AtomicU64,
    errors: AtomicU64,
}

pub fn flood(a: &Args) -> Result<serde_json::Value, String> {
    let addr: SocketAddr = a.str("addr")?.parse().map_err(|e| format!("--addr: {e}"))?;
    let pulls: usize = a.num("pulls", Some(200))?;
    let rounds: usize = a.num("rounds", Some(3))?;
    let hogs: usize = a.num("hogs", Some(4))?;
    let extra: usize = a.num("extra", Some(8))?;
    let blob: usize = a.num("blob", Some(256 << 10))?;
    let patch: u64 = a.num("patch", Some(64 << 20))?;
    let flooder: IpAddr = a
        .opt("flooder")
        .unwrap_or("127.0.0.1")
        .parse()
        .map_err(|e| format!("--flooder: {e}"))?;
    let puller: IpAddr = a
        .opt("puller")
        .unwrap_or("127.0.0.2")
        .parse()
        .map_err(|e| format!("--puller: {e}"))?;

    let layer = random_bytes(blob, nonce());
    let (manifest_path, blob_path) = runtime(1)?.block_on(seed(puller, addr, &layer))?;
    let layer_digest = digest(&layer);

    let frt = runtime(2)?;
    let mut quiet_us = Vec::new();
    let mut loaded_us = Vec::new();
    let mut windows = Vec::new();
    for _ in 0..rounds {
        let q = pull_window(
            puller,
            addr,
            &manifest_path,
            &blob_path,
            &layer_digest,
            pulls,
        )?;
        let tally = Arc::new(Tally::default());
        let running = Arc::new(AtomicBool::new(true));
        let mut tasks = Vec::new();
        for i in 0..hogs {
            let (t, r) = (tally.clone(), running.clone());
            tasks.push(frt.spawn(hog(flooder, addr, patch, i as u64, t, r)));
        }
        // Let the hogs take their slots before the extras start.
        std::thread::sleep(std::time::Duration::from_millis(500));
        for _ in 0..extra {
            let (t, r) = (tally.clone(), running.clone());
            tasks.push(frt.spawn(extra_uploads(flooder, addr, t, r)));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let t0 = Instant::now();
        let bytes0 = tally.bytes.load(Ordering::Relaxed);
        let l = pull_window(
            puller,
            addr,
            &manifest_path,
            &blob_path,
            &layer_digest,
            pulls,
        )?;
        let secs = t0.elapsed().as_secs_f64();
        let bytes = tally.bytes.load(Ordering::Relaxed) - bytes0;
        running.store(false, Ordering::Relaxed);
        // Uploads still streaming are cut off (their sessions are left to
        // the purger; bench/flood removes the storage root at the end).
        std::thread::sleep(std::time::Duration::from_millis(200));
        for t in tasks {
            t.abort();
            let _ = frt.block_on(t);
        }
        windows.push(json!({
            "quiet_p50_ms": round(pct_ms(&sorted(&q), 50.0), 3),
            "loaded_p50_ms": round(pct_ms(&sorted(&l), 50.0), 3),
            "loaded_p99_ms": round(pct_ms(&sorted(&l), 99.0), 3),
            "flood_secs": round(secs, 2),
            "flood_upload_mbps": round(bytes as f64 / secs / 1e6, 1),
            "patches_done": tally.patches.load(Ordering::Relaxed),
            "refused_429": tally.refused.load(Ordering::Relaxed),
            "extra_admitted": tally.admitted.load(Ordering::Relaxed),
            "flood_errors": tally.errors.load(Ordering::Relaxed),
        }));
        quiet_us.extend(q);
        loaded_us.extend(l);
    }
    let (q, l) = (sorted(&quiet_us), sorted(&loaded_us));
    let (q50, q99, l50, l99) = (
        pct_ms(&q, 50.0),
        pct_ms(&q, 99.0),
        pct_ms(&l, 50.0),
        pct_ms(&l, 99.0),
    );
    Ok(json!({
        "pulls_per_window": pulls, "rounds": rounds, "blob_bytes": blob,
        "hogs": hogs, "extra": extra, "patch_bytes": patch,
        "quiet_p50_ms": round(q50, 3), "quiet_p99_ms": round(q99, 3),
        "loaded_p50_ms": round(l50, 3), "loaded_p99_ms": round(l99, 3),
        "ratio_p50": round(l50 / q50, 2), "ratio_p99": round(l99 / q99, 2),
        "windows": windows,
        "errors": 0,
    }))
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s
}

/// Pushes the puller's image (one blob, monolithic; a config; a manifest);
/// returns the manifest and blob paths.
async fn seed(from: IpAddr, addr: SocketAddr, layer: &[u8]) -> Result<(String, String), String> {
    let mut c = Conn::new(from, addr);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    for data in [layer, &config[..]] {
        let d = digest(data);
        let r = c
            .send(
                "POST",
                &format!("/v2/flood/app/blobs/uploads/?digest={d}"),
                &[],
                data,
                data.len() as u64,
            )
            .await?;
        if r.status != 201 {
            return Err(format!("seed blob push: {}", r.status));
        }
    }
    let m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": layer.len()}],
    })
    .to_string();
    let r = c
        .send(
            "PUT",
            "/v2/flood/app/manifests/v1",
            &[("Content-Type", OCI_MANIFEST)],
            m.as_bytes(),
            m.len() as u64,
        )
        .await?;
    if r.status != 201 {
        return Err(format!("seed manifest push: {}", r.status));
    }
    Ok((
        "/v2/flood/app/manifests/v1".into(),
        format!("/v2/flood/app/blobs/{}", digest(layer)),
    ))
}

/// `n` pulls (manifest, then blob) on one keep-alive connection, on a
/// thread of its own; microseconds each. Any failure or wrong byte fails
/// the measurement.
fn pull_window(
    from: IpAddr,
    addr: SocketAddr,
    manifest: &str,
    blob: &str,
    want: &str,
    n: usize,
) -> Result<Vec<u32>, String> {
    let (manifest, blob, want) = (manifest.to_string(), blob.to_string(), want.to_string());
    std::thread::spawn(move || {
        runtime(1)?.block_on(async move {
            let mut c = Conn::new(from, addr);
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let r = c
                    .send("GET", &manifest, &[("Accept", OCI_MANIFEST)], &[], 0)
                    .await?;
                if r.status != 200 {
                    return Err(format!("manifest pull: {}", r.status));
                }
                let r = c.send("GET", &blob, &[], &[], 0).await?;
                if r.status != 200 || digest(&r.body) != want {
                    return Err(format!("blob pull: {} ({} bytes)", r.status, r.body.len()));
                }
                times.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok(times)
        })
    })
    .join()
    .map_err(|_| "pull thread panicked".to_string())?
}

/// One streaming upload after another: start a session, PATCH `patch`
/// bytes as fast as the socket takes them, delete the session.
async fn hog(
    from: IpAddr,
    addr: SocketAddr,
    patch: u64,
    seed: u64,
    t: Arc<Tally>,
    running: Arc<AtomicBool>,
) {
    let mut chunk = vec![0u8; 1 << 20];
    fill_random(&mut chunk, seed + 1);
    let mut c = Conn::new(from, addr);
    c.sent = t.bytes.clone();
    while running.load(Ordering::Relaxed) {
        let Ok(r) = c
            .send("POST", "/v2/flood/hog/blobs/uploads/", &[], &[], 0)
            .await
        else {
            t.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        let Some(loc) = r
            .header("location")
            .filter(|_| r.status == 202)
            .map(location_path)
        else {
            // A slot raced by an extra request: try again.
            t.refused
                .fetch_add(u64::from(r.status == 429), Ordering::Relaxed);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        match c
            .send(
                "PATCH",
                &loc,
                &[("Content-Type", "application/octet-stream")],
                &chunk,
                patch,
            )
            .await
        {
            Ok(r) if r.status == 202 => {
                t.patches.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) if r.status == 429 => {
                t.refused.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                t.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = c.send("DELETE", &loc, &[], &[], 0).await;
    }
}

/// Upload requests back to back; a 202 (a slot came free between a hog's
/// requests) is cancelled at once.
async fn extra_uploads(from: IpAddr, addr: SocketAddr, t: Arc<Tally>, running: Arc<AtomicBool>) {
    let mut c = Conn::new(from, addr);
    while running.load(Ordering::Relaxed) {
        match c
            .send("POST", "/v2/flood/extra/blobs/uploads/", &[], &[], 0)
            .await
        {
            Ok(r) if r.status == 429 => {
                t.refused.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) if r.status == 202 => {
                t.admitted.fetch_add(1, Ordering::Relaxed);
                if let Some(loc) = r.header("location").map(location_path) {
                    let _ = c.send("DELETE", &loc, &[], &[], 0).await;
                }
            }
            _ => {
                t.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn location_path(l: &str) -> String {
    crate::net::location_path(l)
}
