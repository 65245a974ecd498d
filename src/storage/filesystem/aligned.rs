//! A page-aligned byte buffer for `O_DIRECT` writes, without `unsafe`:
//! small ones are a `Vec` over-allocated by one alignment unit, padded up
//! to its first aligned byte and filled from there; large ones (the
//! writers' 4 MiB buffers) an anonymous mapping (`memmap2`), page-aligned
//! by nature and returned to the system the moment it is dropped. Nothing
//! is zeroed ahead of use: a zeroed 4 MiB buffer cost a `memset` (or fresh
//! page faults) per upload, 6 % of the push storm's CPU for 16 KiB blobs.
//! Direct I/O needs the memory, the file offset and the length aligned to
//! the device's logical block size; 4 KiB covers 512-byte and 4 KiB devices.

/// Alignment of direct writes: memory address, file offset and length.
pub(super) const ALIGN: usize = 4096;

/// From this size on a buffer is its own anonymous mapping rather than heap
/// memory: freeing it unmaps it at once, whatever the allocator's
/// thresholds (glibc serves such sizes from per-thread heaps once its mmap
/// threshold has grown, and those keep freed memory resident).
const MAPPED_FROM: usize = 1 << 20;

/// Where a buffer's bytes live.
enum Store {
    /// A `Vec` padded up to its first aligned byte at `start`.
    Heap { raw: Vec<u8>, start: usize },
    /// A page-aligned anonymous mapping holding `len` bytes.
    Mapped { map: memmap2::MmapMut, len: usize },
}

/// Fixed-capacity buffer whose contents start on an [`ALIGN`] boundary.
pub(super) struct AlignedBuf {
    store: Store,
    cap: usize,
}

impl AlignedBuf {
    /// A buffer holding up to `cap` bytes; memory is only touched as it
    /// fills.
    pub(super) fn new(cap: usize) -> Self {
        if cap >= MAPPED_FROM {
            // A failed mapping (address space limits) falls back to the heap.
            if let Ok(map) = memmap2::MmapMut::map_anon(cap) {
                return Self {
                    store: Store::Mapped { map, len: 0 },
                    cap,
                };
            }
        }
        let mut raw: Vec<u8> = Vec::with_capacity(cap + ALIGN);
        // `align_offset` may in theory give up (usize::MAX); then the buffer
        // is simply unaligned and direct writes fall back to buffered ones.
        let start = match raw.as_ptr().align_offset(ALIGN) {
            n if n < ALIGN => n,
            _ => 0,
        };
        raw.resize(start, 0);
        Self {
            store: Store::Heap { raw, start },
            cap,
        }
    }

    /// A buffer of no capacity, allocating nothing: the placeholder left
    /// where a buffer was taken away.
    pub(super) fn empty() -> Self {
        Self {
            store: Store::Heap {
                raw: Vec::new(),
                start: 0,
            },
            cap: 0,
        }
    }

    /// Copies as much of `data` as fits; returns how many bytes it took.
    pub(super) fn extend(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.len());
        match &mut self.store {
            // Within the reserved capacity: never reallocates (which would
            // lose the alignment).
            Store::Heap { raw, .. } => raw.extend_from_slice(&data[..n]),
            Store::Mapped { map, len } => {
                map[*len..*len + n].copy_from_slice(&data[..n]);
                *len += n;
            }
        }
        n
    }

    pub(super) fn is_full(&self) -> bool {
        self.len() == self.cap
    }

    pub(super) fn len(&self) -> usize {
        match &self.store {
            Store::Heap { raw, start } => raw.len() - start,
            Store::Mapped { len, .. } => *len,
        }
    }

    /// How many bytes it holds when full.
    pub(super) fn capacity(&self) -> usize {
        self.cap
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        match &self.store {
            Store::Heap { raw, start } => &raw[*start..],
            Store::Mapped { map, len } => &map[..*len],
        }
    }

    pub(super) fn clear(&mut self) {
        match &mut self.store {
            Store::Heap { raw, start } => raw.truncate(*start),
            Store::Mapped { len, .. } => *len = 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AlignedBuf, ALIGN};

    #[test]
    fn aligned_fill_and_clear() {
        let mut b = AlignedBuf::new(2 * ALIGN);
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.extend(&[1; 5000]), 5000);
        assert_eq!(b.extend(&[2; 5000]), 2 * ALIGN - 5000, "takes what fits");
        assert!(b.is_full());
        assert_eq!(b.as_slice()[4999], 1);
        assert_eq!(b.as_slice()[5000], 2);
        b.clear();
        assert_eq!(b.len(), 0);
        assert_eq!(b.extend(&[3; 10]), 10);
        assert_eq!(b.as_slice(), &[3; 10]);
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0, "still aligned");
        assert_eq!(b.capacity(), 2 * ALIGN);
    }

    #[test]
    fn large_buffers_are_aligned_mappings_that_fill_and_clear_alike() {
        let cap = super::MAPPED_FROM * 2;
        let mut b = AlignedBuf::new(cap);
        assert!(matches!(b.store, super::Store::Mapped { .. }));
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.len(), 0);
        assert_eq!(b.extend(&vec![7; cap - 10]), cap - 10);
        assert_eq!(b.extend(&[8; 50]), 10, "takes what fits");
        assert!(b.is_full());
        assert_eq!(b.as_slice()[cap - 11], 7);
        assert_eq!(b.as_slice()[cap - 1], 8);
        b.clear();
        assert_eq!(b.len(), 0);
        assert_eq!(b.extend(&[3; 10]), 10);
        assert_eq!(b.as_slice(), &[3; 10]);
    }
}
