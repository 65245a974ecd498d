//! An append writer's claim on its file, shared by every process on the
//! storage: replicas on one directory (NFS, a shared volume) must not
//! write one upload at the same time, and a writer must never go on
//! writing into a file another process has meanwhile renamed into a blob.
//!
//! The claim is an exclusive `flock` on the file, held from the writer's
//! opening until it is dropped (after its finish, rename included). It is
//! taken with `LOCK_NB` and retried after a short sleep, so a request that
//! waits for another process's chunk holds no thread. Once it is held,
//! the path must still name the locked file: if another process moved or
//! removed it first (a finished or cancelled upload), the writer's object
//! is gone (`NotFound`). Linux emulates `flock` with byte-range locks on
//! NFS, which work across clients and need the file open for writing.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

use super::{backend, read_err};
use crate::storage::{StorageError, StorageResult};

/// First and longest pause between two attempts.
const FIRST_WAIT: Duration = Duration::from_millis(2);
const MAX_WAIT: Duration = Duration::from_millis(50);

/// Held while an append writer is open; dropping it releases the lock.
pub(super) struct Claim {
    file: File,
}

impl Claim {
    /// Waits until no other writer (of any process) holds the file at
    /// `full` (key `key`), then claims it.
    /// Errors: `NotFound` when there is no file, or it went away meanwhile.
    pub(super) async fn acquire(full: &Path, key: &str) -> StorageResult<Claim> {
        let mut wait = FIRST_WAIT;
        loop {
            tokio::task::consume_budget().await;
            let file = OpenOptions::new()
                .write(true)
                .open(full)
                .map_err(|e| read_err(key, e))?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Self::still_named(file, full, key),
                Err(e) if io::Error::from(e).kind() == io::ErrorKind::WouldBlock => {
                    drop(file);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_WAIT);
                }
                Err(e) => return Err(backend(e)),
            }
        }
    }

    /// The claim on `file`, if `full` still names it.
    fn still_named(file: File, full: &Path, key: &str) -> StorageResult<Claim> {
        let held = file.metadata().map_err(backend)?;
        let named = fs::metadata(full).map_err(|e| read_err(key, e))?;
        if held.dev() != named.dev() || held.ino() != named.ino() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        Ok(Claim { file })
    }

    /// The claimed file's metadata (size of the object the writer resumes).
    pub(super) fn metadata(&self) -> StorageResult<fs::Metadata> {
        self.file.metadata().map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_claim_waits_for_the_first_and_sees_a_moved_file_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        fs::write(&data, b"abc").expect("write");

        let first = Claim::acquire(&data, "/data").await.expect("first claim");
        let second = tokio::spawn({
            let data = data.clone();
            async move { Claim::acquire(&data, "/data").await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!second.is_finished(), "the second claim went through");
        drop(first);
        let got = tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("second claim after release")
            .expect("task");
        assert!(got.is_ok(), "{got:?}");

        // Moved away (an upload that became a blob) while a claim waited:
        // the waiter finds its object gone, not the blob.
        let held = Claim::acquire(&data, "/data").await.expect("claim");
        assert_eq!(held.metadata().expect("metadata").len(), 3);
        let waiter = tokio::spawn({
            let data = data.clone();
            async move { Claim::acquire(&data, "/data").await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        fs::rename(&data, dir.path().join("blob")).expect("rename");
        drop(held);
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("waiter ends")
            .expect("task");
        assert!(matches!(got, Err(StorageError::NotFound(_))), "{got:?}");
    }
}
