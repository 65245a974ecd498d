//! An incremental SHA-256 whose running state can be saved and restored in
//! Go's `encoding.BinaryMarshaler` format — the format distribution keeps in
//! `_uploads/<id>/hashstates/sha256/<offset>` — so a chunked upload can
//! continue on another berth instance, or one started by registry:2, without
//! re-reading its data. The compression itself is `sha2`'s (SHA-NI when the
//! CPU has it).

use sha2::block_api::compress256;

const MAGIC: &[u8; 4] = b"sha\x03";
const INIT: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
/// Length of a marshalled state: magic, 8 words, a block buffer, the length.
pub const MARSHALLED_LEN: usize = 4 + 32 + 64 + 8;

/// Running SHA-256 state.
#[derive(Clone)]
pub struct Sha256State {
    h: [u32; 8],
    buf: [u8; 64],
    nbuf: usize,
    len: u64,
}

impl Default for Sha256State {
    fn default() -> Self {
        Sha256State {
            h: INIT,
            buf: [0; 64],
            nbuf: 0,
            len: 0,
        }
    }
}

impl Sha256State {
    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.nbuf > 0 {
            let take = (64 - self.nbuf).min(data.len());
            self.buf[self.nbuf..self.nbuf + take].copy_from_slice(&data[..take]);
            self.nbuf += take;
            data = &data[take..];
            if self.nbuf < 64 {
                return;
            }
            compress256(&mut self.h, &[self.buf]);
            self.nbuf = 0;
        }
        let (blocks, rest) = data.as_chunks::<64>();
        if !blocks.is_empty() {
            compress256(&mut self.h, blocks);
        }
        self.buf[..rest.len()].copy_from_slice(rest);
        self.nbuf = rest.len();
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 32-byte digest of everything fed.
    pub fn finish(mut self) -> [u8; 32] {
        let bit_len = self.len.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.nbuf].copy_from_slice(&self.buf[..self.nbuf]);
        tail[self.nbuf] = 0x80;
        let total = if self.nbuf < 56 { 64 } else { 128 };
        tail[total - 8..total].copy_from_slice(&bit_len.to_be_bytes());
        let (blocks, _) = tail[..total].as_chunks::<64>();
        compress256(&mut self.h, blocks);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.h) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// The state in Go's binary format (108 bytes).
    pub fn marshal(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(MARSHALLED_LEN);
        b.extend_from_slice(MAGIC);
        for w in self.h {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&self.buf[..self.nbuf]);
        b.resize(4 + 32 + 64, 0);
        b.extend_from_slice(&self.len.to_be_bytes());
        b
    }

    /// Restores a state from Go's binary format; `None` when malformed.
    pub fn unmarshal(b: &[u8]) -> Option<Sha256State> {
        if b.len() != MARSHALLED_LEN || &b[..4] != MAGIC {
            return None;
        }
        let mut h = [0u32; 8];
        for (i, w) in h.iter_mut().enumerate() {
            let at = 4 + i * 4;
            *w = u32::from_be_bytes(b[at..at + 4].try_into().ok()?);
        }
        let mut buf = [0u8; 64];
        buf.copy_from_slice(&b[36..100]);
        let len = u64::from_be_bytes(b[100..108].try_into().ok()?);
        Some(Sha256State {
            h,
            buf,
            nbuf: (len % 64) as usize,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn reference(data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    #[test]
    fn matches_sha2_for_every_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000] {
            for split in [0, 1, 63, 64, 65, len / 2, len] {
                let split = split.min(len);
                let mut s = Sha256State::default();
                s.update(&data[..split]);
                s.update(&data[split..len]);
                assert_eq!(
                    s.finish(),
                    reference(&data[..len]),
                    "len {len} split {split}"
                );
            }
        }
    }

    #[test]
    fn marshal_round_trip_continues_hashing() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for cut in [0, 10, 64, 100, 4999] {
            let mut s = Sha256State::default();
            s.update(&data[..cut]);
            let saved = s.marshal();
            assert_eq!(saved.len(), MARSHALLED_LEN);
            let mut r = Sha256State::unmarshal(&saved).expect("state");
            r.update(&data[cut..]);
            assert_eq!(r.finish(), reference(&data), "cut {cut}");
        }
        assert!(Sha256State::unmarshal(b"short").is_none());
        assert!(Sha256State::unmarshal(&[0u8; MARSHALLED_LEN]).is_none());
    }

    #[test]
    fn go_state_of_known_prefix() {
        // Go: h := sha256.New(); h.Write([]byte("abc")); h.(encoding.BinaryMarshaler).MarshalBinary()
        // is "sha\x03" + the initial words (no block compressed yet) + "abc"
        // zero-padded to 64 bytes + length 3, big-endian.
        let mut s = Sha256State::default();
        s.update(b"abc");
        let m = s.marshal();
        assert_eq!(&m[..4], b"sha\x03");
        assert_eq!(&m[4..8], &0x6a09e667u32.to_be_bytes());
        assert_eq!(&m[36..39], b"abc");
        assert!(m[39..100].iter().all(|b| *b == 0));
        assert_eq!(&m[100..], &3u64.to_be_bytes());
    }
}
