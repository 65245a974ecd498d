//! Realm pinning end to end: a recording token realm on another host name
//! never receives the mirror's credentials (it is asked for an anonymous
//! token, which is enough here), while a realm on the upstream's own host,
//! or one listed as trusted, does get them. Tokens are cached per scope.

use berth::mirror::Upstream;
use berth::oci::digest::Digest;

use crate::mirror_client::fake::{resp, Fake};
use crate::mirror_client::support::*;

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// An upstream that wants `Bearer good-token` and sends clients to `realm`.
async fn bearer_upstream(realm: String) -> Fake {
    Fake::start(move |seen| {
        let realm = realm.clone();
        async move {
            if seen.authorization.as_deref() != Some("Bearer good-token") {
                let challenge = format!(
                    "Bearer realm=\"{realm}\",service=\"fake-registry\",scope=\"repository:team/app:pull\""
                );
                return resp(401, &[("www-authenticate", challenge.as_str())], "");
            }
            let digest = Digest::sha256_of(MANIFEST).to_string();
            if seen.path.contains("/manifests/") {
                let len = MANIFEST.len().to_string();
                let headers = [
                    ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                    ("docker-content-digest", digest.as_str()),
                    ("content-length", len.as_str()),
                ];
                let body = if seen.method == "HEAD" { &b""[..] } else { MANIFEST };
                return resp(200, &headers, body);
            }
            resp(404, &[], "")
        }
    })
    .await
}

/// A token realm handing out `good-token` to everyone, recording requests.
async fn realm() -> Fake {
    Fake::start(|_| async {
        resp(
            200,
            &[("content-type", "application/json")],
            r#"{"token":"good-token","expires_in":300}"#,
        )
    })
    .await
}

async fn pull_manifest(up: &dyn Upstream) {
    let d = up.head_manifest("team/app", "v1").await.unwrap().unwrap();
    assert_eq!(d.digest, Digest::sha256_of(MANIFEST));
    let m = up.get_manifest("team/app", "v1").await.unwrap().unwrap();
    assert_eq!(m.body.as_ref(), MANIFEST);
    let m = up
        .get_manifest("team/app", &d.digest.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.body.as_ref(), MANIFEST);
}

#[test]
fn a_realm_on_another_host_never_receives_credentials() {
    runtime().block_on(async {
        let realm = realm().await;
        let registry = bearer_upstream(format!("{}/token", realm.url("localhost"))).await;
        let up = upstream(
            &registry.url("127.0.0.1"),
            Some(("mirror", "s3cret-pw")),
            &[],
        );
        pull_manifest(up.as_ref()).await;

        let asked = realm.seen();
        // Three requests of one scope: one token, cached.
        assert_eq!(asked.len(), 1, "{asked:?}");
        for s in &asked {
            assert_eq!(
                s.authorization, None,
                "credentials reached a foreign realm: {s:?}"
            );
            assert!(s.query.contains("service=fake-registry"), "{}", s.query);
            assert!(
                s.query.contains("scope=repository%3Ateam%2Fapp%3Apull"),
                "{}",
                s.query
            );
        }
        // The upstream got the token, never the password.
        for s in registry.seen() {
            assert!(
                s.authorization.is_none()
                    || s.authorization.as_deref() == Some("Bearer good-token"),
                "{s:?}"
            );
        }
    });
}

#[test]
fn a_realm_on_the_upstreams_host_or_trusted_gets_credentials() {
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("mirror:s3cret-pw")
    );
    runtime().block_on(async {
        // Same host name as the upstream (another port).
        let realm_same = realm().await;
        let registry = bearer_upstream(format!("{}/token", realm_same.url("127.0.0.1"))).await;
        let up = upstream(
            &registry.url("127.0.0.1"),
            Some(("mirror", "s3cret-pw")),
            &[],
        );
        pull_manifest(up.as_ref()).await;
        let asked = realm_same.seen();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0].authorization.as_deref(), Some(basic.as_str()));

        // Another host, listed in token_realm_hosts.
        let realm_trusted = realm().await;
        let registry = bearer_upstream(format!("{}/token", realm_trusted.url("localhost"))).await;
        let up = upstream(
            &registry.url("127.0.0.1"),
            Some(("mirror", "s3cret-pw")),
            &["localhost"],
        );
        pull_manifest(up.as_ref()).await;
        let asked = realm_trusted.seen();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0].authorization.as_deref(), Some(basic.as_str()));
    });
}

#[test]
fn concurrent_first_requests_share_one_token() {
    runtime().block_on(async {
        let realm = realm().await;
        let registry = bearer_upstream(format!("{}/token", realm.url("127.0.0.1"))).await;
        let up = upstream(
            &registry.url("127.0.0.1"),
            Some(("mirror", "s3cret-pw")),
            &[],
        );
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let up = up.clone();
                tokio::spawn(async move { up.head_manifest("team/app", "v1").await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap().is_some());
        }
        let asked = realm.seen();
        assert_eq!(asked.len(), 1, "8 concurrent misses, one token: {asked:?}");
    });
}
