//! The same router on a real 127.0.0.1 socket through hyper, for what only
//! the wire shows: HEAD lengths, streamed bodies, connection handling.

use berth::config::Config;
use berth::oci::digest::Digest;

/// A server on a free loopback port, stopped when dropped.
struct Live {
    base: String,
    _task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn live() -> Live {
    live_with(|_| {}).await
}

async fn live_with(configure: impl Fn(&mut Config)) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.storage.delete.enabled = true;
    configure(&mut cfg);
    // berth's own accept loop and hyper settings, as `berth serve` runs.
    let (addr, task) = crate::loopback::serve_fs(cfg, dir.path()).await;
    Live {
        base: format!("http://{addr}"),
        _task: task,
        _dir: dir,
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self._task.abort();
    }
}

/// Sends a `GET /v2/` whose head carries `pad` bytes of one header and
/// returns the status line (empty when the server just closed).
async fn get_with_header_of(base: &str, pad: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(pad)
    );
    // The server may answer and close before taking the whole head.
    let _ = tcp.write_all(head.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.lines().next().unwrap_or("").to_string()
}

/// A request head is bounded by `http.maxheaderbytes` (64 KiB by default),
/// not by the 2 MiB read buffer bodies use: a 60 KiB head is served, a
/// 100 KiB one refused with 431, and a large body still goes through.
#[tokio::test]
async fn request_heads_are_bounded_by_maxheaderbytes() {
    let srv = live().await;
    let ok = get_with_header_of(&srv.base, 60 << 10).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "60 KiB head: {ok:?}");
    let refused = get_with_header_of(&srv.base, 100 << 10).await;
    assert!(
        refused.starts_with("HTTP/1.1 431"),
        "100 KiB head must be refused: {refused:?}"
    );
}

/// Plain HTTP speaks HTTP/2 with prior knowledge (h2c) too, as it did
/// when served by `axum::serve`.
#[tokio::test]
async fn plain_http_serves_h2c() {
    let srv = live().await;
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = c.get(format!("{}/v2/", srv.base)).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
}

/// With `http.http2.disabled`, the plain port refuses h2c too.
#[tokio::test]
async fn plain_http_refuses_h2c_when_http2_is_disabled() {
    let srv = live_with(|c| c.http.http2.disabled = true).await;
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = c.get(format!("{}/v2/", srv.base)).send().await;
    assert!(r.is_err(), "h2c must be refused: {r:?}");
    let r = reqwest::get(format!("{}/v2/", srv.base)).await.unwrap();
    assert_eq!(r.status(), 200, "HTTP/1.1 still served");
}

