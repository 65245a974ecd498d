//! How upstream failures map onto `UpstreamError`: down, 5xx, 429 and
//! timeouts are `Unavailable` (the registry then serves its cache), refused
//! credentials `Denied`, nonsense `Invalid`; a blob redirect to another
//! host carries no `Authorization`; a stalled body ends with an error.

use std::sync::Arc;
use std::time::Duration;

use berth::mirror::{HttpUpstream, Upstream, UpstreamError, UpstreamSettings};
use berth::oci::digest::Digest;
use futures::StreamExt;

use crate::mirror_client::fake::{resp, Fake};
use crate::mirror_client::support::*;
use crate::procs::free_port;

fn quick(remote_url: &str, creds: Option<(&str, &str)>) -> Arc<HttpUpstream> {
    Arc::new(
        HttpUpstream::new(UpstreamSettings {
            label: "quick".into(),
            remote_url: remote_url.into(),
            username: creds.map(|c| c.0.to_string()),
            password: creds.map(|c| c.1.to_string()),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(1),
            read_idle_timeout: Duration::from_secs(1),
            ..Default::default()
        })
        .unwrap(),
    )
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, UpstreamError>) {
    match r {
        Err(UpstreamError::Invalid(_)) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn upstream_down_is_unavailable() {
    let port = free_port(); // nothing listens there
    runtime().block_on(async {
        let up = quick(&format!("http://127.0.0.1:{port}"), Some(("u", "p")));
        assert_unavailable(up.head_manifest("library/alpine", "3.20").await);
        assert_unavailable(up.get_manifest("library/alpine", "3.20").await);
        let d = Digest::sha256_of(b"x");
        assert_unavailable(up.head_blob("library/alpine", &d).await);
        assert_unavailable(up.get_blob("library/alpine", &d).await.map(|b| b.is_some()));
    });
}

#[test]
fn server_errors_rate_limits_and_timeouts_are_unavailable() {
    runtime().block_on(async {
        for status in [500, 502, 503, 429] {
            let srv =
                Fake::start(move |_| async move { resp(status, &[("retry-after", "5")], "busy") })
                    .await;
            let up = quick(&srv.url("127.0.0.1"), None);
            assert_unavailable(up.head_manifest("a/b", "latest").await);
            assert_unavailable(
                up.get_blob("a/b", &Digest::sha256_of(b"x"))
                    .await
                    .map(|b| b.is_some()),
            );
        }
        // No answer at all within the response timeout.
        let hang = Fake::start(|_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            resp(200, &[], "")
        })
        .await;
        let up = quick(&hang.url("127.0.0.1"), None);
        assert_unavailable(up.get_manifest("a/b", "latest").await);
        // The token realm failing is the upstream failing.
        let realm = Fake::start(|_| async { resp(503, &[], "") }).await;
        let challenge = format!(
            "Bearer realm=\"{}/token\",service=\"s\"",
            realm.url("127.0.0.1")
        );
        let srv = Fake::start(move |_| {
            let c = challenge.clone();
            async move { resp(401, &[("www-authenticate", c.as_str())], "") }
        })
        .await;
        let up = quick(&srv.url("127.0.0.1"), None);
        assert_unavailable(up.head_manifest("a/b", "latest").await);
    });
}

#[test]
fn refused_credentials_are_denied_after_one_retry() {
    runtime().block_on(async {
        let srv =
            Fake::start(|_| async { resp(401, &[("www-authenticate", "Basic realm=\"r\"")], "") })
                .await;
        let up = quick(&srv.url("127.0.0.1"), Some(("u", "bad")));
        assert_denied(up.head_manifest("a/b", "latest").await);
        let seen = srv.seen();
        assert_eq!(
            seen.len(),
            2,
            "one anonymous try, one with the credentials: {seen:?}"
        );
        assert!(seen[1]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic ")));
        // Without credentials: denied at once.
        let up = quick(&srv.url("127.0.0.1"), None);
        assert_denied(up.get_manifest("a/b", "latest").await);
        // 403 is denied too; a realm refusing the password as well.
        let srv = Fake::start(|_| async { resp(403, &[], "") }).await;
        assert_denied(
            quick(&srv.url("127.0.0.1"), None)
                .head_manifest("a/b", "x")
                .await,
        );
        // A 401 without any usable challenge.
        let srv =
            Fake::start(|_| async { resp(401, &[("www-authenticate", "Digest \"x")], "") }).await;
        assert_denied(
            quick(&srv.url("127.0.0.1"), Some(("u", "p")))
                .head_manifest("a/b", "x")
                .await,
        );
    });
}

#[test]
fn blob_redirects_to_another_host_carry_no_authorization() {
    let blob = b"layer bytes from the object store".to_vec();
    let digest = Digest::sha256_of(&blob);
    runtime().block_on(async {
        let body = blob.clone();
        let store = Fake::start(move |_| {
            let body = body.clone();
            async move { resp(200, &[("content-length", &body.len().to_string())], body) }
        })
        .await;
        let store_url = store.url("localhost");
        let same_body = blob.clone();
        let registry = Fake::start(move |seen| {
            let store_url = store_url.clone();
            let body = same_body.clone();
            async move {
                if seen.authorization.is_none() {
                    return resp(401, &[("www-authenticate", "Basic realm=\"r\"")], "");
                }
                if seen.path.starts_with("/storage/") {
                    return resp(200, &[("content-length", &body.len().to_string())], body);
                }
                if seen.path.starts_with("/v2/other/") {
                    // A redirect on the registry's own origin keeps it.
                    return resp(307, &[("location", "/storage/blob")], "");
                }
                let to = format!("{store_url}/bucket/blob?X-Amz-Signature=abc");
                resp(307, &[("location", to.as_str())], "")
            }
        })
        .await;
        let up = quick(&registry.url("127.0.0.1"), Some(("mirror", "pw")));
        assert_eq!(
            read_blob(up.as_ref(), "team/app", &digest).await.unwrap(),
            blob
        );
        assert_eq!(
            up.head_blob("team/app", &digest).await.unwrap(),
            Some(blob.len() as u64)
        );
        let at_store = store.seen();
        assert_eq!(at_store.len(), 2, "{at_store:?}");
        assert!(
            at_store.iter().all(|s| s.authorization.is_none()),
            "{at_store:?}"
        );
        assert!(at_store[0].query.contains("X-Amz-Signature"));

        assert_eq!(
            read_blob(up.as_ref(), "other/app", &digest).await.unwrap(),
            blob
        );
        assert!(registry
            .seen()
            .iter()
            .any(|s| s.path == "/storage/blob" && s.authorization.is_some()));
    });
}

#[test]
fn stalled_bodies_end_with_an_error() {
    runtime().block_on(async {
        let srv = Fake::start(|_| async {
            let start = futures::stream::iter([Ok::<_, std::io::Error>(
                bytes::Bytes::from_static(b"0123456789"),
            )]);
            let stream = start.chain(futures::stream::pending());
            resp(
                200,
                &[
                    ("content-length", "1000"),
                    ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                ],
                axum::body::Body::from_stream(stream),
            )
        })
        .await;
        let up = quick(&srv.url("127.0.0.1"), None);
        let blob = up
            .get_blob("a/b", &Digest::sha256_of(b"x"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(blob.size, Some(1000));
        let mut stream = blob.stream;
        let mut got = 0;
        let err = loop {
            match stream.next().await {
                Some(Ok(chunk)) => got += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("a stalled body ended cleanly after {got} bytes"),
            }
        };
        assert_eq!(got, 10);
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert_unavailable(up.get_manifest("a/b", "latest").await);
    });
}

#[test]
fn nonsense_answers_are_invalid() {
    runtime().block_on(async {
        let big = vec![b' '; 5 << 20];
        let srv = Fake::start(move |seen| {
            let big = big.clone();
            async move {
                let oci = ("content-type", "application/vnd.oci.image.manifest.v1+json");
                match seen.path.as_str() {
                    // Too big, announced or streamed without a length.
                    "/v2/big/announced/manifests/t" => resp(200, &[oci], big),
                    "/v2/big/streamed/manifests/t" => {
                        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = big
                            .chunks(64 << 10)
                            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                            .collect();
                        resp(
                            200,
                            &[oci],
                            axum::body::Body::from_stream(futures::stream::iter(chunks)),
                        )
                    }
                    "/v2/bad/digest/manifests/t" => {
                        resp(200, &[oci, ("docker-content-digest", "md5:abc")], "{}")
                    }
                    "/v2/no/digest/manifests/t" => resp(200, &[oci, ("content-length", "2")], ""),
                    "/v2/loop/a/manifests/t" => {
                        resp(302, &[("location", "/v2/loop/a/manifests/t")], "")
                    }
                    _ => resp(418, &[], ""),
                }
            }
        })
        .await;
        let up = quick(&srv.url("127.0.0.1"), None);
        assert_invalid(up.get_manifest("big/announced", "t").await);
        assert_invalid(up.get_manifest("big/streamed", "t").await);
        assert_invalid(up.get_manifest("bad/digest", "t").await);
        // A HEAD by tag must name the digest.
        assert_invalid(up.head_manifest("no/digest", "t").await);
        assert_invalid(up.head_manifest("loop/a", "t").await);
        assert_invalid(up.head_manifest("tea/pot", "t").await);
        // Names and references outside the grammar never reach the upstream.
        let before = srv.seen().len();
        assert_invalid(up.get_manifest("../../etc", "t").await);
        assert_invalid(up.get_manifest("a/b", "t?x=1").await);
        assert_eq!(srv.seen().len(), before);
        // By digest, the upstream must not name another one.
        let asked = Digest::sha256_of(b"wanted").to_string();
        let srv = Fake::start(|_| async {
            let other = Digest::sha256_of(b"other").to_string();
            resp(
                200,
                &[
                    ("content-type", "application/json"),
                    ("docker-content-digest", other.as_str()),
                ],
                "{}",
            )
        })
        .await;
        assert_invalid(
            quick(&srv.url("127.0.0.1"), None)
                .get_manifest("a/b", &asked)
                .await,
        );
    });
}
