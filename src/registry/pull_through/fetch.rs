//! One upstream fetch per blob digest, shared by every request that misses
//! it (any repository). The fetch task (`task.rs`) writes the upstream's
//! bytes to a spool (`spool.rs`) while hashing them, and publishes the byte
//! count on a `watch`; readers stream from the spool as it grows, woken by
//! the `watch` when bytes arrive. When the bytes are complete and match the
//! digest the readers finish, and the blob is committed and linked into the
//! cache repository; otherwise nothing is stored and every reader's stream
//! ends with an error.
//!
//! A fetch runs to its end even when every client has gone (it is bounded
//! by `mirrorfetch.maxconcurrent` and the idle timeout), so the next pull
//! finds the blob stored; at most `maxconcurrent` fetches exist at once.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use super::spool::Spool;
use super::{FetchLimits, MirrorEntry};
use crate::oci::digest::Digest;
use crate::oci::name::{RepoName, UploadId};
use crate::registry::Registry;
use crate::storage::paths::StoragePath;

/// Where a fetch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the upstream's answer.
    Connecting,
    /// Bytes arriving (or verified and being stored).
    Streaming,
    /// Complete, verified and stored.
    Done,
    /// The upstream does not have it (404).
    NotFound,
    /// Failed: upstream unavailable, cut off, bytes not matching, or (after
    /// `verified`) the storage refused the blob.
    Failed(String),
}

/// What readers watch.
#[derive(Debug, Clone)]
pub(super) struct Progress {
    pub phase: Phase,
    /// `Content-Length` of the upstream's answer, when it sent one.
    pub size: Option<u64>,
    /// Bytes readers can take so far (from the spool's window or file).
    pub available: u64,
    /// All bytes are in the spool and match the digest: readers may finish,
    /// whatever happens to the storage commit after.
    pub verified: bool,
}

/// One running fetch.
pub(super) struct Fetch {
    spool: Arc<Spool>,
    progress: watch::Receiver<Progress>,
}

impl Fetch {
    /// Waits until the upstream answered: `Ok(size)` when streaming (or
    /// done), the final phase otherwise.
    pub async fn started(&self) -> Result<Option<u64>, Phase> {
        let mut rx = self.progress.clone();
        loop {
            let p = rx.borrow_and_update().clone();
            if p.verified {
                return Ok(p.size);
            }
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
                let done = p.verified;
                let failure = match &p.phase {
                    _ if done => None,
                    Phase::Failed(m) => Some(m.clone()),
                    Phase::NotFound => Some("the blob vanished upstream".to_string()),
                    _ => None,
                };
                if let Some(m) = failure {
                    return Some((Err(io::Error::other(m)), (spool, rx, pos, true)));
                }
                let end = match len {
                    Some(l) => offset + l,
                    None if done => p.available,
                    None => u64::MAX,
                };
                if done && pos >= end {
                    return None;
                }
                let limit = if done {
                    end.min(p.available)
                } else {
                    p.available.min(end.saturating_sub(1))
                };
                if pos < limit {
                    return match spool.read(pos, limit).await {
                        Ok(b) => {
                            let next = pos + b.len() as u64;
                            Some((Ok(b), (spool, rx, next, false)))
                        }
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
        let upload = UploadId::new_random();
        let data_key = StoragePath::UploadData {
            name: &target.name,
            id: &upload,
        }
        .to_key();
        let spool = match target.registry.driver.local_path(&data_key) {
            Some(path) => Spool::create_in_storage(&path),
            None => Spool::create(&self.limits.spool_dir),
        };
        let spool = Arc::new(spool.map_err(StartError::Spool)?);
        let (tx, rx) = watch::channel(Progress {
            phase: Phase::Connecting,
            size: None,
            available: 0,
            verified: false,
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
            super::task::run(target, upload, spool, &tx, idle).await;
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
