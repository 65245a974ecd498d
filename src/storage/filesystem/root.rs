//! Whether a filesystem root can hold a registry: it is a directory (or can
//! be created as one) and, for a writable registry, this process may write
//! there. Checked at start (`serve`, `config check`) and by `/healthz`.

use std::io;
use std::path::Path;

/// Checks `root`: when it exists it must be a directory, else its nearest
/// existing ancestor must be a directory it can be created in. With
/// `need_write`, that directory must be writable by this process. The
/// error says what is wrong, naming the path.
pub fn check_root(root: &Path, need_write: bool) -> Result<(), String> {
    let mut dir = root;
    loop {
        let probe = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        match std::fs::metadata(probe) {
            Ok(m) if m.is_dir() => {
                if need_write {
                    writable(probe).map_err(|e| {
                        if dir == root {
                            format!("{} is not writable by berth: {e}", root.display())
                        } else {
                            format!(
                                "{} cannot be created: {} is not writable by berth: {e}",
                                root.display(),
                                probe.display()
                            )
                        }
                    })?;
                }
                return Ok(());
            }
            Ok(_) if dir == root => {
                return Err(format!(
                    "{} is not a directory (it is a file)",
                    root.display()
                ))
            }
            Ok(_) => {
                return Err(format!(
                    "{} cannot be created: {} is not a directory",
                    root.display(),
                    probe.display()
                ))
            }
            // Missing, or below a file: look at the parent.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                match dir.parent() {
                    Some(parent) => dir = parent,
                    None => return Err(format!("{}: {e}", root.display())),
                }
            }
            Err(e) => return Err(format!("{}: {e}", probe.display())),
        }
    }
}

/// `access(W_OK|X_OK)`: whether this process may create entries in `dir`
/// (false on a read-only mount even for root).
fn writable(dir: &Path) -> io::Result<()> {
    use rustix::fs::{access, Access};
    access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(io::Error::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_refused_as_root_or_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = check_root(&file, false).unwrap_err();
        assert!(err.ends_with("is not a directory (it is a file)"), "{err}");
        let err = check_root(&file.join("a/b"), true).unwrap_err();
        assert!(err.contains("cannot be created"), "{err}");
        check_root(dir.path(), true).unwrap();
        check_root(&dir.path().join("new/deeper"), true).unwrap();
        check_root(Path::new("relative-not-there"), true).unwrap();
    }
}
