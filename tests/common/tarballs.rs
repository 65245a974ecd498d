//! Test data for the real-client tests: random bytes, image layer tarballs
//! (plain ustar, written by hand so no tar tool is needed) and their sha256
//! digests. Re-exported by `procs.rs`, so callers use `procs::write_tar`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// `len` random (incompressible) bytes, from the kernel's generator (fast
/// even in unoptimised test builds).
pub fn random_reader(len: u64) -> impl Read {
    File::open("/dev/urandom")
        .expect("open /dev/urandom")
        .take(len)
}

/// `len` random bytes in memory.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    random_reader(len as u64)
        .read_to_end(&mut v)
        .expect("read /dev/urandom");
    v
}

/// A writer that passes bytes through and hashes them (sha256).
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// (`sha256:HEX`, length, inner writer).
    pub fn finish(self) -> (String, u64, W) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.len,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A minimal ustar writer: regular files only (enough for image layers).
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Appends a regular file (mode 0644) of `size` bytes read from `data`.
    pub fn append(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        assert!(name.len() < 100, "tar name too long: {name}");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let mut field = |at: usize, width: usize, value: u64| {
            let s = format!("{value:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(s.as_bytes());
        };
        field(100, 8, 0o644); // mode
        field(108, 8, 0); // uid
        field(116, 8, 0); // gid
        field(124, 12, size);
        field(136, 12, 1_600_000_000); // mtime
        h[156] = b'0'; // regular file
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.out.write_all(&h)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        assert_eq!(copied, size, "short tar member {name}");
        let pad = (512 - (size % 512) as usize) % 512;
        self.out.write_all(&vec![0u8; pad])
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A file to put in a test tarball.
pub enum Entry<'a> {
    /// Random content of this many bytes.
    Random(&'a str, u64),
    /// Exactly these bytes.
    Bytes(&'a str, &'a [u8]),
}

/// Writes an uncompressed tarball of `entries` to `path`; returns its
/// digest (`sha256:HEX`, also the layer's diff ID) and size.
pub fn write_tar(path: &Path, entries: &[Entry]) -> (String, u64) {
    let file = io::BufWriter::new(File::create(path).expect("create tar"));
    let mut tar = TarWriter::new(HashingWriter::new(file));
    for e in entries {
        match e {
            Entry::Random(name, size) => tar.append(name, *size, random_reader(*size)),
            Entry::Bytes(name, data) => tar.append(name, data.len() as u64, *data),
        }
        .expect("write tar member");
    }
    let (digest, len, file) = tar.finish().expect("finish tar").finish();
    file.into_inner().expect("flush tar");
    (digest, len)
}

/// sha256 of bytes as `sha256:HEX`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// sha256 of a file as `sha256:HEX`.
pub fn sha256_file(path: &Path) -> String {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut w = HashingWriter::new(io::sink());
    io::copy(&mut f, &mut w).expect("hash file");
    w.finish().0
}
