//! Big-blob figures: one push (monolithic or chunked) and warm pulls.

use bytes::Bytes;
use serde_json::json;
use std::time::Duration;

use crate::args::Args;
use crate::net::{location_path, runtime, with_query, Client, Read};
use crate::util::{digest, mbps, nonce, random_bytes, round, Window, GIB};

/// `sync -f DIR` then sleep: the disk-limit condition (memory idle for more
/// than ~2 s goes back to the host and is slow to touch again; the dd limit
/// is measured after the same idle).
pub fn settle(dir: Option<&str>, idle_s: f64) -> Result<(), String> {
    if let Some(dir) = dir {
        let st = std::process::Command::new("sync")
            .args(["-f", dir])
            .status()
            .map_err(|e| format!("sync: {e}"))?;
        if !st.success() {
            return Err(format!("sync -f {dir} failed"));
        }
        std::thread::sleep(Duration::from_secs_f64(idle_s));
    }
    Ok(())
}

pub fn push(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let repo = a.str("repo")?.to_string();
    let size: usize = a.num("size", None)?;
    let mode = a.str("mode")?.to_string();
    let chunk: usize = a.num("chunk", Some(16 << 20))?;
    let seed: u64 = a.num("seed", Some(nonce()))?;
    let idle: f64 = a.num("idle", Some(3.0))?;
    let pids = a.pids()?;
    if mode != "mono" && mode != "chunked" {
        return Err(format!("--mode {mode}: mono or chunked"));
    }
    if chunk == 0 {
        return Err("--chunk 0".into());
    }
    // Content and digest before the clock.
    let data = Bytes::from(random_bytes(size, seed));
    let want = digest(&data);
    settle(a.opt("idle-dir"), idle)?;

    let rt = runtime(1)?;
    rt.block_on(async move {
        let mut c = Client::new(&addr, Duration::from_secs(300));
        let w = Window::start(&pids)?;
        let mut requests = 0u32;
        let res: Result<(), String> = async {
            let base = format!("/v2/{repo}/blobs/uploads/");
            if mode == "mono" {
                // POST, then the whole body in one PUT ?digest= (the
                // monolithic upload both servers implement; distribution
                // 2.8.2 answers a body-carrying POST ?digest= with 202 and
                // ignores the body).
                let r = c.send("POST", &base, &[], Bytes::new(), Read::Keep).await?;
                requests += 1;
                expect(&r, 202, "POST")?;
                let loc = location(&r)?;
                let r = c
                    .send(
                        "PUT",
                        &with_query(&loc, &format!("digest={want}")),
                        &[("content-type", "application/octet-stream")],
                        data.clone(),
                        Read::Keep,
                    )
                    .await?;
                requests += 1;
                expect(&r, 201, "PUT ?digest=")?;
                check_digest(&r, &want)?;
            } else {
                let r = c.send("POST", &base, &[], Bytes::new(), Read::Keep).await?;
                requests += 1;
                expect(&r, 202, "POST")?;
                let mut loc = location(&r)?;
                let mut off = 0usize;
                // Bounded: exactly ceil(size / chunk) PATCHes.
                while off < data.len() {
                    let end = (off + chunk).min(data.len());
                    let range = format!("{}-{}", off, end - 1);
                    let r = c
                        .send(
                            "PATCH",
                            &loc,
                            &[
                                ("content-type", "application/octet-stream"),
                                ("content-range", &range),
                            ],
                            data.slice(off..end),
                            Read::Keep,
                        )
                        .await?;
                    requests += 1;
                    expect(&r, 202, "PATCH")?;
                    loc = location(&r)?;
                    off = end;
                }
                let r = c
                    .send(
                        "PUT",
                        &with_query(&loc, &format!("digest={want}")),
                        &[],
                        Bytes::new(),
                        Read::Keep,
                    )
                    .await?;
                requests += 1;
                expect(&r, 201, "PUT ?digest=")?;
                check_digest(&r, &want)?;
            }
            Ok(())
        }
        .await;
        let end = w.end()?;
        let gib = size as f64 / GIB;
        let mut out = json!({
            "mode": mode, "bytes": size, "digest": want, "requests": requests,
            "secs": round(end.secs, 3),
            "mbps": round(mbps(size as f64, end.secs), 1),
            "server_cpu_s": round(end.server_cpu_s, 3),
            "cpu_s_per_gib": round(end.server_cpu_s / gib, 3),
            "machine_busy": round(end.machine_busy, 3),
            "errors": 0,
        });
        if let Err(e) = res {
            out["errors"] = json!(1);
            out["error"] = json!(e);
        }
        Ok(out)
    })
}

pub fn pull(a: &Args) -> Result<serde_json::Value, String> {
    let addr = a.str("addr")?.to_string();
    let path = a.str("path")?.to_string();
    let count: u32 = a.num("count", Some(3))?;
    let verify = a.opt("verify").map(str::to_string);
    let pids = a.pids()?;
    let rt = runtime(1)?;
    rt.block_on(async move {
        let mut c = Client::new(&addr, Duration::from_secs(120));
        let mut errors = 0u32;
        let mut first_error = None::<String>;
        // Untimed first GET: warms the page cache, and checks the digest.
        let r = c
            .send(
                "GET",
                &path,
                &[],
                Bytes::new(),
                if verify.is_some() {
                    Read::Hash
                } else {
                    Read::Count
                },
            )
            .await?;
        expect(&r, 200, "GET")?;
        let size = r.body_len;
        if let Some(cl) = r.header("content-length") {
            if cl.parse::<u64>().ok() != Some(size) {
                return Err(format!(
                    "GET {path}: Content-Length {cl}, body {size} bytes"
                ));
            }
        }
        let verified = match (&verify, &r.digest) {
            (Some(want), Some(got)) if want == got => true,
            (Some(want), got) => {
                return Err(format!("GET {path}: digest {got:?}, pushed {want}"));
            }
            _ => false,
        };
        let w = Window::start(&pids)?;
        let mut bytes = 0u64;
        for _ in 0..count {
            match c.send("GET", &path, &[], Bytes::new(), Read::Count).await {
                Ok(r) if r.status == 200 && r.body_len == size => bytes += r.body_len,
                Ok(r) => {
                    errors += 1;
                    first_error.get_or_insert(format!("status {} len {}", r.status, r.body_len));
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let end = w.end()?;
        let mut out = json!({
            "bytes": bytes, "pulls": count, "size": size, "verified": verified,
            "secs": round(end.secs, 3),
            "mbps": round(mbps(bytes as f64, end.secs), 1),
            "server_cpu_s": round(end.server_cpu_s, 3),
            "cpu_s_per_gib": round(end.server_cpu_s / (bytes.max(1) as f64 / GIB), 3),
            "machine_busy": round(end.machine_busy, 3),
            "errors": errors,
        });
        if let Some(e) = first_error {
            out["error"] = json!(e);
        }
        Ok(out)
    })
}

pub fn expect(r: &crate::net::Resp, status: u16, what: &str) -> Result<(), String> {
    if r.status == status {
        Ok(())
    } else {
        let body = String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned();
        Err(format!(
            "{what}: status {}, want {status}: {body}",
            r.status
        ))
    }
}

fn check_digest(r: &crate::net::Resp, want: &str) -> Result<(), String> {
    match r.header("docker-content-digest") {
        Some(d) if d == want => Ok(()),
        other => Err(format!("Docker-Content-Digest {other:?}, want {want}")),
    }
}

pub fn location(r: &crate::net::Resp) -> Result<String, String> {
    r.header("location")
        .map(location_path)
        .ok_or_else(|| format!("status {} without Location", r.status))
}
