//! One keep-alive HTTP/1.1 connection (hyper 1 client), reconnecting after
//! an error; every request bounded by a timeout.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use std::time::Duration;
use tokio::net::TcpStream;

pub type Body = Full<Bytes>;

pub struct Client {
    addr: String,
    sender: Option<SendRequest<Body>>,
    pub timeout: Duration,
}

/// A response with its body read (and counted, optionally hashed).
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub body_len: u64,
    pub digest: Option<String>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How to treat the response body.
#[derive(Clone, Copy, PartialEq)]
pub enum Read {
    /// Keep it (small bodies).
    Keep,
    /// Count the bytes only.
    Count,
    /// Count and sha256 them.
    Hash,
}

impl Client {
    pub fn new(addr: &str, timeout: Duration) -> Self {
        Client {
            addr: addr.to_string(),
            sender: None,
            timeout,
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request and reads the whole response, within the timeout.
    /// Any transport error drops the connection (the next request
    /// reconnects) and is returned as Err; HTTP statuses are the caller's.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        read: Read,
    ) -> Result<Resp, String> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.send_inner(method, path, headers, body, read))
            .await
        {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("{method} {path}: timeout after {timeout:?}"))
            }
        }
    }

    async fn send_inner(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        read: Read,
    ) -> Result<Resp, String> {
        let usable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.connect().await?;
        }
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| "no connection".to_string())?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let has_body = !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH");
        if has_body {
            req = req.header("content-length", body.len());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("bad request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let (parts, mut body) = resp.into_parts();
        let mut kept = Vec::new();
        let mut len = 0u64;
        let mut hasher = (read == Read::Hash).then(Sha256::new);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("{method} {path}: body: {e}"))?;
            if let Ok(data) = frame.into_data() {
                len += data.len() as u64;
                match read {
                    Read::Keep => kept.extend_from_slice(&data),
                    Read::Hash => {
                        if let Some(h) = hasher.as_mut() {
                            h.update(&data);
                        }
                    }
                    Read::Count => {}
                }
            }
        }
        Ok(Resp {
            status,
            headers: parts.headers,
            body: Bytes::from(kept),
            body_len: len,
            digest: hasher.map(|h| format!("sha256:{}", crate::util::hex(&h.finalize()))),
        })
    }
}

/// The origin-form path of a `Location` (absolute URLs lose their scheme
/// and authority).
pub fn location_path(loc: &str) -> String {
    if let Some(rest) = loc
        .strip_prefix("http://")
        .or_else(|| loc.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        }
    } else {
        loc.to_string()
    }
}

/// Appends a query parameter to a path that may already have a query.
pub fn with_query(path: &str, kv: &str) -> String {
    if path.contains('?') {
        format!("{path}&{kv}")
    } else {
        format!("{path}?{kv}")
    }
}

/// A current-thread or multi-thread tokio runtime.
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    rt.map_err(|e| format!("runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(location_path("http://127.0.0.1:5000/v2/a?x=1"), "/v2/a?x=1");
        assert_eq!(location_path("/v2/a"), "/v2/a");
        assert_eq!(with_query("/v2/a?x=1", "digest=d"), "/v2/a?x=1&digest=d");
        assert_eq!(with_query("/v2/a", "digest=d"), "/v2/a?digest=d");
    }
}
