//! Apache htpasswd files of bcrypt entries: the user store of `auth.htpasswd`
//! (and of the built-in token issuer), and the edits behind `berth htpasswd`.
//!
//! The format is Apache's: one `user:hash` per line, blank lines and `#`
//! comments allowed, lines trimmed of surrounding whitespace (as distribution
//! does). Only bcrypt hashes (`$2y$`, `$2a$`, `$2b$`) are accepted: the other
//! kinds Apache can write (SHA-1, MD5, crypt, plain text) are weak, and
//! distribution cannot verify them either, so berth refuses them when the
//! file is loaded instead of failing every login for that user later.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// How often [`HtpasswdFile::verify`] looks at the file for changes.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Default bcrypt cost of `berth htpasswd add`. Apache's `htpasswd -B`
/// defaults to 5, which is cheap to brute-force today; 10 costs roughly
/// 50-100 ms per login on a current server core.
pub const DEFAULT_COST: u32 = 10;

/// Lowest bcrypt cost (bcrypt's own bound).
pub const MIN_COST: u32 = 4;
/// Highest bcrypt cost (bcrypt's own bound).
pub const MAX_COST: u32 = 31;

/// bcrypt uses at most this many bytes of a password; longer ones are
/// refused by [`add_user`] rather than silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Longest user name [`add_user`] writes (Apache's limit).
pub const MAX_USER_BYTES: usize = 255;

/// Errors loading or editing a file: message names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// The file does not exist (berth never creates one behind your back).
    #[error(
        "htpasswd file {} does not exist; create it with `berth htpasswd add {} USER`",
        path.display(), path.display()
    )]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing the file failed.
    #[error("{action} htpasswd file {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line is not `user:hash`, or its bcrypt hash is damaged.
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never quotes the hash: it may be a plain password).
        reason: String,
    },
    /// An entry uses a hash kind other than bcrypt.
    #[error(
        "{}:{line}: user {user:?} has a {kind} password hash; berth accepts only bcrypt \
         entries ($2y$, $2a$, $2b$): re-create this user with `htpasswd -B` or \
         `berth htpasswd add {} {user}`",
        path.display(), path.display()
    )]
    UnsupportedHash {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The user of that line.
        user: String,
        /// The kind found, e.g. "SHA-1 ({SHA})".
        kind: &'static str,
    },
    /// The same user appears twice, so which password counts is ambiguous
    /// (Apache takes the first line, distribution the last).
    #[error(
        "{}:{line}: user {user:?} is already defined on line {first_line}; remove one of the two",
        path.display()
    )]
    DuplicateUser {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the second entry.
        line: usize,
        /// First line defining the user.
        first_line: usize,
        /// The user.
        user: String,
    },
    /// A user name `add_user` cannot write.
    #[error("invalid user name {user:?}: {reason}")]
    InvalidUser {
        /// The name.
        user: String,
        /// Why.
        reason: &'static str,
    },
    /// A password `add_user` cannot hash faithfully.
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    /// A bcrypt cost outside 4..=31.
    #[error("bcrypt cost {0} is out of range ({MIN_COST}..={MAX_COST})")]
    InvalidCost(u32),
    /// bcrypt itself failed (e.g. no OS randomness for the salt).
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

// ---------------------------------------------------------------- parsing

/// The hash kinds Apache's `htpasswd` can write, as recognised from a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashKind {
    Bcrypt,
    Other(&'static str),
}

fn hash_kind(hash: &str) -> HashKind {
    if ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
        HashKind::Bcrypt
    } else if hash.starts_with("$2x$") {
        HashKind::Other("bcrypt $2x$ (the pre-2011 variant with a known bug)")
    } else if hash.starts_with("{SHA}") {
        HashKind::Other("SHA-1 ({SHA})")
    } else if hash.starts_with("$apr1$") {
        HashKind::Other("MD5 ($apr1$)")
    } else if hash.starts_with("$1$") {
        HashKind::Other("MD5-crypt ($1$)")
    } else if hash.starts_with("$5$") {
        HashKind::Other("SHA-256-crypt ($5$)")
    } else if hash.starts_with("$6$") {
        HashKind::Other("SHA-512-crypt ($6$)")
    } else if hash.len() == 13 && hash.bytes().all(is_crypt_char) {
        HashKind::Other("crypt (DES)")
    } else {
        HashKind::Other("plain text (or unknown)")
    }
}

