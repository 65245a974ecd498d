//! podman push and pull against the registry under test, with podman's
//! storage in temporary directories.

use std::path::Path;
use std::process::Command;

use crate::clients::http;
use crate::procs::{run, write_tar, Entry};
use crate::{setup, MIB};

/// `podman` with private storage and state under `dir`.
fn podman(dir: &Path, args: &[&str]) -> String {
    run(podman_cmd(dir).args(args)).trim().to_string()
}

fn podman_cmd(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .args(["--storage-driver", "vfs", "--events-backend", "none"]);
    c
}

#[test]
fn podman_push_pull_round_trip() {
    let Some(s) = setup(&["podman"]) else { return };
    let dir = s.tmp.path().join("podman");
    let rootfs = s.tmp.path().join("rootfs.tar");
    write_tar(
        &rootfs,
        &[
            Entry::Random("opt/app.bin", 2 * MIB),
            Entry::Bytes("etc/greeting", b"pushed by podman\n"),
        ],
    );
    let image = format!("{}/pod/man/img:v1", s.reg.host());
    podman(&dir, &["import", rootfs.to_str().unwrap(), &image]);
    let id = podman(&dir, &["image", "inspect", "--format", "{{.Id}}", &image]);

    let digest_file = s.tmp.path().join("digest");
    podman(
        &dir,
        &[
            "push",
            "--tls-verify=false",
            "--digestfile",
            digest_file.to_str().unwrap(),
            &image,
        ],
    );
    let digest = std::fs::read_to_string(&digest_file).unwrap();
    let digest = digest.trim();
    assert!(digest.starts_with("sha256:"), "digestfile: {digest}");

    let head = http("HEAD", &s.reg.url("/v2/pod/man/img/manifests/v1")).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Docker-Content-Digest"), Some(digest));

    podman(&dir, &["rmi", "-f", &id]);
    let gone = crate::procs::output(podman_cmd(&dir).args(["image", "exists", &image]));
    assert!(!gone.status.success(), "image still present after rmi");

    podman(&dir, &["pull", "--tls-verify=false", &image]);
    assert_eq!(
        podman(
            &dir,
            &["image", "inspect", "--format", "{{.Digest}}", &image]
        ),
        digest,
        "digest of the pulled image"
    );
    assert_eq!(
        podman(&dir, &["image", "inspect", "--format", "{{.Id}}", &image]),
        id,
        "image ID (config digest) after pull"
    );

    let by_digest = format!("{}/pod/man/img@{digest}", s.reg.host());
    podman(&dir, &["rmi", "-f", &id]);
    podman(&dir, &["pull", "--tls-verify=false", &by_digest]);
    assert_eq!(
        podman(
            &dir,
            &["image", "inspect", "--format", "{{.Id}}", &by_digest]
        ),
        id
    );
}
