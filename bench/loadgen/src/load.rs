//! Concurrent load: the keep-alive request hammer, wrk (driven and parsed),
//! and the small-image push storm.

use bytes::Bytes;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::net::{runtime, Client, Read};
use crate::util::{digest, nonce, pct_ms, random_bytes, round, Window};

/// Requests per connection at most, whatever the window (a bound on the loop).
const MAX_PER_CONN: u64 = 50_000_000;
/// A connection that keeps failing stops early rather than spin.
const MAX_ERRORS_PER_CONN: u64 = 1_000;

fn headers(a: &Args) -> Result<Vec<(String, String)>, String> {
    a.all("header")
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("--header {h}: want 'Name: value'"))
        })
        .collect()
}

/// One GET before the window: the status must be 200 and, with
/// `--expect-body FILE`, the body exactly those bytes.
fn precheck(a: &Args, addr: &str, path: &str, hdrs: &[(String, String)]) -> Result<(), String> {
    let Some(file) = a.opt("expect-body") else {
        return Ok(());
    };
    let want = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let rt = runtime(1)?;
    rt.block_on(async {
        let mut c = Client::new(addr, Duration::from_secs(10));
        let h: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = c.send("GET", path, &h, Bytes::new(), Read::Keep).await?;
        if r.status != 200 || r.body[..] != want[..] {
            return Err(format!(
                "precheck GET {path}: status {}, {} bytes, want 200 and the {} bytes of {file}",
                r.status,
                r.body.len(),
                want.len()
            ));
        }
        Ok(())
    })
}

pub fn hammer(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let path = a.str("path")?.to_string();
    let method = a.opt("method").unwrap_or("GET").to_string();
    let conns: usize = a.num("conns", Some(64))?;
    let threads: usize = a.num("threads", Some(2))?;
    let secs: f64 = a.num("secs", Some(5.0))?;
    let want_status: u16 = a.num("status", Some(200))?;
    let hdrs = headers(a)?;
    let pids = a.pids()?;
    precheck(a, &addr, &path, &hdrs)?;
    let rt = runtime(threads)?;
    rt.block_on(async move {
        let w = Window::start(&pids)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (addr, path, method, hdrs) =
                (addr.clone(), path.clone(), method.clone(), hdrs.clone());
            tasks.push(tokio::spawn(async move {
                let h: Vec<(&str, &str)> =
                    hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let mut c = Client::new(&addr, Duration::from_secs(10));
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 14);
                let (mut errors, mut n) = (0u64, 0u64);
                let mut first_error = None::<String>;
                while tokio::time::Instant::now() < deadline
                    && n < MAX_PER_CONN
                    && errors < MAX_ERRORS_PER_CONN
                {
                    n += 1;
                    let t0 = Instant::now();
                    match c.send(&method, &path, &h, Bytes::new(), Read::Count).await {
                        Ok(r) if r.status == want_status => {
                            lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32)
                        }
                        Ok(r) => {
                            errors += 1;
                            first_error.get_or_insert(format!("status {}", r.status));
                        }
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (lat, errors, first_error)
            }));
        }
        let mut lat = Vec::new();
        let mut errors = 0u64;
        let mut first_error = None;
        for t in tasks {
            match t.await {
                Ok((l, e, fe)) => {
                    lat.extend(l);
                    errors += e;
                    if let Some(fe) = fe {
                        first_error.get_or_insert(fe);
                    }
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(format!("task: {e}"));
                }
            }
        }
        let end = w.end()?;
        lat.sort_unstable();
        let ok = lat.len() as f64;
        let mut out = json!({
            "method": method, "conns": conns, "requests": lat.len(),
            "secs": round(end.secs, 3),
            "rps": round(ok / end.secs, 1),
            "p50_ms": round(pct_ms(&lat, 50.0), 3),
            "p99_ms": round(pct_ms(&lat, 99.0), 3),
            "server_cpu_s": round(end.server_cpu_s, 3),
            "cpu_us_per_req": round(end.server_cpu_s / ok.max(1.0) * 1e6, 2),
            "machine_busy": round(end.machine_busy, 3),
            "errors": errors,
        });
        if let Some(e) = first_error {
            out["error"] = json!(e);
        }
        Ok(out)
    })
}

/// wrk's duration units to milliseconds.
fn to_ms(v: &str) -> Option<f64> {
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * mult)
}

