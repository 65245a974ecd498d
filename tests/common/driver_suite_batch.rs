//! Suite cases for `apply_deferred` batches: the writes a request makes
//! after its body (a blob's move, its link, the upload's clean-up), which
//! must mean exactly what the single calls mean on every backend.

use berth::storage::DeferredWrite;
use bytes::Bytes;

use super::*;

fn put_write(key: &str, content: &[u8]) -> DeferredWrite {
    DeferredWrite::Put {
        key: key.to_string(),
        content: Bytes::copy_from_slice(content),
    }
}

fn move_write(from: &str, to: &str) -> DeferredWrite {
    DeferredWrite::Move {
        from: from.to_string(),
        to: to.to_string(),
    }
}

fn delete_write(key: &str) -> DeferredWrite {
    DeferredWrite::DeleteIfExists {
        key: key.to_string(),
    }
}

/// Writes apply in order, each seeing the ones before it.
pub async fn batch_applies_in_order(d: Driver) {
    let b = base();
    let (a, moved, gone) = (
        format!("{b}/a"),
        format!("{b}/x/y/moved"),
        format!("{b}/gone/obj"),
    );
    put(&d, &gone, b"old").await;
    d.apply_deferred(vec![
        put_write(&a, b"first"),
        move_write(&a, &moved),
        put_write(&a, b"second"),
        delete_write(&format!("{b}/never-written")),
        delete_write(&format!("{b}/gone")),
    ])
    .await
    .expect("apply_deferred");
    assert_eq!(
        get(&d, &moved).await,
        b"first",
        "the move saw the first put"
    );
    assert_eq!(
        get(&d, &a).await,
        b"second",
        "the later put came after the move"
    );
    assert_eq!(
        kind(&d.stat(&gone).await),
        "not_found",
        "deleted with its tree"
    );
    d.sync().await.expect("sync");
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        vec![a.clone(), moved.clone()],
        "nothing else written, no temp files left"
    );
    d.apply_deferred(Vec::new()).await.expect("an empty batch");
}

/// A failing write stops the batch: what came before it stays, nothing
/// after it happens, and the error is the single call's error.
pub async fn batch_stops_at_first_error(d: Driver) {
    let b = base();
    let (before, after) = (format!("{b}/before"), format!("{b}/after"));
    let r = d
        .apply_deferred(vec![
            put_write(&before, b"kept"),
            move_write(&format!("{b}/missing"), &format!("{b}/dest")),
            put_write(&after, b"never"),
        ])
        .await;
    assert_eq!(
        kind(&r),
        "not_found",
        "moving nothing fails as move_deferred does"
    );
    assert_eq!(get(&d, &before).await, b"kept");
    assert_eq!(kind(&d.stat(&after).await), "not_found");
    assert_eq!(kind(&d.stat(&format!("{b}/dest")).await), "not_found");
    let r = d
        .apply_deferred(vec![put_write("relative/key", b"x")])
        .await;
    assert_eq!(
        kind(&r),
        "invalid_path",
        "keys are checked like the single calls'"
    );
}

/// An upload's life as the registry drives it: an empty data object,
/// appended to, committed, then moved into place with its directory
/// cleaned up in one batch (with the commit, `commit_deferred_then`, or
/// after it). Whatever the backend does with directories,
/// the upload is gone and the blob holds the bytes; a sibling of the data
/// (a saved hash state) does not follow the data.
pub async fn batch_completes_uploads(d: Driver) {
    let b = base();
    for (upload, sibling) in [("u1", false), ("u2", true)] {
        let dir = format!("{b}/_uploads/{upload}");
        let data = format!("{dir}/data");
        // As the registry starts an upload: an empty writer, closed.
        writer(&d, &data, false)
            .await
            .close()
            .await
            .expect("empty data");
        assert_eq!(d.stat(&data).await.expect("stat").size, 0);
        let state = format!("{dir}/hashstates/sha256/0");
        if sibling {
            put(&d, &state, b"state").await;
        }
        let body = pseudo_random(upload.len() as u64 + 40, 20_000);
        let mut w = writer(&d, &data, true).await;
        w.write(&body).await.expect("write");
        let dest = format!("{b}/blobs/sha256/ab/{upload}/data");
        if sibling {
            w.commit_deferred().await.expect("commit");
            d.apply_deferred(vec![move_write(&data, &dest)])
                .await
                .expect("move");
        } else {
            // The writer's last step and the batch together, as the
            // registry completes an upload whose hash it kept.
            w.commit_deferred_then(d.as_ref(), vec![move_write(&data, &dest)])
                .await
                .expect("commit, then move");
        }
        assert_eq!(get(&d, &dest).await, body);
        assert_eq!(kind(&d.stat(&data).await), "not_found");
        if sibling {
            assert_eq!(get(&d, &state).await, b"state", "the sibling stays behind");
        }
        d.apply_deferred(vec![delete_write(&dir)])
            .await
            .expect("clean-up");
        assert_eq!(kind(&d.stat(&state).await), "not_found");
        d.sync().await.expect("sync");
    }
    let uploads = match d.list(&format!("{b}/_uploads")).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => panic!("list: {e}"),
    };
    assert!(uploads.is_empty(), "no upload left: {uploads:?}");
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        vec![
            format!("{b}/blobs/sha256/ab/u1/data"),
            format!("{b}/blobs/sha256/ab/u2/data"),
        ]
    );
}

