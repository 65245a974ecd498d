//! Real container clients pulling `docker.io` images through berth, with a
//! berth upstream holding `library/alpine` (pushed by skopeo from an OCI
//! layout built here). docker.io itself is unreachable from the tests, so a
//! successful pull proves the mirror served it: dockerd with
//! `--registry-mirror` (registry:2's `proxy` mode), containerd's `ctr` with
//! a `hosts.toml` (berth's `mirrors:` entry with `hosts: [docker.io]`, so
//! `?ns=docker.io`), and podman with a `registries.conf` mirror.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::clients::{Desc, OciLayout};
use super::procs::{
    daemon_command, output, require_tools, run, tempdir, wait_until, Dockerd, Entry, Proc,
};
use super::{copy, Berth};

/// The platform the host's clients pull.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

/// An upstream berth holding `library/alpine:TAG`: (upstream, manifest).
fn upstream_with_alpine(dir: &Path, tag: &str) -> (Berth, Desc) {
    let upstream = Berth::start(dir, &dir.join("up-root"), "");
    let mut layout = OciLayout::create(&dir.join("src"));
    let img = layout.image(
        arch(),
        &[vec![
            Entry::Bytes("etc/alpine-release", b"3.99.0\n"),
            Entry::Random("bin/payload", 300_000),
        ]],
    );
    layout.tag(&img, tag);
    run(&mut copy(
        &format!("oci:{}:{tag}", layout.dir.display()),
        &format!("docker://{}/library/alpine:{tag}", upstream.host()),
        false,
    ));
    (upstream, img)
}

/// True when `root` (a berth filesystem root) holds manifest `digest` in
/// `repo`.
fn cached(root: &Path, repo: &str, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    let found = root
        .join("docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/revisions/sha256")
        .join(hex)
        .join("link")
        .exists();
    if !found {
        let _ = Command::new("find").arg(root).status();
    }
    found
}

#[test]
fn mirror_dockerd_registry_mirror_pulls_docker_io_through_proxy_mode() {
    if !require_tools(&["dockerd", "docker", "skopeo"]) {
        return;
    }
    let dir = tempdir("berth-mirror-dockerd-");
    let tag = "3.99-berth";
    let (upstream, img) = upstream_with_alpine(dir.path(), tag);
    let proxy_root = dir.path().join("proxy-root");
    let proxy = Berth::start(
        dir.path(),
        &proxy_root,
        &format!("proxy:\n  remoteurl: {}\n", upstream.url("")),
    );
    let mirror_url = proxy.url("");
    let dockerd = Dockerd::start_with(&["--registry-mirror", &mirror_url]);
    // `alpine` is docker.io/library/alpine: dockerd asks its mirror first
    // and docker.io (unreachable here) only when the mirror fails.
    dockerd.run(&["pull", &format!("alpine:{tag}")]);
    let digests = dockerd.inspect(&format!("alpine:{tag}"), "{{json .RepoDigests}}");
    assert!(digests.contains(&img.digest), "{digests} vs {}", img.digest);
    assert!(cached(&proxy_root, "library/alpine", &img.digest));
}

/// dockerd resolves a tag with `HEAD` and then fetches by digest; the tag
/// must still be in the cache when the upstream is down afterwards (issue
/// 15, item 6).
#[test]
fn mirror_dockerd_pulls_a_cached_tag_with_the_upstream_down() {
    if !require_tools(&["dockerd", "docker", "skopeo"]) {
        return;
    }
    let dir = tempdir("berth-mirror-dockerd-");
    let tag = "3.99-berth";
    let (upstream, img) = upstream_with_alpine(dir.path(), tag);
    let proxy = Berth::start(
        dir.path(),
        &dir.path().join("proxy-root"),
        &format!("proxy:\n  remoteurl: {}\n", upstream.url("")),
    );
    let mirror_url = proxy.url("");
    let dockerd = Dockerd::start_with(&["--registry-mirror", &mirror_url]);
    dockerd.run(&["pull", &format!("alpine:{tag}")]);
    dockerd.run(&["rmi", &format!("alpine:{tag}")]);
    drop(upstream);
    dockerd.run(&["pull", &format!("alpine:{tag}")]);
    let digests = dockerd.inspect(&format!("alpine:{tag}"), "{{json .RepoDigests}}");
    assert!(digests.contains(&img.digest), "{digests}");
}

