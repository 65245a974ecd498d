//! Upload sessions: monolithic, chunked, streamed, cancelled, failing.

use axum::http::{Method, StatusCode};
use berth::oci::digest::{Algorithm, Digest};

use crate::support::{path_of, TestRegistry};

#[tokio::test]
async fn chunked_upload_with_content_range() {
    for reg in TestRegistry::all() {
        let r = reg
            .req(Method::POST, "/v2/c/h/blobs/uploads/", &[], "")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(r.header("range"), Some("0-0"));
        let uuid = r.header("docker-upload-uuid").unwrap().to_string();
        let loc = path_of(r.header("location").unwrap());
        assert_eq!(loc, format!("/v2/c/h/blobs/uploads/{uuid}"));

        let r = reg
            .req(
                Method::PATCH,
                &loc,
                &[("content-range", "0-9")],
                "0123456789",
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        assert_eq!(r.header("range"), Some("0-9"));

        let r = reg.get(&loc).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(r.header("range"), Some("0-9"));
        assert_eq!(r.header("docker-upload-uuid"), Some(uuid.as_str()));

        // Out of order: must continue at 10.
        let r = reg
            .req(Method::PATCH, &loc, &[("content-range", "5-9")], "56789")
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID")
        );
        let r = reg
            .req(
                Method::PATCH,
                &loc,
                &[("content-range", "20-29")],
                "abcdefghij",
            )
            .await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);

        let r = reg
            .req(
                Method::PATCH,
                &loc,
                &[("content-range", "10-19")],
                "abcdefghij",
            )
            .await;
        assert_eq!(r.header("range"), Some("0-19"));

        // A length that disagrees with the range is refused before a byte
        // is written: the upload stays at 20 bytes.
        let r = reg
            .req(
                Method::PATCH,
                &loc,
                &[("content-range", "20-29"), ("content-length", "5")],
                "vwxyz",
            )
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
            "{}",
            reg.kind
        );
        let r = reg.get(&loc).await;
        assert_eq!(r.header("range"), Some("0-19"), "{}", reg.kind);

        let all = b"0123456789abcdefghijKLMNO";
        let d = Digest::sha256_of(all);
        let r = reg
            .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "KLMNO")
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(
            r.header("docker-content-digest"),
            Some(d.to_string().as_str())
        );
        assert_eq!(
            path_of(r.header("location").unwrap()),
            format!("/v2/c/h/blobs/{d}")
        );
        assert_eq!(
            reg.get(&format!("/v2/c/h/blobs/{d}")).await.body.as_ref(),
            all
        );
        // The session is gone.
        let r = reg.get(&loc).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
        );
    }
}

#[tokio::test]
async fn streamed_patch_then_put_without_body() {
    for reg in TestRegistry::all() {
        let r = reg.req(Method::POST, "/v2/s/blobs/uploads/", &[], "").await;
        let loc = path_of(r.header("location").unwrap());
        let data = vec![7u8; 300_000];
        let r = reg.req(Method::PATCH, &loc, &[], data.clone()).await;
        assert_eq!(r.header("range"), Some("0-299999"));
        let d = Digest::sha256_of(&data);
        let r = reg
            .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "")
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(
            reg.get(&format!("/v2/s/blobs/{d}")).await.body.len(),
            300_000
        );
    }
}

#[tokio::test]
async fn wrong_digest_stores_nothing() {
    for reg in TestRegistry::all() {
        let wrong = Digest::sha256_of(b"something else");
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/w/blobs/uploads/?digest={wrong}"),
                &[],
                "actual content",
            )
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
        );
        assert_eq!(
            reg.head(&format!("/v2/w/blobs/{wrong}")).await.status,
            StatusCode::NOT_FOUND
        );
        let right = Digest::sha256_of(b"actual content");
        assert_eq!(
            reg.head(&format!("/v2/w/blobs/{right}")).await.status,
            StatusCode::NOT_FOUND
        );

        // Chunked: PUT with the wrong digest fails and discards the session.
        let r = reg.req(Method::POST, "/v2/w/blobs/uploads/", &[], "").await;
        let loc = path_of(r.header("location").unwrap());
        reg.req(Method::PATCH, &loc, &[], "chunk").await;
        let r = reg
            .req(Method::PUT, &format!("{loc}?digest={wrong}"), &[], "")
            .await;
        assert_eq!(r.error_code(), "DIGEST_INVALID");
        assert_eq!(reg.get(&loc).await.status, StatusCode::NOT_FOUND);

        if let Some(root) = &reg.root {
            let blobs = root.join("docker/registry/v2/blobs");
            let count = walk_files(&blobs);
            assert_eq!(count, 0, "no blob data may be stored after digest failures");
        }
    }
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk_files(&p)
        } else {
            1
        }
    })
    .sum()
}

