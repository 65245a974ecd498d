//! Setup and listing figures: free ports, readiness, the seed image, bulk
//! tags and repositories, and timed listings following `Link`.

use bytes::Bytes;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::blob::expect;
use crate::load::{make_image, push_image, MANIFEST_TYPE};
use crate::net::{location_path, runtime, Client, Read};
use crate::util::{pct_ms, round};

pub fn ports(a: &Args) -> Result<serde_json::Value, String> {
    let n: usize = a.num("n", Some(1))?;
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}")))
        .collect::<Result<_, _>>()?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    Ok(json!(ports))
}

/// Polls until the server answers the path with a status below 500.
pub fn wait(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let path = a.opt("path").unwrap_or("/v2/").to_string();
    let secs: f64 = a.num("secs", Some(20.0))?;
    let rt = runtime(1)?;
    rt.block_on(async move {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed().as_secs_f64() < secs {
            let mut c = Client::new(&addr, Duration::from_secs(2));
            match c.send("GET", &path, &[], Bytes::new(), Read::Count).await {
                Ok(r) if r.status < 500 => {
                    return Ok(
                        json!({"status": r.status, "secs": round(t0.elapsed().as_secs_f64(), 3)}),
                    )
                }
                Ok(r) => last = format!("status {}", r.status),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("{addr}{path} not answering after {secs} s: {last}"))
    })
}

/// Pushes the fixed seed image (same bytes on every server) and writes its
/// manifest to --out.
pub fn seed(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let repo = a.str("repo")?.to_string();
    let tag = a.str("tag")?.to_string();
    let out = a.str("out")?.to_string();
    let img = make_image(42, 16 * 1024);
    let rt = runtime(1)?;
    rt.block_on(async {
        let mut c = Client::new(&addr, Duration::from_secs(30));
        push_image(&mut c, &repo, &tag, &img).await
    })?;
    std::fs::write(&out, &img.manifest).map_err(|e| format!("{out}: {e}"))?;
    Ok(json!({
        "manifest_digest": img.manifest_digest, "manifest_size": img.manifest.len(),
        "config_digest": img.config_digest, "layer_digest": img.layer_digest,
    }))
}

/// Runs `count` jobs over `conns` connections; returns (secs, errors, first error).
fn run_jobs<F, Fut>(
    addr: &str,
    conns: usize,
    count: usize,
    job: F,
) -> Result<(f64, u64, Option<String>), String>
where
    F: Fn(Client, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (Client, Result<(), String>)> + Send,
{
    let rt = runtime(2)?;
    let addr = addr.to_string();
    rt.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (next, job, addr) = (next.clone(), job.clone(), addr.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = Client::new(&addr, Duration::from_secs(30));
                let mut errors = 0u64;
                let mut first = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || errors >= 100 {
                        break;
                    }
                    let (c2, r) = job(c, i).await;
                    c = c2;
                    if let Err(e) = r {
                        errors += 1;
                        first.get_or_insert(e);
                    }
                }
                (errors, first)
            }));
        }
        let mut errors = 0;
        let mut first = None;
        for t in tasks {
            match t.await {
                Ok((e, f)) => {
                    errors += e;
                    if let Some(f) = f {
                        first.get_or_insert(f);
                    }
                }
                Err(e) => {
                    errors += 1;
                    first.get_or_insert(format!("task: {e}"));
                }
            }
        }
        // Jobs never started because a connection gave up count as errors.
        let started = next.load(Ordering::Relaxed).min(count);
        errors += (count - started) as u64;
        Ok((t0.elapsed().as_secs_f64(), errors, first))
    })
}

fn jobs_result(count: usize, r: (f64, u64, Option<String>)) -> serde_json::Value {
    let (secs, errors, first) = r;
    let mut out = json!({
        "count": count, "secs": round(secs, 3),
        "per_s": round(count as f64 / secs, 1), "errors": errors,
    });
    if let Some(e) = first {
        out["error"] = json!(e);
    }
    out
}

/// PUTs the manifest (already pushed to the repository) under COUNT tags.
pub fn populate_tags(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?;
    let repo = a.str("repo")?.to_string();
    let file = a.str("manifest")?;
    let manifest = Bytes::from(std::fs::read(file).map_err(|e| format!("{file}: {e}"))?);
    let count: usize = a.num("count", None)?;
    let conns: usize = a.num("conns", Some(16))?;
    let r = run_jobs(addr, conns, count, move |mut c, i| {
        let (repo, manifest) = (repo.clone(), manifest.clone());
        async move {
            let r = c
                .send(
                    "PUT",
                    &format!("/v2/{repo}/manifests/t{i:05}"),
                    &[("content-type", MANIFEST_TYPE)],
                    manifest,
                    Read::Keep,
                )
                .await
                .and_then(|r| expect(&r, 201, "PUT manifest"));
            (c, r)
        }
    })?;
    Ok(jobs_result(count, r))
}

