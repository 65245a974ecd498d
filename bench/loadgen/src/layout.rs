//! A second limit for the push storm: the file-system work distribution's
//! layout asks of one small image, done by 16 plain threads with no HTTP,
//! no hashing and no registry. The limit (`limits::fsync`) counts
//! four file creations per image; the layout needs those four durable
//! files plus about a dozen directories and five more small files, and on
//! ext4 a new directory (inode and directory block) costs more than a
//! small fsynced file. Reported next to the limit, not instead.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::args::Args;
use crate::util::{random_bytes, round, Window};

/// One file, written through a temp name and renamed (as berth and the
/// fsync limit do), fsynced when `durable`.
fn put(dir: &Path, name: &str, content: &[u8], durable: bool) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{name}"));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(content)?;
    if durable {
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))
}

/// The layout of image `n` of thread `t` under `root`: two blobs (data
/// durable, layer link), the manifest (data durable, revision link), the
/// tag (index entry, current link durable): four fsyncs, as the issue's
/// limit counts.
fn image(root: &Path, t: usize, n: u64, blob: &[u8]) -> std::io::Result<()> {
    let repo = root.join(format!("repositories/t{t}"));
    let digest = |k: u64| format!("{:016x}{:016x}{:032x}", t, n, k);
    for k in 0..2 {
        let d = digest(k);
        put(
            &root.join(format!("blobs/sha256/{}/{d}", &d[30..32])),
            "data",
            blob,
            true,
        )?;
        let link = format!("sha256:{d}");
        put(
            &repo.join(format!("_layers/sha256/{d}")),
            "link",
            link.as_bytes(),
            false,
        )?;
    }
    let m = digest(2);
    let link = format!("sha256:{m}");
    put(
        &root.join(format!("blobs/sha256/{}/{m}", &m[30..32])),
        "data",
        &blob[..425],
        true,
    )?;
    put(
        &repo.join(format!("_manifests/revisions/sha256/{m}")),
        "link",
        link.as_bytes(),
        false,
    )?;
    let tag = repo.join(format!("_manifests/tags/i{n}"));
    put(
        &tag.join(format!("index/sha256/{m}")),
        "link",
        link.as_bytes(),
        false,
    )?;
    put(&tag.join("current"), "link", link.as_bytes(), true)
}

/// THREADS threads writing image layouts for SECS seconds in a fresh
/// directory under DIR (left in place, as `limits::fsync` explains);
/// `images_per_s` is the rate.
pub fn layout(a: &Args) -> Result<serde_json::Value, String> {
    let dir = a.str("dir")?.to_string();
    let threads: usize = a.num("threads", Some(16))?;
    let secs: f64 = a.num("secs", Some(3.0))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let sub = format!("{dir}/layout-limit-{}-{stamp}", std::process::id());
    fs::create_dir_all(&sub).map_err(|e| format!("{sub}: {e}"))?;
    let blob = random_bytes(16 * 1024, 5);
    // From a clean filesystem, as the storm sides start.
    crate::blob::settle(Some(&dir), a.num("idle", Some(1.0))?)?;
    let w = Window::start(&[])?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (root, blob) = (Path::new(&sub), &blob);
                s.spawn(move || -> Result<u64, String> {
                    let mut n = 0u64;
                    while Instant::now() < deadline && n < 1_000_000 {
                        image(root, t, n, blob).map_err(|e| e.to_string())?;
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
    let (mut images, mut errors, mut first_error) = (0u64, 0u64, None);
    for r in results {
        match r {
            Ok(n) => images += n,
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let mut out = json!({
        "threads": threads, "images": images,
        "secs": round(end.secs, 3),
        "images_per_s": round(images as f64 / end.secs, 1),
        "machine_busy": round(end.machine_busy, 3),
        "errors": errors,
    });
    if let Some(e) = first_error {
        out["error"] = json!(e);
    }
    Ok(out)
}
