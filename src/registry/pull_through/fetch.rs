//! One upstream fetch per blob digest, shared by every request that misses
//! it (any repository). The fetch task writes the upstream's bytes to an
//! unlinked spool file and to a storage writer while hashing them, and
//! publishes the byte count on a `watch`; readers stream from the spool as
//! it grows. When the bytes are complete and match the digest the blob is
//! committed and linked into the cache repository; otherwise nothing is
//! stored and every reader's stream ends with an error.
//!
//! A fetch runs to its end even when every client has gone (it is bounded
//! by `mirrorfetch.maxconcurrent` and the idle timeout), so the next pull
//! finds the blob stored; at most `maxconcurrent` fetches exist at once.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use super::{FetchLimits, MirrorEntry, MirrorStats};
use crate::oci::digest::{Digest, Hasher};
use crate::oci::name::{RepoName, UploadId};
use crate::registry::Registry;
use crate::storage::paths::StoragePath;
use crate::storage::DeferredWrite;

/// Bytes a reader takes from the spool per read.
const READ_CHUNK: u64 = 256 * 1024;

/// Where a fetch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the upstream's answer.
    Connecting,
    /// Bytes arriving; `size` is the upstream's `Content-Length`.
    Streaming,
    /// Complete, verified and stored.
    Done,
    /// The upstream does not have it (404).
    NotFound,
    /// Failed: upstream unavailable, cut off, or bytes not matching.
    Failed(String),
}

/// What readers watch.
#[derive(Debug, Clone)]
pub(super) struct Progress {
    pub phase: Phase,
    /// `Content-Length` of the upstream's answer, when it sent one.
    pub size: Option<u64>,
    /// Bytes in the spool so far.
    pub written: u64,
}

/// One running fetch.
pub(super) struct Fetch {
    spool: Arc<File>,
    progress: watch::Receiver<Progress>,
}

impl Fetch {
    /// Waits until the upstream answered: `Ok(size)` when streaming (or
    /// done), the final phase otherwise.
    pub async fn started(&self) -> Result<Option<u64>, Phase> {
        let mut rx = self.progress.clone();
        loop {
            let p = rx.borrow_and_update().clone();
            match p.phase {
                Phase::Connecting => {}
                Phase::Streaming | Phase::Done => return Ok(p.size),
                other => return Err(other),
            }
            if rx.changed().await.is_err() {
                return Err(Phase::Failed("the fetch ended unexpectedly".into()));
            }
        }
    }

    /// The bytes `[offset, offset + len)` (`len` `None`: to the end) as they
    /// arrive. The last byte is held back until the whole blob is verified,
    /// so a client never completes a response with unverified bytes; on a
    /// failed fetch the stream ends with an error.
    pub fn stream(
        &self,
        offset: u64,
        len: Option<u64>,
    ) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
        let state = (self.spool.clone(), self.progress.clone(), offset, false);
        futures::stream::unfold(state, move |(spool, mut rx, pos, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let p = rx.borrow_and_update().clone();
                let failure = match &p.phase {
                    Phase::Failed(m) => Some(m.clone()),
                    Phase::NotFound => Some("the blob vanished upstream".to_string()),
                    _ => None,
                };
                if let Some(m) = failure {
                    return Some((Err(io::Error::other(m)), (spool, rx, pos, true)));
                }
                let done = p.phase == Phase::Done;
                let end = match len {
                    Some(l) => offset + l,
                    None if done => p.written,
                    None => u64::MAX,
                };
                if done && pos >= end {
                    return None;
                }
                let limit = if done {
                    end.min(p.written)
                } else {
                    p.written.min(end.saturating_sub(1))
                };
                if pos < limit {
                    let n = (limit - pos).min(READ_CHUNK) as usize;
                    let file = spool.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0u8; n];
                        file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf))
                    })
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)));
                    return match read {
                        Ok(b) => Some((Ok(b), (spool, rx, pos + n as u64, false))),
                        Err(e) => Some((Err(e), (spool, rx, pos, true))),
                    };
                }
                if done {
                    // The blob is shorter than the range asked for.
                    let e =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than the range");
                    return Some((Err(e), (spool, rx, pos, true)));
                }
                if rx.changed().await.is_err() {
                    let e = io::Error::other("the fetch ended unexpectedly");
                    return Some((Err(e), (spool, rx, pos, true)));
                }
            }
        })
    }
}

/// Why a fetch could not be started.
#[derive(Debug)]
pub(super) enum StartError {
    /// `maxconcurrent` fetches are running.
    TooMany,
    /// The spool file could not be created.
    Spool(io::Error),
}

/// The running fetches by digest.
pub(super) struct Fetches {
    limits: FetchLimits,
    running: Mutex<HashMap<Digest, Arc<Fetch>>>,
}

