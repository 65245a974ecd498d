//! Reading directories for `list`, `has_children` and `walk`: which names on
//! disk are keys, and a directory's key names in lexical order, packed so a
//! cached listing stays small.

use std::fs;
use std::io;
use std::path::Path;

/// True for names that can be a key segment: the segment grammar of
/// `validate_path` (`[A-Za-z0-9._-]+`, not `.` or `..`), checked without
/// building a key. Everything else on disk (temp files, `lost+found`, ...) is
/// invisible through the driver.
pub(super) fn is_key_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The key names of one directory in lexical (byte) order, in one buffer:
/// ~10 bytes per name of a 10,000-tag directory instead of a `String` each,
/// which is what keeps the listing cache's budget meaningful.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Names {
    buf: String,
    /// End offset in `buf` of each name.
    ends: Vec<usize>,
}

impl Names {
    /// Packs names that are already sorted.
    fn from_sorted(names: &[String]) -> Self {
        let mut buf = String::with_capacity(names.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(names.len());
        for n in names {
            buf.push_str(n);
            ends.push(buf.len());
        }
        Self { buf, ends }
    }

    /// Number of names.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The names, in lexical order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(s, e)| self.buf.get(s..e))
    }

    /// Heap bytes held, for the cache's memory budget.
    pub(super) fn heap_bytes(&self) -> usize {
        self.buf.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }
}

/// Reads the key names of `dir`, sorted. Errors are those of `read_dir`
/// (the caller maps "not there" to `NotFound`).
pub(super) fn read_sorted(dir: &Path) -> io::Result<Names> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        // `into_string` keeps the OsString's buffer: no copy per entry.
        if let Ok(name) = entry?.file_name().into_string() {
            if is_key_name(&name) {
                names.push(name);
            }
        }
    }
    names.sort_unstable();
    Ok(Names::from_sorted(&names))
}

/// True when `dir` holds at least one key name; stops at the first, so it
/// costs one short read whatever the directory's size.
pub(super) fn has_key_entry(dir: &Path) -> io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        if entry?.file_name().to_str().is_some_and(is_key_name) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::storage::validate_path;

    #[test]
    fn key_names_follow_the_key_grammar() {
        for name in [
            "a",
            "A-b_c.d",
            "...",
            ".x",
            "x.",
            "_manifests",
            "",
            ".",
            "..",
            ".tmp~1",
            "a b",
            "ä",
            "lost+found",
        ] {
            assert_eq!(
                is_key_name(name),
                validate_path(&format!("/{name}")).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn names_are_sorted_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b", "a", "C", ".tmp~x", "a b"] {
            fs::write(dir.path().join(n), b"").unwrap();
        }
        fs::create_dir(dir.path().join("d")).unwrap();
        let names = read_sorted(dir.path()).unwrap();
        assert_eq!(names.iter().collect::<Vec<_>>(), ["C", "a", "b", "d"]);
        assert_eq!(names.len(), 4);
        assert!(has_key_entry(dir.path()).unwrap());
    }

    #[test]
    fn foreign_names_do_not_count_as_entries() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_key_entry(dir.path()).unwrap());
        fs::write(dir.path().join(".tmp~x"), b"").unwrap();
        assert!(!has_key_entry(dir.path()).unwrap());
        assert_eq!(read_sorted(dir.path()).unwrap(), Names::default());
        let missing = dir.path().join("missing");
        assert_eq!(
            has_key_entry(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