/// Deferred writes are visible (and atomic) at once, and `sync` makes them
/// durable without error, also when many requests sync together.
pub async fn deferred_writes_then_sync(d: Driver) {
    let b = base();
    let link = format!("{b}/_layers/sha256/abcd/link");
    d.put_deferred(&link, Bytes::from_static(b"sha256:abcd"))
        .await
        .expect("put_deferred");
    assert_eq!(get(&d, &link).await, b"sha256:abcd");
    d.put_deferred(&link, Bytes::from_static(b"sha256:ef01"))
        .await
        .expect("put_deferred over");
    assert_eq!(get(&d, &link).await, b"sha256:ef01");

    let src = format!("{b}/_uploads/u/data");
    let mut w = writer(&d, &src, false).await;
    w.write(&pseudo_random(5, 70_000)).await.expect("write");
    w.commit_deferred().await.expect("commit_deferred");
    assert_eq!(get(&d, &src).await, pseudo_random(5, 70_000));
    let dest = format!("{b}/blobs/sha256/ab/abcd/data");
    d.move_deferred(&src, &dest).await.expect("move_deferred");
    assert_eq!(get(&d, &dest).await, pseudo_random(5, 70_000));
    assert_eq!(kind(&d.stat(&src).await), "not_found");
    assert_eq!(
        kind(&d.move_deferred(&src, &dest).await),
        "not_found",
        "a deferred move of nothing fails like move_object"
    );

    let syncs: Vec<_> = (0..16)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move { d.sync().await })
        })
        .collect();
    for s in syncs {
        s.await.expect("task").expect("sync");
    }
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        vec![link.clone(), dest.clone()],
        "exactly the written objects, no temp files"
    );
}

/// `commit_to_then` puts exactly the writer's bytes (what it resumed from
/// and what it wrote) at another key, then applies the batch, for a small
/// upload and for one past a multipart part.
pub async fn commit_to_publishes_the_writers_bytes(d: Driver) {
    let b = base();
    for (upload, first, more) in [("small", 70_000, 1_000), ("large", 70_000, 9_000_000)] {
        let dir = format!("{b}/_uploads/{upload}");
        let data = format!("{dir}/data");
        let head = pseudo_random(7, first);
        let mut w = writer(&d, &data, false).await;
        w.write(&head).await.expect("write");
        w.close().await.expect("close");
        let tail = pseudo_random(8, more);
        let mut w = writer(&d, &data, true).await;
        w.write(&tail).await.expect("write");
        let dest = format!("{b}/blobs/sha256/cd/{upload}/data");
        let link = format!("{b}/repo/_layers/sha256/{upload}/link");
        w.commit_to_then(
            d.as_ref(),
            &dest,
            vec![put_write(&link, b"sha256:x"), delete_write(&dir)],
        )
        .await
        .expect("commit_to_then");
        d.sync().await.expect("sync");
        let got = get(&d, &dest).await;
        assert_eq!(got.len(), first + more, "{upload}: size at dest");
        assert!(
            got == [head.clone(), tail].concat(),
            "{upload}: bytes at dest"
        );
        assert_eq!(get(&d, &link).await, b"sha256:x", "{upload}: batch applied");
        assert_eq!(
            kind(&d.stat(&data).await),
            "not_found",
            "{upload}: upload removed"
        );
    }
}
