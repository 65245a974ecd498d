//! The pull-through cache end to end: a berth upstream and a berth mirror
//! (filesystem storage, 127.0.0.1) started by the test, driven with skopeo
//! and plain HTTP. Pulls by tag and digest and of a multi-arch index, local
//! pushes beside the mirror, a moved tag followed after the interval, the
//! upstream stopped (cache served), sixteen concurrent pulls of one
//! uncached 200 MiB blob counted at the upstream, corrupted upstream bytes,
//! a mirror on S3 storage (moto), and registry:2's `proxy` mode.

#![allow(clippy::unwrap_used)]

#[path = "common/clients.rs"]
mod clients;
#[path = "common/procs.rs"]
mod procs;
#[path = "common/s3.rs"]
mod s3;
mod mirror_client {
    pub mod support;
}
// dockerd, containerd and podman pulling docker.io through berth.
#[path = "interop/mirror_clients.rs"]
mod real_clients;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth::oci::digest::Digest;
use clients::{oci_layout_ref, OciLayout};
use mirror_client::support::seed_image;
use procs::{
    daemon_command, free_port, require_tool, run, run_fails, tempdir, wait_until, Entry, Proc,
};

/// A berth process with a config written by the test; stopped on drop.
struct Berth {
    port: u16,
    root: PathBuf,
    proc: Proc,
}

impl Berth {
    /// `berth serve` with filesystem storage at `root`, deletes on, the
    /// metrics on the main listener, and `tail` appended to the config.
    fn start(dir: &Path, root: &Path, tail: &str) -> Berth {
        let storage = format!("  filesystem:\n    rootdirectory: {}\n", root.display());
        Berth::start_on(dir, root, &storage, tail)
    }

