//! The spool of one blob fetch: a file holding every byte the upstream sent
//! so far (in the page cache; written once, at memory speed), plus the most
//! recent chunks kept in memory as they arrived (a bounded window). Readers
//! that keep up with the upstream, and the storage copy, take their bytes
//! from the window without a copy or a file read; readers further behind
//! read the file.
//!
//! Where storage is local files (the filesystem driver), the spool is the
//! fetch's upload data file in storage itself, which the fetch commits as
//! the blob by rename: no second copy, and the blob is still in the page
//! cache for the next pull. Elsewhere it is an unlinked file in the spool
//! directory, copied into a storage writer as it grows.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use super::spool_file;

/// Bytes of recent chunks kept in memory per fetch.
const WINDOW_BYTES: usize = 16 << 20;

/// Bytes a read returns at most (from the file: one blocking-pool trip).
const READ_CHUNK: u64 = 1 << 20;

/// A window chunk at least this large is handed out alone, without a copy;
/// smaller ones are joined with the next up to [`READ_CHUNK`].
const MIN_PIECE: usize = 256 << 10;

/// One fetch's bytes so far.
pub(super) struct Spool {
    file: File,
    window: Mutex<Window>,
    /// Where the file is in storage, when it is the upload data file
    /// there (see the module doc), with the directories made for it.
    in_storage: Option<(PathBuf, Vec<PathBuf>)>,
}

/// The latest chunks, by offset: at most [`WINDOW_BYTES`] of them, plus
/// those not in the file yet (which the fetch bounds).
#[derive(Default)]
struct Window {
    chunks: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// Bytes from the start that are in the file.
    in_file: u64,
}

impl Window {
    /// Drops the oldest chunks beyond the bound, but none the file lacks.
    fn trim(&mut self) {
        while self.bytes > WINDOW_BYTES {
            match self.chunks.front() {
                Some((at, c)) if at + c.len() as u64 <= self.in_file => {
                    self.bytes -= c.len();
                    self.chunks.pop_front();
                }
                _ => break,
            }
        }
    }
}

