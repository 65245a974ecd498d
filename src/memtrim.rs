//! Gives freed heap memory back to the system. glibc keeps what a burst of
//! work freed (a push storm, a catalog of thousands of repositories) in its
//! per-thread arenas; tokio's blocking pool runs many threads, so a server
//! that just finished a busy minute can sit on tens of MiB it no longer
//! uses. A `malloc_trim` every few seconds returns them (measured RSS after
//! a benchmark run: docs/performance.md). Other allocators and C libraries
//! return memory on their own, so the call is a no-op there.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often freed memory is handed back.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Returns freed memory of every arena to the system now.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim takes no pointer and touches only glibc's own
    // arenas, each under its own lock; it is safe to call from any thread at
    // any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc's malloc arenas at the number of CPUs (its default is eight
/// per CPU). `malloc_trim` gives back free pages inside every arena but
/// never shrinks the top of a per-thread arena, and tokio's blocking pool
/// runs many threads that each take an arena of their own: after a few
/// pushes those tops kept 22-24 MiB resident on this 2-CPU machine, against
/// 15 with two arenas (docs/performance.md), for the same CPU per request
/// within 1-2 %. Call before any thread starts. An operator's own
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` is left to decide.
///
/// Also fixes the mmap threshold at [`MMAP_THRESHOLD`]: glibc raises it
/// (up to 32 MiB) each time a large block is freed, after which the 64 KiB
/// to 1 MiB buffers of blob bodies and listings come from the arenas, where
/// they stay resident and fragment them; above a fixed threshold they are
/// mapped and unmapped, so what the load took goes back when it ends.
/// An operator's `MALLOC_MMAP_THRESHOLD_` or `GLIBC_TUNABLES` decides
/// instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    let tunables = std::env::var_os("GLIBC_TUNABLES").is_some();
    let overridden = std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables;
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    if let Some(arenas) = arena_cap(overridden, cpus) {
        // SAFETY: mallopt takes plain integers and only sets a glibc
        // parameter (under its own lock); it touches no memory of ours.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    if !tunables && std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above, an integer parameter of glibc's allocator.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Blocks at least this big are mapped on their own (glibc's initial
/// value, kept fixed; see [`limit_arenas`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub const MMAP_THRESHOLD: std::ffi::c_int = 128 * 1024;

/// The arena cap for `cpus` CPUs, or none when the operator's environment
/// already sets the allocator up.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn arena_cap(overridden: bool, cpus: usize) -> Option<std::ffi::c_int> {
    if overridden {
        return None;
    }
    std::ffi::c_int::try_from(cpus.clamp(1, 1024)).ok()
}

/// Outside glibc there are no arenas to cap.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

/// Returns freed memory to the system: nothing to do outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// Trims every `interval` on a blocking thread (a trim walks the arenas)
/// until `shutdown` turns true.
pub fn spawn(interval: Duration, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let _ = tokio::task::spawn_blocking(|| {
                        crate::storage::filesystem::release_idle_buffers();
                        trim();
                    })
                    .await;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{arena_cap, spawn, trim};
    use std::time::Duration;

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn trim_returns_freed_memory() {
        // 64 MiB in small blocks (below the mmap threshold, so they live in
        // an arena), then a block after them that keeps the heap from simply
        // shrinking when they are freed: only a trim gives the pages back.
        let blocks: Vec<Vec<u8>> = (0..16_384).map(|i| vec![i as u8; 4000]).collect();
        let pin = vec![1u8; 4000];
        drop(blocks);
        let before = rss_kib();
        trim();
        let after = rss_kib();
        assert!(
            before.saturating_sub(after) >= 32 * 1024,
            "RSS {before} KiB -> {after} KiB"
        );
        drop(pin);
    }

    #[tokio::test]
    async fn stops_on_shutdown() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = spawn(Duration::from_millis(5), rx);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished(), "runs until told to stop");
        tx.send(true).expect("send");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stopped")
            .expect("no panic");
    }

    #[test]
    fn one_arena_per_cpu_unless_the_environment_decides() {
        assert_eq!(arena_cap(false, 2), Some(2));
        assert_eq!(arena_cap(false, 64), Some(64));
        assert_eq!(arena_cap(false, 0), Some(1), "at least one");
        assert_eq!(
            arena_cap(true, 2),
            None,
            "MALLOC_ARENA_MAX or GLIBC_TUNABLES set"
        );
    }
}
