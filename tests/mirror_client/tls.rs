//! An https upstream: berth serving TLS with a certificate from its own CA
//! (`berth cert`), trusted through the settings' `ca_file` only; and a
//! plain-http token realm named by an https upstream is refused.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth::mirror::{HttpUpstream, Upstream, UpstreamError, UpstreamSettings};

use crate::mirror_client::support::*;
use crate::procs::{run, tempdir};

fn https_upstream(
    port: u16,
    ca: Option<&std::path::Path>,
    creds: Option<(&str, &str)>,
) -> Arc<HttpUpstream> {
    Arc::new(
        HttpUpstream::new(UpstreamSettings {
            label: "tls".into(),
            remote_url: format!("https://localhost:{port}"),
            username: creds.map(|c| c.0.to_string()),
            password: creds.map(|c| c.1.to_string()),
            ca_file: ca.map(|p| p.to_path_buf()),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .unwrap(),
    )
}

#[test]
fn https_upstream_trusted_through_ca_file() {
    let tmp = tempdir("mirror-client-");
    let certs = tmp.path().join("certs");
    run(Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["cert", "--host", "localhost", "--ip", "127.0.0.1", "--out"])
        .arg(&certs));
    let root = tmp.path().join("storage");
    let img = seed_image(&root, "library/alpine", "3.20", 2 << 20);
    seed_image(&root, "public/app", "v1", 1000);
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        certs.join("server.crt").display(),
        certs.join("server.key").display()
    );
    let open = Server::berth(tmp.path(), &root, &tls);
    let users = tmp.path().join("htpasswd");
    htpasswd_add(&users, "mirror", "mirror-pass");
    let (key, _) = token_key(tmp.path());
    // berth's issuer behind https, but announcing a plain-http realm.
    let downgraded = Server::berth(
        tmp.path(),
        &root,
        &format!(
            "{tls}auth:\n  token:\n    builtin: true\n    htpasswd: {}\n    signingkey: {}\n\
             \x20   realm: http://localhost:{{PORT}}/auth/token\n\
             access:\n  users:\n    mirror:\n      - repositories: [\"**\"]\n        actions: [pull]\n",
            users.display(),
            key.display()
        ),
    );
    let ca = certs.join("ca.crt");
    runtime().block_on(async {
        let up = https_upstream(open.port, Some(&ca), None);
        assert_pulls(up.as_ref(), "library/alpine", "3.20", &img).await;
        // Without the CA the certificate is not trusted: nothing is fetched.
        let untrusting = https_upstream(open.port, None, None);
        assert_unavailable(untrusting.head_manifest("library/alpine", "3.20").await);

        // An http realm for an https upstream is never asked, not even
        // anonymously.
        let up = https_upstream(downgraded.port, Some(&ca), Some(("mirror", "mirror-pass")));
        match up.head_manifest("public/app", "v1").await {
            Err(UpstreamError::Denied(why)) => assert!(why.contains("plain http"), "{why}"),
            other => panic!("expected Denied, got {other:?}"),
        }
    });
}