/// Parses wrk --latency output: (requests, secs, p50 ms, p99 ms, errors).
pub fn parse_wrk(out: &str) -> Result<(u64, f64, f64, f64, u64), String> {
    let mut requests = None;
    let mut secs = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0u64;
    for line in out.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.as_slice() {
            ["50%", v] => p50 = to_ms(v),
            ["99%", v] => p99 = to_ms(v),
            [n, "requests", "in", d, ..] => {
                requests = n.parse::<u64>().ok();
                secs = to_ms(d.trim_end_matches(',')).map(|ms| ms / 1000.0);
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                errors += n.parse::<u64>().map_err(|_| format!("wrk: {line}"))?
            }
            ["Socket", "errors:", rest @ ..] => {
                for v in rest.iter().skip(1).step_by(2) {
                    errors += v
                        .trim_end_matches(',')
                        .parse::<u64>()
                        .map_err(|_| format!("wrk: {line}"))?;
                }
            }
            _ => {}
        }
    }
    match (requests, secs, p50, p99) {
        (Some(r), Some(s), Some(a), Some(b)) => Ok((r, s, a, b, errors)),
        _ => Err(format!("cannot parse wrk output:\n{out}")),
    }
}

pub fn wrk(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let path = a.str("path")?.to_string();
    let conns: usize = a.num("conns", Some(64))?;
    let threads: usize = a.num("threads", Some(2))?;
    let secs: u64 = a.num("secs", Some(5))?;
    let hdrs = headers(a)?;
    let pids = a.pids()?;
    precheck(a, &addr, &path, &hdrs)?;
    let mut cmd = Command::new("wrk");
    cmd.args([
        &format!("-t{threads}"),
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--timeout",
        "10s",
        "--latency",
    ]);
    for (k, v) in &hdrs {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg(format!("http://{addr}{path}"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let w = Window::start(&pids)?;
    let mut child = cmd.spawn().map_err(|e| format!("wrk: {e}"))?;
    // Bounded: wrk gets its window plus 30 s, then is killed.
    let deadline = Instant::now() + Duration::from_secs(secs + 30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("wrk did not finish in time (killed)".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wrk: {e}")),
        }
    }
    let end = w.end()?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wrk output: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (requests, wsecs, p50, p99, errors) = parse_wrk(&text)?;
    let ok = requests.saturating_sub(errors) as f64;
    Ok(json!({
        "tool": "wrk", "conns": conns, "requests": requests,
        "secs": round(wsecs, 3),
        "rps": round(ok / wsecs, 1),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "server_cpu_s": round(end.server_cpu_s, 3),
        "cpu_us_per_req": round(end.server_cpu_s / ok.max(1.0) * 1e6, 2),
        "machine_busy": round(end.machine_busy, 3),
        "errors": errors,
    }))
}

/// One small image: config blob, one layer, the manifest (bytes + digests).
pub struct Image {
    pub config: Bytes,
    pub config_digest: String,
    pub layer: Bytes,
    pub layer_digest: String,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

pub const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn make_image(seed: u64, layer_size: usize) -> Image {
    let layer = Bytes::from(random_bytes(layer_size, seed));
    let layer_digest = digest(&layer);
    let config = Bytes::from(
        json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["/bin/sh"]},
            "created": "2026-01-01T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": format!("bench {seed}")}]
        })
        .to_string()
        .into_bytes(),
    );
    let config_digest = digest(&config);
    let manifest = Bytes::from(
        json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": layer.len(), "digest": layer_digest}]
        })
        .to_string()
        .into_bytes(),
    );
    let manifest_digest = digest(&manifest);
    Image {
        config,
        config_digest,
        layer,
        layer_digest,
        manifest,
        manifest_digest,
    }
}