/// The alphabet of crypt and bcrypt's base64.
fn is_crypt_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// Checks the shape of a bcrypt hash (`$2y$NN$` + 53 base64 characters,
/// cost in range) without running bcrypt, so loading stays cheap.
fn bcrypt_shape_error(hash: &str) -> Option<String> {
    let b = hash.as_bytes();
    if b.len() != 60 || b[3] != b'$' || b[6] != b'$' {
        return Some("bcrypt hash is malformed (expected 60 characters: $2y$NN$ + 53)".into());
    }
    let cost = match std::str::from_utf8(&b[4..6])
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
    {
        Some(c) => c,
        None => return Some("bcrypt hash is malformed (cost is not a number)".into()),
    };
    if !(MIN_COST..=MAX_COST).contains(&cost) {
        return Some(format!(
            "bcrypt hash has cost {cost}, outside {MIN_COST}..={MAX_COST}"
        ));
    }
    if !b[7..].iter().copied().all(is_crypt_char) {
        return Some("bcrypt hash is malformed (bad character in salt or hash)".into());
    }
    None
}

/// One meaningful line: `user:hash`.
struct Line<'a> {
    number: usize,
    user: &'a str,
    hash: &'a str,
}

/// The `user:hash` lines of `text`, skipping blank lines and comments;
/// a line without `:` or with an empty user is an error.
fn entry_lines<'a>(
    path: &'a Path,
    text: &'a str,
) -> impl Iterator<Item = Result<Line<'a>, HtpasswdError>> + 'a {
    text.lines().enumerate().filter_map(move |(i, raw)| {
        let number = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let malformed = |reason: &str| HtpasswdError::Malformed {
            path: path.to_path_buf(),
            line: number,
            reason: reason.to_string(),
        };
        Some(match line.split_once(':') {
            None => Err(malformed("expected user:hash (no ':' found)")),
            Some(("", _)) => Err(malformed("empty user name")),
            Some((user, hash)) => Ok(Line { number, user, hash }),
        })
    })
}

/// The users of a loaded file and what unknown users are checked against.
#[derive(Debug)]
struct Entries {
    hashes: HashMap<String, String>,
    /// A well-formed bcrypt hash nobody's password matches, at the file's
    /// most common cost, so an unknown user costs as much as a known one.
    dummy: String,
}

/// A bcrypt hash (of a random string nobody knows) whose salt and digest are
/// valid base64; its cost digits are replaced to build [`Entries::dummy`].
const DUMMY_HASH_TAIL: &str = "7jZBfqkp/c2Lx4/FTlVyKuPc63oyUP81pv7wND0cHHGq6YFQk5t3O";

fn dummy_hash(cost: u32) -> String {
    format!("$2y${cost:02}${DUMMY_HASH_TAIL}")
}

/// Parses a whole file strictly: every entry bcrypt, no duplicates.
fn parse(path: &Path, text: &str) -> Result<Entries, HtpasswdError> {
    let mut hashes = HashMap::new();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    let mut costs: HashMap<u32, usize> = HashMap::new();
    for line in entry_lines(path, text) {
        let Line { number, user, hash } = line?;
        match hash_kind(hash) {
            HashKind::Other(kind) => {
                return Err(HtpasswdError::UnsupportedHash {
                    path: path.to_path_buf(),
                    line: number,
                    user: user.to_string(),
                    kind,
                })
            }
            HashKind::Bcrypt => {
                if let Some(reason) = bcrypt_shape_error(hash) {
                    return Err(HtpasswdError::Malformed {
                        path: path.to_path_buf(),
                        line: number,
                        reason: format!("user {user:?}: {reason}"),
                    });
                }
            }
        }
        if let Some(&first) = first_line.get(user) {
            return Err(HtpasswdError::DuplicateUser {
                path: path.to_path_buf(),
                line: number,
                first_line: first,
                user: user.to_string(),
            });
        }
        first_line.insert(user, number);
        if let Some(cost) = hash.get(4..6).and_then(|c| c.parse().ok()) {
            *costs.entry(cost).or_default() += 1;
        }
        hashes.insert(user.to_string(), hash.to_string());
    }
    let cost = costs
        .into_iter()
        .max_by_key(|&(cost, n)| (n, cost))
        .map_or(DEFAULT_COST, |(cost, _)| cost);
    Ok(Entries {
        hashes,
        dummy: dummy_hash(cost),
    })
}