    /// As [`Berth::start`], with `storage` (YAML under `storage:`, indented
    /// by two) as the storage driver; `root` is only remembered.
    fn start_on(dir: &Path, root: &Path, storage: &str, tail: &str) -> Berth {
        let port = free_port();
        let cfg = dir.join(format!("berth-{port}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n{storage}  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  debug:\n    prometheus:\n      enabled: true\n{tail}"
            ),
        )
        .unwrap();
        let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("serve").arg("--config").arg(&cfg);
        let mut proc = Proc::spawn("berth", cmd, &dir.join(format!("berth-{port}.log")));
        let url = format!("http://127.0.0.1:{port}/v2/");
        wait_until("berth to answer", Duration::from_secs(30), || {
            proc.assert_running();
            clients::http("GET", &url).is_ok()
        });
        Berth {
            port,
            root: root.to_path_buf(),
            proc,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A mirror of `upstream` under prefix `up`, tags rechecked after 1 s.
    fn mirror_of(dir: &Path, upstream: &Berth) -> Berth {
        let root = dir.join(format!("mirror-root-{}", upstream.port));
        Berth::start(
            dir,
            &root,
            &format!(
                "mirrors:\n  - prefix: up\n    remoteurl: {}\n    tagrevalidate: 1s\n",
                upstream.url("")
            ),
        )
    }

    /// The value of `berth_http_requests_total` for one route, method and code.
    fn requests(&self, route: &str, method: &str, code: &str) -> u64 {
        let r = clients::http("GET", &self.url("/metrics")).unwrap();
        let text = String::from_utf8_lossy(&r.body).to_string();
        let key = format!(
            "berth_http_requests_total{{route=\"{route}\",method=\"{method}\",code=\"{code}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

fn skopeo(args: &[&str]) -> Command {
    let mut c = Command::new("skopeo");
    c.args(args);
    c
}

fn copy(src: &str, dst: &str, all: bool) -> Command {
    let mut args = vec![
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ];
    if all {
        args.push("--all");
    }
    args.extend([src, dst]);
    skopeo(&args)
}

fn inspect_digest(image: &str) -> String {
    let out = run(&mut skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{image}"),
    ]));
    out.trim().to_string()
}

#[test]
fn mirror_skopeo_by_tag_digest_and_index_then_moved_tag_then_upstream_down() {
    if !require_tool("skopeo") {
        return;
    }
    let dir = tempdir("berth-mirror-");
    let upstream = Berth::start(dir.path(), &dir.path().join("up-root"), "");
    let mirror = Berth::mirror_of(dir.path(), &upstream);
    let (up, mh) = (upstream.host(), mirror.host());

    // The upstream gets a single image and a two-platform index.
    let mut layout = OciLayout::create(&dir.path().join("src"));
    let one = layout.image("amd64", &[vec![Entry::Random("a.bin", 300_000)]]);
    let arm = layout.image("arm64", &[vec![Entry::Random("b.bin", 200_000)]]);
    let index = layout.index(&[(one.clone(), "amd64"), (arm, "arm64")]);
    layout.tag(&one, "one");
    layout.tag(&index, "multi");
    let src = layout.dir.display().to_string();
    run(&mut copy(
        &format!("oci:{src}:one"),
        &format!("docker://{up}/team/app:1"),
        false,
    ));
    run(&mut copy(
        &format!("oci:{src}:multi"),
        &format!("docker://{up}/team/app:multi"),
        true,
    ));

    // By tag and by digest through the mirror.
    let out = dir.path().join("out");
    run(&mut copy(
        &format!("docker://{mh}/up/team/app:1"),
        &format!("oci:{}:a", out.display()),
        false,
    ));
    assert_eq!(oci_layout_ref(&out, "a").digest, one.digest);
    run(&mut copy(
        &format!("docker://{mh}/up/team/app@{}", one.digest),
        &format!("oci:{}:b", out.display()),
        false,
    ));
    assert_eq!(oci_layout_ref(&out, "b").digest, one.digest);
    // The multi-arch index and both platforms.
    run(&mut copy(
        &format!("docker://{mh}/up/team/app:multi"),
        &format!("oci:{}:m", out.display()),
        true,
    ));
    assert_eq!(oci_layout_ref(&out, "m").digest, index.digest);

    // Local pushes work beside the mirror; pushes into its prefix do not.
    run(&mut copy(
        &format!("oci:{src}:one"),
        &format!("docker://{mh}/mine/app:1"),
        false,
    ));
    let refused = run_fails(&mut copy(
        &format!("oci:{src}:one"),
        &format!("docker://{mh}/up/mine:1"),
        false,
    ));
    assert!(
        refused.contains("denied") || refused.contains("DENIED"),
        "{refused}"
    );

    // The tag moves upstream: followed once the 1 s interval has passed.
    let moved = layout.image("amd64", &[vec![Entry::Random("c.bin", 100_000)]]);
    layout.tag(&moved, "moved");
    run(&mut copy(
        &format!("oci:{src}:moved"),
        &format!("docker://{up}/team/app:1"),
        false,
    ));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inspect_digest(&format!("{mh}/up/team/app:1")), moved.digest);
    run(&mut copy(
        &format!("docker://{mh}/up/team/app:1"),
        &format!("oci:{}:c", out.display()),
        false,
    ));
    assert_eq!(oci_layout_ref(&out, "c").digest, moved.digest);

    // The upstream stops: the cache answers, tags still resolve.
    let mut upstream = upstream;
    upstream.proc.stop(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    run(&mut copy(
        &format!("docker://{mh}/up/team/app:1"),
        &format!("oci:{}:d", out.display()),
        false,
    ));
    assert_eq!(oci_layout_ref(&out, "d").digest, moved.digest);
    run(&mut copy(
        &format!("docker://{mh}/up/team/app:multi"),
        &format!("oci:{}:e", out.display()),
        true,
    ));
    assert_eq!(oci_layout_ref(&out, "e").digest, index.digest);
    // Never cached: a clear error, not a hang.
    let r = clients::http("GET", &mirror.url("/v2/up/team/app/manifests/never")).unwrap();
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("unreachable"));
}

/// Reads a blob through the mirror, comparing it with `expected` as it
/// arrives (a memcmp: hashing 16 × 200 MiB in a debug build takes minutes);
/// `Err` when the connection fails or the bytes differ.
fn pull_blob(url: &str, expected: &[u8]) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::get(url).await.map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("status {}", r.status()));
        }
        let mut n = 0usize;
        while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
            if expected.get(n..n + chunk.len()) != Some(&chunk[..]) {
                return Err(format!("bytes differ at {n}"));
            }
            n += chunk.len();
        }
        if n != expected.len() {
            return Err(format!("{n} bytes, expected {}", expected.len()));
        }
        Ok(())
    })
}

