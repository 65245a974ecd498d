//! Durability under the syscall trace (issue 18 item 9): `berth serve` runs
//! under `strace -f`, a client pushes a blob and a manifest, and every
//! write and rename the request made under the storage root must be covered
//! by a durable call that returned before the 201 was written on the
//! socket: a `syncfs` that began after it (group commit, the default), or
//! an `fsync` of the written file and of the directory a rename changed
//! (`storage.filesystem.sync: file`). With the registry's sync calls
//! removed this fails; without it the whole API suite stayed green.
#![allow(clippy::unwrap_used)]

#[path = "common/clients.rs"]
mod clients;
#[path = "common/procs.rs"]
#[allow(unused_imports)]
mod procs;
#[path = "durability/trace.rs"]
mod trace;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use procs::{daemon_command, free_port, require_tools, tempdir, wait_until, Proc};
use sha2::{Digest as _, Sha256};
use trace::Call;

/// Calls that put bytes or names on disk.
const WRITES: &[&str] = &["write", "pwrite64", "writev", "pwritev", "pwritev2"];
const RENAMES: &[&str] = &["rename", "renameat", "renameat2", "link", "linkat"];
const TRACED: &str = "trace=fsync,fdatasync,syncfs,sync_file_range,write,writev,pwrite64,\
                      pwritev,pwritev2,sendto,sendmsg,rename,renameat,renameat2,link,linkat";

/// One request on a fresh connection; (status, headers, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The index of the socket write that starts the response holding `needle`.
fn response_write(calls: &[Call], needle: &str) -> usize {
    calls
        .iter()
        .position(|c| {
            WRITES.contains(&c.name.as_str()) || c.name == "sendto" || c.name == "sendmsg"
        } && c.args.contains("HTTP/1.1 201 Created") && c.args.contains(needle))
        .unwrap_or_else(|| panic!("no 201 response holding {needle} in the trace"))
}

/// True when `c` writes an HTTP response on a socket.
fn is_response(c: &Call) -> bool {
    c.args.contains("HTTP/1.1 ") && c.args.contains("socket:")
}

/// Parent directory of `path`.
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(p, _)| p)
}

/// Checks every write and rename under `root` between the previous
/// response and the 201 at `reply`; returns the renames' destinations.
fn assert_covered(calls: &[Call], reply: usize, root: &str, what: &str) -> Vec<String> {
    let at = calls[reply].start;
    let from = calls[..reply]
        .iter()
        .rev()
        .find(|c| is_response(c))
        .map_or(0, |c| c.end);
    let synced = |ok: &dyn Fn(&Call) -> bool, after: usize| {
        calls
            .iter()
            .any(|c| c.start > after && c.end < at && c.ok() && ok(c))
    };
    let syncfs = |c: &Call| c.name == "syncfs" && c.fd_path().is_some_and(|p| p.starts_with(root));
    let fsync_of = |path: &str| {
        let path = path.to_string();
        move |c: &Call| {
            (c.name == "fsync" || c.name == "fdatasync") && c.fd_path() == Some(path.as_str())
        }
    };
    let mut moved = Vec::new();
    let mut ops = 0;
    for c in calls
        .iter()
        .filter(|c| c.end > from && c.end < at && c.ok())
    {
        if WRITES.contains(&c.name.as_str()) {
            let Some(file) = c.fd_path().filter(|p| p.starts_with(root)) else {
                continue;
            };
            ops += 1;
            assert!(
                synced(&syncfs, c.end) || synced(&fsync_of(file), c.end),
                "{what}: the write to {file} (trace line {}) is not made durable before the 201 \
                 (trace line {at})",
                c.end + 1
            );
        } else if RENAMES.contains(&c.name.as_str()) {
            let names = c.strings();
            let Some(dst) = names.last().filter(|p| p.starts_with(root)) else {
                continue;
            };
            ops += 1;
            assert!(
                synced(&syncfs, c.end) || synced(&fsync_of(parent(dst)), c.end),
                "{what}: the rename to {dst} (trace line {}) is not made durable before the 201 \
                 (trace line {at})",
                c.end + 1
            );
            moved.push(dst.to_string());
        }
    }
    assert!(ops > 0, "{what}: no storage writes traced before the 201");
    moved
}

/// Pushes a blob and a manifest through a traced `berth serve` with
/// `sync` (group or file) and checks both acknowledgements.
fn pushes_are_durable_before_201(sync: &str) {
    if !require_tools(&["strace"]) {
        return;
    }
    let tmp = tempdir("berth-durability-");
    let root = tmp.path().join("root");
    let port = free_port();
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n    \
             sync: {sync}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.display()
        ),
    )
    .unwrap();
    let log = tmp.path().join("strace.log");
    let mut cmd = daemon_command(procs::find_tool("strace").unwrap());
    cmd.args(["-f", "-y", "-s", "512", "-e", TRACED, "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg("serve")
        .arg("--config")
        .arg(&config);
    let mut proc = Proc::spawn("berth under strace", cmd, &tmp.path().join("berth.log"));
    wait_until("berth to listen", Duration::from_secs(60), || {
        proc.assert_running();
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let blob = b"a layer that must survive a power cut".to_vec();
    let digest = sha256(&blob);
    let (status, resp) = http(port, "POST", "/v2/dur/app/blobs/uploads/", &[], b"");
    assert_eq!(status, 202, "{resp}");
    let location = resp
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let upload = location.trim_start_matches(&format!("http://127.0.0.1:{port}"));
    let (status, resp) = http(
        port,
        "PUT",
        &format!("{upload}?digest={digest}"),
        &[],
        &blob,
    );
    assert_eq!(status, 201, "{resp}");
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\
         \"digest\":\"{digest}\",\"size\":{}}},\"layers\":[]}}",
        blob.len()
    );
    let manifest_digest = sha256(manifest.as_bytes());
    let (status, resp) = http(
        port,
        "PUT",
        "/v2/dur/app/manifests/v1",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.as_bytes(),
    );
    assert_eq!(status, 201, "{resp}");
    proc.stop(Duration::from_secs(10));

    let text = std::fs::read_to_string(&log).unwrap();
    let calls = trace::parse(&text);
    let root = root.canonicalize().unwrap().display().to_string();
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();

    let reply = response_write(&calls, &format!("blobs/{digest}"));
    let moved = assert_covered(&calls, reply, &root, "blob upload");
    let blob_dir = format!("blobs/sha256/{}/{}", &hex(&digest)[..2], hex(&digest));
    assert!(
        moved.iter().any(|m| m.contains(&blob_dir)),
        "the blob was not moved into {blob_dir} before its 201: {moved:?}"
    );

    let reply = response_write(&calls, &format!("manifests/{manifest_digest}"));
    let moved = assert_covered(&calls, reply, &root, "manifest PUT");
    assert!(
        moved
            .iter()
            .any(|m| m.ends_with("_manifests/tags/v1/current/link")),
        "the tag link was not written before its 201: {moved:?}"
    );
    assert!(Path::new(&root)
        .join("docker/registry/v2/repositories/dur/app/_manifests/tags/v1/current/link")
        .exists());
}

/// Group commit (the default): a `syncfs` begun after the last write.
#[test]
fn group_commit_syncs_before_the_201() {
    pushes_are_durable_before_201("group");
}

/// `sync: file`: an `fsync` of each file and each renamed-into directory.
#[test]
fn file_sync_fsyncs_before_the_201() {
    pushes_are_durable_before_201("file");
}