fn read_file(path: &Path) -> Result<String, HtpasswdError> {
    fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => HtpasswdError::NotFound {
            path: path.to_path_buf(),
        },
        _ => HtpasswdError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source: e,
        },
    })
}

// ---------------------------------------------------------------- the live file

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    mtime: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// `None` when the file cannot be stat'ed (e.g. removed).
fn signature(path: &Path) -> Option<Signature> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Signature {
        mtime: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

#[derive(Debug)]
struct State {
    entries: Arc<Entries>,
    /// The file version last looked at (loaded or refused), so a broken
    /// version is read, and its error logged, once.
    seen: Option<Signature>,
    last_check: Instant,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    state: Mutex<State>,
}

impl Inner {
    /// The current entries, re-reading the file first when it is due for a
    /// check and has changed. Blocking: runs on the blocking pool.
    fn entries(&self) -> Arc<Entries> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.last_check.elapsed() < RECHECK_INTERVAL {
            return state.entries.clone();
        }
        state.last_check = Instant::now();
        let sig = signature(&self.path);
        if sig == state.seen {
            return state.entries.clone();
        }
        state.seen = sig;
        match read_file(&self.path).and_then(|text| parse(&self.path, &text)) {
            Ok(entries) => {
                tracing::info!(
                    path = %self.path.display(),
                    users = entries.hashes.len(),
                    "htpasswd file reloaded"
                );
                state.entries = Arc::new(entries);
            }
            Err(e) => tracing::error!(
                "htpasswd file changed but cannot be used, keeping the previous users: {e}"
            ),
        }
        state.entries.clone()
    }
}

/// An htpasswd file of bcrypt entries, re-read when it changes on disk.
/// Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct HtpasswdFile {
    inner: Arc<Inner>,
}

impl HtpasswdFile {
    /// Loads the file. Entries other than bcrypt ($2y$, $2a$, $2b$) are
    /// refused with an error naming the line and the hash kind found, and
    /// saying to re-create it with `htpasswd -B` or `berth htpasswd add`.
    /// A missing file is an error too (distribution v3 creates one; berth
    /// does not do so silently). Duplicate users are refused as ambiguous.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, HtpasswdError> {
        let path = path.into();
        let seen = signature(&path);
        let entries = parse(&path, &read_file(&path)?)?;
        Ok(HtpasswdFile {
            inner: Arc::new(Inner {
                path,
                state: Mutex::new(State {
                    entries: Arc::new(entries),
                    seen,
                    last_check: Instant::now(),
                }),
            }),
        })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// True when user/password match. Re-reads the file first if it changed
    /// (looked at most every [`RECHECK_INTERVAL`]; a file that became
    /// invalid keeps the old entries and logs an error once). Runs bcrypt on
    /// `tokio::task::spawn_blocking`. An unknown user costs one bcrypt
    /// verify against a dummy hash, so timing does not reveal which users
    /// exist.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let inner = self.inner.clone();
        let user = user.to_string();
        let password = password.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let entries = inner.entries();
            match entries.hashes.get(&user) {
                Some(hash) => bcrypt::verify(&password, hash).unwrap_or(false),
                None => {
                    let _ = bcrypt::verify(&password, &entries.dummy);
                    false
                }
            }
        })
        .await;
        result.unwrap_or(false)
    }

    /// The user names, sorted (for tests and diagnostics). Uses the cached
    /// entries; does not look at the file.
    pub fn users(&self) -> Vec<String> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut users: Vec<String> = state.entries.hashes.keys().cloned().collect();
        users.sort();
        users
    }
}

// ---------------------------------------------------------------- edits

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

#[cfg(test)]
#[path = "htpasswd_tests.rs"]
mod tests;
