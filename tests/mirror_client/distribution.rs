//! CNCF distribution 2.8.2 (Debian's `docker-registry`) as the upstream:
//! with htpasswd, and with berth's built-in issuer as its token server,
//! the realm on the upstream's host and on another host name.

use berth::mirror::{Upstream, UpstreamError};

use crate::mirror_client::support::*;
use crate::procs::{require_tool, tempdir};

#[test]
fn basic_auth_against_distribution_htpasswd() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempdir("mirror-client-");
    let root = tmp.path().join("storage");
    let img = seed_image(&root, "team/app", "v1", 1 << 20);
    let users = tmp.path().join("htpasswd");
    htpasswd_add(&users, "mirror", "mirror-pass");
    let srv = Server::distribution(
        tmp.path(),
        &root,
        &format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            users.display()
        ),
    );
    runtime().block_on(async {
        let up = upstream(&srv.url(), Some(("mirror", "mirror-pass")), &[]);
        assert_pulls(up.as_ref(), "team/app", "v1", &img).await;
        assert_not_found(up.as_ref(), "team/app").await;
        let wrong = upstream(&srv.url(), Some(("mirror", "wrong")), &[]);
        assert_denied(wrong.head_manifest("team/app", "v1").await);
        let none = upstream(&srv.url(), None, &[]);
        assert_denied(none.get_manifest("team/app", "v1").await);
    });
}

#[test]
fn token_flow_against_distribution_with_berths_issuer() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempdir("mirror-client-");
    let root = tmp.path().join("storage");
    let img = seed_image(&root, "team/app", "v1", 1 << 20);
    let pub_img = seed_image(&root, "public/app", "v1", 4096);
    let users = tmp.path().join("htpasswd");
    htpasswd_add(&users, "mirror", "mirror-pass");
    let (key, cert) = token_key(tmp.path());
    // berth as the token server only (its own storage stays empty).
    let issuer = Server::berth(
        tmp.path(),
        &tmp.path().join("issuer-storage"),
        &format!(
            "auth:\n  token:\n    builtin: true\n    htpasswd: {}\n    signingkey: {}\n\
             access:\n  anonymous:\n    - repositories: [\"public/**\"]\n      actions: [pull]\n\
             \x20 users:\n    mirror:\n      - repositories: [\"team/**\", \"public/**\"]\n        actions: [pull]\n",
            users.display(),
            key.display()
        ),
    );
    let token_tail = |realm_host: &str| {
        format!(
            "auth:\n  token:\n    realm: http://{realm_host}:{}/auth/token\n    service: berth\n\
             \x20   issuer: berth\n    rootcertbundle: {}\n",
            issuer.port,
            cert.display()
        )
    };
    // The realm on the upstream's host (127.0.0.1, another port).
    let same = Server::distribution(tmp.path(), &root, &token_tail("127.0.0.1"));
    // The realm on another host name for the same machine.
    let other = Server::distribution(tmp.path(), &root, &token_tail("localhost"));
    runtime().block_on(async {
        let up = upstream(&same.url(), Some(("mirror", "mirror-pass")), &[]);
        assert_pulls(up.as_ref(), "team/app", "v1", &img).await;
        assert_not_found(up.as_ref(), "team/app").await;
        let wrong = upstream(&same.url(), Some(("mirror", "wrong")), &[]);
        assert_denied(wrong.head_manifest("team/app", "v1").await);

        // Realm on another host: only an anonymous token is asked for, so
        // the private repository is out of reach and the public one works.
        let up = upstream(&other.url(), Some(("mirror", "mirror-pass")), &[]);
        match up.head_manifest("team/app", "v1").await {
            Err(UpstreamError::Denied(why)) => {
                assert!(
                    why.contains("withheld from token realm host \"localhost\""),
                    "{why}"
                )
            }
            other => panic!("expected Denied, got {other:?}"),
        }
        assert_pulls(up.as_ref(), "public/app", "v1", &pub_img).await;

        // Trusted explicitly: the credentials go there.
        let trusted = upstream(
            &other.url(),
            Some(("mirror", "mirror-pass")),
            &["localhost"],
        );
        assert_pulls(trusted.as_ref(), "team/app", "v1", &img).await;
    });
}
