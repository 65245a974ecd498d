//! Item 2 of issue 18, continued: a process out of file descriptors (a
//! low hard `RLIMIT_NOFILE`, since berth raises its soft limit to the hard
//! one) and a storage root that turns read-only while berth serves.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use super::disk_full::{assert_clear_5xx, nothing_partial};
use super::mounts::Mount;
use super::support::{digest_of, Api, Berth};
use crate::procs::{tempdir, wait_until};

/// The hard (and soft) open-file limit berth runs under.
const NOFILE: u64 = 64;

fn low_nofile(cmd: &mut Command) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec here.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: NOFILE,
                rlim_max: NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn out_of_file_descriptors_pushes_fail_clearly_and_recover_when_freed() {
    let tmp = tempdir("berth-nofile-");
    let root = tmp.path().join("storage");
    let storage = format!("  filesystem:\n    rootdirectory: {}\n", root.display());
    let mut berth = Berth::start_prepared(&tmp.path().join("berth"), &storage, Some(low_nofile));
    let pid = berth.pid();
    // One client keeps its connection (made before the flood).
    let mut api = Api::new(berth.url(""));
    api.client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = vec![7u8; 300_000];
    rt.block_on(async {
        assert_eq!(
            api.push_blob("nofile/app", &before).await.status(),
            Some(201)
        );
    });
    // Idle connections with half a request each until berth has no
    // descriptor left.
    let mut flood = Vec::new();
    for _ in 0..2 * NOFILE {
        let mut s = TcpStream::connect(("127.0.0.1", berth.port)).unwrap();
        s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
        flood.push(s);
    }
    wait_until(
        "berth to run out of descriptors",
        Duration::from_secs(20),
        || open_fds(pid) as u64 >= NOFILE,
    );
    rt.block_on(async {
        let sent = api.push_blob("nofile/app", &vec![8u8; 300_000]).await;
        let msg = assert_clear_5xx("push with no descriptor left", &sent, "too many open files");
        eprintln!(
            "push with {} fds open: {} {msg}",
            open_fds(pid),
            sent.status().unwrap_or(0)
        );
    });
    drop(flood);
    wait_until("berth to close the flood", Duration::from_secs(20), || {
        (open_fds(pid) as u64) < NOFILE / 2
    });
    rt.block_on(async {
        let after = vec![9u8; 300_000];
        let sent = api.push_blob("nofile/app", &after).await;
        assert_eq!(
            sent.status(),
            Some(201),
            "push after the flood: {}",
            sent.text()
        );
        assert!(api
            .blob_intact("nofile/app", &digest_of(&after))
            .await
            .is_some());
        assert!(api
            .blob_intact("nofile/app", &digest_of(&before))
            .await
            .is_some());
    });
    nothing_partial(&root, 0);
    berth.stop();
}

#[test]
fn a_read_only_root_refuses_pushes_clearly_keeps_reads_and_recovers() {
    let tmp = tempdir("berth-ro-");
    let Some(mnt) = Mount::small(&tmp.path().join("mnt"), 32) else {
        return;
    };
    let root = mnt.dir.join("storage");
    let storage = format!("  filesystem:\n    rootdirectory: {}\n", root.display());
    let mut berth = Berth::start(&tmp.path().join("berth"), &storage);
    let api = Api::new(berth.url(""));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let before = vec![1u8; 200_000];
        assert_eq!(api.push_blob("ro/app", &before).await.status(), Some(201));
        let loc = api.open_upload("ro/app").await.expect("upload");
        mnt.set_read_only(true);
        let after = vec![2u8; 200_000];
        let sent = api.push_blob("ro/app", &after).await;
        let msg = assert_clear_5xx("push to a read-only root", &sent, "storage not writable");
        eprintln!(
            "push to a read-only root: {} {msg}",
            sent.status().unwrap_or(0)
        );
        let sent = api.patch(&loc, 0, &after).await;
        assert_clear_5xx("PATCH on a read-only root", &sent, "storage not writable");
        assert!(api
            .blob_intact("ro/app", &digest_of(&before))
            .await
            .is_some());
        assert_eq!(api.get("/v2/").await.0, 200);
        mnt.set_read_only(false);
        let sent = api.push_blob("ro/app", &after).await;
        assert_eq!(
            sent.status(),
            Some(201),
            "push once writable: {}",
            sent.text()
        );
        assert!(api
            .blob_intact("ro/app", &digest_of(&after))
            .await
            .is_some());
        let sent = api.patch(&loc, 0, &after).await;
        assert_eq!(sent.status(), Some(202), "{}", sent.text());
        let sent = api.finish(&loc, &digest_of(&after), None).await;
        assert_eq!(sent.status(), Some(201), "{}", sent.text());
    });
    nothing_partial(&root, 0);
    berth.stop();
}
