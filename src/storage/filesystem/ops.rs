//! The blocking file operations behind the driver's write calls. Each call
//! runs one of them in the blocking pool; `apply_deferred` runs a whole
//! batch of them in one trip.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::target::{ensure_dir, parent, remove_dirs, sync_dir, Target};
use super::{backend, read_err};
use crate::storage::{validate_path, DeferredWrite, StorageError, StorageResult};

/// A [`DeferredWrite`] with its keys mapped to paths.
pub(super) enum Step {
    Put(PathBuf, Bytes),
    /// From, to, and the source key for errors.
    Move(PathBuf, PathBuf, String),
    Delete(PathBuf, String),
}

/// Where the driver's files live and how it makes them durable.
#[derive(Debug, Clone)]
pub(super) struct Ops {
    pub(super) root: PathBuf,
    /// Per-file mode: fsync each file and directory entry at once.
    pub(super) fsync_each: bool,
}

impl Ops {
    /// Validates `key` and maps it under the root. Validation refuses `.`,
    /// `..` and empty segments, so the result never leaves the root.
    pub(super) fn full_path(&self, key: &str) -> StorageResult<PathBuf> {
        validate_path(key)?;
        Ok(self.root.join(&key[1..]))
    }

    /// Maps a batch's keys to paths, validating all of them first.
    pub(super) fn steps(&self, writes: Vec<DeferredWrite>) -> StorageResult<Vec<Step>> {
        writes
            .into_iter()
            .map(|write| {
                Ok(match write {
                    DeferredWrite::Put { key, content } => {
                        Step::Put(self.full_path(&key)?, content)
                    }
                    DeferredWrite::Move { from, to } => {
                        Step::Move(self.full_path(&from)?, self.full_path(&to)?, from)
                    }
                    DeferredWrite::DeleteIfExists { key } => {
                        Step::Delete(self.full_path(&key)?, key)
                    }
                })
            })
            .collect()
    }

    /// Runs a batch in order, stopping at the first error (blocking).
    pub(super) fn run(&self, steps: Vec<Step>) -> StorageResult<()> {
        for step in steps {
            match step {
                Step::Put(full, content) => self.put(full, &content)?,
                Step::Move(src, dst, key) => self.rename(&src, &dst, &key)?,
                Step::Delete(full, key) => match self.delete(&full, &key) {
                    Err(e) if e.is_not_found() => {}
                    other => other?,
                },
            }
        }
        Ok(())
    }

    /// Atomic replace of the object at `full`: a temp file renamed over it.
    pub(super) fn put(&self, full: PathBuf, content: &[u8]) -> StorageResult<()> {
        let mut target = Target::replace(&self.root, full, false).map_err(backend)?;
        target.file.write_all(content).map_err(backend)?;
        target.finish(self.fsync_each).map_err(backend)
    }

    /// Moves the object at `src` (key `key`) to `dst`, creating `dst`'s
    /// directories. When the object is alone in its directory and `dst`
    /// names a file of the same name in a directory that does not exist yet
    /// (an upload's `data` becoming a blob's `data`), the directory itself
    /// is renamed: the same result for every key, but no directory inode is
    /// created for `dst` nor freed for `src`. On ext4 without a journal,
    /// inodes freed in the last seconds slow down every allocation in their
    /// group (`recently_deleted`), so a push storm that freed two inodes per
    /// blob grew slower as it went.
    pub(super) fn rename(&self, src: &Path, dst: &Path, key: &str) -> StorageResult<()> {
        let meta = fs::metadata(src).map_err(|e| read_err(key, e))?;
        if meta.is_dir() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        let dir = parent(dst).map_err(backend)?;
        if self.rename_dir_of(src, dst).map_err(backend)? {
            return Ok(());
        }
        let created = ensure_dir(&self.root, dir).map_err(backend)?;
        if let Err(e) = fs::rename(src, dst) {
            remove_dirs(&created);
            return Err(read_err(key, e));
        }
        if self.fsync_each {
            sync_dir(dir).map_err(backend)?;
        }
        Ok(())
    }

    /// The directory move of [`Ops::rename`], when it applies; false when
    /// it does not (the caller moves the file instead).
    fn rename_dir_of(&self, src: &Path, dst: &Path) -> io::Result<bool> {
        let (Some(src_dir), Some(dst_dir)) = (src.parent(), dst.parent()) else {
            return Ok(false);
        };
        if src.file_name() != dst.file_name()
            || src_dir == self.root
            || dst_dir == self.root
            || dst_dir.starts_with(src_dir)
            || src_dir.starts_with(dst_dir)
            || fs::symlink_metadata(dst_dir).is_ok()
            || !only_entry(src_dir, src)?
        {
            return Ok(false);
        }
        let dst_parent = parent(dst_dir)?;
        let created = ensure_dir(&self.root, dst_parent)?;
        match fs::rename(src_dir, dst_dir) {
            Ok(()) => {
                if self.fsync_each {
                    sync_dir(dst_parent)?;
                }
                Ok(true)
            }
            // Lost a race: `dst_dir` appeared (a concurrent move of the
            // same content) or `src_dir` changed. Move the file instead.
            Err(_) => {
                remove_dirs(&created);
                Ok(false)
            }
        }
    }

    /// Deletes the object or directory tree at `full`. Errors: `NotFound`.
    pub(super) fn delete(&self, full: &Path, key: &str) -> StorageResult<()> {
        let meta = fs::symlink_metadata(full).map_err(|e| read_err(key, e))?;
        let res = if meta.is_dir() {
            fs::remove_dir_all(full)
        } else {
            fs::remove_file(full)
        };
        res.map_err(|e| read_err(key, e))
    }
}

/// True when `file` is the only entry of `dir` (not counting `.`/`..`).
fn only_entry(dir: &Path, file: &Path) -> io::Result<bool> {
    let mut seen = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        seen += 1;
        if seen > 1 || Some(entry.file_name().as_os_str()) != file.file_name() {
            return Ok(false);
        }
    }
    Ok(seen == 1)
}
