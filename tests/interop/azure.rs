//! docker push and pull through `berth serve` configured with
//! `storage.azure` on Azurite: blob downloads redirected to SAS URLs (the
//! default, as registry:2 does) and, with `storage.redirect.disable`,
//! streamed by berth.

use super::object_stores::{docker_round_trip, serve_with_storage};
use crate::azure::{Azurite, ACCOUNT, CONTAINER, KEY};
use crate::procs::{require_tools, tempdir, Dockerd, Proc};
use crate::s3::fresh_root;

/// `berth serve` on a free port over Azurite under `root`, configured the
/// way a registry:2 (distribution 3) Azure config reads.
fn serve_on_azurite(a: &Azurite, root: &str, redirect: bool, dir: &std::path::Path) -> (Proc, u16) {
    let storage = format!(
        "  azure:\n    accountname: {ACCOUNT}\n    accountkey: {KEY}\n\
         \x20   container: {CONTAINER}\n    serviceurl: {endpoint}\n    rootdirectory: /{root}\n\
         \x20   chunksize: 5242880\n",
        endpoint = a.endpoint,
    );
    serve_with_storage("berth on azurite", &storage, redirect, dir)
}

#[test]
fn docker_push_pull_on_azurite_with_and_without_redirects() {
    if !require_tools(&["docker", "dockerd", "azurite-blob"]) {
        return;
    }
    let Some(azurite) = crate::azure::azurite() else {
        return;
    };
    eprintln!("azurite ready in {:.1}s", azurite.startup_secs);
    let dk = Dockerd::start();
    for redirect in [true, false] {
        let tmp = tempdir("berth-azure-");
        let root = fresh_root("interop");
        let (proc, port) = serve_on_azurite(azurite, &root, redirect, tmp.path());
        // A 12 MiB layer: pushed in chunks, stored as a block upload.
        let host = format!("127.0.0.1:{port}");
        let layer = docker_round_trip(&dk, &host, redirect, &azurite.endpoint, tmp.path());
        // The blob as stored: distribution's path, committed, no blocks left.
        let hex = layer.trim_start_matches("sha256:");
        let name = format!(
            "{root}/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        );
        assert_eq!(azurite.uncommitted_blocks(&name), 0);
        drop(proc);
    }
}
