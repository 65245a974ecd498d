//! Suite cases for writers: appends across requests, visibility on
//! commit, cancel, and what a dropped writer leaves (nothing).

use super::*;

/// Chunked uploads continue the same object across requests.
pub async fn append_across_close_and_reopen(d: Driver) {
    let key = format!("{}/_uploads/id/data", base());
    let chunks = [
        pseudo_random(4, 70_000),
        pseudo_random(5, 1),
        // Crosses two 4 MiB buffers from an unaligned start.
        pseudo_random(6, 9_000_000),
    ];
    let mut expected = Vec::new();

    let mut w = writer(&d, &key, false).await;
    w.write(&chunks[0]).await.expect("write");
    expected.extend_from_slice(&chunks[0]);
    assert_eq!(w.size(), expected.len() as u64);
    w.close().await.expect("close");
    // Closed content is there for the next writer (and readable).
    assert_eq!(
        d.stat(&key).await.expect("stat").size,
        expected.len() as u64
    );
    assert_eq!(get(&d, &key).await, expected);

    for chunk in &chunks[1..] {
        let mut w = writer(&d, &key, true).await;
        assert_eq!(w.size(), expected.len() as u64, "size after reopen");
        // Several small writes form one chunk.
        for part in chunk.chunks(40_000) {
            w.write(part).await.expect("write");
        }
        expected.extend_from_slice(chunk);
        assert_eq!(w.size(), expected.len() as u64);
        w.close().await.expect("close");
    }

    let w = writer(&d, &key, true).await;
    assert_eq!(w.size(), expected.len() as u64);
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &key).await, expected);
    assert_eq!(read_from(&d, &key, 70_000).await, &expected[70_000..]);

    // An empty object can be continued too.
    let empty = format!("{key}-empty");
    writer(&d, &empty, false)
        .await
        .close()
        .await
        .expect("close");
    let mut w = writer(&d, &empty, true).await;
    assert_eq!(w.size(), 0);
    w.write(b"abc").await.expect("write");
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &empty).await, b"abc");
}

/// A half-written object must never be served.
pub async fn writer_content_visible_only_after_commit(d: Driver) {
    let b = base();
    let fresh = format!("{b}/new/obj");
    let mut w = writer(&d, &fresh, false).await;
    w.write(&pseudo_random(7, 3 << 20)).await.expect("write");
    assert_eq!(kind(&d.get_content(&fresh).await), "not_found");
    assert_eq!(kind(&d.stat(&fresh).await), "not_found");
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &fresh).await, pseudo_random(7, 3 << 20));

    let existing = format!("{b}/existing");
    put(&d, &existing, b"old").await;
    let mut w = writer(&d, &existing, false).await;
    w.write(&pseudo_random(8, 2 << 20)).await.expect("write");
    assert_eq!(get(&d, &existing).await, b"old");
    assert_eq!(d.stat(&existing).await.expect("stat").size, 3);
    assert_eq!(
        d.walk(&b).await.expect("walk"),
        sorted(vec![existing.clone(), fresh.clone()]),
        "an open writer shows up nowhere"
    );
    w.commit().await.expect("commit");
    assert_eq!(get(&d, &existing).await, pseudo_random(8, 2 << 20));
}

/// Cancelled uploads leave nothing; a cancelled replacement leaves the old object.
pub async fn cancel_discards(d: Driver) {
    let b = base();
    // Cancelling an upload removes everything the chain wrote.
    let upload = format!("{b}/_uploads/u/data");
    let mut w = writer(&d, &upload, false).await;
    w.write(b"first").await.expect("write");
    w.close().await.expect("close");
    let mut w = writer(&d, &upload, true).await;
    w.write(b"second").await.expect("write");
    w.cancel().await.expect("cancel");
    assert_eq!(kind(&d.get_content(&upload).await), "not_found");
    assert_eq!(kind(&d.writer(&upload, true).await), "not_found");

    // A fresh writer's cancel leaves nothing.
    let fresh = format!("{b}/fresh");
    let mut w = writer(&d, &fresh, false).await;
    w.write(b"data").await.expect("write");
    w.cancel().await.expect("cancel");
    assert_eq!(kind(&d.stat(&fresh).await), "not_found");

    // A replacing writer's cancel keeps what was there before it.
    let kept = format!("{b}/kept");
    put(&d, &kept, b"before").await;
    let mut w = writer(&d, &kept, false).await;
    w.write(b"replacement").await.expect("write");
    w.cancel().await.expect("cancel");
    assert_eq!(get(&d, &kept).await, b"before");
    assert_eq!(d.walk(&b).await.expect("walk"), vec![kept]);
}

/// A client that disconnects mid-request must not leave partial data or state.
pub async fn dropped_writer_leaves_nothing(d: Driver) {
    let b = base();
    let key = format!("{b}/deep/er/obj");
    let mut w = writer(&d, &key, false).await;
    // Past two of the filesystem writer's 4 MiB buffers: a write is in
    // flight when the writer is dropped.
    w.write(&pseudo_random(9, 9 << 20)).await.expect("write");
    w.write(b"tail").await.expect("write");
    drop(w);
    assert_eq!(kind(&d.get_content(&key).await), "not_found");
    assert_eq!(kind(&d.stat(&key).await), "not_found");
    assert_eq!(kind(&d.stat(&format!("{b}/deep")).await), "not_found");
    assert_eq!(kind(&d.walk(&b).await), "not_found");

    // Dropping over existing content keeps it.
    let existing = format!("{b}/existing");
    put(&d, &existing, b"before").await;
    let mut w = writer(&d, &existing, false).await;
    w.write(b"lost").await.expect("write");
    drop(w);
    assert_eq!(get(&d, &existing).await, b"before");

    // Dropping an append writer puts the object back to where it started.
    let upload = format!("{b}/_uploads/x/data");
    let mut w = writer(&d, &upload, false).await;
    w.write(b"kept part").await.expect("write");
    w.close().await.expect("close");
    let mut w = writer(&d, &upload, true).await;
    w.write(&pseudo_random(10, 9 << 20)).await.expect("write");
    w.write(b"lost part").await.expect("write");
    drop(w);
    assert_eq!(get(&d, &upload).await, b"kept part");
    let w = writer(&d, &upload, true).await;
    assert_eq!(w.size(), 9);
    drop(w);

    assert_eq!(
        d.walk(&b).await.expect("walk"),
        sorted(vec![existing, upload])
    );
}
