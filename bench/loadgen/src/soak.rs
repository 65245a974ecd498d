//! The soak (issue 18 item 5): `clients` concurrent clients, each on its own
//! keep-alive connection, loop for `secs` seconds over a mix of pushes,
//! pulls (digest-checked), HEADs, listings and deletes of their own images,
//! while a sampler records the server's RSS and open descriptors every
//! `sample` seconds. Every answer must be the one the spec gives; anything
//! else is an error, counted and reported.

use bytes::Bytes;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::load::{make_image, push_image, Image, MANIFEST_TYPE};
use crate::net::{runtime, Client, Read};
use crate::util::{nonce, round};

/// Layer sizes the clients cycle through (small, as registries mostly see,
/// with one larger to exercise the copy buffers).
const LAYER_SIZES: [usize; 4] = [1 << 10, 8 << 10, 64 << 10, 256 << 10];
/// Images each client keeps; older ones are deleted.
const KEEP: usize = 2;
/// Error messages kept for the report.
const MAX_MESSAGES: usize = 20;

/// VmRSS and VmHWM (KiB) and the number of open descriptors of `pid`.
pub fn proc_sample(pid: u32) -> Result<(u64, u64, usize), String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let kib = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
        .count();
    Ok((kib("VmRSS:"), kib("VmHWM:"), fds))
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    errors: AtomicU64,
    ops: [AtomicU64; 5],
    messages: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.messages.lock() {
            if m.len() < MAX_MESSAGES {
                m.push(e);
            }
        }
    }
}

