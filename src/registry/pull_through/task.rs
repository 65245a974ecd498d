//! The task of one blob fetch. Two loops run side by side:
//!
//! - `receive`: the upstream's chunks go in batches to the blocking pool,
//!   which hashes them, writes them to the spool, then publishes them
//!   (window, byte count) for the readers; the next batch (up to [`BATCH`]
//!   bytes) collects meanwhile. Every byte is hashed once and written to
//!   the spool once.
//! - `store`: where the spool is the upload's data file in storage
//!   (filesystem driver), waits for verification and commits that file as
//!   the blob by rename; elsewhere follows the spool into a storage writer
//!   (from the window while it keeps up, else from the spool file) and
//!   commits the blob once `receive` has verified it. A storage slower than
//!   the upstream delays only the commit, never the readers.
//!
//! Readers are released as soon as the bytes are verified (`verified`);
//! the fetch stays joinable, served from the spool, until the blob is
//! committed, so a pull in between never goes upstream again. A fetch that
//! stores nothing deletes its upload.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use super::fetch::{Phase, Progress, Target};
use super::spool::Spool;
use super::{CachedContent, MirrorStats};
use crate::mirror::RemoteBlob;
use crate::oci::digest::Hasher;
use crate::oci::name::UploadId;
use crate::storage::paths::StoragePath;
use crate::storage::{DeferredWrite, FileWriter};

/// Bytes of upstream chunks handed to the blocking pool at once, at most
/// (more only when one chunk is larger).
const BATCH: usize = 1 << 20;

/// The fetch task: upstream body -> spool + hash, and spool -> storage,
/// then commit on a match. Sets the final phase on every path, and removes
/// the upload (`upload`, under the target's name) unless the blob was
/// stored.
pub(super) async fn run(
    t: Target,
    upload: UploadId,
    spool: Arc<Spool>,
    tx: &watch::Sender<Progress>,
    idle: Duration,
) {
    if fetch_and_store(&t, &upload, spool, tx, idle).await {
        return;
    }
    let dir = StoragePath::UploadDir {
        name: &t.name,
        id: &upload,
    }
    .to_key();
    match t.registry.driver.delete(&dir).await {
        Err(e) if !e.is_not_found() => {
            tracing::warn!(repository = %t.name, upload = %upload, "cannot remove a failed fetch's upload: {e}")
        }
        _ => {}
    }
}

/// `run` up to the clean-up: whether the blob was stored.
async fn fetch_and_store(
    t: &Target,
    upload: &UploadId,
    spool: Arc<Spool>,
    tx: &watch::Sender<Progress>,
    idle: Duration,
) -> bool {
    let stats = &t.entry.stats;
    let label = t.entry.upstream.label().to_string();
    let fail = |m: String| {
        MirrorStats::add(&stats.upstream_errors, 1);
        tracing::warn!(mirror = %label, repository = %t.name, digest = %t.digest, "blob fetch failed: {m}");
        tx.send_modify(|p| p.phase = Phase::Failed(m));
        false
    };
    let blob = match t.entry.upstream.get_blob(&t.upstream_name, &t.digest).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            tx.send_modify(|p| p.phase = Phase::NotFound);
            return false;
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
        let r = receive(t, blob, spooled, tx, idle).await;
        if let Err(m) = &r {
            // Readers and `store` stop here; `fail` below logs it.
            tx.send_modify(|p| p.phase = Phase::Failed(m.clone()));
        }
        r
    };
    let (received, stored) = tokio::join!(receiving, store(t, upload, spool, tx.subscribe()));
    match (received, stored) {
        (Err(m), _) => fail(m),
        (Ok(()), Err(m)) => fail(format!("cannot store the blob: {m}")),
        (Ok(()), Ok(())) => {
            tx.send_modify(|p| p.phase = Phase::Done);
            true
        }
    }
}

/// The batch in the blocking pool; it hands the hasher back.
type Job = tokio::task::JoinHandle<Result<Hasher, String>>;

