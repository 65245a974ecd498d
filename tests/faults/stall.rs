//! Item 3 of issue 18, stalls: an object store that accepts a request and
//! then sends nothing (no head, or half a body and then silence) is cut off
//! by `storage.s3.idletimeout`: the registry answers 503 `storage
//! unavailable` in the spec's error format with `Retry-After`, or, once a
//! streamed blob's 200 has gone out, cuts the connection; and the next
//! request, with the store healthy again, works.

use rand::Rng;

use super::disk_full::assert_clear_5xx;
use super::object_store::{rt, upstream, via};
use super::proxy::{Fault, FaultProxy};
use super::support::{digest_of, s3_storage, seeded_rng, Api, Berth, Sent};
use crate::procs::tempdir;

/// Blob data objects (not links, not upload state).
const BLOB_DATA: &str = "/blobs/sha256/";

/// A 503 `storage unavailable` with `Retry-After`.
fn assert_unavailable(what: &str, sent: &Sent) {
    assert_clear_5xx(what, sent, "storage unavailable");
    assert_eq!(sent.status(), Some(503), "{what}: {}", sent.text());
    assert!(
        sent.header("retry-after").is_some(),
        "{what}: no Retry-After"
    );
}

#[test]
fn a_store_that_stalls_forever_is_cut_off_and_the_next_request_works() {
    let Some(server) = upstream() else {
        return;
    };
    let mut rng = seeded_rng("object-store/stall");
    let proxy = FaultProxy::start(&server.endpoint, rng.gen(), 0);
    let tmp = tempdir("berth-s3-stall-");
    let root = crate::s3::fresh_root("stall");
    let storage = s3_storage(&via(server, &proxy), &root).replace(
        "    chunksize: 5242880\n",
        "    chunksize: 5242880\n    idletimeout: 1s\n",
    );
    assert!(storage.contains("idletimeout: 1s"), "{storage}");
    let mut berth = Berth::start(&tmp.path().join("berth"), &storage);
    let api = Api::new(berth.url(""));
    // One blob read whole (up to 4 MiB) and one streamed (above).
    let small = b"a small blob, read whole".to_vec();
    let mut big = vec![0u8; 6 << 20];
    rng.fill(&mut big[..]);
    let blob = |data: &[u8]| format!("/v2/stall/app/blobs/{}", digest_of(data));
    rt().block_on(async {
        for data in [&small, &big] {
            let sent = api.push_blob("stall/app", data).await;
            assert_eq!(sent.status(), Some(201), "push: {}", sent.text());
        }

        // No answer at all, to any request: reads and pushes fail with a
        // clear 503 once the retries (each cut after 1 s) run out.
        proxy.force(Some(Fault::Hang));
        let sent = api.send("GET", &blob(&small), &[], None).await;
        assert_unavailable("read from a store that never answers", &sent);
        let sent = api
            .push_blob("stall/app", b"pushed into a hung store")
            .await;
        assert_unavailable("push into a store that never answers", &sent);
        let hung = proxy.counts(true);
        assert!(
            hung.by_fault.get("Hang").copied().unwrap_or(0) >= 2,
            "the store was never asked: {hung:?}"
        );
        proxy.force(None);
        let (status, body) = api.get(&blob(&small)).await;
        assert_eq!(status, 200, "read after the stall");
        assert_eq!(body, small, "read after the stall");

        // Head and half the body of blob data, then silence: a blob read
        // whole fails before its answer starts (503); a streamed one has
        // sent its 200, so the connection is cut short of Content-Length.
        proxy.force_where(Fault::HangBody, BLOB_DATA);
        let sent = api.send("GET", &blob(&small), &[], None).await;
        assert_unavailable("read of a small blob whose body stalls", &sent);
        match api.send("GET", &blob(&big), &[], None).await {
            Sent::Lost(e) => eprintln!("object-store/stall: streamed read cut: {e}"),
            Sent::Answer(s, _, b) => panic!(
                "a streamed read whose store stalled completed: {s}, {} of {} bytes",
                b.len(),
                big.len()
            ),
        }
        let stalled = proxy.counts(true);
        assert!(
            stalled.by_fault.get("HangBody").copied().unwrap_or(0) >= 2,
            "no body stalled: {stalled:?}"
        );

        // The store healthy again: both read whole, a push works.
        proxy.force(None);
        for data in [&small, &big] {
            let (status, body) = api.get(&blob(data)).await;
            assert_eq!(status, 200, "read after the body stall");
            assert!(body == data[..], "read after the body stall: wrong bytes");
        }
        let sent = api.push_blob("stall/app", b"pushed after the stall").await;
        assert_eq!(sent.status(), Some(201), "push after: {}", sent.text());
    });
    berth.stop();
}
