//! Storage compatibility with CNCF distribution 2.8.2: one registry writes
//! a storage directory through real clients, it stops, the other one serves
//! the same directory and everything pulls back.

use std::process::Command;

use serde_json::Value;

use crate::clients::{catalog, get_json, http, tags, write_docker_archive, OciLayout};
use crate::interop::skopeo::skopeo;
use crate::procs::{require_tools, run, tempdir, write_tar, Dockerd, Entry, Registry, Server};
use crate::{RegistryOpts, MIB};

/// What was pushed: repository, tag, manifest digest, docker image ID.
struct Pushed {
    repo: &'static str,
    tag: &'static str,
    digest: String,
    id: String,
}

fn handoff(first: Server, second: Server) {
    let tools = [
        &["docker", "dockerd", "skopeo"][..],
        first.tools(),
        second.tools(),
    ]
    .concat();
    if !require_tools(&tools) {
        return;
    }
    let tmp = tempdir("berth-it-");
    let root = tmp.path().join("storage");
    let opts = RegistryOpts {
        delete_enabled: false,
    };
    let dk = Dockerd::start();

    // ---- write through `first`
    let reg = Registry::start(first, &root, opts);
    let host = reg.host();
    let mut pushed = Vec::new();

    let archive = tmp.path().join("multi.tar");
    let multi = write_docker_archive(
        &archive,
        &format!("{host}/interop/multi:v1"),
        &[
            vec![Entry::Random("base/a.bin", MIB)],
            vec![Entry::Random("mid/b.bin", 3 * MIB)],
            vec![Entry::Bytes("top/version", b"1\n")],
        ],
    );
    dk.run(&["load", "-i", archive.to_str().unwrap()]);
    let (digest, _) = dk.push(&format!("{host}/interop/multi:v1"));
    pushed.push(Pushed {
        repo: "interop/multi",
        tag: "v1",
        digest,
        id: multi.image_id,
    });

    let rootfs = tmp.path().join("rootfs.tar");
    write_tar(&rootfs, &[Entry::Random("single.bin", 2 * MIB)]);
    let single = format!("{host}/interop/single:v1");
    dk.run(&["import", rootfs.to_str().unwrap(), &single]);
    dk.run(&["tag", &single, &format!("{host}/interop/single:v2")]);
    let id = dk.inspect(&single, "{{.Id}}");
    for tag in ["v1", "v2"] {
        let (digest, _) = dk.push(&format!("{host}/interop/single:{tag}"));
        pushed.push(Pushed {
            repo: "interop/single",
            tag,
            digest,
            id: id.clone(),
        });
    }

    // A two-platform OCI index, pushed by skopeo.
    let mut layout = OciLayout::create(&tmp.path().join("layout"));
    let archs = ["amd64", "arm64"];
    let manifests: Vec<_> = archs
        .iter()
        .map(|arch| {
            let text = format!("index member for {arch}\n");
            let m = layout.image(arch, &[vec![Entry::Bytes("arch.txt", text.as_bytes())]]);
            (m, *arch)
        })
        .collect();
    let index = layout.index(&manifests);
    layout.tag(&index, "1");
    let digest_file = tmp.path().join("index.digest");
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--digestfile",
        digest_file.to_str().unwrap(),
        &format!("oci:{}:1", layout.dir.display()),
        &format!("docker://{host}/interop/index:1"),
    ]);
    let index_digest = std::fs::read_to_string(&digest_file).unwrap();
    let index_digest = index_digest.trim().to_string();
    reg.stop();

    // ---- clear the daemon, then read everything through `second`
    for p in &pushed {
        let _ = crate::procs::output(dk.docker().args(["rmi", "-f", &p.id]));
    }
    assert_eq!(
        dk.run(&["images", "-aq"]).trim(),
        "",
        "daemon still has images"
    );

    let reg = Registry::start(second, &root, opts);
    let host = reg.host();
    let base = reg.url("");
    assert_eq!(
        catalog(&base),
        ["interop/index", "interop/multi", "interop/single"],
        "{second:?} catalog of {first:?} storage"
    );
    assert_eq!(tags(&base, "interop/single"), ["v1", "v2"]);
    assert_eq!(tags(&base, "interop/multi"), ["v1"]);
    assert_eq!(tags(&base, "interop/index"), ["1"]);

    for p in &pushed {
        let image = format!("{host}/{}:{}", p.repo, p.tag);
        let head = http(
            "HEAD",
            &reg.url(&format!("/v2/{}/manifests/{}", p.repo, p.tag)),
        )
        .unwrap();
        assert_eq!(head.status, 200, "HEAD {image}");
        assert_eq!(
            head.header("Docker-Content-Digest"),
            Some(p.digest.as_str())
        );
        let out = dk.run(&["pull", &image]);
        assert!(out.contains(&p.digest), "pull {image}:\n{out}");
        assert_eq!(dk.inspect(&image, "{{.Id}}"), p.id, "image ID of {image}");
    }
    let layers: Vec<String> = serde_json::from_str(&dk.inspect(
        &format!("{host}/interop/multi:v1"),
        "{{json .RootFS.Layers}}",
    ))
    .unwrap();
    assert_eq!(layers, multi.diff_ids, "layers of interop/multi");

    // The index: same digest, and each platform pulls its own image.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/interop/index:1"),
    ]));
    assert_eq!(crate::procs::sha256(raw.as_bytes()), index_digest);
    let raw: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    for m in raw["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let child = get_json(&reg.url(&format!("/v2/interop/index/manifests/{d}")));
        assert_eq!(child["schemaVersion"], 2);
    }
    let image = format!("{host}/interop/index:1");
    for arch in archs {
        dk.run(&["pull", "--platform", &format!("linux/{arch}"), &image]);
        assert_eq!(dk.inspect(&image, "{{.Architecture}}"), arch);
    }
    reg.stop();
}