#[tokio::test]
async fn put_without_digest_and_cancel() {
    for reg in TestRegistry::all() {
        let r = reg.req(Method::POST, "/v2/p/blobs/uploads/", &[], "").await;
        let loc = path_of(r.header("location").unwrap());
        let r = reg.req(Method::PUT, &loc, &[], "x").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
        );
        let r = reg
            .req(Method::PUT, &format!("{loc}?digest=sha256:nothex"), &[], "")
            .await;
        assert_eq!(r.error_code(), "DIGEST_INVALID");
        let r = reg.req(Method::DELETE, &loc, &[], "").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = reg.req(Method::DELETE, &loc, &[], "").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
        );
        let r = reg.req(Method::PATCH, &loc, &[], "late").await;
        assert_eq!(r.error_code(), "BLOB_UPLOAD_UNKNOWN");
        // An upload id from one repository is unknown in another.
        let r = reg.req(Method::POST, "/v2/p/blobs/uploads/", &[], "").await;
        let uuid = r.header("docker-upload-uuid").unwrap();
        let r = reg.get(&format!("/v2/q/blobs/uploads/{uuid}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn sha512_digests_are_verified() {
    for reg in TestRegistry::all() {
        let data = b"sha512 content";
        let d = Digest::of(Algorithm::Sha512, data);
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/h/blobs/uploads/?digest={d}"),
                &[],
                data.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(
            reg.get(&format!("/v2/h/blobs/{d}")).await.body.as_ref(),
            data
        );
        // Chunked, with a session whose running hash is sha256: re-hashed.
        let r = reg.req(Method::POST, "/v2/h/blobs/uploads/", &[], "").await;
        let loc = path_of(r.header("location").unwrap());
        reg.req(Method::PATCH, &loc, &[], "more ").await;
        let d2 = Digest::of(Algorithm::Sha512, b"more data");
        let r = reg
            .req(Method::PUT, &format!("{loc}?digest={d2}"), &[], "data")
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
}

/// Eight pushes of one blob at once, on four worker threads, released
/// together by a barrier: every one is acknowledged and the stored bytes
/// are the blob's in both repositories.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_the_same_blob() {
    for reg in TestRegistry::all() {
        let data = vec![42u8; 100_000];
        let d = Digest::sha256_of(&data);
        let reg = std::sync::Arc::new(reg);
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let reg = reg.clone();
            let data = data.clone();
            let d = d.clone();
            let start = start.clone();
            tasks.push(tokio::spawn(async move {
                let repo = format!("conc{}", i % 2);
                start.wait().await;
                reg.req(
                    Method::POST,
                    &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                    &[],
                    data,
                )
                .await
                .status
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), StatusCode::CREATED);
        }
        for repo in ["conc0", "conc1"] {
            let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
            assert_eq!(r.body.as_ref(), data.as_slice());
        }
    }
}

/// Requests on one upload session run one at a time: a PUT that arrives
/// while a PATCH is still streaming waits for it, then verifies exactly the
/// bytes the PATCH wrote. (Without that, the PUT could verify and move the
/// upload while the PATCH's open file kept writing into the new blob.)
/// A chunked upload of a blob the registry already stores (the same layer
/// pushed to another repository without a mount) links it and drops the
/// upload; nothing of the upload is left, and the stored blob is intact.
#[tokio::test]
async fn a_chunked_upload_of_a_stored_blob_links_it_and_leaves_nothing() {
    for reg in TestRegistry::all() {
        let data = vec![7u8; 300 << 10];
        let d = reg.push_blob("first/repo", &data).await;
        let r = reg
            .req(Method::POST, "/v2/second/repo/blobs/uploads/", &[], "")
            .await;
        let loc = path_of(r.header("location").unwrap());
        let r = reg.req(Method::PATCH, &loc, &[], data.clone()).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", reg.kind);
        let r = reg
            .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "")
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {:?}", reg.kind, r.body);
        for repo in ["first/repo", "second/repo"] {
            let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
            assert!(r.body.as_ref() == data.as_slice(), "{} {repo}", reg.kind);
        }
        let r = reg.get(&loc).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: upload left", reg.kind);
        if let Some(root) = &reg.root {
            let repo = root.join("docker/registry/v2/repositories/second/repo");
            assert!(repo.join("_layers").is_dir(), "{}", repo.display());
            let uploads = repo.join("_uploads");
            let left: Vec<_> = std::fs::read_dir(&uploads)
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "upload directories left: {left:?}");
        }
    }
}

