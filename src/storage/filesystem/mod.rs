//! Filesystem driver: key `/a/b` is the file `<root>/a/b`, the same layout as
//! distribution's filesystem driver, so a registry:2 data directory is served
//! in place.
//!
//! Whole-object writes go to a temp file next to the destination and are
//! renamed over it, so readers see the old or the new content, never a mix.
//! Durability comes from a group commit (`group_sync.rs`): a durable write
//! returns after a `syncfs` that started after it, shared with every other
//! request waiting at that moment.
//! Temp files are named `.tmp~<uuid>`: `~` is outside the key grammar, so no
//! key can ever name one, and `list`/`walk` skip every name that is not a
//! valid key segment.
//!
//! Blocking `std::fs` work runs under `spawn_blocking`, except where one
//! syscall on cached metadata costs less than the hand-off to the pool:
//! `get_content` of small objects, `stat`, `list` of small directories and
//! an append writer's claim and size (`open`, non-blocking `flock`,
//! `fstat`, `statx`: `claim.rs`) run inline (measured in
//! docs/performance.md).
//! A request's writes after its body come as one batch
//! (`apply_deferred`, `ops.rs`) and cost one trip to the pool. An abandoned writer is
//! undone synchronously in `Drop` (an unlink or a truncate, after waiting
//! for a write in flight) so that the next request sees a consistent state.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    BoxReader, ByteStream, DeferredWrite, FileInfo, FileWriter, StorageDriver, StorageError,
    StorageResult,
};

mod aligned;
mod buf_pool;
mod claim;
mod dir;
mod group_sync;
mod list_cache;
mod ops;
mod read_stream;
mod root;
mod target;
mod writer;

pub use root::check_root;

use aligned::ALIGN;
use claim::Claim;
use dir::{is_key_name, Names};
use group_sync::GroupSync;
use list_cache::Stamp;
use ops::Ops;
use read_stream::ReadAhead;
use target::Target;
use writer::{FsWriter, Open, Slot};

const DRIVER: &str = "filesystem";

/// Size of each of the writer's two buffers: one blocking-pool trip and one
/// direct write per 4 MiB. Measured on 1 GiB pushes, interleaved: 1.00-1.08
/// CPU-s/GiB against 1.09-1.15 with 1 MiB (docs/performance.md); costs up
/// to 8 MiB per upload in progress.
const BUF_SIZE: usize = 4 << 20;

/// Size of a writer's first buffer: most objects (links, configs, small
/// layers) fit in it, and they should not pay for 4 MiB of memory.
const FIRST_BUF_SIZE: usize = 64 << 10;

/// Prefix of temp file names; `~` can never appear in a key.
const TMP_PREFIX: &str = ".tmp~";

/// Frees the writers' spare buffers if no upload took one since the last
/// call; the periodic memory trim calls it, so an idle server keeps none.
pub fn release_idle_buffers() {
    buf_pool::POOL.release_idle();
}

/// Stores objects as plain files under a root directory, compatible with
/// distribution's `filesystem` driver.
#[derive(Debug, Clone)]
pub struct FilesystemDriver {
    /// Shared by clones, so every request of a registry joins one group.
    group: Arc<GroupSync>,
    /// The root, the sync mode (`fsync_each`: every write fsyncs its file
    /// and directory at once, and `sync` has nothing left to do) and the
    /// blocking operations behind the write calls.
    ops: Ops,
}

impl FilesystemDriver {
    /// Atomic replace (temp file + rename); with `durable`, waits for the
    /// group sync.
    async fn put(&self, path: &str, content: Bytes, durable: bool) -> StorageResult<()> {
        let full = self.full_path(path)?;
        let ops = self.ops.clone();
        blocking(move || ops.put(full, &content)).await?;
        if durable {
            self.sync().await?;
        }
        Ok(())
    }

    /// Renames `source` over `dest`, creating `dest`'s directories.
    async fn rename(&self, source: &str, dest: &str) -> StorageResult<()> {
        let src = self.full_path(source)?;
        let dst = self.full_path(dest)?;
        let ops = self.ops.clone();
        let key = source.to_string();
        blocking(move || ops.rename(&src, &dst, &key)).await
    }

