//! The task of one blob fetch. Two loops run side by side:
//!
//! - `receive`: the upstream's chunks, gathered while they are ready (up to
//!   [`BATCH`] bytes), go to the blocking pool, which hashes them and writes
//!   them to the spool, then publishes them (window, byte count) for the
//!   readers; the next batch is received meanwhile. Every byte is hashed
//!   once and written to the spool once.
//! - `store`: follows the spool into a storage writer (from the window
//!   while it keeps up, else from the spool file) and commits the blob once
//!   `receive` has verified it. A storage slower than the upstream delays
//!   only the commit, never the readers.
//!
//! Readers are released as soon as the bytes are verified (`verified`);
//! the fetch stays joinable, served from the spool, until the blob is
//! committed, so a pull in between never goes upstream again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::fetch::{Phase, Progress, Target};
use super::spool::Spool;
use super::MirrorStats;
use crate::mirror::RemoteBlob;
use crate::oci::digest::Hasher;
use crate::oci::name::UploadId;
use crate::storage::paths::StoragePath;
use crate::storage::{DeferredWrite, FileWriter};

/// Bytes of upstream chunks handed to the blocking pool at once, at most
/// (more only when one chunk is larger).
const BATCH: usize = 1 << 20;

/// The fetch task: upstream body -> spool + hash, and spool -> storage,
/// then commit on a match. Sets the final phase on every path.
pub(super) async fn run(
    t: Target,
    spool: Arc<Spool>,
    tx: &watch::Sender<Progress>,
    idle: Duration,
) {
    let stats = &t.entry.stats;
    let label = t.entry.upstream.label().to_string();
    let fail = |m: String| {
        MirrorStats::add(&stats.upstream_errors, 1);
        tracing::warn!(mirror = %label, repository = %t.name, digest = %t.digest, "blob fetch failed: {m}");
        tx.send_modify(|p| p.phase = Phase::Failed(m));
    };
    let blob = match t.entry.upstream.get_blob(&t.upstream_name, &t.digest).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            tx.send_modify(|p| p.phase = Phase::NotFound);
            return;
        }
        Err(e) => return fail(format!("upstream {}: {e}", t.entry.remote)),
    };
    MirrorStats::add(&stats.misses, 1);
    tx.send_modify(|p| {
        p.phase = Phase::Streaming;
        p.size = blob.size;
    });
    let spooled = spool.clone();
    let receiving = async {
        let r = receive(&t, blob, spooled, tx, idle).await;
        if let Err(m) = &r {
            // Readers and `store` stop here; `fail` below logs it.
            tx.send_modify(|p| p.phase = Phase::Failed(m.clone()));
        }
        r
    };
    let (received, stored) = tokio::join!(receiving, store(&t, spool, tx.subscribe()));
    match (received, stored) {
        (Err(m), _) => fail(m),
        (Ok(()), Err(m)) => fail(format!("cannot store the blob: {m}")),
        (Ok(()), Ok(())) => tx.send_modify(|p| p.phase = Phase::Done),
    }
}

/// One batch of chunks: what `receive` gathered without waiting, or why it
/// stopped.
struct Gathered {
    chunks: Vec<Bytes>,
    bytes: usize,
    /// The body ended (`Ok`) or failed (`Err`) after these chunks.
    end: Option<Result<(), String>>,
}

/// Waits (at most `idle`) for the next chunk, then takes the chunks that
/// are ready at once, up to [`BATCH`] bytes.
async fn gather(blob: &mut RemoteBlob, idle: Duration) -> Gathered {
    let mut g = Gathered {
        chunks: Vec::new(),
        bytes: 0,
        end: None,
    };
    let first = match tokio::time::timeout(idle, blob.stream.next()).await {
        Ok(n) => n,
        Err(_) => {
            g.end = Some(Err(format!("the upstream sent nothing for {idle:?}")));
            return g;
        }
    };
    let mut next = Some(first);
    while let Some(item) = next.take() {
        match item {
            None => g.end = Some(Ok(())),
            Some(Err(e)) => g.end = Some(Err(format!("upstream body failed: {e}"))),
            Some(Ok(c)) => {
                g.bytes += c.len();
                g.chunks.push(c);
                if g.bytes < BATCH {
                    next = blob.stream.next().now_or_never();
                }
            }
        }
    }
    g
}

