//! Connections that send nothing (more) are closed (issue 12 item 7): a
//! TLS connection idle after its handshake, a TLS handshake that never
//! finishes, an idle HTTP/2 connection and one stuck mid-HEADERS. berth's
//! own accept loops on 127.0.0.1, with timeouts of a second. Each test
//! asserts only that the server closed the connection before a generous
//! bound (a liveness check, not a timing one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use berth::config::Config;
use berth::storage::filesystem::FilesystemDriver;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The timeout under test.
const SHORT: Duration = Duration::from_secs(1);

/// How long a test waits for the server to close: far past `SHORT` plus
/// the 10 s an HTTP/2 connection gets to wind down after its GOAWAY, and
/// far short of hyper's HTTP/2 keep-alive (30 s + 20 s), so only the
/// timeout under test can pass it.
const BOUND: Duration = Duration::from_secs(25);

/// The HTTP/2 client preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A server on a free loopback port, stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A config with the header timeout off, so only the timeout a test sets
/// can close a connection.
fn config(configure: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = Config::default();
    cfg.http.readheadertimeout = Duration::ZERO;
    configure(&mut cfg);
    cfg
}

/// Plain HTTP (h2c allowed) with `configure` applied.
async fn plain(configure: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (addr, task) = crate::loopback::serve_fs(config(configure), dir.path()).await;
    Server {
        addr,
        task,
        _dir: dir,
    }
}

/// HTTPS with a certificate from `berth cert` for 127.0.0.1, and
/// `configure` applied.
async fn tls(configure: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let written = berth::cert::make(&berth::cert::CertRequest {
        hosts: vec!["localhost".into()],
        ips: vec![[127, 0, 0, 1].into()],
        out: certs,
        days: 30,
    })
    .unwrap();
    let mut cfg = config(configure);
    cfg.http.tls.certificate = written.server_cert.display().to_string();
    cfg.http.tls.key = written.server_key.display().to_string();
    let settings = berth::http::server::ConnSettings::from_config(&cfg.http);
    let setup = berth::tls::setup(&cfg.http.tls, settings.http2).unwrap();
    let app = berth::app::build_app(cfg, Arc::new(FilesystemDriver::new(dir.path()))).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = berth::tls::serve_tls(listener, app, setup, settings, std::future::pending()).await;
    });
    Server {
        addr,
        task,
        _dir: dir,
    }
}

/// A TLS client trusting the CA `tls` wrote, offering `alpn`.
async fn tls_connect(
    server: &Server,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in berth::tls::read_certs(&server._dir.path().join("certs/ca.crt")).unwrap() {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Reads (and ignores) what the server sends until it closes the
/// connection (EOF or a reset); fails the test if it is still open after
/// [`BOUND`].
async fn closed_by_server(mut conn: impl AsyncRead + Unpin, what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept {what} open past {BOUND:?}");
    out
}

/// A TLS connection that completes its handshake and then sends nothing
/// is closed after `http.idletimeout`.
#[tokio::test]
async fn a_silent_tls_connection_is_closed_after_the_idle_timeout() {
    let s = tls(|c| c.http.idletimeout = SHORT).await;
    let conn = tls_connect(&s, &[b"http/1.1"]).await;
    let got = closed_by_server(conn, "a silent TLS connection").await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));

    // The same over HTTP/2 (ALPN h2): preface and SETTINGS, then nothing.
    let mut conn = tls_connect(&s, &[b"h2"]).await;
    assert_eq!(conn.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    conn.write_all(H2_PREFACE).await.unwrap();
    closed_by_server(conn, "an idle HTTP/2 connection over TLS").await;
}

/// A TLS handshake that never finishes (nothing sent after connecting, or
/// half a ClientHello) is dropped after `http.tls.handshaketimeout`; the
/// idle timeout is off, so only the handshake timeout can close it.
#[tokio::test]
async fn a_slow_tls_handshake_is_dropped_after_the_handshake_timeout() {
    let s = tls(|c| {
        c.http.idletimeout = Duration::ZERO;
        c.http.tls.handshaketimeout = SHORT;
    })
    .await;
    let silent = TcpStream::connect(s.addr).await.unwrap();
    closed_by_server(silent, "a connection that never started its handshake").await;

    let mut partial = TcpStream::connect(s.addr).await.unwrap();
    // A handshake record header announcing 512 bytes, and only 4 of them.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .await
        .unwrap();
    closed_by_server(partial, "a connection with half a ClientHello").await;

    // The port still serves a client that completes its handshake.
    let mut ok = tls_connect(&s, &[b"http/1.1"]).await;
    ok.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = closed_by_server(ok, "a served connection").await;
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
}

/// An h2c connection (prior knowledge on the plain port) that sends the
/// preface and SETTINGS and nothing more is closed after
/// `http.idletimeout`, though it does not answer the server's PINGs.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let s = plain(|c| c.http.idletimeout = SHORT).await;
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(H2_PREFACE).await.unwrap();
    let got = closed_by_server(tcp, "an idle HTTP/2 connection").await;
    // The server spoke HTTP/2: its SETTINGS frame (type 4) came first.
    assert!(got.len() >= 9 && got[3] == 4, "{got:?}");
}

/// An HTTP/2 connection stuck mid-HEADERS (a HEADERS frame without
/// END_HEADERS, and no CONTINUATION) is closed: no request is in progress
/// until the header block ends, so the idle timeout applies.
#[tokio::test]
async fn an_http2_connection_stuck_mid_headers_is_closed() {
    let s = plain(|c| c.http.idletimeout = SHORT).await;
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(H2_PREFACE).await.unwrap();
    // HEADERS, stream 1, flags END_STREAM only, block: `:method: GET`.
    tcp.write_all(&[0, 0, 1, 1, 0x01, 0, 0, 0, 1, 0x82])
        .await
        .unwrap();
    closed_by_server(tcp, "an HTTP/2 connection stuck mid-HEADERS").await;
}
