//! A compact set of digests for the collector's marks, candidates and
//! young links: sha256 digests (all but a handful in practice) as 32-byte
//! binary values in one sorted `Vec`, 32 bytes each, instead of a `String`
//! and hash-table slot per digest (~130 bytes). A 40,000-image registry's
//! ~120,000 live blobs fit in under 4 MiB. Inserts go to a small sorted
//! buffer merged into the main vector every [`PENDING`] inserts.

use std::collections::BTreeSet;

use crate::oci::digest::{Algorithm, Digest};

/// Size of the insert buffer; lookups binary-search it as well.
const PENDING: usize = 1024;

/// A set of digests (see the module doc for the layout).
#[derive(Debug, Default, Clone)]
pub struct DigestSet {
    sorted: Vec<[u8; 32]>,
    pending: Vec<[u8; 32]>,
    /// Digests of other algorithms (sha512), rare.
    other: BTreeSet<Digest>,
}

fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// The binary value of a sha256 digest; `None` for other algorithms.
fn raw(d: &Digest) -> Option<[u8; 32]> {
    if d.algorithm() != Algorithm::Sha256 {
        return None;
    }
    let hex = d.hex().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// The sha256 digest with binary value `v`.
fn digest_of(v: &[u8; 32]) -> Option<Digest> {
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in v {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s.parse().ok()
}

impl DigestSet {
    /// Adds `d`; false when it was there already.
    pub fn insert(&mut self, d: &Digest) -> bool {
        let Some(v) = raw(d) else {
            return self.other.insert(d.clone());
        };
        if self.sorted.binary_search(&v).is_ok() {
            return false;
        }
        match self.pending.binary_search(&v) {
            Ok(_) => false,
            Err(at) => {
                self.pending.insert(at, v);
                if self.pending.len() >= PENDING {
                    self.merge();
                }
                true
            }
        }
    }

    /// True when `d` is in the set.
    pub fn contains(&self, d: &Digest) -> bool {
        match raw(d) {
            Some(v) => {
                self.sorted.binary_search(&v).is_ok() || self.pending.binary_search(&v).is_ok()
            }
            None => self.other.contains(d),
        }
    }

    /// Number of digests.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.pending.len() + self.other.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of heap the set holds (for the memory bound's test and logs).
    pub fn heap_bytes(&self) -> usize {
        (self.sorted.capacity() + self.pending.capacity()) * 32
            + self.other.len() * (std::mem::size_of::<Digest>() + 128)
    }

    /// Every digest, in no particular order, built one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Digest> + '_ {
        self.sorted
            .iter()
            .chain(self.pending.iter())
            .filter_map(digest_of)
            .chain(self.other.iter().cloned())
    }

    /// Merges the insert buffer into the sorted vector, in place from the
    /// back (the vector grows by exactly the buffer).
    fn merge(&mut self) {
        let (n, m) = (self.sorted.len(), self.pending.len());
        self.sorted.reserve_exact(m);
        self.sorted.resize(n + m, [0; 32]);
        let (mut i, mut j, mut k) = (n, m, n + m);
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > self.pending[j - 1] {
                self.sorted[k - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k - 1] = self.pending[j - 1];
                j -= 1;
            }
            k -= 1;
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u32) -> Digest {
        Digest::sha256_of(&i.to_le_bytes())
    }

    #[test]
    fn behaves_as_a_set() {
        let mut s = DigestSet::default();
        for i in 0..5000 {
            assert!(s.insert(&d(i)), "{i} is new");
        }
        for i in 0..5000 {
            assert!(!s.insert(&d(i)), "{i} is there");
            assert!(s.contains(&d(i)));
        }
        assert!(!s.contains(&d(5000)));
        let long = Digest::of(Algorithm::Sha512, b"x");
        assert!(s.insert(&long) && s.contains(&long) && !s.insert(&long));
        assert_eq!(s.len(), 5001);
        let mut all: Vec<Digest> = s.iter().collect();
        all.sort();
        let mut want: Vec<Digest> = (0..5000).map(d).chain([long]).collect();
        want.sort();
        assert_eq!(all, want);
    }

    /// The bound the collector's memory rests on: 32 bytes per marked
    /// sha256 digest, plus the insert buffer. 120,000 digests (a
    /// 40,000-image registry with a config and a layer per image) stay
    /// under 4 MiB, where a `HashSet<Digest>` takes about 16.
    #[test]
    fn holds_32_bytes_per_digest() {
        let mut s = DigestSet::default();
        let n = 120_000;
        for i in 0..n {
            s.insert(&d(i));
        }
        let bytes = s.heap_bytes();
        assert!(bytes <= n as usize * 32 + PENDING * 32, "{bytes} bytes");
        assert!(bytes < 4 << 20, "{bytes} bytes");
    }
}
