//! docker push and pull through `berth serve` configured with `storage.s3`
//! on a real Garage: blob downloads redirected to presigned Garage URLs
//! (the default, as registry:2 does) and, with `storage.redirect.disable`,
//! streamed by berth.

use std::time::Duration;

use crate::clients::{get_json, http};
use crate::procs::{
    daemon_command, free_port, require_tools, tempdir, wait_until, write_tar, Dockerd, Entry, Proc,
};
use crate::s3::{fresh_root, S3Server, BUCKET};
use crate::MIB;

/// `berth serve` on a free port over Garage under `root`.
pub(super) fn serve_on_garage(
    g: &S3Server,
    root: &str,
    redirect: bool,
    dir: &std::path::Path,
) -> (Proc, u16) {
    let port = free_port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  s3:\n    accesskey: {ak}\n    secretkey: {sk}\n    region: {region}\n\
             \x20   regionendpoint: {endpoint}\n    bucket: {BUCKET}\n    rootdirectory: /{root}\n\
             \x20   chunksize: 5242880\n  redirect:\n    disable: {disable}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            ak = g.access_key,
            sk = g.secret_key,
            region = g.region,
            endpoint = g.endpoint,
            disable = !redirect,
        ),
    )
    .unwrap();
    let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("serve").arg("--config").arg(&config);
    let mut proc = Proc::spawn("berth on garage", cmd, &dir.join("berth.log"));
    let url = format!("http://127.0.0.1:{port}/v2/");
    wait_until("berth on garage", Duration::from_secs(30), || {
        proc.assert_running();
        http("GET", &url).is_ok_and(|r| r.status == 200)
    });
    (proc, port)
}

#[test]
fn docker_push_pull_on_garage_with_and_without_redirects() {
    if !require_tools(&["docker", "dockerd", "garage"]) {
        return;
    }
    let Some(garage) = crate::s3::garage() else {
        return;
    };
    eprintln!("garage ready in {:.1}s", garage.startup_secs);
    let dk = Dockerd::start();
    for redirect in [true, false] {
        let tmp = tempdir("berth-s3-");
        let root = fresh_root("interop");
        let (proc, port) = serve_on_garage(garage, &root, redirect, tmp.path());
        let host = format!("127.0.0.1:{port}");

        // A 12 MiB layer: pushed in chunks, stored as a multipart upload.
        let rootfs = tmp.path().join("rootfs.tar");
        write_tar(
            &rootfs,
            &[
                Entry::Random("data/blob.bin", 12 * MIB),
                Entry::Bytes("hello.txt", b"hello from garage\n"),
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
            assert_eq!(blob.status, 307, "blob GET redirects to Garage");
            let location = blob.header("location").unwrap();
            assert!(location.starts_with(&garage.endpoint), "{location}");
        } else {
            assert_eq!(blob.status, 200, "blob GET streams through berth");
            assert!(blob.body.len() > 12 * MIB as usize);
        }

        dk.run(&["rmi", "-f", &id]);
        let out = dk.run(&["pull", &image]);
        assert!(out.contains(&digest), "pull output lacks {digest}:\n{out}");
        assert_eq!(dk.inspect(&image, "{{.Id}}"), id, "image ID after pull");
        dk.run(&["rmi", "-f", &id]);

        // distribution's layout in the bucket, and no upload left open.
        let catalog = get_json(&format!("http://{host}/v2/_catalog"));
        assert_eq!(catalog["repositories"], serde_json::json!(["team/app"]));
        assert!(garage.multipart_uploads(&root).is_empty());
        drop(proc);
    }
}
