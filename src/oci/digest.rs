//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and hashing while streaming.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha512};

use super::sha256_state::Sha256State;

/// Hash algorithms berth can verify. Others are refused as DIGEST_INVALID, as
/// distribution does, because content under them could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written in digests and storage paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest. Once parsed, the hex part is lowercase and of the right
/// length, so it is safe to use in storage keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest format: {0:?}")]
    Format(String),
    #[error("unsupported digest algorithm: {0:?}")]
    Unsupported(String),
}

impl Digest {
    /// The digest's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Digest of a byte slice held in memory (manifests, small test data).
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    /// sha256 digest of a byte slice: the canonical digest of manifests.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        let alg_ok = !alg.is_empty()
            && alg.split(['+', '.', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        let hex_ok = !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !alg_ok || !hex_ok {
            return Err(DigestError::Format(s.to_string()));
        }
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::Unsupported(s.to_string())),
        };
        let hex_valid = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_valid {
            return Err(DigestError::Format(s.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for either algorithm, fed as bytes stream past.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256State),
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256State::default()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Bytes fed so far, when the hasher knows (sha256).
    pub fn bytes_hashed(&self) -> Option<u64> {
        match self {
            Hasher::Sha256(h) => Some(h.len()),
            Hasher::Sha512(_) => None,
        }
    }

    /// The running state in distribution's `hashstates` format, so another
    /// instance can continue the hash; `None` for algorithms without one.
    pub fn save_state(&self) -> Option<Vec<u8>> {
        match self {
            Hasher::Sha256(h) => Some(h.marshal()),
            Hasher::Sha512(_) => None,
        }
    }

    /// Restores a state saved by [`Hasher::save_state`] (or by registry:2).
    pub fn restore_state(algorithm: Algorithm, state: &[u8]) -> Option<Hasher> {
        match algorithm {
            Algorithm::Sha256 => Sha256State::unmarshal(state).map(Hasher::Sha256),
            Algorithm::Sha512 => None,
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finish())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_valid_digests() {
        let d: Digest = EMPTY.parse().expect("valid");
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY);
        let long = format!("sha512:{}", "a".repeat(128));
        assert_eq!(long.parse::<Digest>().expect("valid").to_string(), long);
    }

    #[test]
    fn rejects_invalid_digests() {
        let table = [
            ("", false),
            ("sha256", false),
            ("sha256:", false),
            (":abc", false),
            ("sha256:abc", false),
            (&EMPTY.to_uppercase(), false),
            (&format!("sha256:{}", "g".repeat(64)), false),
            (&format!("sha256:{}", "a".repeat(65)), false),
            (&format!("sha256:../{}", "a".repeat(61)), false),
            (&format!("md5:{}", "a".repeat(32)), true),
            (&format!("sha384:{}", "a".repeat(96)), true),
        ];
        for (input, unsupported) in table {
            match input.parse::<Digest>() {
                Ok(d) => panic!("{input:?} parsed as {d}"),
                Err(DigestError::Unsupported(_)) => assert!(unsupported, "{input:?}"),
                Err(DigestError::Format(_)) => assert!(!unsupported, "{input:?}"),
            }
        }
    }

    #[test]
    fn hashes_incrementally() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), Digest::sha256_of(b"hello world"));
        assert_eq!(
            Digest::sha256_of(b"hello world").hex(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
