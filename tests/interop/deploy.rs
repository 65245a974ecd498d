//! berth's container image, built by scripts/build-image.sh from the binary
//! under test (no base image), run by a private dockerd on the host's
//! network and driven by docker itself: push and pull through it, its
//! HEALTHCHECK, a restart on the same volume with a mounted config file,
//! `REGISTRY_*` variables, `garbage-collect` in a container, and the
//! unprivileged user owning what it writes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::clients::http;
use crate::procs::{free_port, require_tools, run, tempdir, wait_until, write_tar, Dockerd, Entry};

/// The uid and gid berth runs as in its image.
const BERTH_UID: u32 = 65532;

/// Containers and the volume of one test, removed before the daemon stops
/// (containers outlive a killed dockerd otherwise).
struct Cleanup<'a> {
    dk: &'a Dockerd,
    containers: Vec<String>,
    volume: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.dk.docker().args(["rm", "-f", c]).output();
        }
        let _ = self
            .dk
            .docker()
            .args(["volume", "rm", "-f", &self.volume])
            .output();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Waits until `GET base/v2/` answers 200.
fn wait_serving(base: &str) {
    wait_until(
        "the container to serve /v2/",
        Duration::from_secs(60),
        || http("GET", &format!("{base}/v2/")).is_ok_and(|r| r.status == 200),
    );
}

#[test]
fn container_image_serves_restarts_and_collects() {
    if !require_tools(&["docker", "dockerd", "ldd"]) {
        return;
    }
    let dk = Dockerd::start();
    let tmp = tempdir("berth-image-");
    let tag = "berth-under-test:it";
    let out = run(Command::new("bash")
        .arg(repo_root().join("scripts/build-image.sh"))
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg(tag)
        .env("DOCKER_HOST", dk.host()));
    eprintln!("{}", out.trim());
    assert_eq!(
        dk.inspect(tag, "{{.Config.User}}"),
        format!("{BERTH_UID}:{BERTH_UID}"),
        "the image runs as the unprivileged user"
    );

    // The shipped configuration is clean: no unknown or unimplemented key.
    let check = dk.run(&[
        "run",
        "--rm",
        tag,
        "config",
        "check",
        "--strict",
        "/etc/docker/registry/config.yml",
    ]);
    assert!(
        check.contains("rootdirectory: /var/lib/registry"),
        "{check}"
    );

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cleanup = Cleanup {
        dk: &dk,
        containers: vec![format!("berth-it-{port}-a"), format!("berth-it-{port}-b")],
        volume: format!("berth-it-{port}"),
    };
    let volume = format!("{}:/var/lib/registry", cleanup.volume);

    // First life: configured by REGISTRY_* variables only.
    dk.run(&[
        "run",
        "-d",
        "--name",
        &cleanup.containers[0],
        "--network",
        "host",
        "--health-interval",
        "1s",
        "-e",
        &format!("REGISTRY_HTTP_ADDR=127.0.0.1:{port}"),
        "-v",
        &volume,
        tag,
    ]);
    wait_serving(&base);
    wait_until("the HEALTHCHECK to pass", Duration::from_secs(60), || {
        let status = dk.run(&[
            "inspect",
            "-f",
            "{{.State.Health.Status}}",
            &cleanup.containers[0],
        ]);
        status.trim() == "healthy"
    });

    let rootfs = tmp.path().join("rootfs.tar");
    write_tar(
        &rootfs,
        &[Entry::Bytes("hello.txt", b"from berth's image\n")],
    );
    let image = format!("127.0.0.1:{port}/team/app:1.0");
    dk.run(&["import", rootfs.to_str().unwrap(), &image]);
    let (digest, _) = dk.push(&image);
    let id = dk.inspect(&image, "{{.Id}}");
    dk.run(&["rmi", "-f", &id]);
    dk.run(&["pull", &image]);
    assert_eq!(
        dk.inspect(&image, "{{.Id}}"),
        id,
        "pulled through the container"
    );

    // What it wrote belongs to the unprivileged user.
    let mountpoint = dk.run(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}}",
        &cleanup.volume,
    ]);
    let blobs = Path::new(mountpoint.trim()).join("docker/registry/v2/blobs");
    let meta = std::fs::metadata(&blobs).expect("blobs directory in the volume");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (BERTH_UID, BERTH_UID),
        "owner of {blobs:?}"
    );

    // Second life on the same volume, configured by a mounted config file
    // (registry:2's path), with deletes enabled there.
    dk.run(&["rm", "-f", &cleanup.containers[0]]);
    let port2 = free_port();
    let base2 = format!("http://127.0.0.1:{port2}");
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port2}\n"
        ),
    )
    .unwrap();
    dk.run(&[
        "run",
        "-d",
        "--name",
        &cleanup.containers[1],
        "--network",
        "host",
        "-v",
        &volume,
        "-v",
        &format!("{}:/etc/docker/registry/config.yml:ro", config.display()),
        tag,
    ]);
    wait_serving(&base2);
    let head = http("HEAD", &format!("{base2}/v2/team/app/manifests/1.0")).unwrap();
    assert_eq!(head.status, 200, "the image survived the restart");
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    let del = http("DELETE", &format!("{base2}/v2/team/app/manifests/{digest}")).unwrap();
    assert_eq!(del.status, 202, "deletes enabled by the mounted config");
    dk.run(&["rm", "-f", &cleanup.containers[1]]);

    // garbage-collect in a container on the same volume frees the layers.
    let gc = dk.run(&["run", "--rm", "-v", &volume, tag, "garbage-collect"]);
    assert!(
        gc.contains("deleted blob sha256:"),
        "garbage-collect output:\n{gc}"
    );
}

/// The root Dockerfile's runtime stage is the one scripts/build-image.sh
/// builds: the same instructions after `FROM scratch`, but where the files
/// come from.
#[test]
fn dockerfile_runtime_stage_matches_the_local_image() {
    let read = |p: &str| std::fs::read_to_string(repo_root().join(p)).unwrap();
    let runtime_stage = |text: &str| -> Vec<String> {
        let start = text.find("FROM scratch").expect("a FROM scratch stage");
        text[start..]
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                l.replace("--from=build ", "")
                    .replace("/rootfs/", "rootfs/")
            })
            .collect()
    };
    assert_eq!(
        runtime_stage(&read("Dockerfile")),
        runtime_stage(&read("deploy/image/Dockerfile.runtime"))
    );
}

/// The systemd unit passes `systemd-analyze verify` (syntax, known options,
/// an executable ExecStart) with ExecStart pointing at the binary under test.
#[test]
fn systemd_unit_verifies() {
    if !require_tools(&["systemd-analyze"]) {
        return;
    }
    let tmp = tempdir("berth-unit-");
    let unit = std::fs::read_to_string(repo_root().join("deploy/systemd/berth.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/berth serve"),
        "{unit}"
    );
    for key in [
        "DynamicUser=yes",
        "StateDirectory=berth",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecReload=",
    ] {
        assert!(unit.contains(key), "the unit lacks {key}");
    }
    let path = tmp.path().join("berth.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/berth", env!("CARGO_BIN_EXE_berth")),
    )
    .unwrap();
    let out = Command::new(crate::procs::find_tool("systemd-analyze").unwrap())
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("berth.service"),
        "systemd-analyze verify:\n{stderr}"
    );
}
