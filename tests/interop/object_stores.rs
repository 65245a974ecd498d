//! What the object-store client tests share: `berth serve` over a given
//! `storage:` section, and a docker round trip checking redirects.

use std::path::Path;
use std::time::Duration;

use crate::clients::{get_json, http};
use crate::procs::{daemon_command, free_port, wait_until, write_tar, Dockerd, Entry, Proc};
use crate::MIB;

/// `berth serve` on a free port with `storage_yaml` (the lines under
/// `storage:`, indented two spaces) and redirects on or off; ready when
/// `/v2/` answers 200.
pub fn serve_with_storage(
    what: &str,
    storage_yaml: &str,
    redirect: bool,
    dir: &Path,
) -> (Proc, u16) {
    let port = free_port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n{storage_yaml}  redirect:\n    disable: {disable}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            disable = !redirect,
        ),
    )
    .unwrap();
    let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("serve").arg("--config").arg(&config);
    let mut proc = Proc::spawn(what, cmd, &dir.join("berth.log"));
    let url = format!("http://127.0.0.1:{port}/v2/");
    wait_until(what, Duration::from_secs(30), || {
        proc.assert_running();
        http("GET", &url).is_ok_and(|r| r.status == 200)
    });
    (proc, port)
}

/// Pushes a 12 MiB-layer image to `host`, checks that its blob GET is a 307
/// to `endpoint` (redirects on) or streams the bytes (off), pulls it back,
/// checks the catalog; returns the layer digest for backend checks.
pub fn docker_round_trip(
    dk: &Dockerd,
    host: &str,
    redirect: bool,
    endpoint: &str,
    dir: &Path,
) -> String {
    let rootfs = dir.join("rootfs.tar");
    write_tar(
        &rootfs,
        &[
            Entry::Random("data/blob.bin", 12 * MIB),
            Entry::Bytes("hello.txt", b"hello from an object store\n"),
        ],
    );
    let image = format!("{host}/team/app:v1");
    dk.run(&["import", rootfs.to_str().unwrap(), &image]);
    let id = dk.inspect(&image, "{{.Id}}");
    let (digest, _) = dk.push(&image);

    let manifest = get_json(&format!("http://{host}/v2/team/app/manifests/{digest}"));
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = http("GET", &format!("http://{host}/v2/team/app/blobs/{layer}")).unwrap();
    if redirect {
        assert_eq!(blob.status, 307, "blob GET redirects to the store");
        let location = blob.header("location").unwrap();
        assert!(location.starts_with(endpoint), "{location}");
    } else {
        assert_eq!(blob.status, 200, "blob GET streams through berth");
        assert!(blob.body.len() > 12 * MIB as usize);
    }

    dk.run(&["rmi", "-f", &id]);
    let out = dk.run(&["pull", &image]);
    assert!(out.contains(&digest), "pull output lacks {digest}:\n{out}");
    assert_eq!(dk.inspect(&image, "{{.Id}}"), id, "image ID after pull");
    dk.run(&["rmi", "-f", &id]);
    let catalog = get_json(&format!("http://{host}/v2/_catalog"));
    assert_eq!(catalog["repositories"], serde_json::json!(["team/app"]));
    layer
}
