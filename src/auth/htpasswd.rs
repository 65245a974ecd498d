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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

// tokio's clock (the system clock outside a paused test runtime), so tests
// move past a recheck with `tokio::time::advance` rather than a sleep.
use tokio::time::Instant;

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
pub(crate) struct Entries {
    pub(crate) hashes: HashMap<String, String>,
    /// A well-formed bcrypt hash nobody's password matches, at the file's
    /// most common cost, so an unknown user costs as much as a known one.
    dummy: String,
    /// Unique to this load of the file (never 0), so what was verified
    /// against older entries can tell (the verified-login cache).
    generation: u64,
}

/// The generation of the next entries loaded.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A bcrypt hash (of a random string nobody knows) whose salt and digest are
/// valid base64; its cost digits are replaced to build [`Entries::dummy`].
const DUMMY_HASH_TAIL: &str = "7jZBfqkp/c2Lx4/FTlVyKuPc63oyUP81pv7wND0cHHGq6YFQk5t3O";

fn dummy_hash(cost: u32) -> String {
    format!("$2y${cost:02}${DUMMY_HASH_TAIL}")
}

/// Parses a whole file strictly: every entry bcrypt, no duplicates.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Entries, HtpasswdError> {
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
        generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
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

    /// The current entries' generation when no look at the file is due
    /// (no I/O: callable on the async threads).
    fn fresh_generation(&self) -> Option<u64> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.last_check.elapsed() < RECHECK_INTERVAL).then_some(state.entries.generation)
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
        self.verify_at(user, password).await.0
    }

    /// [`HtpasswdFile::verify`], also returning the generation of the
    /// entries the password was checked against (0 if the check could not
    /// run).
    pub async fn verify_at(&self, user: &str, password: &str) -> (bool, u64) {
        let inner = self.inner.clone();
        let user = user.to_string();
        let password = password.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let entries = inner.entries();
            let ok = match entries.hashes.get(&user) {
                Some(hash) => bcrypt::verify(&password, hash).unwrap_or(false),
                None => {
                    let _ = bcrypt::verify(&password, &entries.dummy);
                    false
                }
            };
            (ok, entries.generation)
        })
        .await;
        result.unwrap_or((false, 0))
    }

    /// The generation of the current entries: a new value after every
    /// reload of the file (looked at as [`HtpasswdFile::verify`] does).
    /// What was verified against another generation no longer counts.
    pub async fn generation(&self) -> u64 {
        if let Some(g) = self.inner.fresh_generation() {
            return g;
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.entries().generation)
            .await
            .unwrap_or(0)
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

#[path = "htpasswd_edit.rs"]
mod edit;
pub use edit::{add_user, delete_user, lookup_user, verify_user};

#[cfg(test)]
#[path = "htpasswd_tests.rs"]
mod tests;