fn blob_file(root: &Path, d: &Digest) -> PathBuf {
    let hex = d.hex();
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

#[test]
fn mirror_sixteen_concurrent_pulls_of_an_uncached_200_mib_blob_reach_the_upstream_once() {
    let dir = tempdir("berth-mirror-");
    let up_root = dir.path().join("up-root");
    let img = seed_image(&up_root, "team/big", "1", 200 << 20);
    let upstream = Berth::start(dir.path(), &up_root, "");
    let mirror = Berth::mirror_of(dir.path(), &upstream);
    let url = mirror.url(&format!("/v2/up/team/big/blobs/{}", img.layer_digest));
    let before = upstream.requests("blob", "GET", "200");
    let layer = std::sync::Arc::new(img.layer.clone());
    let pulls: Vec<_> = (0..16)
        .map(|_| {
            let (url, layer) = (url.clone(), layer.clone());
            std::thread::spawn(move || pull_blob(&url, &layer))
        })
        .collect();
    for p in pulls {
        p.join().unwrap().unwrap();
    }
    assert_eq!(upstream.requests("blob", "GET", "200") - before, 1);
    // Stored: the next pull is a local hit, the upstream is not asked.
    wait_until("the blob to be stored", Duration::from_secs(30), || {
        blob_file(&mirror.root, &img.layer_digest).exists()
    });
    pull_blob(&url, &layer).unwrap();
    assert_eq!(upstream.requests("blob", "GET", "200") - before, 1);
}

#[test]
fn mirror_corrupted_upstream_bytes_store_nothing_and_the_client_fails() {
    let dir = tempdir("berth-mirror-");
    let up_root = dir.path().join("up-root");
    let img = seed_image(&up_root, "team/app", "1", 3 << 20);
    let data = blob_file(&up_root, &img.layer_digest);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[1 << 20] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let upstream = Berth::start(dir.path(), &up_root, "");
    let mirror = Berth::mirror_of(dir.path(), &upstream);
    let url = mirror.url(&format!("/v2/up/team/app/blobs/{}", img.layer_digest));
    // Compared with what the upstream sends, so the only failure left is
    // the connection's: the mirror never completes a download of bad bytes.
    let err = pull_blob(&url, &bytes).expect_err("bad bytes must not download successfully");
    assert!(
        !err.contains("bytes differ") && !err.starts_with("status"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!blob_file(&mirror.root, &img.layer_digest).exists());
    // Again: still refused, still nothing stored.
    pull_blob(&url, &bytes).expect_err("still corrupted");
    assert!(!blob_file(&mirror.root, &img.layer_digest).exists());
}

#[test]
fn mirror_registry2_proxy_mode_with_a_berth_upstream_via_skopeo() {
    if !require_tool("skopeo") {
        return;
    }
    let dir = tempdir("berth-mirror-");
    let up_root = dir.path().join("up-root");
    let img = seed_image(&up_root, "library/alpine", "3.20", 100_000);
    let upstream = Berth::start(dir.path(), &up_root, "");
    let proxy = Berth::start(
        dir.path(),
        &dir.path().join("proxy-root"),
        &format!("proxy:\n  remoteurl: {}\n", upstream.url("")),
    );
    let out = dir.path().join("out");
    run(&mut copy(
        &format!("docker://{}/library/alpine:3.20", proxy.host()),
        &format!("oci:{}:a", out.display()),
        false,
    ));
    assert_eq!(oci_layout_ref(&out, "a").digest, img.digest.to_string());
    let refused = run_fails(&mut copy(
        &format!("oci:{}:a", out.display()),
        &format!("docker://{}/library/mine:1", proxy.host()),
        false,
    ));
    assert!(
        refused.contains("unsupported") || refused.contains("UNSUPPORTED"),
        "{refused}"
    );
}

/// On an object store the spool is an unlinked file in
/// `mirrorfetch.spooldir`, copied into the bucket alongside: the blob lands
/// there, the spool directory stays empty, and with the upstream stopped
/// the blob is served from the bucket.
#[test]
fn mirror_on_s3_storage_copies_the_spool_into_the_bucket() {
    let Some(moto) = s3::moto() else {
        return;
    };
    let dir = tempdir("berth-mirror-");
    let up_root = dir.path().join("up-root");
    let img = seed_image(&up_root, "team/app", "1", 6 << 20);
    let upstream = Berth::start(dir.path(), &up_root, "");
    let prefix = s3::fresh_root("mirror");
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let storage = format!(
        "  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {}\n    regionendpoint: {}\n\
         \x20   bucket: {}\n    rootdirectory: /{prefix}\n",
        moto.access_key,
        moto.secret_key,
        moto.region,
        moto.endpoint,
        s3::BUCKET
    );
    let tail = format!(
        "mirrors:\n  - prefix: up\n    remoteurl: {}\nmirrorfetch:\n  spooldir: {}\n",
        upstream.url(""),
        spool.display()
    );
    let mirror = Berth::start_on(dir.path(), &dir.path().join("unused"), &storage, &tail);
    let url = mirror.url(&format!("/v2/up/team/app/blobs/{}", img.layer_digest));
    pull_blob(&url, &img.layer).unwrap();
    let hex = img.layer_digest.hex().to_string();
    let key = format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]);
    wait_until("the blob in the bucket", Duration::from_secs(30), || {
        moto.object_keys(&prefix).iter().any(|k| k.ends_with(&key))
    });
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    drop(upstream);
    pull_blob(&url, &img.layer).unwrap();
}