/// Polls `ok` until it holds (a barrier on observable state, not a
/// sleep); panics after 30 s.
async fn until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    for _ in 0..3000 {
        if ok().await {
            return;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_put_waits_for_a_patch_in_flight_on_the_same_upload() {
    use futures::SinkExt;
    use std::time::Instant;
    let regs = TestRegistry::all_with(|c| {
        c.storage.delete.enabled = true;
        c.http.debug.prometheus.enabled = true;
    });
    for reg in regs {
        let r = reg
            .req(Method::POST, "/v2/race/x/blobs/uploads/", &[], "")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let loc = path_of(r.header("location").unwrap());
        // More than a writer's first buffer, so the PATCH has data on
        // storage (and a file open) while it waits for the rest.
        let (part1, part2) = (vec![1u8; 256 << 10], vec![2u8; 100 << 10]);
        let all = [part1.clone(), part2.clone()].concat();
        let d = Digest::sha256_of(&all);
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        // Says when the handler takes the first chunk of the PATCH body.
        let (taken_tx, taken) = tokio::sync::oneshot::channel::<()>();
        let mut taken_tx = Some(taken_tx);
        let rx = futures::StreamExt::inspect(rx, move |_| {
            if let Some(t) = taken_tx.take() {
                let _ = t.send(());
            }
        });
        let patch = reg.req(Method::PATCH, &loc, &[], axum::body::Body::from_stream(rx));
        let (put_go, put_started) = tokio::sync::oneshot::channel::<()>();
        let put = async {
            // Barrier: sent only once the PATCH is in and holds the session.
            put_started.await.expect("go");
            let r = reg
                .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "")
                .await;
            (r, Instant::now())
        };
        let feed = async {
            tx.send(Ok(part1)).await.expect("send");
            // Barrier: the PATCH handler takes the session before it reads
            // its body, so once it has taken the first chunk it holds it.
            taken.await.expect("the PATCH read its body");
            put_go.send(()).expect("put");
            // The PUT is being served too (waiting on the PATCH): only now
            // does the PATCH's body end.
            until("the PUT in flight beside the PATCH", async || {
                crate::auth::metric(&reg, "berth_http_uploads_in_flight").await >= 2
            })
            .await;
            let body_ends = Instant::now();
            tx.send(Ok(part2)).await.expect("send");
            drop(tx);
            body_ends
        };
        let (p, (put, put_done), body_ends) = tokio::join!(patch, put, feed);
        assert_eq!(p.status, StatusCode::ACCEPTED, "{}: {:?}", reg.kind, p.body);
        assert_eq!(
            put.status,
            StatusCode::CREATED,
            "{}: {:?}",
            reg.kind,
            put.body
        );
        assert!(
            put_done > body_ends,
            "{}: the PUT answered before the PATCH's body had ended",
            reg.kind
        );
        let r = reg.get(&format!("/v2/race/x/blobs/{d}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", reg.kind);
        assert!(
            r.body.as_ref() == all.as_slice(),
            "{}: blob content",
            reg.kind
        );
    }
}

#[tokio::test]
async fn location_headers_behind_a_proxy() {
    let reg = TestRegistry::memory_with(|_| {});
    let fwd = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "registry.example.com"),
    ];
    let r = reg
        .req(Method::POST, "/v2/p/blobs/uploads/", &fwd, "")
        .await;
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with("https://registry.example.com/v2/p/blobs/uploads/"),
        "{loc}"
    );
    // A forged scheme is ignored.
    let r = reg
        .req(
            Method::POST,
            "/v2/p/blobs/uploads/",
            &[("x-forwarded-proto", "javascript")],
            "",
        )
        .await;
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("http://registry.test/"));

    let rel = TestRegistry::memory_with(|c| c.http.relativeurls = true);
    let r = rel
        .req(Method::POST, "/v2/p/blobs/uploads/", &fwd, "")
        .await;
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("/v2/p/blobs/uploads/"));

    let host = TestRegistry::memory_with(|c| c.http.host = "https://reg.example.org:8443/".into());
    let r = host
        .req(Method::POST, "/v2/p/blobs/uploads/", &fwd, "")
        .await;
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("https://reg.example.org:8443/v2/p/blobs/uploads/"));
}

