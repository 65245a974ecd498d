//! Two replicas on one storage and one upload session: whatever order their
//! requests interleave in, a blob that becomes visible holds exactly the
//! bytes of its digest.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use berth::oci::digest::Digest;
use berth::storage::{
    BoxReader, ByteStream, DeferredWrite, FileInfo, FileWriter, StorageDriver, StorageResult,
};
use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::Notify;

use crate::support::{path_of, Resp, TestRegistry};

/// Where replica B's PUT has got to, as its driver sees it, and whether
/// its move may go on: the races below are ordered by these, not by sleeps.
#[derive(Default)]
struct Hooks {
    state: Mutex<Stage>,
    changed: Notify,
}

#[derive(Default, Clone, Copy)]
struct Stage {
    /// B has called its driver on the upload (its claim included).
    at_storage: bool,
    /// B has verified the bytes and is making them the blob.
    at_move: bool,
    /// Moves wait for `released` (A's PATCH answered).
    hold_moves: bool,
    released: bool,
    /// B's PUT has answered (some backends finish without a move).
    answered: bool,
}

impl Hooks {
    fn reset(&self, hold_moves: bool) {
        self.set(|s| {
            *s = Stage {
                hold_moves,
                ..Stage::default()
            }
        });
    }

    fn set(&self, f: impl FnOnce(&mut Stage)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
        self.changed.notify_waiters();
    }

    fn now(&self) -> Stage {
        self.state.lock().map(|s| *s).unwrap_or_default()
    }

    async fn until(&self, ok: impl Fn(&Stage) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if ok(&self.now()) {
                return;
            }
            changed.await;
        }
    }
}

/// Replica B's driver: tells the hooks when B reaches the upload and its
/// move, and holds a move until released when asked to; otherwise passes
/// every call on.
struct Hooked(Arc<dyn StorageDriver>, Arc<Hooks>);

impl Hooked {
    fn touch(&self, p: &str) {
        if p.contains("/_uploads/") && !self.1.now().at_storage {
            self.1.set(|s| s.at_storage = true);
        }
    }

    async fn moving(&self) {
        self.1.set(|s| s.at_move = true);
        self.1.until(|s| !s.hold_moves || s.released).await;
    }
}

#[async_trait]
impl StorageDriver for Hooked {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn get_content(&self, p: &str) -> StorageResult<Bytes> {
        self.touch(p);
        self.0.get_content(p).await
    }
    async fn put_content(&self, p: &str, c: Bytes) -> StorageResult<()> {
        self.touch(p);
        self.0.put_content(p, c).await
    }
    async fn put_deferred(&self, p: &str, c: Bytes) -> StorageResult<()> {
        self.touch(p);
        self.0.put_deferred(p, c).await
    }
    async fn reader(&self, p: &str, o: u64) -> StorageResult<BoxReader> {
        self.touch(p);
        self.0.reader(p, o).await
    }
    async fn read_stream(&self, p: &str, o: u64, l: u64) -> StorageResult<ByteStream> {
        self.touch(p);
        self.0.read_stream(p, o, l).await
    }
    async fn writer(&self, p: &str, a: bool) -> StorageResult<Box<dyn FileWriter>> {
        self.touch(p);
        self.0.writer(p, a).await
    }
    async fn stat(&self, p: &str) -> StorageResult<FileInfo> {
        self.touch(p);
        self.0.stat(p).await
    }
    async fn list(&self, p: &str) -> StorageResult<Vec<String>> {
        self.0.list(p).await
    }
    async fn move_object(&self, s: &str, d: &str) -> StorageResult<()> {
        self.moving().await;
        self.0.move_object(s, d).await
    }
    async fn move_deferred(&self, s: &str, d: &str) -> StorageResult<()> {
        self.moving().await;
        self.0.move_deferred(s, d).await
    }
    async fn sync(&self) -> StorageResult<()> {
        self.0.sync().await
    }
    async fn apply_deferred(&self, writes: Vec<DeferredWrite>) -> StorageResult<()> {
        if writes
            .iter()
            .any(|w| matches!(w, DeferredWrite::Move { .. }))
        {
            self.moving().await;
        }
        self.0.apply_deferred(writes).await
    }
    async fn delete(&self, p: &str) -> StorageResult<()> {
        self.0.delete(p).await
    }
}

