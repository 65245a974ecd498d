//! The file behind a write: a temp file renamed over its key, or an object
//! appended in place, and the duty to undo it when the write is abandoned.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::aligned::ALIGN;
use super::TMP_PREFIX;

/// Makes a directory entry (a rename or a new file) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .ok_or_else(|| io::Error::other(format!("{} has no parent", path.display())))
}

/// Creates `dir` and its missing ancestors below `root`, returning the
/// directories this call created, deepest last, so an aborted write can
/// remove exactly those and leave no trace. One `statx` when `dir` exists.
pub(super) fn ensure_dir(root: &Path, dir: &Path) -> io::Result<Vec<PathBuf>> {
    if fs::symlink_metadata(dir).is_ok() {
        return Ok(Vec::new());
    }
    create_missing(root, dir)
}

/// [`ensure_dir`] for a `dir` known to be missing: `mkdir` from the
/// deepest level up until one succeeds or exists, then back down. A new
/// directory under an existing parent costs one `mkdir`.
pub(super) fn create_missing(root: &Path, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let mut missing = Vec::new();
    let mut cur = dir;
    while cur != root && cur.starts_with(root) {
        match fs::create_dir(cur) {
            Ok(()) => {
                created.push(cur.to_path_buf());
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(cur);
                cur = parent(cur)?;
            }
            Err(e) => return Err(e),
        }
    }
    if cur == root {
        fs::create_dir_all(root)?;
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => created.push(d.to_path_buf()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                remove_dirs(&created);
                return Err(e);
            }
        }
    }
    Ok(created)
}

/// A temp file name no other writer picks: a random prefix drawn once per
/// process and a counter (no `getrandom` per write); `create_new` still
/// guards against a clash with another host on shared storage.
fn temp_name() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{TMP_PREFIX}{prefix}-{n:x}")
}