#[tokio::test]
async fn head_keeps_content_length_and_large_streams_round_trip() {
    let srv = live().await;
    let c = reqwest::Client::new();
    // A 24 MiB blob in three streamed chunks.
    let data: Vec<u8> = (0..24 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let d = Digest::sha256_of(&data);
    let r = c
        .post(format!("{}/v2/big/blob/blobs/uploads/", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.starts_with(&srv.base),
        "absolute Location from Host: {loc}"
    );
    for (i, chunk) in data.chunks(8 * 1024 * 1024).enumerate() {
        let start = i * 8 * 1024 * 1024;
        let r = c
            .patch(&loc)
            .header(
                "content-range",
                format!("{}-{}", start, start + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(
            r.headers()["range"],
            format!("0-{}", start + chunk.len() - 1).as_str()
        );
        loc = r.headers()["location"].to_str().unwrap().to_string();
    }
    let r = c.put(format!("{loc}?digest={d}")).send().await.unwrap();
    assert_eq!(r.status(), 201);

    let r = c
        .head(format!("{}/v2/big/blob/blobs/{d}", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );
    let r = c
        .get(format!("{}/v2/big/blob/blobs/{d}", srv.base))
        .send()
        .await
        .unwrap();
    let got = r.bytes().await.unwrap();
    assert_eq!(Digest::sha256_of(&got), d);

    let manifest = crate::support::image_manifest(&d, data.len(), &[], None);
    let r = c
        .put(format!("{}/v2/big/blob/manifests/v1", srv.base))
        .header("content-type", crate::support::OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .head(format!("{}/v2/big/blob/manifests/v1", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        manifest.len().to_string().as_str()
    );
    assert_eq!(
        r.headers()["docker-content-digest"],
        Digest::sha256_of(&manifest).to_string().as_str()
    );
}

/// Reads what the server sends until it closes (or 20 s pass: then the
/// test fails, the server never gave up on the stalled client).
async fn read_until_closed(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tcp.read_to_end(&mut out),
    )
    .await;
    assert!(read.is_ok(), "the server kept the stalled connection open");
    String::from_utf8_lossy(&out).into_owned()
}

/// A client that never finishes its request head is cut off
/// (`http.readheadertimeout`), so slow-header clients cannot pile up
/// connections. On tokio's paused clock (the server runs on the test's
/// runtime): time moves only when every task waits, straight to the next
/// timer, so the cut comes exactly when the timeout expires, never before,
/// whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn a_request_head_that_never_ends_is_cut_off() {
    use tokio::io::AsyncWriteExt;
    let s = live_with(|c| c.http.readheadertimeout = std::time::Duration::from_secs(1)).await;
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let answer = read_until_closed(&mut tcp).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    // Virtual time, exact whatever the load: the head timeout (1 s), not
    // the idle timeout nor the 20 s of the reader.
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(1) && waited < std::time::Duration::from_secs(2),
        "cut off after {waited:?} of paused-clock time"
    );
}

/// An upload body that stalls fails after `http.bodyidletimeout`; what
/// arrived before the stall is kept, so the client can resume.
#[tokio::test]
async fn a_stalled_upload_body_fails_and_keeps_what_arrived() {
    use tokio::io::AsyncWriteExt;
    let s = live_with(|c| c.http.bodyidletimeout = std::time::Duration::from_secs(1)).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v2/stall/blobs/uploads/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let path = loc.strip_prefix(&s.base).unwrap_or(&loc).to_string();
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\n\r\n3e8\r\n{}\r\n",
        "z".repeat(1000)
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // ... and nothing more.
    let answer = read_until_closed(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BLOB_UPLOAD_INVALID"), "{answer}");
    let r = client
        .get(format!("{}{path}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-999");
}

/// A TCP connection that never sends a byte is closed after
/// `http.idletimeout` (hyper's header timeout starts only at the first byte).
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let s = live_with(|c| c.http.idletimeout = std::time::Duration::from_secs(1)).await;
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let answer = read_until_closed(&mut tcp).await;
    assert!(answer.is_empty(), "{answer}");
    // A keep-alive connection idle after a request is closed too.
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// `http.maxconnectionsperclient` (and `http.maxconnections`): the
/// connection past the cap is closed at once; once others close, a
/// normal client gets through.
#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = live_with(|c| {
        c.http.maxconnections = 100;
        c.http.maxconnectionsperclient = 3;
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Served: the server has taken (and counted) the connection.
        tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(tcp);
    }
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        extra.read_to_end(&mut out),
    )
    .await;
    assert!(read.is_ok(), "the connection past the cap was kept open");
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    drop(held);
    // The places come free as the server sees the closes.
    let client = reqwest::Client::new();
    let mut status = None;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{}/v2/", s.base)).send().await {
            status = Some(r.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, Some(reqwest::StatusCode::OK));
}

/// An early answer (401 to an anonymous PUT with a body) over HTTP/1 reads
/// the small unread body first, so the next request on the same
/// keep-alive connection is served.
#[tokio::test]
async fn an_early_401_keeps_the_http1_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    berth::auth::htpasswd::add_user(&users, "u", "p", 4).unwrap();
    let path = users.display().to_string();
    let s = live_with(move |c| {
        c.auth = Some(berth::config::auth::AuthConfig {
            htpasswd: Some(berth::config::auth::HtpasswdAuthConfig {
                realm: "r".into(),
                path: path.clone(),
            }),
            ..Default::default()
        });
    })
    .await;
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = "m".repeat(100 << 10);
    // The head alone first: the server answers before the body arrives.
    let head = format!(
        "PUT /v2/x/manifests/latest HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Without the drain the server may already have closed: writes may fail.
    let _ = tcp.write_all(body.as_bytes()).await;
    let _ = tcp
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tcp.read_to_end(&mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert_eq!(text.matches("HTTP/1.1 401").count(), 2, "{text}");
}