/// Receives the body into the spool, hashing it, publishing each batch;
/// `Ok` once every byte arrived and matched the digest (then `verified`).
/// While one batch is in the blocking pool the next one collects (up to
/// [`BATCH`] bytes), so batches grow with the upstream's speed: the first
/// chunk goes out alone (time to first byte), later ones in large batches
/// (few pool trips and reader wake-ups per MiB).
async fn receive(
    t: &Target,
    mut blob: RemoteBlob,
    spool: Arc<Spool>,
    tx: &watch::Sender<Progress>,
    idle: Duration,
) -> Result<(), String> {
    let mut hasher = Some(Hasher::new(t.digest.algorithm()));
    let mut received: u64 = 0;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_bytes: usize = 0;
    let mut in_flight: Option<Job> = None;
    let mut ended = false;
    loop {
        if !batch.is_empty() {
            if let Some(mut h) = hasher.take() {
                // Launch the collected batch.
                let at = received - batch_bytes as u64;
                let (spool, tx) = (spool.clone(), tx.clone());
                let chunks = std::mem::take(&mut batch);
                let end = received;
                batch_bytes = 0;
                in_flight = Some(tokio::task::spawn_blocking(move || {
                    for c in &chunks {
                        h.update(c);
                    }
                    spool
                        .write_at(at, &chunks)
                        .map_err(|e| format!("cannot write the spool file: {e}"))?;
                    spool.remember(at, chunks);
                    tx.send_modify(|p| p.written = end);
                    Ok(h)
                }));
            }
        }
        if ended && batch.is_empty() && in_flight.is_none() {
            break;
        }
        let collect = !ended && batch_bytes < BATCH;
        tokio::select! {
            biased;
            done = async {
                match in_flight.as_mut() {
                    Some(job) => job.await,
                    None => std::future::pending().await,
                }
            }, if in_flight.is_some() => {
                in_flight = None;
                hasher = Some(done.unwrap_or_else(|e| Err(e.to_string()))?);
            }
            next = tokio::time::timeout(idle, blob.stream.next()), if collect => {
                match next {
                    Err(_) => return Err(format!("the upstream sent nothing for {idle:?}")),
                    Ok(None) => ended = true,
                    Ok(Some(Err(e))) => return Err(format!("upstream body failed: {e}")),
                    Ok(Some(Ok(c))) => {
                        received += c.len() as u64;
                        MirrorStats::add(&t.entry.stats.bytes_fetched, c.len() as u64);
                        if blob.size.is_some_and(|s| received > s) {
                            return Err("the upstream sent more bytes than its Content-Length".into());
                        }
                        batch_bytes += c.len();
                        batch.push(c);
                    }
                }
            }
            else => return Err("the fetch stopped waiting for anything".into()),
        }
    }
    let hasher = hasher.ok_or("the fetch lost its hasher")?;
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

/// Stores the blob once `receive` has verified it, and links it into the
/// cache repository; leaves nothing when the fetch fails.
async fn store(
    t: &Target,
    upload: &UploadId,
    spool: Arc<Spool>,
    rx: watch::Receiver<Progress>,
) -> Result<(), String> {
    let upload_key = StoragePath::UploadData {
        name: &t.name,
        id: upload,
    }
    .to_key();
    let written = if spool.in_storage() {
        adopt(t, &upload_key, rx).await?
    } else {
        copy(t, &upload_key, spool, rx).await?
    };
    let Some((writer, size)) = written else {
        return Ok(());
    };
    let driver = &t.registry.driver;
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
        key: StoragePath::UploadDir { name, id: upload }.to_key(),
    });
    writer
        .commit_to_then(driver.as_ref(), &blob_key, then)
        .await
        .map_err(|e| e.to_string())?;
    driver.sync().await.map_err(|e| e.to_string())?;
    if let Some(m) = t.registry.mirrors_state() {
        m.listener.notify(CachedContent::Blob {
            repository: name.to_string(),
            digest: digest.to_string(),
            size,
            upstream: t.entry.remote.clone(),
        });
    }
    Ok(())
}

/// A verified blob's writer, ready to commit, with the blob's size; `None`
/// when the fetch failed (nothing to store).
type Written = Option<(Box<dyn FileWriter>, u64)>;

/// The spool is the upload's data file: waits until it is verified, then
/// opens it to be committed where it is (no copy).
async fn adopt(
    t: &Target,
    upload_key: &str,
    mut rx: watch::Receiver<Progress>,
) -> Result<Written, String> {
    let size = loop {
        let p = rx.borrow_and_update().clone();
        if p.verified {
            break p.written;
        }
        if matches!(p.phase, Phase::Failed(_)) {
            return Ok(None);
        }
        if rx.changed().await.is_err() {
            return Err("the fetch ended unexpectedly".into());
        }
    };
    let writer = t
        .registry
        .driver
        .writer(upload_key, true)
        .await
        .map_err(|e| format!("cannot open the spooled blob: {e}"))?;
    let held = writer.size();
    if held != size {
        let _ = writer.cancel().await;
        return Err(format!(
            "the spooled blob holds {held} bytes, not the {size} received"
        ));
    }
    Ok(Some((writer, size)))
}

/// Copies the spool into a storage writer as it grows (from the window
/// while it keeps up), until `receive` has verified it; cancels the writer
/// when the fetch fails.
async fn copy(
    t: &Target,
    upload_key: &str,
    spool: Arc<Spool>,
    mut rx: watch::Receiver<Progress>,
) -> Result<Written, String> {
    let mut writer: Box<dyn FileWriter> = t
        .registry
        .driver
        .writer(upload_key, false)
        .await
        .map_err(|e| format!("cannot open a storage writer: {e}"))?;
    let mut pos: u64 = 0;
    loop {
        let p = rx.borrow_and_update().clone();
        if !p.verified && matches!(p.phase, Phase::Failed(_)) {
            // `receive` failed and says why; nothing is stored.
            let _ = writer.cancel().await;
            return Ok(None);
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
            return Ok(Some((writer, pos)));
        }
        if rx.changed().await.is_err() {
            let _ = writer.cancel().await;
            return Err("the fetch ended unexpectedly".into());
        }
    }
}