/// Expects `status` from `method path`; counts the request.
async fn expect(
    c: &mut Client,
    t: &Tally,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    status: u16,
    read: Read,
) -> Result<crate::net::Resp, String> {
    t.requests.fetch_add(1, Ordering::Relaxed);
    let r = c.send(method, path, headers, Bytes::new(), read).await?;
    if r.status != status {
        return Err(format!(
            "{method} {path}: {} (want {status}): {}",
            r.status,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    Ok(r)
}

/// One round of a client: push, pull and check, HEADs, listings, delete.
async fn round_of(
    c: &mut Client,
    t: &Tally,
    repo: &str,
    tag: &str,
    img: &Image,
    old: Option<&Image>,
    list_catalog: bool,
) -> Result<(), String> {
    // push: HEAD x2, POST x2, PUT x2, manifest PUT
    t.requests.fetch_add(7, Ordering::Relaxed);
    push_image(c, repo, tag, img).await?;
    t.ops[0].fetch_add(1, Ordering::Relaxed);
    let accept = [("accept", MANIFEST_TYPE)];
    let m = expect(
        c,
        t,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &accept,
        200,
        Read::Hash,
    )
    .await?;
    let layer = expect(
        c,
        t,
        "GET",
        &format!("/v2/{repo}/blobs/{}", img.layer_digest),
        &[],
        200,
        Read::Hash,
    )
    .await?;
    if m.digest.as_deref() != Some(&img.manifest_digest)
        || layer.digest.as_deref() != Some(&img.layer_digest)
    {
        return Err(format!(
            "{repo}:{tag}: pulled bytes differ from the pushed ones"
        ));
    }
    t.ops[1].fetch_add(1, Ordering::Relaxed);
    expect(
        c,
        t,
        "HEAD",
        &format!("/v2/{repo}/manifests/{}", img.manifest_digest),
        &accept,
        200,
        Read::Count,
    )
    .await?;
    expect(
        c,
        t,
        "HEAD",
        &format!("/v2/{repo}/blobs/{}", img.config_digest),
        &[],
        200,
        Read::Count,
    )
    .await?;
    t.ops[2].fetch_add(1, Ordering::Relaxed);
    let tags = expect(
        c,
        t,
        "GET",
        &format!("/v2/{repo}/tags/list?n=100"),
        &[],
        200,
        Read::Keep,
    )
    .await?;
    if !String::from_utf8_lossy(&tags.body).contains(&format!("\"{tag}\"")) {
        return Err(format!("{repo}: tag {tag} missing from the tag list"));
    }
    if list_catalog {
        expect(c, t, "GET", "/v2/_catalog?n=100", &[], 200, Read::Count).await?;
    }
    t.ops[3].fetch_add(1, Ordering::Relaxed);
    if let Some(old) = old {
        let path = format!("/v2/{repo}/manifests/{}", old.manifest_digest);
        expect(c, t, "DELETE", &path, &[], 202, Read::Count).await?;
        expect(c, t, "GET", &path, &accept, 404, Read::Count).await?;
        t.ops[4].fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

pub fn soak(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let pid: u32 = a.num("pid", None)?;
    let clients: usize = a.num("clients", Some(64))?;
    let secs: f64 = a.num("secs", Some(600.0))?;
    let sample: f64 = a.num("sample", Some(5.0))?;
    let settle: f64 = a.num("settle", Some(15.0))?;
    let repos: usize = a.num("repos", Some(16))?;
    let base = nonce();
    let start_sample = proc_sample(pid)?;
    let rt = runtime(2)?;
    rt.block_on(async move {
        let tally = Arc::new(Tally::default());
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs_f64(secs);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sampler = {
            let (samples, tally) = (samples.clone(), tally.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(sample));
                while Instant::now() < deadline {
                    tick.tick().await;
                    if let Ok((rss, hwm, fds)) = proc_sample(pid) {
                        if let Ok(mut s) = samples.lock() {
                            s.push(json!({
                                "t": round(t0.elapsed().as_secs_f64(), 1),
                                "rss_mib": round(rss as f64 / 1024.0, 1),
                                "hwm_mib": round(hwm as f64 / 1024.0, 1),
                                "fds": fds,
                                "requests": tally.requests.load(Ordering::Relaxed),
                                "errors": tally.errors.load(Ordering::Relaxed),
                            }));
                        }
                    }
                }
            })
        };
        let mut tasks = Vec::new();
        for ci in 0..clients {
            let (addr, tally) = (addr.clone(), tally.clone());
            let repo = format!("soak/r{}", ci % repos.max(1));
            tasks.push(tokio::spawn(async move {
                let mut c = Client::new(&addr, Duration::from_secs(60));
                let mut kept: Vec<Image> = Vec::new();
                let mut j = 0usize;
                while Instant::now() < deadline {
                    let size = LAYER_SIZES[(ci + j) % LAYER_SIZES.len()];
                    let img = make_image(base ^ ((ci as u64) << 40 | j as u64), size);
                    let old = (kept.len() >= KEEP).then(|| kept.remove(0));
                    let tag = format!("c{ci}-{j}");
                    match round_of(&mut c, &tally, &repo, &tag, &img, old.as_ref(), j.is_multiple_of(8)).await {
                        Ok(()) => kept.push(img),
                        Err(e) => tally.fail(e),
                    }
                    j += 1;
                }
            }));
        }
        for t in tasks {
            if let Err(e) = t.await {
                tally.fail(format!("client task: {e}"));
            }
        }
        let _ = sampler.await;
        let load_secs = t0.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs_f64(settle)).await;
        let (rss_after, hwm, fds_after) = proc_sample(pid)?;
        let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
        let fds: Vec<u64> = samples.iter().filter_map(|s| s["fds"].as_u64()).collect();
        let rss_max = samples
            .iter()
            .filter_map(|s| s["rss_mib"].as_f64())
            .fold(0.0, f64::max);
        let ops = |i: usize| tally.ops[i].load(Ordering::Relaxed);
        let requests = tally.requests.load(Ordering::Relaxed);
        let messages = tally.messages.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(json!({
            "clients": clients,
            "secs": round(load_secs, 1),
            "requests": requests,
            "requests_per_s": round(requests as f64 / load_secs, 1),
            "pushes": ops(0), "pulls": ops(1), "heads": ops(2), "listings": ops(3), "deletes": ops(4),
            "errors": tally.errors.load(Ordering::Relaxed),
            "error_messages": messages,
            "rss_start_mib": round(start_sample.0 as f64 / 1024.0, 1),
            "rss_peak_mib": round(hwm as f64 / 1024.0, 1),
            "rss_max_sampled_mib": rss_max,
            "rss_after_mib": round(rss_after as f64 / 1024.0, 1),
            "settle_s": settle,
            "fds_start": start_sample.2,
            "fds_min": fds.iter().min(),
            "fds_max": fds.iter().max(),
            "fds_after": fds_after,
            "samples": samples,
        }))
    })
}