/// What a fetch task needs to store the blob.
pub(super) struct Target {
    pub registry: Registry,
    pub entry: Arc<MirrorEntry>,
    /// The local cache repository that links the blob.
    pub name: RepoName,
    /// The repository name on the upstream.
    pub upstream_name: String,
    pub digest: Digest,
}

impl Fetches {
    pub fn new(limits: FetchLimits) -> Self {
        Fetches {
            limits,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The running fetch of `target.digest`, or a new one started for it.
    pub fn join_or_start(self: &Arc<Self>, target: Target) -> Result<Arc<Fetch>, StartError> {
        let mut running = self
            .running
            .lock()
            .map_err(|_| StartError::Spool(io::Error::other("fetch map poisoned")))?;
        if let Some(f) = running.get(&target.digest) {
            return Ok(f.clone());
        }
        if running.len() >= self.limits.max_concurrent.max(1) {
            return Err(StartError::TooMany);
        }
        let spool = Arc::new(spool_file(&self.limits.spool_dir).map_err(StartError::Spool)?);
        let (tx, rx) = watch::channel(Progress {
            phase: Phase::Connecting,
            size: None,
            written: 0,
        });
        let fetch = Arc::new(Fetch {
            spool: spool.clone(),
            progress: rx,
        });
        running.insert(target.digest.clone(), fetch.clone());
        drop(running);
        let this = self.clone();
        let idle = self.limits.idle_timeout;
        tokio::spawn(async move {
            let digest = target.digest.clone();
            run(target, spool, &tx, idle).await;
            // Readers hold their own handle; new requests now find the
            // blob in storage (or fetch again after a failure).
            if let Ok(mut running) = this.running.lock() {
                running.remove(&digest);
            }
        });
        Ok(fetch)
    }

    /// Fetches running now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.running.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// A spool file nobody else can open: created, then unlinked at once, so
/// it disappears with the last handle whatever happens.
fn spool_file(dir: &std::path::Path) -> io::Result<File> {
    let path = dir.join(format!("berth-spool-{}", uuid::Uuid::new_v4().simple()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// The fetch task: upstream body -> spool + storage writer + hash, then
/// commit on a match. Sets the final phase on every path.
async fn run(t: Target, spool: Arc<File>, tx: &watch::Sender<Progress>, idle: std::time::Duration) {
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
    let driver = t.registry.driver.clone();
    let id = UploadId::new_random();
    let upload_key = StoragePath::UploadData {
        name: &t.name,
        id: &id,
    }
    .to_key();
    let mut writer = match driver.writer(&upload_key, false).await {
        Ok(w) => w,
        Err(e) => return fail(format!("cannot open a storage writer: {e}")),
    };
    let mut hasher = Hasher::new(t.digest.algorithm());
    let mut stream = blob.stream;
    let mut written: u64 = 0;
    let outcome: Result<(), String> = loop {
        let next = match tokio::time::timeout(idle, stream.next()).await {
            Ok(n) => n,
            Err(_) => break Err(format!("the upstream sent nothing for {idle:?}")),
        };
        let chunk = match next {
            None => break Ok(()),
            Some(Ok(c)) => c,
            Some(Err(e)) => break Err(format!("upstream body failed: {e}")),
        };
        if blob.size.is_some_and(|s| written + chunk.len() as u64 > s) {
            break Err("the upstream sent more bytes than its Content-Length".into());
        }
        hasher.update(&chunk);
        let file = spool.clone();
        let data = chunk.clone();
        let at = written;
        let spooled = tokio::task::spawn_blocking(move || file.write_all_at(&data, at))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
        if let Err(e) = spooled {
            break Err(format!("cannot write the spool file: {e}"));
        }
        if let Err(e) = writer.write(&chunk).await {
            break Err(format!("cannot write to storage: {e}"));
        }
        written += chunk.len() as u64;
        MirrorStats::add(&stats.bytes_fetched, chunk.len() as u64);
        tx.send_modify(|p| p.written = written);
    };
    let outcome = outcome.and_then(|()| {
        if blob.size.is_some_and(|s| s != written) {
            return Err(format!(
                "the upstream body ended at {written} bytes, not {:?}",
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
        Ok(())
    });
    if let Err(m) = outcome {
        let _ = writer.cancel().await;
        return fail(m);
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
    let committed = match writer
        .commit_to_then(driver.as_ref(), &blob_key, then)
        .await
    {
        Ok(()) => driver.sync().await,
        Err(e) => Err(e),
    };
    match committed {
        Ok(()) => tx.send_modify(|p| {
            p.size = Some(written);
            p.phase = Phase::Done;
        }),
        Err(e) => fail(format!("cannot store the blob: {e}")),
    }
}
