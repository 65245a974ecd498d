//! The machine's limits, measured in the same run: sha256, dd with fsync,
//! the 16-thread fsync rate; and process memory.

use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::blob::settle;
use crate::util::{mbps, random_bytes, round, Window, GIB};

/// sha256 (the `sha2` crate berth uses) over SIZE bytes in memory, 1 MiB
/// updates.
pub fn hash(a: &Args) -> Result<serde_json::Value, String> {
    let size: usize = a.num("size", None)?;
    let seed: u64 = a.num("seed", Some(7))?;
    let data = random_bytes(size, seed);
    let me = [std::process::id()];
    let w = Window::start(&me)?;
    let mut h = Sha256::new();
    for c in data.chunks(1 << 20) {
        h.update(c);
    }
    let d = h.finalize();
    let end = w.end()?;
    Ok(json!({
        "bytes": size, "digest_prefix": crate::util::hex(&d[..4]),
        "secs": round(end.secs, 3),
        "mbps": round(mbps(size as f64, end.secs), 1),
        "cpu_s_per_gib": round(end.server_cpu_s / (size as f64 / GIB), 3),
        "machine_busy": round(end.machine_busy, 3),
        "errors": 0,
    }))
}

/// `sync -f DIR`, idle, then `dd if=/dev/zero of=DIR/... bs=16M count=N/16
/// conv=fsync` timed from start to exit (fsync included).
pub fn dd(a: &Args) -> Result<serde_json::Value, String> {
    let dir = a.str("dir")?;
    let mib: u64 = a.num("mib", None)?;
    let idle: f64 = a.num("idle", Some(3.0))?;
    let file = format!("{dir}/dd-limit.tmp");
    settle(Some(dir), idle)?;
    let w = Window::start(&[])?;
    let out = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={file}"),
            "bs=16M",
            &format!("count={}", mib.div_ceil(16)),
            "conv=fsync",
        ])
        .output()
        .map_err(|e| format!("dd: {e}"))?;
    let end = w.end()?;
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        return Err(format!(
            "dd failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let bytes = mib.div_ceil(16) * 16 * 1024 * 1024;
    Ok(json!({
        "bytes": bytes,
        "secs": round(end.secs, 3),
        "mbps": round(mbps(bytes as f64, end.secs), 1),
        "machine_busy": round(end.machine_busy, 3),
        "errors": 0,
    }))
}

/// A fresh directory `<dir>/<name>-<pid>-<nanos>` for one limit run, left
/// in place: deleting thousands of files here would make the next
/// measurement on this filesystem pay for them (ext4 without a journal
/// skips inodes freed in the last 5-305 s at every allocation). bench/run
/// removes its work directory after the last measurement.
pub fn fresh_dir(dir: &str, name: &str) -> Result<String, String> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let sub = format!("{dir}/{name}-{}-{stamp}", std::process::id());
    std::fs::create_dir_all(&sub).map_err(|e| format!("{sub}: {e}"))?;
    Ok(sub)
}

/// What `threads` threads running one operation after another did.
pub struct Threaded {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub machine_busy: f64,
}

impl Threaded {
    /// The JSON line of a limit: `threads`, the count as `<unit>` and its
    /// rate as `<unit>_per_s`, the window and the errors.
    pub fn json(self, threads: usize, unit: &str) -> serde_json::Value {
        let mut out = json!({
            "threads": threads,
            (unit): self.ops,
            (format!("{unit}_per_s")): round(self.ops as f64 / self.secs, 1),
            "secs": round(self.secs, 3),
            "machine_busy": round(self.machine_busy, 3),
            "errors": self.errors,
        });
        if let Some(e) = self.first_error {
            out["error"] = json!(e);
        }
        out
    }
}

/// Runs `op(thread, n)` in `threads` threads for `secs` seconds (at most a
/// million times each), after `sync -f dir` and `idle` seconds, so that it
/// starts from a clean filesystem as the storm sides do. A thread stops at
/// its first error.
pub fn timed_threads(
    dir: &str,
    idle: f64,
    threads: usize,
    secs: f64,
    op: impl Fn(usize, u64) -> Result<(), String> + Sync,
) -> Result<Threaded, String> {
    settle(Some(dir), idle)?;
    let w = Window::start(&[])?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let op = &op;
                s.spawn(move || -> Result<u64, String> {
                    let mut n = 0u64;
                    while Instant::now() < deadline && n < 1_000_000 {
                        op(t, n)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let end = w.end()?;
    let mut done = Threaded {
        ops: 0,
        errors: 0,
        first_error: None,
        secs: end.secs,
        machine_busy: end.machine_busy,
    };
    for r in results {
        match r {
            Ok(n) => done.ops += n,
            Err(e) => {
                done.errors += 1;
                done.first_error.get_or_insert(e);
            }
        }
    }
    Ok(done)
}

/// THREADS threads, each: create a file, write 16 KiB, fsync, rename; the
/// rate of such durable small writes on the storage filesystem.
pub fn fsync(a: &Args) -> Result<serde_json::Value, String> {
    let dir = a.str("dir")?.to_string();
    let threads: usize = a.num("threads", Some(16))?;
    let secs: f64 = a.num("secs", Some(3.0))?;
    let sub = fresh_dir(&dir, "fsync-limit")?;
    let payload = random_bytes(16 * 1024, 3);
    let done = timed_threads(&dir, a.num("idle", Some(1.0))?, threads, secs, |t, n| {
        let tmp = format!("{sub}/t{t}-{n}.tmp");
        let fin = format!("{sub}/t{t}-{n}");
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{e}"))?;
        f.write_all(&payload).map_err(|e| format!("{e}"))?;
        f.sync_all().map_err(|e| format!("{e}"))?;
        std::fs::rename(&tmp, &fin).map_err(|e| format!("{e}"))
    })?;
    Ok(done.json(threads, "ops"))
}

/// VmRSS and VmHWM of a process, MiB.
pub fn rss(a: &Args) -> Result<serde_json::Value, String> {
    let pid = a.str("pid")?;
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> Result<f64, String> {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| round(kb / 1024.0, 1))
            .ok_or_else(|| format!("/proc/{pid}/status: no {name}"))
    };
    Ok(json!({ "vmrss_mib": field("VmRSS:")?, "vmhwm_mib": field("VmHWM:")?, "errors": 0 }))
}
