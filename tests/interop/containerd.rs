//! containerd (`ctr`) against the registry under test: a private
//! containerd (its own root, state and socket; CRI off) pulls an image
//! skopeo pushed, over plain HTTP, unpacks it with the native snapshotter,
//! and pushes a copy back.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::clients::OciLayout;
use crate::interop::skopeo::skopeo;
use crate::procs::{daemon_command, random_bytes, run, wait_until, Entry, Proc, Server};
use crate::{setup_with, RegistryOpts};

/// A containerd of the test's own, stopped on drop.
struct Containerd {
    socket: String,
    _proc: Proc,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("c.sock").display().to_string();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{socket}\"\n\
                 [ttrpc]\n  address = \"{ttrpc}\"\n\
                 [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                ttrpc = dir.join("c.ttrpc.sock").display(),
            ),
        )
        .unwrap();
        let mut cmd = daemon_command("containerd");
        cmd.arg("--config").arg(&config);
        let mut proc = Proc::spawn("containerd", cmd, &dir.join("containerd.log"));
        wait_until("containerd to answer", Duration::from_secs(60), || {
            proc.assert_running();
            Command::new("ctr")
                .args(["-a", &socket, "version"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        Containerd {
            socket,
            _proc: proc,
        }
    }

    /// `ctr` on this containerd, in namespace `berth-test`.
    fn ctr(&self, args: &[&str]) -> String {
        run(Command::new("ctr")
            .args(["-a", &self.socket, "-n", "berth-test"])
            .args(args))
    }
}

#[test]
fn ctr_pulls_and_pushes_over_plain_http() {
    let Some(s) = setup_with(
        Server::under_test(),
        &["skopeo", "containerd", "ctr"],
        RegistryOpts {
            delete_enabled: false,
        },
    ) else {
        return;
    };
    let host = s.reg.host();
    let data = random_bytes(300 * 1024);
    let mut src = OciLayout::create(&s.tmp.path().join("src"));
    let m = src.image(
        "amd64",
        &[
            vec![Entry::Bytes("bin/data", &data)],
            vec![Entry::Bytes("etc/motd", b"pulled by containerd\n")],
        ],
    );
    src.tag(&m, "v1");
    let image = format!("{host}/ctr/app:v1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.dir.display()),
        &format!("docker://{image}"),
    ]);
    let inspect: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]))
    .unwrap();
    let digest = inspect["Digest"].as_str().unwrap().to_string();
    let layers: Vec<String> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers.len(), 2);

    let cd = Containerd::start(&s.tmp.path().join("containerd"));
    let out = cd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        "native",
        &image,
    ]);
    assert!(out.contains("done"), "{out}");
    let listed = cd.ctr(&["images", "ls"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&image))
        .unwrap_or_else(|| panic!("{image} not in ctr images ls:\n{listed}"));
    assert!(line.contains(&digest), "{line}\nwant {digest}");
    // Every layer containerd stored holds the bytes berth serves (skopeo
    // may have compressed the layout's layers, so compare with berth).
    for l in &layers {
        let served =
            crate::clients::http("GET", &s.reg.url(&format!("/v2/ctr/app/blobs/{l}"))).unwrap();
        assert_eq!(served.status, 200, "GET blob {l}");
        let got = crate::procs::output(Command::new("ctr").args([
            "-a",
            &cd.socket,
            "-n",
            "berth-test",
            "content",
            "get",
            l,
        ]));
        assert!(got.status.success(), "ctr content get {l}");
        assert_eq!(got.stdout, served.body, "layer {l}");
    }

    // And back: containerd pushes a copy under a new name.
    let copy = format!("{host}/ctr/copy:v2");
    cd.ctr(&["images", "tag", &image, &copy]);
    cd.ctr(&["images", "push", "--plain-http", &copy]);
    let pushed: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{copy}"),
    ]))
    .unwrap();
    assert_eq!(pushed["Digest"].as_str(), Some(digest.as_str()));
}
