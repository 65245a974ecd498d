//! Group commit for the filesystem driver: one `syncfs` makes the writes of
//! every request waiting at that moment durable, instead of each request
//! paying its own chain of `fsync`s (data file, then each directory it
//! touched). Under concurrent pushes one device flush serves them all.
//!
//! A waiter is only released by a `syncfs` that *started* after it arrived,
//! so everything it wrote before calling [`GroupSync::sync`] is covered.
//! `syncfs` flushes every dirty page, inode and directory block of the
//! filesystem and then the device cache; since Linux 5.8 it also reports
//! writeback errors of any file on the filesystem since the descriptor was
//! opened, which we turn into a failed request rather than an
//! acknowledgement. Why this is safe and what it costs: docs/performance.md.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Progress of the sync rounds: rounds are numbered from 1; `finished` is
/// the last round that returned, `failed` the last one that reported an
/// error (0: none).
#[derive(Debug, Clone, Copy, Default)]
struct Rounds {
    finished: u64,
    failed: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Number of the round that is running or last ran.
    started: u64,
    /// Highest round some waiter needs.
    wanted: u64,
    /// True while a syncer task is looping.
    running: bool,
    /// Descriptor `syncfs` is called on (any file of the filesystem will
    /// do); opened on first use because the root may not exist before the
    /// first write.
    fd: Option<Arc<File>>,
}

/// Batches durability requests of one filesystem into shared `syncfs` rounds.
#[derive(Debug)]
pub(super) struct GroupSync {
    root: PathBuf,
    state: Mutex<State>,
    rounds: watch::Sender<Rounds>,
}

impl GroupSync {
    /// A group commit for the filesystem holding `root`.
    pub(super) fn new(root: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            root,
            state: Mutex::new(State::default()),
            rounds: watch::Sender::new(Rounds::default()),
        })
    }

    /// Returns once everything written to the filesystem before the call is
    /// on stable storage. Errors: the `syncfs` round covering the call (or a
    /// later one it waited for) reported a writeback error.
    pub(super) async fn sync(self: &Arc<Self>) -> io::Result<()> {
        let mut rx = self.rounds.subscribe();
        let ticket = {
            let mut st = self.state.lock().map_err(|_| poisoned())?;
            // A round already running may have started before our writes:
            // we need the next one.
            let ticket = st.started + 1;
            st.wanted = st.wanted.max(ticket);
            if !st.running {
                st.running = true;
                let me = Arc::clone(self);
                tokio::spawn(async move { me.run().await });
            }
            ticket
        };
        let rounds = *rx
            .wait_for(|r| r.finished >= ticket)
            .await
            .map_err(|_| io::Error::other("sync task ended"))?;
        // Conservative: a failure in our round or any later one fails us.
        if rounds.failed >= ticket {
            return Err(io::Error::other(
                "syncfs reported a writeback error; the write may not be durable",
            ));
        }
        Ok(())
    }

    /// Runs rounds until no waiter needs another one.
    async fn run(self: Arc<Self>) {
        loop {
            let (round, fd) = {
                let Ok(mut st) = self.state.lock() else {
                    return;
                };
                if st.wanted <= st.started {
                    st.running = false;
                    return;
                }
                st.started += 1;
                (st.started, st.fd.clone())
            };
            let root = self.root.clone();
            let result = tokio::task::spawn_blocking(move || sync_fs(&root, fd)).await;
            let ok = match result {
                Ok(Ok(fd)) => {
                    if let Ok(mut st) = self.state.lock() {
                        st.fd.get_or_insert(fd);
                    }
                    true
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, root = %self.root.display(), "syncfs failed");
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "syncfs task failed");
                    false
                }
            };
            self.rounds.send_modify(|r| {
                r.finished = round;
                if !ok {
                    r.failed = round;
                }
            });
        }
    }
}

fn poisoned() -> io::Error {
    io::Error::other("sync state lock poisoned")
}

/// One round: flushes the whole filesystem holding `root`. Returns the
/// descriptor to reuse (errors are reported per descriptor, once each, so
/// the same one must be kept to see every error).
fn sync_fs(root: &std::path::Path, fd: Option<Arc<File>>) -> io::Result<Arc<File>> {
    let fd = match fd {
        Some(fd) => fd,
        None => {
            std::fs::create_dir_all(root)?;
            Arc::new(File::open(root)?)
        }
    };
    syncfs(&fd)?;
    Ok(fd)
}

#[cfg(target_os = "linux")]
fn syncfs(fd: &File) -> io::Result<()> {
    rustix::fs::syncfs(fd).map_err(io::Error::from)
}

/// Outside Linux there is no `syncfs`: `sync(2)` flushes every filesystem
/// (on some systems it only schedules the writes; berth's durability
/// guarantees are stated for Linux).
#[cfg(not(target_os = "linux"))]
fn syncfs(_fd: &File) -> io::Result<()> {
    rustix::fs::sync();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::GroupSync;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_rounds() {
        let dir = std::env::temp_dir().join(format!("berth-gs-{}", uuid::Uuid::new_v4()));
        let gs = GroupSync::new(dir.clone());
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let gs = Arc::clone(&gs);
            tasks.push(tokio::spawn(async move { gs.sync().await }));
        }
        for t in tasks {
            t.await.expect("task").expect("sync");
        }
        let rounds = gs.rounds.borrow().finished;
        assert!(rounds >= 1, "at least one syncfs ran");
        assert!(rounds < 64, "64 waiters were batched, got {rounds} rounds");
        // A later call needs a round of its own.
        gs.sync().await.expect("sync");
        assert!(gs.rounds.borrow().finished > rounds);
        let _ = std::fs::remove_dir_all(dir);
    }
}
