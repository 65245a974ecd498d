//! Spare full-size write buffers, shared by every writer in the process.
//! A 4 MiB buffer is above glibc's mmap threshold, so each new one is a
//! fresh mapping: a page fault per 4 KiB as it fills and an `munmap` when
//! dropped. A chunked push makes a writer per PATCH with two such buffers:
//! 8 MiB of fresh pages per 16 MiB chunk, where page faults were 17 % of
//! the push's CPU. Finished writers give their buffers back here instead.
//! The pool keeps at most [`POOL_MAX`] and lets them all go when a whole
//! interval passed without a writer taking one ([`BufPool::release_idle`],
//! called by the periodic memory trim), so an idle server holds none.

use std::sync::{Mutex, MutexGuard};

use super::aligned::AlignedBuf;
use super::BUF_SIZE;

/// Most spare buffers kept: two uploads' worth.
const POOL_MAX: usize = 4;

/// The process's pool, used by every filesystem writer.
pub(super) static POOL: BufPool = BufPool::new();

/// A bounded stack of spare [`BUF_SIZE`] buffers.
pub(super) struct BufPool {
    inner: Mutex<Inner>,
}

struct Inner {
    spare: Vec<AlignedBuf>,
    /// A buffer was taken since the last `release_idle`.
    used: bool,
}

impl BufPool {
    pub(super) const fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                spare: Vec::new(),
                used: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Only pushes and pops happen under the lock: a poisoned pool is whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A full-size buffer, spare or new.
    pub(super) fn take(&self) -> AlignedBuf {
        let mut p = self.lock();
        p.used = true;
        p.spare.pop().unwrap_or_else(|| AlignedBuf::new(BUF_SIZE))
    }

    /// Keeps `buf` for the next writer if it is full-size and there is room.
    pub(super) fn give(&self, mut buf: AlignedBuf) {
        if buf.capacity() != BUF_SIZE {
            return;
        }
        buf.clear();
        let mut p = self.lock();
        if p.spare.len() < POOL_MAX {
            p.spare.push(buf);
        }
    }

    /// Frees the spare buffers if none was taken since the last call.
    pub(super) fn release_idle(&self) {
        let freed = {
            let mut p = self.lock();
            if std::mem::replace(&mut p.used, false) {
                Vec::new()
            } else {
                std::mem::take(&mut p.spare)
            }
        };
        // Unmapped outside the lock.
        drop(freed);
    }

    #[cfg(test)]
    fn spare_count(&self) -> usize {
        self.lock().spare.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{BufPool, POOL_MAX};
    use crate::storage::filesystem::aligned::AlignedBuf;
    use crate::storage::filesystem::BUF_SIZE;

    #[test]
    fn a_given_buffer_is_the_next_one_taken_empty() {
        let pool = BufPool::new();
        let mut a = pool.take();
        assert_eq!(a.capacity(), BUF_SIZE);
        a.extend(b"left over");
        let at = a.as_slice().as_ptr();
        pool.give(a);
        let b = pool.take();
        assert_eq!(b.as_slice().as_ptr(), at, "same memory");
        assert_eq!(b.len(), 0, "handed out empty");
    }

    #[test]
    fn keeps_only_full_size_buffers_and_at_most_pool_max() {
        let pool = BufPool::new();
        pool.give(AlignedBuf::new(64 << 10));
        assert_eq!(pool.spare_count(), 0);
        for _ in 0..POOL_MAX + 2 {
            pool.give(AlignedBuf::new(BUF_SIZE));
        }
        assert_eq!(pool.spare_count(), POOL_MAX);
    }

    #[test]
    fn spares_go_after_an_interval_without_takers() {
        let pool = BufPool::new();
        let a = pool.take();
        pool.give(a);
        // Taken during this interval: kept.
        pool.release_idle();
        assert_eq!(pool.spare_count(), 1);
        // Nothing taken since: freed.
        pool.release_idle();
        assert_eq!(pool.spare_count(), 0);
    }
}
