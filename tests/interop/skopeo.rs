//! skopeo against the registry under test: copy in and out, inspect,
//! list-tags, delete.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::clients::{http, oci_layout_json, oci_layout_ref, tags, OciLayout};
use crate::procs::{random_bytes, run, run_fails, Entry, Server};
use crate::{setup_with, RegistryOpts};

/// `skopeo` with registries reached over plain HTTP.
pub fn skopeo(args: &[&str]) -> String {
    run(Command::new("skopeo").args(args))
}

/// Extracts `file` from a (possibly gzip-compressed) layer tarball.
pub fn file_in_layer(layer: &Path, file: &str) -> Vec<u8> {
    let out = crate::procs::output(Command::new("tar").arg("-xOf").arg(layer).arg(file));
    assert!(
        out.status.success(),
        "tar -xOf {} {file}: {}",
        layer.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn skopeo_copy_inspect_list_tags_delete() {
    let opts = RegistryOpts {
        delete_enabled: true,
    };
    let Some(s) = setup_with(Server::under_test(), &["skopeo", "tar"], opts) else {
        return;
    };
    let host = s.reg.host();

    // A two-layer OCI image in a local layout.
    let data = random_bytes(512 * 1024);
    let mut src = OciLayout::create(&s.tmp.path().join("src"));
    let m = src.image(
        "amd64",
        &[
            vec![Entry::Bytes("bin/data", &data)],
            vec![Entry::Bytes("etc/motd", b"copied by skopeo\n")],
        ],
    );
    src.tag(&m, "v1");
    let src_ref = format!("oci:{}:v1", src.dir.display());
    for tag in ["v1", "v2"] {
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &src_ref,
            &format!("docker://{host}/sk/img:{tag}"),
        ]);
    }

    let inspect: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{host}/sk/img:v1"),
    ]))
    .unwrap();
    let digest = inspect["Digest"].as_str().unwrap().to_string();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let mut repo_tags: Vec<&str> = inspect["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    repo_tags.sort_unstable();
    assert_eq!(repo_tags, ["v1", "v2"]);

    let listed: Value = serde_json::from_str(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{host}/sk/img"),
    ]))
    .unwrap();
    assert_eq!(listed["Tags"], serde_json::json!(["v1", "v2"]));

    let head = http("HEAD", &s.reg.url("/v2/sk/img/manifests/v2")).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Docker-Content-Digest"), Some(digest.as_str()));

    // Copy back out and compare: same manifest, same file contents.
    let out_dir = s.tmp.path().join("out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/sk/img:v2"),
        &format!("oci:{}:back", out_dir.display()),
    ]);
    let back = oci_layout_ref(&out_dir, "back");
    assert_eq!(back.digest, digest, "manifest digest copied back out");
    let manifest = oci_layout_json(&out_dir, &back.digest);
    let blob = |i: usize| {
        let d = manifest["layers"][i]["digest"].as_str().unwrap();
        out_dir
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    assert_eq!(file_in_layer(&blob(0), "bin/data"), data);
    assert_eq!(file_in_layer(&blob(1), "etc/motd"), b"copied by skopeo\n");

    // Delete: the manifest goes, and with it both tags.
    skopeo(&[
        "delete",
        "--tls-verify=false",
        &format!("docker://{host}/sk/img:v1"),
    ]);
    for reference in ["v1", "v2", digest.as_str()] {
        let r = http(
            "HEAD",
            &s.reg.url(&format!("/v2/sk/img/manifests/{reference}")),
        )
        .unwrap();
        assert_eq!(r.status, 404, "HEAD manifest {reference} after delete");
    }
    run_fails(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{host}/sk/img:v1"),
    ]));
    let list = http("GET", &s.reg.url("/v2/sk/img/tags/list")).unwrap();
    if list.status == 200 {
        assert_eq!(tags(&s.reg.url(""), "sk/img"), Vec::<String>::new());
    } else {
        assert_eq!(list.status, 404, "tags/list after delete");
    }
}