/// Pushes one image as docker does (per blob HEAD -> 404, then the blob;
/// then the manifest by tag), on one connection. Each blob is a monolithic
/// upload: `POST`, then `PUT ?digest=` with the bytes (distribution 2.8.2
/// does not take the bytes in a `POST ?digest=`).
pub async fn push_image(c: &mut Client, repo: &str, tag: &str, img: &Image) -> Result<(), String> {
    for (d, data) in [
        (&img.config_digest, &img.config),
        (&img.layer_digest, &img.layer),
    ] {
        let r = c
            .send(
                "HEAD",
                &format!("/v2/{repo}/blobs/{d}"),
                &[],
                Bytes::new(),
                Read::Count,
            )
            .await?;
        if r.status == 200 {
            continue;
        }
        crate::blob::expect(&r, 404, "HEAD blob")?;
        let r = c
            .send(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Bytes::new(),
                Read::Keep,
            )
            .await?;
        crate::blob::expect(&r, 202, "POST")?;
        let loc = crate::blob::location(&r)?;
        let r = c
            .send(
                "PUT",
                &crate::net::with_query(&loc, &format!("digest={d}")),
                &[("content-type", "application/octet-stream")],
                data.clone(),
                Read::Keep,
            )
            .await?;
        crate::blob::expect(&r, 201, "PUT ?digest=")?;
    }
    let r = c
        .send(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("content-type", MANIFEST_TYPE)],
            img.manifest.clone(),
            Read::Keep,
        )
        .await?;
    crate::blob::expect(&r, 201, "PUT manifest")?;
    match r.header("docker-content-digest") {
        Some(d) if d == img.manifest_digest => Ok(()),
        other => Err(format!(
            "manifest Docker-Content-Digest {other:?}, want {}",
            img.manifest_digest
        )),
    }
}

pub fn storm(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let prefix = a.str("prefix")?.to_string();
    let clients: usize = a.num("clients", Some(16))?;
    let images: usize = a.num("images", Some(50))?;
    let layer_size: usize = a.num("layer-size", Some(16 * 1024))?;
    let idle: f64 = a.num("idle", Some(1.0))?;
    let pids = a.pids()?;
    let base = nonce();
    // All content generated and hashed before the clock.
    let work: Vec<Vec<Image>> = (0..clients)
        .map(|ci| {
            (0..images)
                .map(|j| make_image(base ^ ((ci as u64) << 32 | j as u64), layer_size))
                .collect()
        })
        .collect();
    // Every side starts on a clean filesystem: dirty data left by the
    // previous measurement would otherwise be flushed by whichever server
    // syncs the whole filesystem (berth's group commit) on its clock.
    crate::blob::settle(a.opt("idle-dir"), idle)?;
    let rt = runtime(2)?;
    rt.block_on(async move {
        let w = Window::start(&pids)?;
        let mut tasks = Vec::new();
        for (ci, imgs) in work.into_iter().enumerate() {
            let (addr, repo) = (addr.clone(), format!("{prefix}/c{ci}"));
            tasks.push(tokio::spawn(async move {
                let mut c = Client::new(&addr, Duration::from_secs(30));
                let mut lat = Vec::with_capacity(imgs.len());
                let mut errors = 0u64;
                let mut first_error = None::<String>;
                for (j, img) in imgs.iter().enumerate() {
                    let t0 = Instant::now();
                    match push_image(&mut c, &repo, &format!("i{j}"), img).await {
                        Ok(()) => lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (lat, errors, first_error)
            }));
        }
        let mut lat = Vec::new();
        let mut errors = 0u64;
        let mut first_error = None;
        for t in tasks {
            match t.await {
                Ok((l, e, fe)) => {
                    lat.extend(l);
                    errors += e;
                    if let Some(fe) = fe {
                        first_error.get_or_insert(fe);
                    }
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(format!("task: {e}"));
                }
            }
        }
        let end = w.end()?;
        lat.sort_unstable();
        let ok = lat.len() as f64;
        let mut out = json!({
            "clients": clients, "images": lat.len(),
            "secs": round(end.secs, 3),
            "images_per_s": round(ok / end.secs, 1),
            "p50_ms": round(pct_ms(&lat, 50.0), 2),
            "p99_ms": round(pct_ms(&lat, 99.0), 2),
            "server_cpu_s": round(end.server_cpu_s, 3),
            "cpu_ms_per_image": round(end.server_cpu_s / ok.max(1.0) * 1e3, 3),
            "machine_busy": round(end.machine_busy, 3),
            "errors": errors,
        });
        if let Some(e) = first_error {
            out["error"] = json!(e);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output() {
        let out = "Running 5s test @ http://127.0.0.1:1/x
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.50ms  300.00us   9.00ms   90.00%
  Latency Distribution
     50%  820.00us
     75%    1.00ms
     90%    2.00ms
     99%    1.20s
  1000 requests in 5.00s, 1.00MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 1, read 2, write 0, timeout 4
Requests/sec:    200.00
";
        let (r, s, p50, p99, e) = parse_wrk(out).expect("parses");
        assert_eq!((r, e), (1000, 10));
        assert!((s - 5.0).abs() < 1e-9);
        assert!((p50 - 0.82).abs() < 1e-9);
        assert!((p99 - 1200.0).abs() < 1e-9);
    }
}
