//! docker CLI + a private dockerd against the registry under test.

use crate::clients::{http, write_docker_archive};
use crate::procs::{write_tar, Dockerd, Entry, Server};
use crate::{setup, setup_with, RegistryOpts, MIB};

const DOCKER: &[&str] = &["docker", "dockerd"];

#[test]
fn docker_push_pull_round_trip() {
    let Some(s) = setup(DOCKER) else { return };
    let dk = Dockerd::start();
    let rootfs = s.tmp.path().join("rootfs.tar");
    write_tar(
        &rootfs,
        &[
            Entry::Random("data/blob.bin", 3 * MIB),
            Entry::Bytes("hello.txt", b"hello from berth\n"),
        ],
    );
    let image = format!("{}/a/b/c:tag", s.reg.host());
    dk.run(&["import", rootfs.to_str().unwrap(), &image]);
    let id = dk.inspect(&image, "{{.Id}}");

    let (digest, _) = dk.push(&image);
    assert!(digest.starts_with("sha256:"), "push digest {digest}");

    let head = http("HEAD", &s.reg.url("/v2/a/b/c/manifests/tag")).unwrap();
    assert_eq!(head.status, 200, "HEAD manifest by tag");
    assert_eq!(head.header("Docker-Content-Digest"), Some(digest.as_str()));

    dk.run(&["rmi", "-f", &id]);
    crate::procs::run_fails(dk.docker().args(["image", "inspect", &image]));

    let out = dk.run(&["pull", &image]);
    assert!(out.contains(&digest), "pull output lacks {digest}:\n{out}");
    assert_eq!(dk.inspect(&image, "{{.Id}}"), id, "image ID after pull");
    let repo_digests = dk.inspect(&image, "{{json .RepoDigests}}");
    let want = format!("{}/a/b/c@{digest}", s.reg.host());
    assert!(
        repo_digests.contains(&want),
        "RepoDigests {repo_digests} lacks {want}"
    );

    // By digest too, after removing the image again.
    dk.run(&["rmi", "-f", &id]);
    dk.run(&["pull", &want]);
    assert_eq!(
        dk.inspect(&want, "{{.Id}}"),
        id,
        "image ID after pull by digest"
    );
}

#[test]
fn docker_large_multi_layer_image() {
    let Some(s) = setup(DOCKER) else { return };
    let dk = Dockerd::start();
    let image = format!("{}/big/layers:v1", s.reg.host());
    let archive = s.tmp.path().join("image.tar");
    let img = write_docker_archive(
        &archive,
        &image,
        &[
            vec![Entry::Bytes("etc/os-release", b"ID=berth-test\n")],
            vec![
                Entry::Random("big/blob.bin", 105 * MIB),
                Entry::Random("big/small.bin", 4096),
            ],
            vec![Entry::Random("top/config.bin", 300 * 1024)],
        ],
    );
    dk.run(&["load", "-i", archive.to_str().unwrap()]);
    std::fs::remove_file(&archive).unwrap();
    assert_eq!(
        dk.inspect(&image, "{{.Id}}"),
        img.image_id,
        "loaded image ID"
    );
    let layers = dk.inspect(&image, "{{json .RootFS.Layers}}");
    let layers: Vec<String> = serde_json::from_str(&layers).unwrap();
    assert_eq!(layers, img.diff_ids, "loaded layers");

    let (digest, _) = dk.push(&image);
    let manifest = crate::clients::get_json(&s.reg.url("/v2/big/layers/manifests/v1"));
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    let biggest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        biggest > 100 * MIB,
        "largest pushed layer is {biggest} bytes"
    );

    dk.run(&["rmi", "-f", &img.image_id]);
    dk.run(&["pull", &image]);
    assert_eq!(
        dk.inspect(&image, "{{.Id}}"),
        img.image_id,
        "pulled image ID"
    );
    let pulled: Vec<String> =
        serde_json::from_str(&dk.inspect(&image, "{{json .RootFS.Layers}}")).unwrap();
    assert_eq!(pulled, img.diff_ids, "pulled layer diff IDs");
    let repo_digests = dk.inspect(&image, "{{json .RepoDigests}}");
    assert!(
        repo_digests.contains(&digest),
        "{repo_digests} lacks {digest}"
    );
}

#[test]
fn docker_cross_repo_mount() {
    let Some(s) = setup(DOCKER) else { return };
    let dk = Dockerd::start();
    let rootfs = s.tmp.path().join("rootfs.tar");
    write_tar(&rootfs, &[Entry::Random("payload.bin", 2 * MIB)]);
    let src = format!("{}/mount/src:1", s.reg.host());
    let dst = format!("{}/mount/dst:1", s.reg.host());
    dk.run(&["import", rootfs.to_str().unwrap(), &src]);
    let (d1, out1) = dk.push(&src);
    assert!(
        !out1.contains("Mounted from"),
        "first push mounted:\n{out1}"
    );

    dk.run(&["tag", &src, &dst]);
    let (d2, out2) = dk.push(&dst);
    assert!(
        out2.contains("Mounted from mount/src"),
        "second push did not mount the layer from mount/src:\n{out2}"
    );
    assert_eq!(d1, d2, "same image, same manifest digest");

    // The mounted layer is really served from the destination repository.
    let manifest = crate::clients::get_json(&s.reg.url("/v2/mount/dst/manifests/1"));
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let head = http("HEAD", &s.reg.url(&format!("/v2/mount/dst/blobs/{layer}"))).unwrap();
    assert_eq!(head.status, 200, "HEAD mounted blob in mount/dst");
    assert_eq!(head.header("Docker-Content-Digest"), Some(layer));

    let id = dk.inspect(&dst, "{{.Id}}");
    dk.run(&["rmi", "-f", &id]);
    dk.run(&["pull", &dst]);
    assert_eq!(dk.inspect(&dst, "{{.Id}}"), id);
}

/// `docker search HOST/term` uses the old `/v1/search` endpoint, which
/// berth serves and distribution does not: this test always targets berth.
#[test]
fn docker_search_lists_matching_repositories() {
    let opts = RegistryOpts {
        delete_enabled: false,
    };
    let Some(s) = setup_with(Server::Berth, DOCKER, opts) else {
        return;
    };
    let dk = Dockerd::start();
    let rootfs = s.tmp.path().join("rootfs.tar");
    write_tar(&rootfs, &[Entry::Random("f.bin", 64 * 1024)]);
    let host = s.reg.host();
    let first = format!("{host}/team/findme-one:1");
    dk.run(&["import", rootfs.to_str().unwrap(), &first]);
    for name in ["team/findme-one", "team/findme-two", "team/unrelated"] {
        let image = format!("{host}/{name}:1");
        dk.run(&["tag", &first, &image]);
        dk.push(&image);
    }

    let out = dk.run(&["search", "--no-trunc", &format!("{host}/findme")]);
    let names: Vec<&str> = out
        .lines()
        .skip(1) // header
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["team/findme-one", "team/findme-two"],
        "docker search output:\n{out}"
    );
}