/// COUNT repositories `<prefix>/NNNNN`: each mounts the manifest's blobs
/// from --from, then gets the manifest as `latest`.
pub fn populate_repos(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?;
    let from = a.str("from")?.to_string();
    let prefix = a.opt("prefix").unwrap_or("repos/r").to_string();
    let file = a.str("manifest")?;
    let manifest = Bytes::from(std::fs::read(file).map_err(|e| format!("{file}: {e}"))?);
    let m: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| format!("{file}: {e}"))?;
    let mut blobs = vec![m["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string()];
    if let Some(layers) = m["layers"].as_array() {
        blobs.extend(
            layers
                .iter()
                .map(|l| l["digest"].as_str().unwrap_or_default().to_string()),
        );
    }
    let count: usize = a.num("count", None)?;
    let conns: usize = a.num("conns", Some(16))?;
    let r = run_jobs(addr, conns, count, move |mut c, i| {
        let (from, prefix, manifest, blobs) = (
            from.clone(),
            prefix.clone(),
            manifest.clone(),
            blobs.clone(),
        );
        async move {
            let repo = format!("{prefix}{i:05}");
            let res = async {
                for d in &blobs {
                    let r = c
                        .send(
                            "POST",
                            &format!("/v2/{repo}/blobs/uploads/?mount={d}&from={from}"),
                            &[],
                            Bytes::new(),
                            Read::Keep,
                        )
                        .await?;
                    expect(&r, 201, "POST ?mount=")?;
                }
                let r = c
                    .send(
                        "PUT",
                        &format!("/v2/{repo}/manifests/latest"),
                        &[("content-type", MANIFEST_TYPE)],
                        manifest.clone(),
                        Read::Keep,
                    )
                    .await?;
                expect(&r, 201, "PUT manifest")
            }
            .await;
            (c, res)
        }
    })?;
    Ok(jobs_result(count, r))
}

/// `<url>; rel="next"` from a Link header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let part = part.trim();
        if !part.contains("rel=\"next\"") && !part.contains("rel=next") {
            return None;
        }
        let start = part.find('<')? + 1;
        let end = part[start..].find('>')? + start;
        Some(location_path(&part[start..end]))
    })
}

/// Times a listing REPS times; with `--follow 1`, each time follows `Link`
/// to the end. Reports p50 and what was listed.
pub fn list(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let path = a.str("path")?.to_string();
    let key = a.str("key")?.to_string();
    let follow = a.opt("follow") == Some("1");
    let reps: usize = a.num("reps", Some(3))?;
    let rt = runtime(1)?;
    rt.block_on(async move {
        let mut c = Client::new(&addr, Duration::from_secs(60));
        let mut times = Vec::new();
        let (mut pages, mut entries) = (0usize, 0usize);
        for _ in 0..reps {
            let t0 = Instant::now();
            let mut next = Some(path.clone());
            let (mut p, mut n) = (0usize, 0usize);
            // Bounded: at most 100,000 pages.
            while let Some(url) = next.take() {
                if p >= 100_000 {
                    return Err("more than 100,000 pages".into());
                }
                let r = c.send("GET", &url, &[], Bytes::new(), Read::Keep).await?;
                expect(&r, 200, "GET list")?;
                let v: serde_json::Value = serde_json::from_slice(&r.body)
                    .map_err(|e| format!("GET {url}: bad JSON: {e}"))?;
                n += v[&key].as_array().map(|x| x.len()).unwrap_or(0);
                p += 1;
                if follow {
                    next = r.header("link").and_then(next_link);
                }
            }
            times.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
            (pages, entries) = (p, n);
        }
        times.sort_unstable();
        Ok(json!({
            "reps": reps, "pages": pages, "entries": entries,
            "p50_ms": round(pct_ms(&times, 50.0), 3),
            "min_ms": round(pct_ms(&times, 0.0), 3),
            "max_ms": round(pct_ms(&times, 100.0), 3),
            "errors": 0,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(
            next_link("</v2/_catalog?last=a%2Fb&n=100>; rel=\"next\"").as_deref(),
            Some("/v2/_catalog?last=a%2Fb&n=100")
        );
        assert_eq!(
            next_link("<http://h:1/v2/_catalog?n=1>; rel=\"next\"").as_deref(),
            Some("/v2/_catalog?n=1")
        );
        assert_eq!(next_link("</x>; rel=\"prev\""), None);
    }
}
