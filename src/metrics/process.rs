//! Process figures read at scrape time from `/proc` (Linux; elsewhere they
//! are left out).

use std::fmt::Write as _;

/// Resident memory in bytes: `/proc/self/statm`'s second field (pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0)?)
}

/// Open file descriptors: the entries of `/proc/self/fd`, less the one the
/// count itself holds open.
fn open_fds() -> Option<u64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

/// Appends RSS and open fds in Prometheus text format.
pub fn render(out: &mut String) {
    if let Some(rss) = resident_bytes() {
        let _ = write!(
            out,
            "# HELP berth_process_resident_memory_bytes Resident set size of the process.\n\
             # TYPE berth_process_resident_memory_bytes gauge\n\
             berth_process_resident_memory_bytes {rss}\n"
        );
    }
    if let Some(fds) = open_fds() {
        let _ = write!(
            out,
            "# HELP berth_process_open_fds Open file descriptors (sockets and files).\n\
             # TYPE berth_process_open_fds gauge\nberth_process_open_fds {fds}\n"
        );
    }
}