impl Spool {
    /// A spool file nobody else can open: created in `dir`, then unlinked
    /// at once, so it disappears with the last handle whatever happens.
    pub fn create(dir: &Path) -> io::Result<Spool> {
        let path = dir.join(format!("berth-spool-{}", uuid::Uuid::new_v4().simple()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(Spool {
            file,
            window: Mutex::new(Window::default()),
            in_storage: None,
        })
    }

    /// A spool that is the new file `path` in storage (an upload's data
    /// file, which nothing else writes), creating its directories; the
    /// fetch commits it, or [`Spool::discard`]s it when the fetch fails.
    pub fn create_in_storage(path: &Path) -> io::Result<Spool> {
        let (file, dirs) = spool_file::create(path)?;
        Ok(Spool {
            file,
            window: Mutex::new(Window::default()),
            in_storage: Some((path.to_path_buf(), dirs)),
        })
    }

    /// Whether the spool is the upload's data file in storage.
    pub fn in_storage(&self) -> bool {
        self.in_storage.is_some()
    }

    /// Removes a spool in storage that will not be committed, and the
    /// directories made for it while empty (blocking: call from the
    /// blocking pool). Open handles keep reading it.
    pub fn discard(&self) {
        if let Some((path, dirs)) = &self.in_storage {
            spool_file::discard(path, dirs);
        }
    }

    /// Writes `chunks` one after the other from offset `at` (blocking: call
    /// from the blocking pool).
    pub fn write_at(&self, mut at: u64, chunks: &[Bytes]) -> io::Result<()> {
        for c in chunks {
            self.file.write_all_at(c, at)?;
            at += c.len() as u64;
        }
        Ok(())
    }

    /// Makes `chunks` (from offset `at`, the file may not have them yet)
    /// readable from the window, dropping the oldest that the file holds
    /// beyond its bound.
    pub fn publish(&self, mut at: u64, chunks: Vec<Bytes>) {
        let Ok(mut w) = self.window.lock() else {
            return;
        };
        for c in chunks {
            let len = c.len();
            w.chunks.push_back((at, c));
            w.bytes += len;
            at += len as u64;
        }
        w.trim();
    }

    /// Records that the file holds every byte before `end`, so the window
    /// may drop them.
    pub fn stored_to(&self, end: u64) {
        let Ok(mut w) = self.window.lock() else {
            return;
        };
        w.in_file = w.in_file.max(end);
        w.trim();
    }

    /// The bytes at `pos` up to `limit` (exclusive) from the window, when it
    /// still holds `pos`, at most [`READ_CHUNK`]: the rest of one chunk
    /// without a copy when it is large, else consecutive chunks joined, so
    /// a response is written in large pieces whatever size the upstream's
    /// chunks were.
    fn recent(&self, pos: u64, limit: u64) -> Option<Bytes> {
        let want = (limit - pos).min(READ_CHUNK) as usize;
        let mut parts = Vec::new();
        {
            let w = self.window.lock().ok()?;
            let first = w.chunks.partition_point(|(start, _)| *start <= pos);
            let mut at = pos;
            let mut got = 0;
            for (start, chunk) in w.chunks.range(first.checked_sub(1)?..) {
                let Some(from) = at.checked_sub(*start).and_then(|d| usize::try_from(d).ok())
                else {
                    break;
                };
                if from >= chunk.len() {
                    break;
                }
                let to = chunk.len().min(from + (want - got));
                parts.push(chunk.slice(from..to));
                got += to - from;
                at += (to - from) as u64;
                if got >= want || (parts.len() == 1 && got >= MIN_PIECE) {
                    break;
                }
            }
        }
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => {
                let mut joined = BytesMut::with_capacity(want);
                for p in &parts {
                    joined.extend_from_slice(p);
                }
                Some(joined.freeze())
            }
        }
    }

    /// The bytes at `pos` up to `limit` (exclusive; `pos < limit`, and all
    /// of them published): from the window if it still holds them (it
    /// holds every byte the file lacks), else at most [`READ_CHUNK`] from
    /// the file.
    pub async fn read(self: &Arc<Self>, pos: u64, limit: u64) -> io::Result<Bytes> {
        if let Some(b) = self.recent(pos, limit) {
            return Ok(b);
        }
        let n = (limit - pos).min(READ_CHUNK) as usize;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            this.file
                .read_exact_at(&mut buf, pos)
                .map(|()| Bytes::from(buf))
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_come_from_the_window_then_from_the_file() {
        let spool = Arc::new(Spool::create(&std::env::temp_dir()).unwrap());
        let a = Bytes::from(vec![1u8; 10]);
        let b = Bytes::from(vec![2u8; 10]);
        spool.write_at(0, &[a.clone(), b.clone()]).unwrap();
        spool.publish(0, vec![a, b]);
        spool.stored_to(20);
        // Within one chunk, cut at the limit.
        assert_eq!(spool.read(12, 15).await.unwrap(), vec![2u8; 3]);
        // Small chunks are joined into one piece.
        let joined = spool.read(5, 20).await.unwrap();
        assert_eq!(&joined[..5], &[1u8; 5]);
        assert_eq!(&joined[5..], &[2u8; 10]);
        // Past the window's bound, the file answers.
        let big = Bytes::from(vec![3u8; WINDOW_BYTES]);
        spool.write_at(20, std::slice::from_ref(&big)).unwrap();
        spool.publish(20, vec![big]);
        spool.stored_to(20 + WINDOW_BYTES as u64);
        let early = spool.read(0, 20).await.unwrap();
        assert_eq!(&early[..10], &[1u8; 10]);
        assert_eq!(&early[10..], &[2u8; 10]);
        assert_eq!(spool.read(19, 22).await.unwrap(), vec![2u8, 3, 3]);
    }

    #[tokio::test]
    async fn the_window_keeps_what_the_file_lacks_past_its_bound() {
        let spool = Arc::new(Spool::create(&std::env::temp_dir()).unwrap());
        let chunk = |v: u8| Bytes::from(vec![v; WINDOW_BYTES / 2]);
        // Published but never written: three halves of the bound, all held.
        spool.publish(0, vec![chunk(1), chunk(2), chunk(3)]);
        let half = (WINDOW_BYTES / 2) as u64;
        assert_eq!(spool.read(0, 4).await.unwrap(), vec![1u8; 4]);
        // Once the file is said to hold the first half, the window lets it
        // go: the read goes to the (empty) file and fails.
        spool.stored_to(half);
        assert!(spool.read(0, 4).await.is_err());
        assert_eq!(spool.read(half, half + 4).await.unwrap(), vec![2u8; 4]);
    }
}
