//! docker push and pull through `berth serve` configured with `storage.s3`
//! on a real Garage: blob downloads redirected to presigned Garage URLs
//! (the default, as registry:2 does) and, with `storage.redirect.disable`,
//! streamed by berth.

use super::object_stores::{docker_round_trip, serve_with_storage};
use crate::procs::{require_tools, tempdir, Dockerd, Proc};
use crate::s3::{fresh_root, S3Server, BUCKET};

/// `berth serve` on a free port over Garage under `root`.
pub(super) fn serve_on_garage(
    g: &S3Server,
    root: &str,
    redirect: bool,
    dir: &std::path::Path,
) -> (Proc, u16) {
    let storage = format!(
        "  s3:\n    accesskey: {ak}\n    secretkey: {sk}\n    region: {region}\n\
         \x20   regionendpoint: {endpoint}\n    bucket: {BUCKET}\n    rootdirectory: /{root}\n\
         \x20   chunksize: 5242880\n",
        ak = g.access_key,
        sk = g.secret_key,
        region = g.region,
        endpoint = g.endpoint,
    );
    serve_with_storage("berth on garage", &storage, redirect, dir)
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
        // A 12 MiB layer: pushed in chunks, stored as a multipart upload.
        docker_round_trip(
            &dk,
            &format!("127.0.0.1:{port}"),
            redirect,
            &garage.endpoint,
            tmp.path(),
        );
        // No multipart upload left open in the bucket, and none of the
        // driver's own objects (upload state, tails, completed private
        // multipart objects) left behind.
        assert!(garage.multipart_uploads(&root).is_empty());
        let keys = garage.object_keys(&root);
        assert!(!keys.is_empty(), "the listing sees the pushed objects");
        let own: Vec<_> = keys.iter().filter(|k| k.contains('~')).collect();
        assert!(own.is_empty(), "left behind: {own:?}");
        drop(proc);
    }
}
