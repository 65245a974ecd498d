//! Runs `berth serve` as a process for issue 14's operations items: JSON
//! access lines with request ids, SIGHUP without TLS, and a graceful
//! shutdown that finishes an in-flight upload while `/readyz` says 503.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How long any one expected log line may take (generous: a loaded CI box).
const LINE_WAIT: Duration = Duration::from_secs(60);

/// A running `berth serve` with log.formatter json.
struct Served {
    child: Child,
    lines: Receiver<Result<serde_json::Value, String>>,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts berth on a free loopback port with `http_extra` YAML under
    /// `http:` and `storage_extra` under `storage:`.
    fn start(http_extra: &str, storage_extra: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("registry");
        let file = dir.path().join("config.yml");
        std::fs::write(
            &file,
            format!(
                "version: 0.1\nlog:\n  formatter: json\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n{storage_extra}http:\n  addr: 127.0.0.1:0\n{http_extra}",
                root.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .args(["serve", file.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Every line must be one JSON object; wait_for fails on
                // anything else.
                let v = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .filter(serde_json::Value::is_object)
                    .ok_or(line);
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            lines,
            addr: String::new(),
            _dir: dir,
        };
        let line = served.wait_for(|v| message(v).contains(" serving http://"));
        let msg = message(&line);
        let rest = &msg[msg.find("serving http://").unwrap() + "serving http://".len()..];
        served.addr = rest.split('/').next().unwrap().to_string();
        served
    }

    /// The next log line `pred` accepts (panics when berth exits first).
    fn wait_for(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        loop {
            match self.lines.recv_timeout(LINE_WAIT) {
                Ok(Ok(v)) if pred(&v) => return v,
                Ok(Ok(_)) => {}
                Ok(Err(line)) => panic!("not a JSON object: {line}"),
                Err(RecvTimeoutError::Timeout) => panic!("no such log line"),
                Err(RecvTimeoutError::Disconnected) => panic!("berth exited"),
            }
        }
    }

    fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the process; its exit status.
    fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn message(v: &serde_json::Value) -> String {
    v["fields"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Sends `raw` (a whole HTTP/1.0 request) and reads the answer to EOF.
fn exchange(addr: &str, raw: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LINE_WAIT)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn status_of(response: &str) -> u16 {
    response[9..12].parse().unwrap()
}

/// The value of header `name` in a raw response.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `/readyz`'s status, or `None` when the listener refuses.
fn readyz(addr: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(LINE_WAIT)).unwrap();
    s.write_all(format!("GET /readyz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (out.len() >= 12).then(|| status_of(&out))
}

#[test]
fn json_access_lines_carry_every_field_and_the_request_id() {
    let served = Served::start("", "");
    let addr = served.addr.clone();
    let r = exchange(
        &addr,
        &format!(
            "GET /v2/library/alpine/manifests/3.20?secret=hunter2 HTTP/1.0\r\nHost: {addr}\r\n\
             X-Request-Id: trace-42.a_b\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&r), 404, "{r}");
    assert_eq!(header(&r, "x-request-id"), Some("trace-42.a_b"), "{r}");
    let line = served.wait_for(|v| v["target"] == "berth::access");
    let f = &line["fields"];
    assert_eq!(f["method"], "GET", "{line}");
    assert_eq!(f["route"], "/v2/library/alpine/manifests/3.20", "{line}");
    assert_eq!(f["repository"], "library/alpine", "{line}");
    assert_eq!(f["status"], 404, "{line}");
    assert!(f["bytes"].as_u64().unwrap() > 0, "{line}");
    assert!(f["duration_ms"].as_f64().is_some(), "{line}");
    assert_eq!(f["user"], "", "{line}");
    assert_eq!(f["client"], "127.0.0.1", "{line}");
    assert_eq!(f["request_id"], "trace-42.a_b", "{line}");
    assert!(!line.to_string().contains("hunter2"), "{line}");

    // An unusable id is replaced by a generated one, in the header and the log.
    let r = exchange(
        &addr,
        &format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\nX-Request-Id: a b;c\r\n\r\n"),
    );
    assert_eq!(status_of(&r), 200, "{r}");
    let id = header(&r, "x-request-id").unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let line = served.wait_for(|v| v["target"] == "berth::access");
    assert_eq!(line["fields"]["request_id"], id.as_str(), "{line}");
    assert_eq!(line["fields"]["repository"], "", "{line}");
    assert_eq!(line["fields"]["bytes"], 2, "{line}");
}

#[test]
fn plain_http_serve_survives_sighup() {
    let mut served = Served::start("", "");
    served.signal(libc::SIGHUP);
    served.wait_for(|v| message(v).starts_with("SIGHUP: nothing to reload without TLS"));
    let addr = served.addr.clone();
    let r = exchange(&addr, &format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n"));
    assert_eq!(status_of(&r), 200, "{r}");
    served.signal(libc::SIGTERM);
    assert!(served.wait().success());
}

#[test]
fn sigterm_makes_readyz_fail_and_finishes_an_in_flight_upload() {
    // Background workers running too: they must stop for the process to exit.
    let mut served = Served::start(
        "  draintimeout: 120s\n",
        "  maintenance:\n    gc:\n      enabled: true\n      interval: 1h\n    \
         uploadpurging:\n      enabled: true\n      interval: 1h\n",
    );
    let addr = served.addr.clone();
    assert_eq!(readyz(&addr), Some(200));
    let r = exchange(
        &addr,
        &format!(
            "POST /v2/slow/blobs/uploads/ HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&r), 202, "{r}");
    let location = header(&r, "location").unwrap();
    let path = location
        .strip_prefix(&format!("http://{addr}"))
        .unwrap_or(location);
    let blob = vec![b'x'; 64 * 1024];
    let digest = format!("sha256:{}", hex_sha256(&blob));
    let sep = if path.contains('?') { '&' } else { '?' };
    // The upload: head and half the body now; `100 Continue` proves the
    // handler is reading the body, so the request is in flight.
    let mut upload = TcpStream::connect(&addr).unwrap();
    upload.set_read_timeout(Some(LINE_WAIT)).unwrap();
    write!(
        upload,
        "PUT {path}{sep}digest={digest} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\
         Content-Type: application/octet-stream\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        blob.len()
    )
    .unwrap();
    let mut continued = [0u8; 25];
    upload.read_exact(&mut continued).unwrap();
    assert!(
        continued.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&continued)
    );
    upload.write_all(&blob[..blob.len() / 2]).unwrap();
    upload.flush().unwrap();

    served.signal(libc::SIGTERM);
    served.wait_for(|v| message(v).starts_with("SIGTERM received: /readyz answers 503"));
    // Not ready from now on: 503 while the listener is still open, refused
    // once it is closed; never 200 again.
    let answer = readyz(&addr);
    assert!(matches!(answer, None | Some(503)), "{answer:?}");

    // The in-flight upload still completes.
    upload.write_all(&blob[blob.len() / 2..]).unwrap();
    let mut response = String::new();
    upload.read_to_string(&mut response).unwrap();
    assert_eq!(status_of(&response), 201, "{response}");
    assert_eq!(
        header(&response, "docker-content-digest"),
        Some(digest.as_str())
    );

    served.wait_for(|v| message(v) == "berth stopped");
    let status = served.wait();
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(&addr).is_err());
}

fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
