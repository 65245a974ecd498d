//! Edits of htpasswd files for `berth htpasswd`: atomic rewrites that keep
//! other lines, comments, mode and owner.

use super::*;

/// Refuses names that would not read back as the same single entry.
fn check_user(user: &str) -> Result<(), HtpasswdError> {
    let bad = |reason| {
        Err(HtpasswdError::InvalidUser {
            user: user.to_string(),
            reason,
        })
    };
    if user.is_empty() {
        bad("empty")
    } else if user.contains(':') {
        bad("contains ':', which separates user and hash")
    } else if user.contains(['\n', '\r']) {
        bad("contains a line break")
    } else if user.chars().any(char::is_control) {
        bad("contains a control character")
    } else if user.starts_with('#') {
        bad("starts with '#', which would make the line a comment")
    } else if user.trim() != user {
        bad("starts or ends with whitespace, which is trimmed when the file is read")
    } else if user.len() > MAX_USER_BYTES {
        bad("longer than 255 bytes")
    } else {
        Ok(())
    }
}

/// The user named on a raw line, if it is an entry line.
fn line_user(raw: &str) -> Option<&str> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    line.split_once(':').map(|(u, _)| u)
}

/// The file's text, or None when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, HtpasswdError> {
    match read_file(path) {
        Ok(text) => Ok(Some(text)),
        Err(HtpasswdError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Adds `user` with a bcrypt (`$2y$`, as Apache writes) hash of `password`
/// at `cost`, replacing the user's existing entry in place. Other lines and
/// comments are kept byte for byte; the file is created (mode 0600) when
/// missing. The write is atomic (temp file + rename).
pub fn add_user(path: &Path, user: &str, password: &str, cost: u32) -> Result<(), HtpasswdError> {
    check_user(user)?;
    if !(MIN_COST..=MAX_COST).contains(&cost) {
        return Err(HtpasswdError::InvalidCost(cost));
    }
    if password.is_empty() {
        return Err(HtpasswdError::InvalidPassword("empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(HtpasswdError::InvalidPassword(
            "longer than 72 bytes, the most bcrypt uses",
        ));
    }
    let hash = bcrypt::hash_with_result(password, cost)?.format_for_version(bcrypt::Version::TwoY);
    let entry = format!("{user}:{hash}\n");

    let target = resolve(path);
    let old = read_optional(&target)?.unwrap_or_default();
    let mut out = String::with_capacity(old.len() + entry.len());
    let mut written = false;
    for raw in old.split_inclusive('\n') {
        if line_user(raw) == Some(user) {
            if !written {
                out.push_str(&entry);
                written = true;
            }
            // Later duplicates of the same user are dropped.
        } else {
            out.push_str(raw);
        }
    }
    if !written {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&entry);
    }
    write_atomic(&target, out.as_bytes())
}

/// Removes `user`'s entries; false (and the file untouched) when the user
/// is not there. A missing file is an error.
pub fn delete_user(path: &Path, user: &str) -> Result<bool, HtpasswdError> {
    let target = resolve(path);
    let old = read_file(&target)?;
    let mut out = String::with_capacity(old.len());
    let mut found = false;
    for raw in old.split_inclusive('\n') {
        if line_user(raw) == Some(user) {
            found = true;
        } else {
            out.push_str(raw);
        }
    }
    if found {
        write_atomic(&target, out.as_bytes())?;
    }
    Ok(found)
}

/// The hash of `user` (first entry, as Apache's `htpasswd -v`), or None when
/// the user is not in the file. Only that user's line must be bcrypt, so
/// this works on a file being migrated from other hash kinds.
pub fn lookup_user(path: &Path, user: &str) -> Result<Option<String>, HtpasswdError> {
    let text = read_file(path)?;
    for line in entry_lines(path, &text) {
        let Ok(line) = line else { continue };
        if line.user != user {
            continue;
        }
        if let HashKind::Other(kind) = hash_kind(line.hash) {
            return Err(HtpasswdError::UnsupportedHash {
                path: path.to_path_buf(),
                line: line.number,
                user: user.to_string(),
                kind,
            });
        }
        if let Some(reason) = bcrypt_shape_error(line.hash) {
            return Err(HtpasswdError::Malformed {
                path: path.to_path_buf(),
                line: line.number,
                reason: format!("user {user:?}: {reason}"),
            });
        }
        return Ok(Some(line.hash.to_string()));
    }
    Ok(None)
}

/// True when `user` is in the file with this password; false when the
/// password is wrong or the user absent. Blocking (runs bcrypt).
pub fn verify_user(path: &Path, user: &str, password: &str) -> Result<bool, HtpasswdError> {
    Ok(match lookup_user(path, user)? {
        Some(hash) => bcrypt::verify(password, &hash)?,
        None => false,
    })
}

/// Follows a symlink to the file it names (e.g. a Kubernetes secret mount),
/// so an edit replaces that file rather than the link.
fn resolve(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Writes `data` to a temporary file beside `path`, fsyncs it, renames it
/// over `path` and fsyncs the directory: readers (a running berth) see the
/// old or the new file, never a half-written one. A new file gets mode 0600;
/// an existing file keeps its mode (and owner, when permitted).
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), HtpasswdError> {
    let io_err = |action, source| HtpasswdError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "htpasswd".into());
    let existing = fs::metadata(path).ok();
    let tmp = dir.join(format!(
        ".{name}.berth-tmp.{}.{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));

    let result = (|| -> io::Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let mode = existing
                .as_ref()
                .map_or(0o600, |m| m.permissions().mode() & 0o7777);
            opts.mode(mode);
        }
        let mut file = opts.open(&tmp)?;
        #[cfg(unix)]
        if let Some(meta) = &existing {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            // The umask may have narrowed the mode given to open.
            file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            // Best effort: keep the owner when we may (e.g. as root).
            let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        }
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("writing", e));
    }
    Ok(())
}