/// A private containerd (its own root, state and socket, CRI off).
struct Containerd {
    sock: String,
    _proc: Proc,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let d = dir.join("containerd");
        std::fs::create_dir_all(&d).unwrap();
        let sock = d.join("containerd.sock").display().to_string();
        let cfg = d.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n\
                 [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  address = \"\"\n\
                 [metrics]\n  address = \"\"\n",
                root = d.join("root").display(),
                state = d.join("state").display(),
            ),
        )
        .unwrap();
        let mut cmd = daemon_command("containerd");
        cmd.arg("--config").arg(&cfg);
        let mut proc = Proc::spawn("containerd", cmd, &d.join("containerd.log"));
        let probe = sock.clone();
        wait_until("containerd to answer", Duration::from_secs(60), || {
            proc.assert_running();
            output(Command::new("ctr").args(["--address", &probe, "version"]))
                .status
                .success()
        });
        Containerd { sock, _proc: proc }
    }

    fn ctr(&self, args: &[&str]) -> String {
        run(Command::new("ctr")
            .args(["--address", &self.sock, "--namespace", "berth-test"])
            .args(args))
    }
}

#[test]
fn mirror_containerd_hosts_toml_pulls_docker_io_with_ns() {
    if !require_tools(&["containerd", "ctr", "skopeo"]) {
        return;
    }
    let dir = tempdir("berth-mirror-ctr-");
    let tag = "3.99-berth";
    let (upstream, img) = upstream_with_alpine(dir.path(), tag);
    let mirror_root = dir.path().join("mirror-root");
    let mirror = Berth::start(
        dir.path(),
        &mirror_root,
        &format!(
            "mirrors:\n  - prefix: dockerhub\n    remoteurl: {}\n    hosts: [docker.io]\n",
            upstream.url("")
        ),
    );
    // containerd's hosts.toml for docker.io: berth first, docker.io (not
    // reachable here) as the fallback server.
    let hosts = dir.path().join("hosts");
    std::fs::create_dir_all(hosts.join("docker.io")).unwrap();
    std::fs::write(
        hosts.join("docker.io/hosts.toml"),
        format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            mirror.url("")
        ),
    )
    .unwrap();
    let containerd = Containerd::start(dir.path());
    let hosts_dir = hosts.display().to_string();
    let image = format!("docker.io/library/alpine:{tag}");
    containerd.ctr(&[
        "images",
        "pull",
        "--hosts-dir",
        &hosts_dir,
        "--snapshotter",
        "native",
        &image,
    ]);
    let listed = containerd.ctr(&["images", "ls"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&image))
        .unwrap_or_else(|| panic!("{image} not listed:\n{listed}"));
    assert!(line.contains(&img.digest), "{line} vs {}", img.digest);
    // `/v2/library/alpine/...?ns=docker.io` landed in the entry's cache name.
    assert!(cached(
        &mirror_root,
        "dockerhub/library/alpine",
        &img.digest
    ));
    assert!(!mirror_root
        .join("docker/registry/v2/repositories/library")
        .exists());
}

#[test]
fn mirror_podman_registries_conf_mirror_pulls_docker_io() {
    if !require_tools(&["podman", "skopeo"]) {
        return;
    }
    let dir = tempdir("berth-mirror-podman-");
    let tag = "3.99-berth";
    let (upstream, img) = upstream_with_alpine(dir.path(), tag);
    let mirror_root = dir.path().join("mirror-root");
    let mirror = Berth::start(
        dir.path(),
        &mirror_root,
        &format!(
            "mirrors:\n  - prefix: dockerhub\n    remoteurl: {}\n",
            upstream.url("")
        ),
    );
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n\
             [[registry.mirror]]\nlocation = \"{}/dockerhub\"\ninsecure = true\n",
            mirror.host()
        ),
    )
    .unwrap();
    let root = dir.path().join("podman-root");
    let runroot = dir.path().join("podman-run");
    let podman = |args: &[&str]| {
        run(Command::new("podman")
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .args(args))
    };
    podman(&["pull", &format!("docker.io/library/alpine:{tag}")]);
    let digest = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Digest}}",
        &format!("docker.io/library/alpine:{tag}"),
    ]);
    assert_eq!(digest.trim(), img.digest);
    assert!(cached(
        &mirror_root,
        "dockerhub/library/alpine",
        &img.digest
    ));
}