#[test]
fn distribution_storage_served_by_berth() {
    handoff(Server::Distribution, Server::under_test());
}

#[test]
fn berth_storage_served_by_distribution() {
    handoff(Server::under_test(), Server::Distribution);
}

/// A request with a body, on a blocking runtime.
fn send(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.headers().clone())
    })
}

/// A chunked upload started on distribution continues on berth from the hash
/// state distribution saved (same `hashstates` format), and completes.
#[test]
fn upload_started_on_distribution_completes_on_berth() {
    if !require_tools(&["docker-registry"]) {
        return;
    }
    let tmp = tempdir("berth-it-");
    let root = tmp.path().join("storage");
    let opts = RegistryOpts {
        delete_enabled: false,
    };
    let first: Vec<u8> = (0..150_013u32).map(|i| (i % 253) as u8).collect();
    let second: Vec<u8> = (0..7_777u32).map(|i| (i % 127) as u8).collect();

    let dist = Registry::start(Server::Distribution, &root, opts);
    let (status, h) = send(
        "POST",
        &dist.url("/v2/resume/me/blobs/uploads/"),
        &[],
        vec![],
    );
    assert_eq!(status, 202);
    let loc = h["location"].to_str().unwrap().to_string();
    let uuid = h["docker-upload-uuid"].to_str().unwrap().to_string();
    let (status, _) = send(
        "PATCH",
        &loc,
        &[("content-type", "application/octet-stream".into())],
        first.clone(),
    );
    assert_eq!(status, 202);
    dist.stop();

    // distribution's saved state, read by berth's hasher, continues the hash.
    let state_file = root.join(format!(
        "docker/registry/v2/repositories/resume/me/_uploads/{uuid}/hashstates/sha256/{}",
        first.len()
    ));
    let saved = std::fs::read(&state_file).unwrap();
    let mut h = berth::oci::sha256_state::Sha256State::unmarshal(&saved)
        .expect("distribution's hash state parses");
    h.update(&second);
    let all = [first.clone(), second.clone()].concat();
    let want = berth::oci::digest::Digest::sha256_of(&all);
    assert_eq!(hex::encode(h.finish()), want.hex());

    // And berth finishes the upload distribution started.
    let berth = Registry::start(Server::Berth, &root, opts);
    let url = berth.url(&format!("/v2/resume/me/blobs/uploads/{uuid}?digest={want}"));
    let (status, _) = send("PUT", &url, &[], second);
    assert_eq!(status, 201);
    let blob = http("GET", &berth.url(&format!("/v2/resume/me/blobs/{want}"))).unwrap();
    assert_eq!(blob.body, all);
}
