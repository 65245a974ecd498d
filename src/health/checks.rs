//! The probes behind the checks, with registry:2's error texts. Every probe
//! is bounded in time (and the HTTP probe in bytes read).

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::HttpCheck;
use crate::registry::Registry;

/// How long a network probe may take when its `timeout` is zero (registry:2
/// then waits as long as the OS does).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an HTTP response read to find its status line.
const MAX_STATUS_LINE: usize = 8 << 10;

/// One check's probe.
pub(super) enum Probe {
    /// The storage driver answers (a missing root is fine).
    Storage(Registry),
    /// Fails while the file exists.
    File(PathBuf),
    /// `HEAD` the URI; fails on another status than expected.
    Http(HttpCheck),
    /// Connect to the address.
    Tcp { addr: String, timeout: Duration },
}

impl Probe {
    /// Runs the probe: `Err` with the message `/debug/health` shows.
    pub(super) async fn run(&self) -> Result<(), String> {
        match self {
            Probe::Storage(registry) => registry.check_storage().await.map_err(|e| e.to_string()),
            Probe::File(path) => match tokio::fs::metadata(path).await {
                Ok(_) => Err("file exists".into()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.to_string()),
            },
            Probe::Tcp { addr, timeout } => {
                match tokio::time::timeout(bounded(*timeout), TcpStream::connect(addr.as_str()))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    _ => Err(format!("connection to {addr} failed")),
                }
            }
            Probe::Http(c) => {
                let expected = if c.statuscode == 0 { 200 } else { c.statuscode };
                match tokio::time::timeout(bounded(c.timeout), head_status(c)).await {
                    Ok(Some(status)) if status == expected => Ok(()),
                    Ok(Some(status)) => Err(format!(
                        "downstream service returned unexpected status: {status}"
                    )),
                    _ => Err(format!("error while checking: {}", c.uri)),
                }
            }
        }
    }
}

fn bounded(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        timeout
    }
}

/// Sends `HEAD` to an `http://` URI over HTTP/1.1 and returns the response
/// status; `None` when the URI, connection or response is unusable.
async fn head_status(c: &HttpCheck) -> Option<u16> {
    let uri: axum::http::Uri = c.uri.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(80);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "HEAD {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: berth-health\r\nConnection: close\r\n"
    );
    for (name, values) in &c.headers {
        if axum::http::HeaderName::try_from(name.as_str()).is_err() {
            continue;
        }
        for v in values {
            if axum::http::HeaderValue::from_str(v).is_ok() && !v.contains(['\r', '\n']) {
                head.push_str(&format!("{name}: {v}\r\n"));
            }
        }
    }
    head.push_str("\r\n");
    let mut tcp = TcpStream::connect((authority.host().trim_matches(['[', ']']), port))
        .await
        .ok()?;
    tcp.write_all(head.as_bytes()).await.ok()?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < MAX_STATUS_LINE {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status(&buf)
}

/// The status of an `HTTP/1.x NNN ...` status line.
fn parse_status(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-x\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }
}
