//! The task of one blob fetch. Two loops run side by side:
//!
//! - `receive` (`receive.rs`): the upstream's bytes are published to the
//!   readers as they arrive, and hashed and written to the spool in the
//!   blocking pool alongside; the fetch is verified once every byte is.
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

use tokio::sync::watch;

use super::fetch::{Phase, Progress, Target};
use super::receive::receive;
use super::spool::Spool;
use super::{CachedContent, MirrorStats};
use crate::oci::name::UploadId;
use crate::storage::paths::StoragePath;
use crate::storage::{DeferredWrite, FileWriter};

/// The fetch task: upstream body -> spool + hash, and spool -> storage,
/// then commit on a match. Sets the final phase on every path, and removes
/// the spool from storage unless it became the blob.
pub(super) async fn run(
    t: Target,
    upload: UploadId,
    spool: Arc<Spool>,
    tx: &watch::Sender<Progress>,
    idle: Duration,
) {
    if fetch_and_store(&t, &upload, spool.clone(), tx, idle).await {
        return;
    }
    // A spool in storage goes with its directories; a storage writer
    // (object stores) was cancelled, which removed its part.
    if spool.in_storage() {
        let _ = tokio::task::spawn_blocking(move || spool.discard()).await;
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
            break p.available;
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
        if pos < p.available {
            let copied = match spool.read(pos, p.available).await {
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