/// Where B's PUT must be before A's PATCH body ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EndAt {
    /// B's PUT has reached storage for the upload.
    Storage,
    /// B has verified and is about to move (where no cross-process claim
    /// makes it wait for A first; where one does, `Storage`).
    Move,
}

/// Whether the storage of `kind` orders the requests of one session across
/// replicas (a directory's flock, an object store's claim): then B cannot
/// reach its move before A's PATCH ends.
async fn ordered(kind: &str) -> bool {
    let root = crate::s3::fresh_root("probe");
    match kind {
        "filesystem" => true,
        "garage" => match crate::s3::garage() {
            Some(g) => g.driver(&root, false).orders_sessions().await,
            None => false,
        },
        "azurite" => match crate::azure::azurite() {
            Some(z) => z.driver(&root, false).orders_sessions().await,
            None => false,
        },
        _ => false,
    }
}

/// Pairs whose replica B reports to `hooks`.
fn hooked_pairs(hooks: &Arc<Hooks>) -> Vec<(TestRegistry, TestRegistry)> {
    TestRegistry::replica_pairs_with(|d| Arc::new(Hooked(d, hooks.clone())))
}

/// What a race left: the PUT's answer and, per replica, the blob's bytes
/// (or `None` when absent).
struct Outcome {
    kind: &'static str,
    put: Resp,
    blobs: Vec<Option<Vec<u8>>>,
}

