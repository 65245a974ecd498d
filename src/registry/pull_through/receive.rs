//! The receiving side of a blob fetch: the upstream's bytes are published
//! to the readers (the spool's window) as they arrive, while two stages in
//! the blocking pool take them in order, each at its own pace: one hashes
//! them, the other writes them to the spool file. Readers therefore get
//! bytes at network speed; hashing (the costliest step, ~1.4 GB/s on one
//! core) and the file write run alongside on other threads, not in front
//! of them. The fetch is verified once both stages have seen every byte.
//!
//! Bounds: the fetch stops reading the upstream while either stage is more
//! than [`LAG`] bytes behind, and the window keeps every byte the file
//! lacks, so memory per fetch stays under the window plus [`LAG`] plus one
//! batch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fetch::{Progress, Target};
use super::spool::Spool;
use super::MirrorStats;
use crate::mirror::RemoteBlob;
use crate::oci::digest::Hasher;

/// Bytes collected at most before they are published while both stages
/// are busy (more only when one chunk is larger).
const BATCH: usize = 1 << 20;

/// Bytes a stage may fall behind the upstream before reading pauses.
const LAG: u64 = 4 << 20;

/// One stage: chunks published and not handed to it yet, and its job.
struct Stage<T> {
    queue: Vec<Bytes>,
    /// Offset of the queue's first byte.
    at: u64,
    job: Option<JoinHandle<Result<T, String>>>,
    /// Bytes from the start the stage has finished.
    done: u64,
}

impl<T: Send + 'static> Stage<T> {
    fn new() -> Self {
        Stage {
            queue: Vec::new(),
            at: 0,
            job: None,
            done: 0,
        }
    }

    /// Whether a job could start now.
    fn idle(&self) -> bool {
        self.job.is_none()
    }

    /// Whether a job should start now: none runs and chunks wait.
    fn ready(&self) -> bool {
        self.job.is_none() && !self.queue.is_empty()
    }

    /// Starts `work` on the queued chunks (from offset `at`); call when
    /// [`Stage::ready`].
    fn launch<F>(&mut self, work: F)
    where
        F: FnOnce(u64, Vec<Bytes>) -> Result<T, String> + Send + 'static,
    {
        let chunks = std::mem::take(&mut self.queue);
        let at = self.at;
        self.at += chunks.iter().map(|c| c.len() as u64).sum::<u64>();
        self.job = Some(tokio::task::spawn_blocking(move || work(at, chunks)));
    }

    /// The running job's result; pending forever when none runs (for
    /// `select!` arms guarded by `job.is_some()`). Marks the stage done up
    /// to where its last launch ended.
    async fn finished(&mut self) -> Result<T, String> {
        let r = match self.job.as_mut() {
            Some(job) => job.await.unwrap_or_else(|e| Err(e.to_string())),
            None => std::future::pending().await,
        };
        self.job = None;
        self.done = self.at;
        r
    }
}

/// Receives the body: publishes it, hashes it and writes it to the spool;
/// `Ok` once every byte arrived, is in the spool and matched the digest
/// (then `verified` is set).
pub(super) async fn receive(
    t: &Target,
    mut blob: RemoteBlob,
    spool: Arc<Spool>,
    tx: &watch::Sender<Progress>,
    idle: Duration,
) -> Result<(), String> {
    let mut hasher = Some(Hasher::new(t.digest.algorithm()));
    let mut hashing: Stage<Hasher> = Stage::new();
    let mut writing: Stage<()> = Stage::new();
    let mut collected: Vec<Bytes> = Vec::new();
    let mut collected_bytes: usize = 0;
    let mut published: u64 = 0;
    let mut ended = false;
    loop {
        // Publish what arrived when a stage can take it at once (so the
        // first chunk goes out alone, for the time to first byte), when
        // the batch is full, or at the end.
        let due = hashing.idle() || writing.idle() || collected_bytes >= BATCH || ended;
        if !collected.is_empty() && due {
            let chunks = std::mem::take(&mut collected);
            hashing.queue.extend(chunks.iter().cloned());
            writing.queue.extend(chunks.iter().cloned());
            spool.publish(published, chunks);
            published += collected_bytes as u64;
            collected_bytes = 0;
            tx.send_modify(|p| p.available = published);
        }
        if hashing.ready() {
            if let Some(mut h) = hasher.take() {
                hashing.launch(move |_, chunks| {
                    for c in &chunks {
                        h.update(c);
                    }
                    Ok(h)
                });
            }
        }
        if writing.ready() {
            let file = spool.clone();
            writing.launch(move |at, chunks| {
                file.write_at(at, &chunks)
                    .map_err(|e| format!("cannot write the spool file: {e}"))
            });
        }
        let drained = hashing.idle() && writing.idle();
        if ended && collected.is_empty() && drained {
            break;
        }
        let behind = published - hashing.done.min(writing.done);
        let reading = !ended && collected_bytes < BATCH && behind < LAG;
        tokio::select! {
            hashed = hashing.finished(), if !hashing.idle() => {
                hasher = Some(hashed?);
            }
            wrote = writing.finished(), if !writing.idle() => {
                wrote?;
                spool.stored_to(writing.done);
            }
            next = tokio::time::timeout(idle, blob.stream.next()), if reading => {
                match next {
                    Err(_) => return Err(format!("the upstream sent nothing for {idle:?}")),
                    Ok(None) => ended = true,
                    Ok(Some(Err(e))) => return Err(format!("upstream body failed: {e}")),
                    Ok(Some(Ok(c))) => {
                        let n = c.len() as u64;
                        let received = published + collected_bytes as u64 + n;
                        MirrorStats::add(&t.entry.stats.bytes_fetched, n);
                        if blob.size.is_some_and(|s| received > s) {
                            return Err("the upstream sent more bytes than its Content-Length".into());
                        }
                        collected_bytes += c.len();
                        collected.push(c);
                    }
                }
            }
            else => return Err("the fetch stopped waiting for anything".into()),
        }
    }
    let hasher = hasher.ok_or("the fetch lost its hasher")?;
    if blob.size.is_some_and(|s| s != published) {
        return Err(format!(
            "the upstream body ended at {published} bytes, not {:?}",
            blob.size
        ));
    }
    let actual = hasher.finish();
    if actual != t.digest {
        return Err(format!(
            "the upstream's bytes hash to {actual}, not {}: nothing stored",
            t.digest
        ));
    }
    tx.send_modify(|p| {
        p.size = Some(published);
        p.verified = true;
    });
    Ok(())
}
