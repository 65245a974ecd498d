//! buildah builds a two-platform image and pushes the manifest list; each
//! platform is pulled back on its own with skopeo.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::clients::get_json;
use crate::interop::skopeo::{file_in_layer, skopeo};
use crate::procs::run;
use crate::setup;

/// `buildah` with private storage under `dir`.
fn buildah(dir: &Path, args: &[&str]) -> String {
    run(Command::new("buildah")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .args(["--storage-driver", "vfs"])
        .env("BUILDAH_ISOLATION", "chroot")
        .args(args))
    .trim()
    .to_string()
}

#[test]
fn buildah_multi_arch_manifest_list() {
    let Some(s) = setup(&["buildah", "skopeo", "tar"]) else {
        return;
    };
    let host = s.reg.host();
    let dir = s.tmp.path().join("buildah");
    let list = "localhost/berth-multi:latest";
    buildah(&dir, &["manifest", "create", list]);
    let stamp = format!("{:x}", rand::random::<u64>());
    let archs = ["amd64", "arm64"];
    for arch in archs {
        let ctr = buildah(&dir, &["from", "scratch"]);
        let file = s.tmp.path().join(format!("platform-{arch}.txt"));
        std::fs::write(&file, format!("built for linux/{arch} {stamp}\n")).unwrap();
        buildah(
            &dir,
            &["copy", &ctr, file.to_str().unwrap(), "/platform.txt"],
        );
        buildah(&dir, &["config", "--arch", arch, "--os", "linux", &ctr]);
        let image = format!("localhost/berth-multi-{arch}:latest");
        buildah(&dir, &["commit", "--rm", &ctr, &image]);
        buildah(
            &dir,
            &[
                "manifest",
                "add",
                list,
                &format!("containers-storage:{image}"),
            ],
        );
    }
    let digest_file = s.tmp.path().join("digest");
    buildah(
        &dir,
        &[
            "manifest",
            "push",
            "--all",
            "--tls-verify=false",
            "--digestfile",
            digest_file.to_str().unwrap(),
            list,
            &format!("docker://{host}/multi/app:1"),
        ],
    );
    let digest = std::fs::read_to_string(&digest_file).unwrap();

    // The registry serves the list under the tag, with both platforms.
    let r = crate::clients::http("GET", &s.reg.url("/v2/multi/app/manifests/1")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.trim()));
    let index = r.json();
    let ct = r.header("Content-Type").unwrap_or_default();
    assert!(
        ct.contains("manifest.list") || ct.contains("image.index"),
        "Content-Type {ct}"
    );
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    // Each platform resolves to its own image, with its own file.
    let mut layer_digests = Vec::new();
    for arch in archs {
        let out = s.tmp.path().join(format!("pulled-{arch}"));
        skopeo(&[
            "--override-arch",
            arch,
            "--override-os",
            "linux",
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{host}/multi/app:1"),
            &format!("dir:{}", out.display()),
        ]);
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let blob = |d: &Value| out.join(d.as_str().unwrap().trim_start_matches("sha256:"));
        let config: Value =
            serde_json::from_slice(&std::fs::read(blob(&manifest["config"]["digest"])).unwrap())
                .unwrap();
        assert_eq!(config["architecture"], arch, "config of the {arch} image");
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        let content = file_in_layer(&blob(&layers[0]["digest"]), "platform.txt");
        assert_eq!(
            String::from_utf8(content).unwrap(),
            format!("built for linux/{arch} {stamp}\n")
        );
        layer_digests.push(layers[0]["digest"].clone());
    }
    assert_ne!(layer_digests[0], layer_digests[1]);

    // Child manifests are addressable by digest in the same repository.
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let child = get_json(&s.reg.url(&format!("/v2/multi/app/manifests/{d}")));
        assert_eq!(child["schemaVersion"], 2);
    }
}