/// Removes directories made by [`ensure_dir`], deepest first; stops quietly
/// at any that is no longer empty (another writer is using it).
pub(super) fn remove_dirs(created: &[PathBuf]) {
    for d in created.iter().rev() {
        if fs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// How a writer's file relates to its key.
enum Mode {
    /// Writing a temp file that replaces `dest` on commit or close.
    Replace {
        temp: PathBuf,
        dest: PathBuf,
        created_dirs: Vec<PathBuf>,
    },
    /// Appending in place to `path`, which held `orig_len` bytes when opened.
    Append { path: PathBuf, orig_len: u64 },
}

/// Opens `path` for `O_DIRECT` writes; `None` where unsupported (tmpfs on
/// older kernels, some network filesystems), which keeps writes buffered.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    let flags = rustix::fs::OFlags::DIRECT.bits() as i32;
    OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

/// Whether bulk writes go through an `O_DIRECT` descriptor.
enum Direct {
    /// Not asked for, or the filesystem refused it.
    Off,
    /// Wanted; opened on the first bulk write (an empty object never pays).
    Lazy,
    Open(File),
}

/// The open file of a writer and the duty to undo it. Unless marked `done`,
/// dropping it removes the temp file (and directories it created) or
/// truncates an appended file back to where this writer started.
pub(super) struct Target {
    pub(super) file: File,
    /// A second descriptor on the same file with `O_DIRECT`, for aligned
    /// bulk writes that skip the page cache (no copy into it, no writeback
    /// later).
    direct: Direct,
    mode: Mode,
    done: bool,
}

impl Target {
    /// Opens a temp file in `dest`'s directory, creating directories as
    /// needed; with `direct`, also an `O_DIRECT` descriptor for bulk writes.
    pub(super) fn replace(root: &Path, dest: PathBuf, direct: bool) -> io::Result<Self> {
        let dir = parent(&dest)?.to_path_buf();
        let mut created_dirs = Vec::new();
        let mut attempt = 0;
        loop {
            let temp = dir.join(temp_name());
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(Self {
                        file,
                        direct: if direct { Direct::Lazy } else { Direct::Off },
                        mode: Mode::Replace {
                            temp,
                            dest,
                            created_dirs,
                        },
                        done: false,
                    })
                }
                // Another process's temp file: pick another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 3 => attempt += 1,
                // The directory is missing (new, or removed by a concurrent
                // aborted writer): create it and try again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => {
                    attempt += 1;
                    match create_missing(root, &dir) {
                        Ok(created) => created_dirs.extend(created),
                        Err(e) => {
                            remove_dirs(&created_dirs);
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    remove_dirs(&created_dirs);
                    return Err(e);
                }
            }
        }
    }

    /// Opens an existing object to continue it, with an `O_DIRECT`
    /// descriptor too when the filesystem allows (opened now: the caller
    /// needs to know whether to align its first write, `resume_point`).
    pub(super) fn append(path: PathBuf) -> io::Result<Self> {
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        let orig_len = file.seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            direct: open_direct(&path).map_or(Direct::Off, Direct::Open),
            mode: Mode::Append { path, orig_len },
            done: false,
        })
    }

    /// Opens an existing object that held `len` bytes (a block multiple)
    /// when its writer was made, to continue it; direct I/O is opened on
    /// the first bulk write. Errors if the object changed size since.
    pub(super) fn append_at(path: PathBuf, len: u64) -> io::Result<Self> {
        let mut file = OpenOptions::new().write(true).open(&path)?;
        let orig_len = file.seek(SeekFrom::End(0))?;
        if orig_len != len {
            return Err(io::Error::other(format!(
                "{} changed size while a writer was opening it",
                path.display()
            )));
        }
        Ok(Self {
            file,
            direct: Direct::Lazy,
            mode: Mode::Append { path, orig_len },
            done: false,
        })
    }

    /// Where a writer continuing this object starts its buffer: the block
    /// boundary at or before the end, with the bytes already stored between
    /// that boundary and the end (rewritten unchanged), so that every bulk
    /// write stays block-aligned for direct I/O.
    pub(super) fn resume_point(&mut self) -> io::Result<(u64, Vec<u8>)> {
        let end = self.base_len();
        if !matches!(self.direct, Direct::Open(_)) {
            return Ok((end, Vec::new()));
        }
        let start = end - end % ALIGN as u64;
        let mut head = vec![0u8; (end - start) as usize];
        self.file.seek(SeekFrom::Start(start))?;
        self.file.read_exact(&mut head)?;
        Ok((start, head))
    }

    /// Writes `buf` at `offset`. Bulk (`may_direct`) writes whose memory,
    /// offset and length are block-aligned go through the direct descriptor;
    /// if the filesystem rejects one (EINVAL: other alignment rules), direct
    /// I/O is dropped for this file and the write is redone buffered, which
    /// is safe because positional writes are idempotent.
    pub(super) fn write_at(&mut self, buf: &[u8], offset: u64, may_direct: bool) -> io::Result<()> {
        let aligned = offset.is_multiple_of(ALIGN as u64)
            && buf.len().is_multiple_of(ALIGN)
            && (buf.as_ptr() as usize).is_multiple_of(ALIGN);
        if may_direct && aligned && !buf.is_empty() {
            if matches!(self.direct, Direct::Lazy) {
                self.direct = open_direct(self.path()).map_or(Direct::Off, Direct::Open);
            }
            if let Direct::Open(direct) = &self.direct {
                match direct.write_all_at(buf, offset) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                        tracing::debug!(error = %e, "direct write refused; writing through the page cache");
                        self.direct = Direct::Off;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.file.write_all_at(buf, offset)
    }

    /// The file being written (the temp file when replacing).
    fn path(&self) -> &Path {
        match &self.mode {
            Mode::Replace { temp, .. } => temp,
            Mode::Append { path, .. } => path,
        }
    }

    /// Size of the object when this writer opened it.
    pub(super) fn base_len(&self) -> u64 {
        match self.mode {
            Mode::Replace { .. } => 0,
            Mode::Append { orig_len, .. } => orig_len,
        }
    }

    /// Makes the content visible at the key. With `fsync` (the driver's
    /// per-file mode) also durable: the file, then the directory entry;
    /// otherwise the driver's group sync flushes it (`group_sync.rs`).
    pub(super) fn finish(mut self, fsync: bool) -> io::Result<()> {
        if fsync {
            self.file.sync_all()?;
        }
        if let Mode::Replace { temp, dest, .. } = &self.mode {
            fs::rename(temp, dest)?;
        }
        self.done = true;
        if fsync {
            sync_dir(parent(self.path_after_finish())?)?;
        }
        Ok(())
    }

    /// Where the content is once finished.
    fn path_after_finish(&self) -> &Path {
        match &self.mode {
            Mode::Replace { dest, .. } => dest,
            Mode::Append { path, .. } => path,
        }
    }

    /// Discards this writer's work; for an append writer, the whole object.
    pub(super) fn cancel(mut self) -> io::Result<()> {
        if let Mode::Append { path, .. } = &self.mode {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.done = true;
        }
        // A replace writer's temp file is removed by `Drop`.
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Best effort: there is no one to report a failure to.
        match &self.mode {
            Mode::Replace {
                temp, created_dirs, ..
            } => {
                let _ = fs::remove_file(temp);
                remove_dirs(created_dirs);
            }
            Mode::Append { orig_len, .. } => {
                let _ = self.file.set_len(*orig_len);
            }
        }
    }
}
