//! A spool file placed in storage (the filesystem driver's upload data
//! file): created with whichever of its directories were missing, and
//! removed with them when the fetch stores nothing, so a failed or refused
//! fetch of a name nobody pushed leaves no directories behind.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The new file at `path` (read and write) and the directories created for
/// it, deepest first. A directory removed meanwhile by another fetch's
/// clean-up is created again (a few times, then the error stands).
pub(super) fn create(path: &Path) -> io::Result<(File, Vec<PathBuf>)> {
    let mut created = Vec::new();
    let mut attempt = 0;
    loop {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(file) => return Ok((file, created)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => {
                attempt += 1;
                let dir = path.parent().ok_or(e)?;
                created.extend(create_missing(dir)?);
            }
            Err(e) => {
                remove_empty(&created);
                return Err(e);
            }
        }
    }
}

/// Creates `dir` and its missing ancestors; returns those it created,
/// deepest first.
fn create_missing(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(missing)
}

/// Removes `path` and then `dirs` (deepest first) while they are empty;
/// best effort (a directory another fetch uses stays).
pub(super) fn discard(path: &Path, dirs: &[PathBuf]) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot remove a failed fetch's spool: {e}")
        }
    }
    remove_empty(dirs);
}

/// Removes each directory of `dirs` in order until one is not empty.
fn remove_empty(dirs: &[PathBuf]) {
    for d in dirs {
        if fs::remove_dir(d).is_err() {
            break;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn created_directories_go_with_the_file_unless_shared() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("repo/_uploads/a/data");
        let b = root.path().join("repo/_uploads/b/data");
        let (_fa, dirs_a) = create(&a).unwrap();
        assert_eq!(dirs_a.len(), 3, "repo, _uploads, a: {dirs_a:?}");
        let (_fb, dirs_b) = create(&b).unwrap();
        assert_eq!(dirs_b, vec![root.path().join("repo/_uploads/b")]);
        // a's clean-up stops at the directory b still uses.
        discard(&a, &dirs_a);
        assert!(!a.parent().unwrap().exists());
        assert!(b.exists());
        discard(&b, &dirs_b);
        assert!(root.path().join("repo/_uploads").exists());
        // Nothing was pre-existing but the root: a lone fetch leaves nothing.
        let c = root.path().join("other/_uploads/c/data");
        let (_fc, dirs_c) = create(&c).unwrap();
        discard(&c, &dirs_c);
        assert!(!root.path().join("other").exists());
        assert!(root.path().exists());
    }
}
