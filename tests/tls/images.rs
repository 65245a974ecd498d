//! Image clients over TLS, verifying berth's certificate with the CA from
//! `berth cert` (no tls-verify=false anywhere): skopeo, podman, docker.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::clients::OciLayout;
use crate::procs::{
    random_bytes, require_tools, run, run_fails, write_tar, DockerCertsD, Dockerd, Entry,
};
use crate::TlsRegistry;

/// A directory holding only `ca.crt`: what `--cert-dir` wants (a `.key`
/// without a matching `.cert` there would be taken for a broken client
/// certificate).
fn ca_only_dir(reg: &TlsRegistry) -> PathBuf {
    let dir = reg.tmp.path().join("trust");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(reg.ca(), dir.join("ca.crt")).unwrap();
    dir
}

#[test]
fn skopeo_copies_and_inspects_verifying_the_ca() {
    if !require_tools(&["skopeo", "curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("");
    let trust = ca_only_dir(&reg);
    let trust = trust.to_str().unwrap();
    let data = random_bytes(256 * 1024);
    let mut src = OciLayout::create(&reg.tmp.path().join("src"));
    let m = src.image("amd64", &[vec![Entry::Bytes("bin/data", &data)]]);
    assert!(m.digest.starts_with("sha256:"));
    src.tag(&m, "v1");
    let src_ref = format!("oci:{}:v1", src.dir.display());
    let dest = format!("docker://{}/tls/skopeo:v1", reg.host());

    // No CA: the copy fails on the certificate, nothing is pushed.
    let err = run_fails(Command::new("skopeo").args(["copy", &src_ref, &dest]));
    assert!(err.contains("certificate"), "skopeo without the CA: {err}");

    run(Command::new("skopeo").args(["copy", "--dest-cert-dir", trust, &src_ref, &dest]));
    let inspect: Value = serde_json::from_str(&run(Command::new("skopeo").args([
        "inspect",
        "--cert-dir",
        trust,
        &dest,
    ])))
    .unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    // skopeo compresses the layers on the way, so compare with what berth
    // serves (over TLS too) rather than with the local manifest.
    let ca = reg.ca();
    let head = crate::curl_ok(&[
        "--cacert",
        ca.to_str().unwrap(),
        "-I",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &reg.url("/v2/tls/skopeo/manifests/v1"),
    ])
    .to_ascii_lowercase();
    let digest = inspect["Digest"].as_str().unwrap();
    assert!(
        head.contains(&format!("docker-content-digest: {digest}")),
        "{head}"
    );
    run_fails(Command::new("skopeo").args(["inspect", &dest]));
}

/// `podman` with private storage under `dir`.
fn podman(dir: &Path) -> Command {
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
fn podman_push_pull_with_cert_dir() {
    if !require_tools(&["podman", "curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("");
    let trust = ca_only_dir(&reg);
    let trust = trust.to_str().unwrap();
    let dir = reg.tmp.path().join("podman");
    let rootfs = reg.tmp.path().join("rootfs.tar");
    write_tar(
        &rootfs,
        &[Entry::Bytes("etc/greeting", b"pushed over TLS\n")],
    );
    let image = format!("{}/tls/podman:v1", reg.host());
    run(podman(&dir).args(["import", rootfs.to_str().unwrap(), &image]));
    let id = run(podman(&dir).args(["image", "inspect", "--format", "{{.Id}}", &image]));

    let err = run_fails(podman(&dir).args(["push", &image]));
    assert!(
        err.contains("certificate"),
        "podman push without the CA: {err}"
    );
    run(podman(&dir).args(["push", "--cert-dir", trust, &image]));
    run(podman(&dir).args(["rmi", "-f", id.trim()]));
    run(podman(&dir).args(["pull", "--cert-dir", trust, &image]));
    let again = run(podman(&dir).args(["image", "inspect", "--format", "{{.Id}}", &image]));
    assert_eq!(again.trim(), id.trim(), "image ID after pull over TLS");
}

/// Pushes `image` through `dk`, removes it locally and pulls it back.
fn docker_round_trip(dk: &Dockerd, image: &str, rootfs: &Path) {
    dk.run(&["import", rootfs.to_str().unwrap(), image]);
    let id = dk.inspect(image, "{{.Id}}");
    let (digest, _) = dk.push(image);
    dk.run(&["rmi", "-f", &id]);
    let out = dk.run(&["pull", image]);
    assert!(out.contains(&digest), "pull output lacks {digest}:\n{out}");
    assert_eq!(dk.inspect(image, "{{.Id}}"), id, "image ID after pull");
}

#[test]
fn docker_push_pull_over_tls() {
    if !require_tools(&["docker", "dockerd", "curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start("");
    let dk = Dockerd::start();
    let rootfs = reg.tmp.path().join("rootfs.tar");
    write_tar(
        &rootfs,
        &[Entry::Bytes("etc/greeting", b"docker over TLS\n")],
    );

    // By name, with the CA where dockerd looks for it. The port speaks only
    // TLS (plain HTTP gets a 400), so a push that works went over TLS.
    let host = format!("localhost:{}", reg.port);
    let _ca = DockerCertsD::install(&host, &reg.ca());
    docker_round_trip(&dk, &format!("{host}/tls/docker:v1"), &rootfs);
    let log = reg.log();
    assert!(
        log.lines().any(|l| l.contains("https{")
            && l.contains("PUT")
            && l.contains("/v2/tls/docker/manifests/v1")),
        "no manifest PUT over TLS in berth's log:\n{log}"
    );
    assert!(
        !log.contains("plain HTTP request"),
        "docker fell back to plain HTTP:\n{log}"
    );
}

#[test]
fn docker_login_push_pull_over_tls() {
    if !require_tools(&["docker", "dockerd", "curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start_with(|certs| {
        let users = certs.join("htpasswd");
        berth::auth::htpasswd::add_user(&users, "tlsuser", "tls-pass", 4).unwrap();
        format!(
            "auth:\n  htpasswd:\n    realm: tls\n    path: {}\n",
            users.display()
        )
    });
    let dk = Dockerd::start();
    let host = format!("localhost:{}", reg.port);
    let _ca = DockerCertsD::install(&host, &reg.ca());
    let login = |password: &str| dk.login(&host, "tlsuser", password);
    assert!(!login("wrong"), "a wrong password must not log in");
    assert!(login("tls-pass"), "docker login over TLS");
    let rootfs = reg.tmp.path().join("rootfs.tar");
    write_tar(&rootfs, &[Entry::Bytes("etc/who", b"logged in over TLS\n")]);
    docker_round_trip(&dk, &format!("{host}/tls/login:v1"), &rootfs);
    let log = reg.log();
    assert!(
        log.lines().any(|l| l.contains("https{")
            && l.contains("user=\"tlsuser\"")
            && l.contains("client=\"127.0.0.1\"")
            && l.contains("PUT")),
        "no authenticated PUT over TLS, with its client, in berth's log:\n{log}"
    );
}