/// Receives the body into the spool, hashing it, publishing each batch;
/// `Ok` once every byte arrived and matched the digest (then `verified`).
async fn receive(
    t: &Target,
    mut blob: RemoteBlob,
    spool: Arc<Spool>,
    tx: &watch::Sender<Progress>,
    idle: Duration,
) -> Result<(), String> {
    let mut hasher = Hasher::new(t.digest.algorithm());
    let mut received: u64 = 0;
    // The batch in the blocking pool; it hands the hasher back.
    let mut in_flight: Option<tokio::task::JoinHandle<Result<Hasher, String>>> = None;
    loop {
        let g = gather(&mut blob, idle).await;
        let at = received;
        received += g.bytes as u64;
        MirrorStats::add(&t.entry.stats.bytes_fetched, g.bytes as u64);
        if let Some(job) = in_flight.take() {
            hasher = job.await.unwrap_or_else(|e| Err(e.to_string()))?;
        }
        if blob.size.is_some_and(|s| received > s) {
            return Err("the upstream sent more bytes than its Content-Length".into());
        }
        if !g.chunks.is_empty() {
            let (spool, tx) = (spool.clone(), tx.clone());
            let mut h = hasher.clone();
            let chunks = g.chunks;
            in_flight = Some(tokio::task::spawn_blocking(move || {
                for c in &chunks {
                    h.update(c);
                }
                spool
                    .write_at(at, &chunks)
                    .map_err(|e| format!("cannot write the spool file: {e}"))?;
                spool.remember(at, chunks);
                tx.send_modify(|p| p.written = received);
                Ok(h)
            }));
        }
        match g.end {
            None => {}
            Some(Err(m)) => return Err(m),
            Some(Ok(())) => break,
        }
    }
    if let Some(job) = in_flight.take() {
        hasher = job.await.unwrap_or_else(|e| Err(e.to_string()))?;
    }
    if blob.size.is_some_and(|s| s != received) {
        return Err(format!(
            "the upstream body ended at {received} bytes, not {:?}",
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
        p.size = Some(received);
        p.verified = true;
    });
    Ok(())
}

/// Copies the spool into storage as it grows and commits the blob (and
/// its link in the cache repository) once it is verified; cancels the
/// writer when the fetch fails.
async fn store(
    t: &Target,
    spool: Arc<Spool>,
    mut rx: watch::Receiver<Progress>,
) -> Result<(), String> {
    let driver = t.registry.driver.clone();
    let id = UploadId::new_random();
    let upload_key = StoragePath::UploadData {
        name: &t.name,
        id: &id,
    }
    .to_key();
    let mut writer: Box<dyn FileWriter> = driver
        .writer(&upload_key, false)
        .await
        .map_err(|e| format!("cannot open a storage writer: {e}"))?;
    let mut pos: u64 = 0;
    loop {
        let p = rx.borrow_and_update().clone();
        if !p.verified && matches!(p.phase, Phase::Failed(_)) {
            // `receive` failed and says why; nothing is stored.
            let _ = writer.cancel().await;
            return Ok(());
        }
        if pos < p.written {
            let copied = match spool.read(pos, p.written).await {
                Ok(b) => writer.write(&b).await.map(|()| b.len() as u64),
                Err(e) => Err(crate::storage::StorageError::io("spool", &e)),
            };
            match copied {
                Ok(n) => pos += n,
                Err(e) => {
                    let _ = writer.cancel().await;
                    return Err(e.to_string());
                }
            }
            continue;
        }
        if p.verified {
            break;
        }
        if rx.changed().await.is_err() {
            let _ = writer.cancel().await;
            return Err("the fetch ended unexpectedly".into());
        }
    }
    let name = &t.name;
    let digest = &t.digest;
    let blob_key = StoragePath::BlobData { digest }.to_key();
    let mut then: Vec<DeferredWrite> = t
        .registry
        .link_write(StoragePath::LayerLink { name, digest }, digest)
        .await
        .into_iter()
        .collect();
    then.push(DeferredWrite::DeleteIfExists {
        key: StoragePath::UploadDir { name, id: &id }.to_key(),
    });
    writer
        .commit_to_then(driver.as_ref(), &blob_key, then)
        .await
        .map_err(|e| e.to_string())?;
    driver.sync().await.map_err(|e| e.to_string())
}
