//! Compatibility with distribution 2.8.2: a storage directory written by
//! `docker-registry` through skopeo (tags, a moved tag, an index with
//! untagged children, deleted manifests, a repository emptied by deletes) is
//! collected by `docker-registry garbage-collect` on one copy and by
//! `berth garbage-collect` on another; the blobs left must be the same.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::clients::{get_json, OciLayout};
use crate::procs::{find_tool, require_tools, run, tempdir, Entry, Registry, RegistryOpts, Server};

/// Relative paths of every blob data file under a storage root.
fn blob_files(root: &Path) -> BTreeSet<String> {
    let blobs = root.join("docker/registry/v2/blobs");
    let mut out = BTreeSet::new();
    let mut stack = vec![blobs.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "data") {
                out.insert(p.strip_prefix(&blobs).unwrap().display().to_string());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

fn skopeo(args: &[&str]) -> String {
    run(Command::new("skopeo").args(args))
}

/// `sha256:HEX` -> the blob's data file relative to `blobs/`.
fn blob_file(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("sha256/{}/{hex}/data", &hex[..2])
}

/// Writes the storage directory through distribution; returns its root and
/// the config and layer files of the index's children.
fn write_with_distribution(tmp: &Path) -> (PathBuf, BTreeSet<String>) {
    let root = tmp.join("storage");
    let reg = Registry::start(
        Server::Distribution,
        &root,
        RegistryOpts {
            delete_enabled: true,
        },
    );
    let host = reg.host();
    let mut layout = OciLayout::create(&tmp.join("layout"));
    let image = |layout: &OciLayout, arch: &str, text: &'static str| {
        layout.image(
            arch,
            &[
                vec![Entry::Bytes("base.txt", b"shared base layer\n")],
                vec![Entry::Bytes("own.txt", text.as_bytes())],
            ],
        )
    };
    let put = |layout: &mut OciLayout, desc, tag: &str, dest: &str, all: bool| {
        layout.tag(&desc, tag);
        let src = format!("oci:{}:{tag}", layout.dir.display());
        let dst = format!("docker://{host}/{dest}");
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        if all {
            args.push("--all");
        }
        skopeo(&[args, vec![src.as_str(), dst.as_str()]].concat());
    };
    let v1 = image(&layout, "amd64", "v1\n");
    put(&mut layout, v1, "v1", "gc/app:v1", false);
    let v2 = image(&layout, "amd64", "v2\n");
    put(&mut layout, v2, "v2", "gc/app:v2", false);
    // `old` is pushed twice: its first image becomes untagged.
    let old1 = image(&layout, "amd64", "old one\n");
    put(&mut layout, old1, "old1", "gc/app:old", false);
    let old2 = image(&layout, "amd64", "old two\n");
    put(&mut layout, old2, "old2", "gc/app:old", false);
    // An index: its children are only reachable through it.
    let a = image(&layout, "amd64", "index amd64\n");
    let b = image(&layout, "arm64", "index arm64\n");
    let index = layout.index(&[(a, "amd64"), (b, "arm64")]);
    put(&mut layout, index, "multi", "gc/multi:1", true);
    // Deleted manifests: one in a repository that keeps others, and the only
    // one of another repository.
    let gone = image(&layout, "amd64", "gone\n");
    put(&mut layout, gone, "gone", "gc/app:gone", false);
    let lone = image(&layout, "amd64", "lone\n");
    put(&mut layout, lone, "lone", "gc/lone:1", false);
    // The children's configs and layers, as stored.
    let mut children = BTreeSet::new();
    let index = get_json(&reg.url("/v2/gc/multi/manifests/1"));
    for child in index["manifests"].as_array().unwrap() {
        let d = child["digest"].as_str().unwrap();
        let m = get_json(&reg.url(&format!("/v2/gc/multi/manifests/{d}")));
        children.insert(blob_file(m["config"]["digest"].as_str().unwrap()));
        for l in m["layers"].as_array().unwrap() {
            children.insert(blob_file(l["digest"].as_str().unwrap()));
        }
    }
    for r in ["gc/app:gone", "gc/lone:1"] {
        skopeo(&[
            "delete",
            "--tls-verify=false",
            &format!("docker://{host}/{r}"),
        ]);
    }
    reg.stop();
    (root, children)
}

/// Collects `root` with distribution's garbage-collect.
fn distribution_gc(root: &Path, conf_dir: &Path, delete_untagged: bool) -> String {
    let config = conf_dir.join(format!("gc-{delete_untagged}.yml"));
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n",
            root.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(find_tool("docker-registry").unwrap());
    // AWS_CA_BUNDLE set to a PEM bundle makes 2.8.2 panic at start.
    cmd.env_remove("AWS_CA_BUNDLE").arg("garbage-collect");
    if delete_untagged {
        cmd.arg("--delete-untagged");
    }
    run(cmd.arg(&config))
}

/// Collects `root` with `berth garbage-collect`.
fn berth_gc(root: &Path, delete_untagged: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("garbage-collect").arg("--root").arg(root);
    if delete_untagged {
        cmd.arg("--delete-untagged");
    }
    run(&mut cmd)
}

#[test]
fn same_blobs_removed_as_distribution_garbage_collect() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let tmp = tempdir("berth-gc-compat-");
    let (root, children) = write_with_distribution(tmp.path());
    let before = blob_files(&root);
    let mut left_plain = BTreeSet::new();
    for delete_untagged in [false, true] {
        let d = tmp.path().join(format!("distribution-{delete_untagged}"));
        let b = tmp.path().join(format!("berth-{delete_untagged}"));
        copy_dir(&root, &d);
        copy_dir(&root, &b);
        let d_out = distribution_gc(&d, tmp.path(), delete_untagged);
        let b_out = berth_gc(&b, delete_untagged);
        let (d_left, b_left) = (blob_files(&d), blob_files(&b));
        // distribution 2.8.2's --delete-untagged skips the untagged children
        // of an index while marking, so their configs and layers are swept
        // (the index then no longer pulls); berth keeps them. The base layer
        // is shared with tagged images and stays either way.
        let want = if delete_untagged {
            let lost: BTreeSet<String> = children.difference(&d_left).cloned().collect();
            assert!(
                !lost.is_empty(),
                "distribution kept every blob of the index children this time:\n{d_out}"
            );
            d_left.union(&lost).cloned().collect()
        } else {
            d_left.clone()
        };
        assert_eq!(
            b_left, want,
            "delete_untagged={delete_untagged}: blobs left by berth vs distribution\n\
             berth:\n{b_out}\ndistribution:\n{d_out}"
        );
        assert!(
            b_left.len() < before.len(),
            "delete_untagged={delete_untagged}: nothing was collected"
        );
        if delete_untagged {
            assert!(
                b_left.len() < left_plain.len(),
                "--delete-untagged removed nothing more"
            );
        } else {
            left_plain = b_left;
        }
        // berth serves everything it kept: each tag copies out completely.
        let reg = Registry::start(
            Server::Berth,
            &b,
            RegistryOpts {
                delete_enabled: false,
            },
        );
        for (i, r) in ["gc/app:v1", "gc/app:v2", "gc/app:old", "gc/multi:1"]
            .iter()
            .enumerate()
        {
            let out = tmp.path().join(format!("out-{delete_untagged}-{i}"));
            skopeo(&[
                "copy",
                "--all",
                "--src-tls-verify=false",
                &format!("docker://{}/{r}", reg.host()),
                &format!("dir:{}", out.display()),
            ]);
        }
        reg.stop();
    }
}