    /// A driver over `root`; the directory is created on first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_sync(root, false)
    }

    /// A driver whose durable writes each fsync their file and directory
    /// (`fsync_each`) rather than share group `syncfs` rounds: for a root
    /// on a filesystem shared with heavy writers (docs/storage.md).
    pub fn with_sync(root: impl Into<PathBuf>, fsync_each: bool) -> Self {
        let root = root.into();
        Self {
            group: GroupSync::new(root.clone()),
            ops: Ops { root, fsync_each },
        }
    }

    /// Validates `key` and maps it under the root. Validation refuses `.`,
    /// `..` and empty segments, so the result never leaves the root.
    fn full_path(&self, key: &str) -> StorageResult<PathBuf> {
        self.ops.full_path(key)
    }
}

/// Maps an error of an operation that reads `key`: anything meaning "no
/// object or directory there" becomes `NotFound`.
fn read_err(key: &str, e: io::Error) -> StorageError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => {
            StorageError::NotFound(key.to_string())
        }
        _ => StorageError::io(DRIVER, &e),
    }
}

/// A backend error; an I/O error (or errno) whose cause the client should
/// hear (a full disk, no descriptors left) keeps it (`Exhausted`).
fn backend<E: std::fmt::Display + 'static>(e: E) -> StorageError {
    let any: &dyn std::any::Any = &e;
    if let Some(io) = any.downcast_ref::<io::Error>() {
        return StorageError::io(DRIVER, io);
    }
    if let Some(errno) = any.downcast_ref::<rustix::io::Errno>() {
        return StorageError::io(DRIVER, &io::Error::from(*errno));
    }
    StorageError::backend(DRIVER, e)
}

/// Opens the object at `full` for reading from `offset`, returning the file
/// and its size. Errors: `NotFound` (also for a directory), `InvalidOffset`
/// when `offset` is past the end.
fn open_at(full: &Path, key: &str, offset: u64) -> StorageResult<(File, u64)> {
    let file = File::open(full).map_err(|e| read_err(key, e))?;
    let meta = file.metadata().map_err(backend)?;
    if meta.is_dir() {
        return Err(StorageError::NotFound(key.to_string()));
    }
    if offset > meta.len() {
        return Err(StorageError::InvalidOffset {
            path: key.to_string(),
            offset,
        });
    }
    Ok((file, meta.len()))
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T, F>(f: F) -> StorageResult<T>
where
    F: FnOnce() -> StorageResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(backend)?
}

/// Directories up to this size (`st_size`: one or a few blocks, some
/// hundred entries) are read inline on the async thread, as `get_content`
/// reads small files: the read costs less than a blocking-pool hand-off.
/// Larger ones are read in the blocking pool.
const INLINE_DIR_BYTES: u64 = 16 << 10;

/// The key names of the directory at `full` (key `key`), sorted: from the
/// listing cache when the directory is unchanged since it was read, else
/// read (and offered to the cache). Errors: `NotFound` when no directory is
/// there.
async fn sorted_names(full: PathBuf, key: &str) -> StorageResult<Arc<Names>> {
    let cache = list_cache::shared();
    // Taken before the stat: the cache trusts a listing only if the
    // directory had settled before this moment.
    let started = SystemTime::now();
    let meta = fs::metadata(&full).map_err(|e| read_err(key, e))?;
    if !meta.is_dir() {
        return Err(StorageError::NotFound(key.to_string()));
    }
    let stamp = Stamp::of(&meta);
    if let Some(names) = cache.get(&full, stamp) {
        return Ok(names);
    }
    let names = if meta.len() <= INLINE_DIR_BYTES {
        dir::read_sorted(&full).map_err(|e| read_err(key, e))?
    } else {
        let (dir, k) = (full.clone(), key.to_string());
        blocking(move || dir::read_sorted(&dir).map_err(|e| read_err(&k, e))).await?
    };
    let names = Arc::new(names);
    cache.insert(full, stamp, started, names.clone());
    Ok(names)
}

#[async_trait]
impl StorageDriver for FilesystemDriver {
    async fn check_ready(&self) -> StorageResult<()> {
        let root = self.ops.root.clone();
        tokio::task::spawn_blocking(move || check_root(&root, false))
            .await
            .map_err(backend)?
            .map_err(backend)
    }

