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

use crate::args::Args;
use crate::limits::{fresh_dir, timed_threads};
use crate::util::random_bytes;

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
/// directory under DIR (`limits::fresh_dir`); `images_per_s` is the rate.
pub fn layout(a: &Args) -> Result<serde_json::Value, String> {
    let dir = a.str("dir")?.to_string();
    let threads: usize = a.num("threads", Some(16))?;
    let secs: f64 = a.num("secs", Some(3.0))?;
    let sub = fresh_dir(&dir, "layout-limit")?;
    let blob = random_bytes(16 * 1024, 5);
    let root = Path::new(&sub);
    let done = timed_threads(&dir, a.num("idle", Some(1.0))?, threads, secs, |t, n| {
        image(root, t, n, &blob).map_err(|e| e.to_string())
    })?;
    Ok(done.json(threads, "images"))
}
