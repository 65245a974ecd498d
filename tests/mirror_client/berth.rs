//! berth itself as the upstream: anonymous, htpasswd (Basic) and its own
//! token issuer (the Docker token flow).

use berth::mirror::Upstream;

use crate::mirror_client::support::*;
use crate::procs::tempdir;

#[test]
fn anonymous_pull_from_berth() {
    let tmp = tempdir("mirror-client-");
    let root = tmp.path().join("storage");
    let img = seed_image(&root, "library/alpine", "3.20", 3 << 20);
    let srv = Server::berth(tmp.path(), &root, "");
    runtime().block_on(async {
        let up = upstream(&srv.url(), None, &[]);
        assert_pulls(up.as_ref(), "library/alpine", "3.20", &img).await;
        assert_not_found(up.as_ref(), "library/alpine").await;
        assert_not_found(up.as_ref(), "no/such/repo").await;
        // Credentials configured but never asked for: still works.
        let up = upstream(&srv.url(), Some(("u", "p")), &[]);
        assert_pulls(up.as_ref(), "library/alpine", "3.20", &img).await;
    });
}

#[test]
fn basic_auth_against_berth_htpasswd() {
    let tmp = tempdir("mirror-client-");
    let root = tmp.path().join("storage");
    let img = seed_image(&root, "team/app", "v1", 100_000);
    let users = tmp.path().join("htpasswd");
    htpasswd_add(&users, "mirror", "mirror-pass");
    let srv = Server::berth(
        tmp.path(),
        &root,
        &format!(
            "auth:\n  htpasswd:\n    realm: berth\n    path: {}\n",
            users.display()
        ),
    );
    runtime().block_on(async {
        let up = upstream(&srv.url(), Some(("mirror", "mirror-pass")), &[]);
        assert_pulls(up.as_ref(), "team/app", "v1", &img).await;
        assert_not_found(up.as_ref(), "team/app").await;

        let wrong = upstream(&srv.url(), Some(("mirror", "wrong")), &[]);
        assert_denied(wrong.head_manifest("team/app", "v1").await);
        assert_denied(
            wrong
                .get_blob("team/app", &img.layer_digest)
                .await
                .map(|b| b.is_some()),
        );
        let none = upstream(&srv.url(), None, &[]);
        assert_denied(none.get_manifest("team/app", "v1").await);
    });
}

#[test]
fn token_flow_against_berths_issuer() {
    let tmp = tempdir("mirror-client-");
    let root = tmp.path().join("storage");
    let img = seed_image(&root, "team/app", "v1", 200_000);
    let pub_img = seed_image(&root, "public/app", "v1", 1000);
    let users = tmp.path().join("htpasswd");
    htpasswd_add(&users, "mirror", "mirror-pass");
    let (key, _) = token_key(tmp.path());
    let srv = Server::berth(
        tmp.path(),
        &root,
        &format!(
            "auth:\n  token:\n    builtin: true\n    htpasswd: {}\n    signingkey: {}\n\
             access:\n  anonymous:\n    - repositories: [\"public/**\"]\n      actions: [pull]\n\
             \x20 users:\n    mirror:\n      - repositories: [\"team/**\"]\n        actions: [pull]\n",
            users.display(),
            key.display()
        ),
    );
    runtime().block_on(async {
        // The realm is berth's own /auth/token on the same host: credentials go.
        let up = upstream(&srv.url(), Some(("mirror", "mirror-pass")), &[]);
        assert_pulls(up.as_ref(), "team/app", "v1", &img).await;
        assert_not_found(up.as_ref(), "team/app").await;
        // Another repository: a token for its own scope.
        assert_denied(up.head_manifest("other/app", "v1").await);

        // Anonymous tokens where the policy allows.
        let anon = upstream(&srv.url(), None, &[]);
        assert_pulls(anon.as_ref(), "public/app", "v1", &pub_img).await;
        assert_denied(anon.head_manifest("team/app", "v1").await);

        // Wrong password: the realm refuses it.
        let wrong = upstream(&srv.url(), Some(("mirror", "nope")), &[]);
        assert_denied(wrong.get_manifest("team/app", "v1").await);
    });
}