/// Two instances over one storage root, as replicas behind a load balancer.
fn replicas() -> (TestRegistry, TestRegistry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let make = || TestRegistry::filesystem_at(dir.path(), |_| {});
    let (a, b) = (make(), make());
    (a, b, dir)
}

#[tokio::test]
async fn chunked_upload_hops_between_instances() {
    let (a, b, dir) = replicas();
    let r = a.req(Method::POST, "/v2/hop/blobs/uploads/", &[], "").await;
    let loc = path_of(r.header("location").unwrap());
    let uuid = r.header("docker-upload-uuid").unwrap().to_string();
    let parts: [&[u8]; 3] = [&[1u8; 70_000], &[2u8; 100], &[3u8; 5000]];
    let mut offset = 0usize;
    for (i, part) in parts.iter().enumerate() {
        let reg = if i % 2 == 0 { &b } else { &a };
        let range = format!("{}-{}", offset, offset + part.len() - 1);
        let r = reg
            .req(
                Method::PATCH,
                &loc,
                &[("content-range", &range)],
                part.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "chunk {i}");
        offset += part.len();
        // The running hash is saved where any instance finds it.
        let state = dir.path().join(format!(
            "docker/registry/v2/repositories/hop/_uploads/{uuid}/hashstates/sha256/{offset}"
        ));
        let saved = std::fs::read(&state).unwrap();
        assert_eq!((saved.len(), &saved[..4]), (108, b"sha\x03".as_ref()));
    }
    // Status from the other instance agrees.
    let r = a.get(&loc).await;
    assert_eq!(
        r.header("range"),
        Some(format!("0-{}", offset - 1).as_str())
    );
    let all: Vec<u8> = parts.concat();
    let d = Digest::sha256_of(&all);
    let r = b
        .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        a.get(&format!("/v2/hop/blobs/{d}")).await.body.as_ref(),
        all.as_slice()
    );
}

#[tokio::test]
async fn completion_uses_the_saved_hash_state_not_a_rehash() {
    // Proof that the state is used: after the chunk, the stored bytes are
    // changed behind the registry's back. A re-hash would see the change and
    // refuse the digest of what was sent; the saved state accepts it.
    let (a, b, dir) = replicas();
    let r = a.req(Method::POST, "/v2/st/blobs/uploads/", &[], "").await;
    let loc = path_of(r.header("location").unwrap());
    let uuid = r.header("docker-upload-uuid").unwrap().to_string();
    let sent = vec![9u8; 4096];
    a.req(Method::PATCH, &loc, &[], sent.clone()).await;
    let data = dir.path().join(format!(
        "docker/registry/v2/repositories/st/_uploads/{uuid}/data"
    ));
    let mut changed = std::fs::read(&data).unwrap();
    changed[0] = 0;
    std::fs::write(&data, &changed).unwrap();
    let d = Digest::sha256_of(&sent);
    let r = b
        .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "")
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "instance b continued from a's saved state"
    );
}