/// Replica A stores `chunk0`, then streams a PATCH that sends `first`
/// bytes of 0xee and ends once B's PUT is at `end_at`; once A holds the
/// session (its handler took the first bytes) and has `stored` bytes in
/// the upload on a directory, replica B sends the PUT of `last`, with the
/// digest `digest_of(chunk0, first, last)`.
#[allow(clippy::too_many_arguments)]
async fn race(
    a: &TestRegistry,
    b: &TestRegistry,
    hooks: &Hooks,
    repo: &str,
    first: usize,
    stored: u64,
    end_at: EndAt,
    digest_of: impl Fn(&[u8], &[u8], &[u8]) -> Digest,
) -> (Digest, Outcome) {
    let kind = a.kind;
    let fs = kind == "filesystem";
    let ordered = ordered(kind).await;
    let r = a
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{kind}");
    let loc = path_of(r.header("location").unwrap());
    let chunk0 = vec![1u8; 64 << 10];
    let r = a.req(Method::PATCH, &loc, &[], chunk0.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{kind}: {:?}", r.body);
    let (a_first, last) = (vec![0xeeu8; first], vec![2u8; 32 << 10]);
    let d = digest_of(&chunk0, &a_first, &last);
    hooks.reset(end_at == EndAt::Move);
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    // Says when A's handler takes the first bytes of its body: it takes
    // the session (and on a directory the file's claim) before reading.
    let (taken_tx, taken) = tokio::sync::oneshot::channel::<()>();
    let mut taken_tx = Some(taken_tx);
    let rx = futures::StreamExt::inspect(rx, move |_| {
        if let Some(t) = taken_tx.take() {
            let _ = t.send(());
        }
    });
    let patch = async {
        let r = a
            .req(Method::PATCH, &loc, &[], axum::body::Body::from_stream(rx))
            .await;
        hooks.set(|s| s.released = true);
        r
    };
    let put = async {
        taken.await.expect("A read its body");
        if fs && stored > 0 {
            // The directory shows A's bytes as they are written (asked of
            // A: B's driver would count the question as its PUT arriving).
            for _ in 0..3000 {
                let r = a.req(Method::GET, &loc, &[], "").await;
                let end = r
                    .header("range")
                    .and_then(|v| v.strip_prefix("0-").and_then(|e| e.parse::<u64>().ok()));
                if end.is_some_and(|e| e + 1 >= stored) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let r = b
            .req(Method::PUT, &format!("{loc}?digest={d}"), &[], last.clone())
            .await;
        hooks.set(|s| s.answered = true);
        r
    };
    let feed = async {
        tx.send(Ok(a_first)).await.expect("send");
        match end_at {
            EndAt::Move if !ordered => hooks.until(|s| s.at_move || s.answered).await,
            _ => hooks.until(|s| s.at_storage || s.answered).await,
        }
        tx.send(Ok(vec![0xef; 16 << 10])).await.expect("send");
        drop(tx);
    };
    let (_patch, put, ()) = tokio::join!(patch, put, feed);
    let mut blobs = Vec::new();
    for reg in [a, b] {
        let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
        blobs.push(match r.status {
            StatusCode::OK => Some(r.body.to_vec()),
            s => {
                assert_eq!(s, StatusCode::NOT_FOUND, "{kind}");
                None
            }
        });
    }
    (d, Outcome { kind, put, blobs })
}

impl Outcome {
    /// What is wrong: a blob under `d` whose bytes are not `d`'s, a 201
    /// without the blob, or a failed PUT that is not a spec error.
    fn faults(&self, d: &Digest) -> Vec<String> {
        let (kind, status) = (self.kind, self.put.status);
        let mut out = Vec::new();
        if status != StatusCode::CREATED {
            let body = String::from_utf8_lossy(&self.put.body);
            if !(status.is_client_error() && body.contains("\"code\"")) {
                out.push(format!("{kind}: PUT answered {status} {body}"));
            }
        }
        for blob in &self.blobs {
            match blob {
                Some(bytes) if Digest::sha256_of(bytes) != *d => out.push(format!(
                    "{kind}: the blob under {d} holds other bytes ({} bytes; PUT answered {status})",
                    bytes.len()
                )),
                None if status == StatusCode::CREATED => {
                    out.push(format!("{kind}: PUT answered 201, no blob"))
                }
                _ => {}
            }
        }
        out
    }
}

fn honest(chunk0: &[u8], _a: &[u8], last: &[u8]) -> Digest {
    Digest::sha256_of(&[chunk0, last].concat())
}

/// Replica A streams a PATCH of other bytes while replica B finishes the
/// upload with a PUT whose digest covers only the stored chunk and the
/// PUT's own body (a retried or hostile client). B may win (its blob is
/// then exactly those bytes) or lose with a spec error; never may a blob
/// appear under the digest with A's bytes in it.
#[tokio::test]
async fn a_patch_on_one_replica_never_leaks_into_a_blob_finished_on_another() {
    let mut faults = Vec::new();
    let hooks = Arc::new(Hooks::default());
    for (a, b) in hooked_pairs(&hooks) {
        let (d, out) = race(
            &a,
            &b,
            &hooks,
            "race/y",
            300 << 10,
            0,
            EndAt::Storage,
            honest,
        )
        .await;
        faults.extend(out.faults(&d));
    }
    assert!(faults.is_empty(), "{faults:#?}");
}

/// The same race with its window held open: replica B has verified its
/// bytes and is about to make them the blob (its move is held until A's
/// PATCH has answered) when
/// replica A's PATCH ends and saves A's bytes as the upload's data. The
/// blob must still hold B's bytes: what was verified is what is published.
#[tokio::test]
async fn bytes_saved_by_another_replica_after_the_digest_check_are_not_published() {
    let mut faults = Vec::new();
    let hooks = Arc::new(Hooks::default());
    for (a, b) in hooked_pairs(&hooks) {
        let (d, out) = race(&a, &b, &hooks, "race/z", 16 << 10, 0, EndAt::Move, honest).await;
        faults.extend(out.faults(&d));
    }
    assert!(faults.is_empty(), "{faults:#?}");
}

/// Replica A's PATCH has written its first buffer to the upload's file and
/// keeps it open; replica B's PUT claims a digest over the stored bytes
/// (A's included) and its own. Were B to verify and move the file now, A's
/// next write would land inside the new blob. B must wait for A (and then
/// refuse the digest) or A must fail: the blob is never A's rewrite.
#[tokio::test]
async fn a_writer_open_on_one_replica_never_writes_into_a_blob_moved_by_another() {
    let mut faults = Vec::new();
    let hooks = Arc::new(Hooks::default());
    for (a, b) in hooked_pairs(&hooks) {
        // The filesystem writer writes its first 64 KiB buffer out when it
        // fills and keeps the rest (under 4 MiB) buffered: the digest
        // covers what is on disk when B arrives.
        let (over_first_buffer, on_disk) = (192 << 10, 64 << 10);
        let (d, out) = race(
            &a,
            &b,
            &hooks,
            "race/w",
            over_first_buffer,
            (64 << 10) + on_disk as u64,
            EndAt::Storage,
            |c, a, l| Digest::sha256_of(&[c, &a[..on_disk], l].concat()),
        )
        .await;
        faults.extend(out.faults(&d));
    }
    assert!(faults.is_empty(), "{faults:#?}");
}
