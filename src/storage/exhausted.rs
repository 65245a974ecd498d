//! Backend failures the operator has to fix and the client should hear
//! about by name (a full disk, no file descriptors left, storage that
//! cannot be written), told apart from other I/O errors by their `errno`.

use std::io;

/// Why storage cannot take a write (or open a file) right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhaustion {
    /// `ENOSPC`, `EDQUOT`: no space (or quota) left.
    Full,
    /// `EMFILE`, `ENFILE`: the process or the system is out of file
    /// descriptors.
    TooManyOpenFiles,
    /// `EROFS`, `EACCES`, `EPERM`: the storage is read-only or not ours.
    NotWritable,
    /// A remote store kept failing (5xx, refused or reset connections)
    /// until the client's retries ran out.
    Unavailable,
}

impl Exhaustion {
    /// The kind of `err`, if it is one of these.
    pub fn of(err: &io::Error) -> Option<Exhaustion> {
        match err.raw_os_error()? {
            libc::ENOSPC | libc::EDQUOT => Some(Exhaustion::Full),
            libc::EMFILE | libc::ENFILE => Some(Exhaustion::TooManyOpenFiles),
            libc::EROFS | libc::EACCES | libc::EPERM => Some(Exhaustion::NotWritable),
            _ => None,
        }
    }

    /// True when an object store client's error says it gave up retrying
    /// (object_store 0.12 words it "..., after N retries, max_retries: M,
    /// ..."; tests/faults/object_store.rs fails if that changes).
    pub fn retries_ran_out(detail: &str) -> bool {
        detail.contains(" retries, max_retries: ")
    }
}

impl std::fmt::Display for Exhaustion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exhaustion::Full => "storage full",
            Exhaustion::TooManyOpenFiles => "too many open files",
            Exhaustion::NotWritable => "storage not writable",
            Exhaustion::Unavailable => "storage unavailable",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Exhaustion;
    use std::io;

    #[test]
    fn errnos_map_to_named_causes() {
        let of = |n| Exhaustion::of(&io::Error::from_raw_os_error(n));
        assert_eq!(of(libc::ENOSPC), Some(Exhaustion::Full));
        assert_eq!(of(libc::EDQUOT), Some(Exhaustion::Full));
        assert_eq!(of(libc::EMFILE), Some(Exhaustion::TooManyOpenFiles));
        assert_eq!(of(libc::ENFILE), Some(Exhaustion::TooManyOpenFiles));
        assert_eq!(of(libc::EROFS), Some(Exhaustion::NotWritable));
        assert_eq!(of(libc::EIO), None);
        assert_eq!(Exhaustion::of(&io::Error::other("x")), None);
        assert_eq!(Exhaustion::Full.to_string(), "storage full");
        assert!(Exhaustion::retries_ran_out(
            "Generic S3 error: Error performing PUT http://h/b/k in 2.1s, after 10 retries, \
             max_retries: 10, retry_timeout: 30s  - Server returned non-2xx status code: 503"
        ));
        assert!(!Exhaustion::retries_ran_out(
            "Generic S3 error: access denied"
        ));
    }
}
