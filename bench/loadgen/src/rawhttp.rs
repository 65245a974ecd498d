//! A minimal HTTP/1.1 client on a socket bound to a chosen local address,
//! for `flood`: the server limits by client address, so the flooder
//! (127.0.0.1) and the puller (127.0.0.2) must come from different ones.
//! Requests are written by hand; responses need a `Content-Length` (every
//! answer berth gives these requests has one).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Every request (head, body and response) is cut off after this.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// A response: status, the headers (lower-cased names) and the body.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection from `local` to `server`, reopened after an
/// error or a `Connection: close`.
pub struct Conn {
    local: std::net::IpAddr,
    server: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Request body bytes written, counted as they go.
    pub sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Conn {
    pub fn new(local: std::net::IpAddr, server: SocketAddr) -> Self {
        Conn {
            local,
            server,
            stream: None,
            buf: Vec::new(),
            sent: Default::default(),
        }
    }

    async fn stream(&mut self) -> Result<&mut TcpStream, String> {
        if self.stream.is_none() {
            let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
            sock.bind(SocketAddr::new(self.local, 0))
                .map_err(|e| format!("bind {}: {e}", self.local))?;
            let s = sock
                .connect(self.server)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.set_nodelay(true).ok();
            self.buf.clear();
            self.stream = Some(s);
        }
        self.stream.as_mut().ok_or_else(|| "no stream".to_string())
    }

    /// Sends `method path` with `headers` and a body of `len` bytes, taken
    /// from `chunk` repeated (`len` need not be a multiple of it), then
    /// reads the answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        chunk: &[u8],
        len: u64,
    ) -> Result<Resp, String> {
        let r = tokio::time::timeout(TIMEOUT, self.send_inner(method, path, headers, chunk, len))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn send_inner(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        chunk: &[u8],
        len: u64,
    ) -> Result<Resp, String> {
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let sent = self.sent.clone();
        let s = self.stream().await?;
        s.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut left = len;
        while left > 0 && !chunk.is_empty() {
            let n = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
            s.write_all(&chunk[..n])
                .await
                .map_err(|e| format!("write body: {e}"))?;
            left -= n as u64;
            sent.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let resp = self.read_resp(method == "HEAD").await?;
        if resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.stream = None;
        }
        Ok(resp)
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut tmp = [0u8; 64 << 10];
        let s = self.stream().await?;
        let n = s.read(&mut tmp).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    async fn read_resp(&mut self, head_only: bool) -> Result<Resp, String> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > 64 << 10 {
                return Err("response head too large".into());
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = match resp.header("content-length") {
            _ if head_only || status == 204 || status == 304 => 0,
            Some(v) => v.parse().map_err(|_| format!("bad content-length {v}"))?,
            None => return Err(format!("no content-length (status {status})")),
        };
        while self.buf.len() < len {
            self.fill().await?;
        }
        resp.body = self.buf.drain(..len).collect();
        Ok(resp)
    }
}
