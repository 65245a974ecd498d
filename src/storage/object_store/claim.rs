//! An upload session's claim on stores that honour conditional writes
//! (S3 with `If-None-Match`, Azure, GCS): the object-store counterpart of
//! the filesystem's `flock`, so requests of one session on two replicas
//! run one at a time. Every append writer takes `<data>~claim` (owner and
//! expiry) with a create-only write, takes an expired one over with an
//! update conditional on its ETag, renews it while it lives, and deletes it
//! when done. Whether the store honours create-only writes is probed once
//! (a probe key written twice: the second must be refused); where it does
//! not (Garage ignores `If-None-Match`) there is no claim.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use tokio::task::JoinHandle;

use super::inner::Inner;
use crate::storage::StorageResult;

/// A claim not renewed for this long may be taken over (its holder died).
pub(super) const EXPIRY: Duration = Duration::from_secs(60);
/// First and longest pause between two attempts at a held claim.
const FIRST_WAIT: Duration = Duration::from_millis(2);
const MAX_WAIT: Duration = Duration::from_millis(50);

/// The claim object of the upload data at `data`.
pub(super) fn claim_path(data: &Path) -> Path {
    let raw = format!("{data}~claim");
    // `~` is allowed by `parse`; `from` would percent-encode it.
    Path::parse(&raw).unwrap_or_else(|_| Path::from(raw))
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn body(owner: &str) -> Bytes {
    Bytes::from(format!("{owner} {}", now_ms() + EXPIRY.as_millis()))
}

fn expired(content: &[u8]) -> bool {
    std::str::from_utf8(content)
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|e| e.parse::<u128>().ok())
        .is_none_or(|expiry| expiry <= now_ms())
}

fn taken(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

/// Whether `store` refuses a second create-only write of one key: writes a
/// probe key under `root` twice, then removes it. `None` when the store
/// could not be asked (asked again next time).
pub(super) async fn probe(store: &Arc<dyn ObjectStore>, root: &str) -> Option<bool> {
    let name = format!("~claim-probe-{}", uuid::Uuid::new_v4().simple());
    let raw = if root.is_empty() {
        name
    } else {
        format!("{root}/{name}")
    };
    let path = Path::parse(&raw).unwrap_or_else(|_| Path::from(raw));
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let first = store
        .put_opts(&path, PutPayload::from_static(b"probe"), create())
        .await;
    let honoured = match first {
        Ok(_) => match store
            .put_opts(&path, PutPayload::from_static(b"probe"), create())
            .await
        {
            Err(e) if taken(&e) => Some(true),
            Err(e) => {
                tracing::warn!("conditional-write probe failed: {e}");
                None
            }
            Ok(_) => Some(false),
        },
        // A store that refuses conditional writes outright has none.
        Err(object_store::Error::NotImplemented) => Some(false),
        Err(e) => {
            tracing::warn!("conditional-write probe failed: {e}");
            None
        }
    };
    let _ = store.delete(&path).await;
    honoured
}

/// A held claim; released by [`Claim::release`] or, as a fallback, when
/// dropped.
pub(super) struct Claim {
    d: Arc<Inner>,
    path: Path,
    renewer: Option<JoinHandle<()>>,
}

impl Claim {
    /// Waits until no other writer (of any replica) holds the session of
    /// the upload data at `data`, then claims it; `None` where the store
    /// offers no conditional writes.
    pub(super) async fn acquire(
        d: &Arc<Inner>,
        key: &str,
        data: &Path,
    ) -> StorageResult<Option<Claim>> {
        if !d.claims().await {
            return Ok(None);
        }
        let path = claim_path(data);
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let mut wait = FIRST_WAIT;
        let version = loop {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match d.store.put_opts(&path, body(&owner).into(), opts).await {
                Ok(r) => break r,
                Err(e) if taken(&e) => {}
                Err(e) => return Err(d.map_err(key, e)),
            }
            // Held: take it over if its holder stopped renewing it.
            match d.store.get(&path).await {
                Ok(r) => {
                    let current = UpdateVersion {
                        e_tag: r.meta.e_tag.clone(),
                        version: r.meta.version.clone(),
                    };
                    let content = r.bytes().await.map_err(|e| d.map_err(key, e))?;
                    if expired(&content) {
                        let opts = PutOptions {
                            mode: PutMode::Update(current),
                            ..Default::default()
                        };
                        match d.store.put_opts(&path, body(&owner).into(), opts).await {
                            Ok(r) => {
                                tracing::warn!("took over the expired claim on {key}");
                                break r;
                            }
                            Err(e)
                                if taken(&e)
                                    || matches!(e, object_store::Error::NotFound { .. }) => {}
                            Err(e) => return Err(d.map_err(key, e)),
                        }
                    }
                }
                // Released meanwhile: try again at once.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(d.map_err(key, e)),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_WAIT);
        };
        let renewer = tokio::spawn(renew(d.clone(), path.clone(), owner, version));
        Ok(Some(Claim {
            d: d.clone(),
            path,
            renewer: Some(renewer),
        }))
    }

    /// Gives the claim up (deletes it), so the next request of the session
    /// may go on at once.
    pub(super) async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if let Err(e) = self.d.store.delete(&self.path).await {
            tracing::warn!("cannot release the claim {}: {e}", self.path);
        }
    }
}

/// Renews the claim at a third of its expiry while its writer lives.
async fn renew(d: Arc<Inner>, path: Path, owner: String, mut last: object_store::PutResult) {
    loop {
        tokio::time::sleep(EXPIRY / 3).await;
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: last.e_tag.clone(),
                version: last.version.clone(),
            }),
            ..Default::default()
        };
        match d.store.put_opts(&path, body(&owner).into(), opts).await {
            Ok(r) => last = r,
            Err(e) => {
                tracing::warn!("lost the claim {path}: {e}");
                return;
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(r) = self.renewer.take() else {
            return;
        };
        r.abort();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, path) = (self.d.store.clone(), self.path.clone());
        rt.spawn(async move {
            let _ = store.delete(&path).await;
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn claims_are_siblings_of_the_data_and_expire() {
        let data = Path::parse("r/docker/registry/v2/repositories/a/_uploads/u/data").unwrap();
        assert_eq!(
            claim_path(&data).as_ref(),
            "r/docker/registry/v2/repositories/a/_uploads/u/data~claim"
        );
        assert!(!expired(&body("me")));
        assert!(expired(b"me 1000"));
        assert!(expired(b"garbage"));
    }

    #[tokio::test]
    async fn a_store_that_refuses_a_second_create_is_detected() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        assert_eq!(probe(&store, "root").await, Some(true));
        // The probe key is removed again.
        let left: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
}