    fn name(&self) -> &'static str {
        DRIVER
    }

    /// Read inline on the async thread, not through the blocking pool: this
    /// reads small objects (link files of ~71 bytes, manifests) that the
    /// page cache holds, where a read costs a few microseconds and the pool
    /// handoff several times that plus context switches (measured: manifest
    /// GET 88 -> 21 CPU-us per request, docs/performance.md). Large objects
    /// go through `reader`, which keeps to the blocking pool.
    async fn get_content(&self, path: &str) -> StorageResult<Bytes> {
        // Counts against the task's cooperative budget, so a loop of reads
        // (a GC scan of many links) still yields to other tasks.
        tokio::task::consume_budget().await;
        let full = self.full_path(path)?;
        fs::read(&full)
            .map(Bytes::from)
            .map_err(|e| read_err(path, e))
    }

    async fn put_content(&self, path: &str, content: Bytes) -> StorageResult<()> {
        self.put(path, content, true).await
    }

    async fn put_deferred(&self, path: &str, content: Bytes) -> StorageResult<()> {
        self.put(path, content, false).await
    }

    async fn reader(&self, path: &str, offset: u64) -> StorageResult<BoxReader> {
        let full = self.full_path(path)?;
        let key = path.to_string();
        let file = blocking(move || {
            let (mut file, _size) = open_at(&full, &key, offset)?;
            file.seek(SeekFrom::Start(offset)).map_err(backend)?;
            Ok(file)
        })
        .await?;
        // tokio's File already reads in blocking steps as large as the
        // caller's buffer: no extra buffer layer.
        Ok(Box::pin(tokio::fs::File::from_std(file)))
    }

    /// Opens the file and reads its first chunk in one blocking-pool trip,
    /// then reads ahead ([`read_stream::ReadAhead`]): reads overlap socket
    /// writes, and chunks are the read buffers themselves (no copy).
    async fn read_stream(&self, path: &str, offset: u64, len: u64) -> StorageResult<ByteStream> {
        let full = self.full_path(path)?;
        let key = path.to_string();
        let rt = tokio::runtime::Handle::try_current().map_err(backend)?;
        let (tx, rx) = ReadAhead::spare_channel();
        let home = tx.clone();
        let buf = read_stream::new_buffer(read_stream::chunk_len(len));
        let (file, first) = blocking(move || {
            let (file, size) = open_at(&full, &key, offset)?;
            let want = read_stream::chunk_len(len.min(size - offset));
            let first = if want == 0 {
                None
            } else {
                Some(read_stream::read_chunk(&file, buf, offset, want, home).map_err(backend)?)
            };
            Ok((file, first))
        })
        .await?;
        Ok(Box::pin(ReadAhead::new(
            file,
            rt,
            offset,
            len,
            first,
            (tx, rx),
        )))
    }

    /// Opens nothing yet: the file is opened in the blocking trip of the
    /// first write or of the finish ([`writer::Open`]). An append writer
    /// learns the size inline (one `statx`, as `stat`); only an object whose
    /// size is not a block multiple is opened at once, to read the partial
    /// block that direct writes must repeat.
    async fn writer(&self, path: &str, append: bool) -> StorageResult<Box<dyn FileWriter>> {
        let full = self.full_path(path)?;
        let key = path.to_string();
        let (group, ops) = (Arc::clone(&self.group), self.ops.clone());
        if !append {
            let open = Open::Replace {
                root: self.ops.root.clone(),
                dest: full,
            };
            let slot = Slot::Pending(open);
            return Ok(Box::new(FsWriter::new(
                key,
                slot,
                0,
                (0, Vec::new()),
                ops,
                group,
            )));
        }
        let claim = Claim::acquire(&full, path).await?;
        let len = claim.metadata()?.len();
        if len.is_multiple_of(ALIGN as u64) {
            let slot = Slot::Pending(Open::Append { path: full, len });
            let w = FsWriter::new(key, slot, len, (len, Vec::new()), ops, group);
            return Ok(Box::new(w.with_claim(claim)));
        }
        let k = key.clone();
        let (target, resume) = blocking(move || {
            let mut target = Target::append(full).map_err(|e| read_err(&k, e))?;
            let resume = target.resume_point().map_err(backend)?;
            Ok((target, resume))
        })
        .await?;
        let size = target.base_len();
        let slot = Slot::Ready(target);
        let w = FsWriter::new(key, slot, size, resume, ops, group);
        Ok(Box::new(w.with_claim(claim)))
    }

    /// Keys map to files under the root (validated as every key is).
    fn local_path(&self, path: &str) -> Option<PathBuf> {
        self.full_path(path).ok()
    }

    /// Inline on the async thread for the same reason as `get_content`: one
    /// `statx` of a cached inode costs less than the hand-off to the pool.
    async fn stat(&self, path: &str) -> StorageResult<FileInfo> {
        tokio::task::consume_budget().await;
        let full = self.full_path(path)?;
        let meta = fs::metadata(&full).map_err(|e| read_err(path, e))?;
        Ok(FileInfo {
            path: path.to_string(),
            size: if meta.is_dir() { 0 } else { meta.len() },
            modified: meta.modified().ok(),
            is_dir: meta.is_dir(),
        })
    }

    /// Sorted (lexical order), though the contract does not promise it.
    /// The stat and a small directory's read run inline (see
    /// `INLINE_DIR_BYTES`); large unchanged directories come from the
    /// listing cache (`list_cache.rs`).
    async fn list(&self, path: &str) -> StorageResult<Vec<String>> {
        // A catalog page lists hundreds of directories inline: yield now
        // and then, as `get_content` does.
        tokio::task::consume_budget().await;
        let full = self.full_path(path)?;
        let names = sorted_names(full, path).await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names.iter() {
            let mut key = String::with_capacity(path.len() + 1 + name.len());
            key.push_str(path);
            key.push('/');
            key.push_str(name);
            out.push(key);
        }
        Ok(out)
    }

    /// Stops at the first entry, inline: these are small directories
    /// (a repository's manifest revisions) asked about once per catalog
    /// entry.
    async fn has_children(&self, path: &str) -> StorageResult<bool> {
        tokio::task::consume_budget().await;
        let full = self.full_path(path)?;
        match dir::has_key_entry(&full) {
            Ok(found) => Ok(found),
            Err(e) => match read_err(path, e) {
                StorageError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn move_object(&self, source: &str, dest: &str) -> StorageResult<()> {
        self.rename(source, dest).await?;
        self.sync().await
    }

    async fn move_deferred(&self, source: &str, dest: &str) -> StorageResult<()> {
        self.rename(source, dest).await
    }

    async fn sync(&self) -> StorageResult<()> {
        if self.ops.fsync_each {
            return Ok(());
        }
        self.group.sync().await.map_err(backend)
    }

    async fn delete(&self, path: &str) -> StorageResult<()> {
        let full = self.full_path(path)?;
        let key = path.to_string();
        let ops = self.ops.clone();
        blocking(move || ops.delete(&full, &key)).await
    }

    /// The whole batch in one blocking-pool trip.
    async fn apply_deferred(&self, writes: Vec<DeferredWrite>) -> StorageResult<()> {
        // Every key is validated before anything is touched.
        let steps = self.ops.steps(writes)?;
        let ops = self.ops.clone();
        blocking(move || ops.run(steps)).await
    }

    async fn walk(&self, path: &str) -> StorageResult<Vec<String>> {
        let full = self.full_path(path)?;
        let key = path.to_string();
        blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![(full, key.clone())];
            let mut first = true;
            while let Some((dir, dir_key)) = stack.pop() {
                let entries = match fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    // The start must exist; a subdirectory deleted while we
                    // walk simply has nothing left in it.
                    Err(e) if !first && e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(read_err(&key, e)),
                };
                first = false;
                for entry in entries {
                    let entry = entry.map_err(backend)?;
                    let Some(name) = entry
                        .file_name()
                        .to_str()
                        .filter(|n| is_key_name(n))
                        .map(str::to_owned)
                    else {
                        continue;
                    };
                    let mut ft = entry.file_type().map_err(backend)?;
                    if ft.is_symlink() {
                        match fs::metadata(entry.path()) {
                            Ok(m) => ft = m.file_type(),
                            Err(_) => continue, // dangling link: no object
                        }
                    }
                    let child_key = format!("{dir_key}/{name}");
                    if ft.is_dir() {
                        stack.push((entry.path(), child_key));
                    } else {
                        out.push(child_key);
                    }
                }
            }
            out.sort_unstable();
            Ok(out)
        })
        .await
    }
}
