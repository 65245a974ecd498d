//! Raises the soft limit on open files to the hard limit at start, as Go's
//! runtime does for every Go program (registry:2 included): the soft limit
//! is often 1024, far below what a registry with many clients needs, while
//! the hard limit is what the operator allowed.

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit and logs the
/// result; a failure is logged and ignored.
#[cfg(unix)]
pub fn raise_nofile() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one plain struct we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(
            "cannot read the open-file limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        tracing::info!("open-file limit: {}", limit.rlim_cur);
        return;
    }
    let before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads one plain struct we own, passed by pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        tracing::warn!(
            "cannot raise the open-file limit from {before} to {}: {}",
            limit.rlim_max,
            std::io::Error::last_os_error()
        );
        return;
    }
    tracing::info!("open-file limit raised from {before} to {}", limit.rlim_max);
}

/// Nothing to raise on this platform.
#[cfg(not(unix))]
pub fn raise_nofile() {}
