//! The TLS accept loop: each TCP connection's first byte decides. A TLS
//! handshake record (0x16) goes through rustls, then hyper's auto builder
//! (HTTP/1.1 or HTTP/2, by ALPN and preface) serving the axum router.
//! Anything else is a plain-HTTP client on the TLS port: it gets a short
//! `400` saying to use `https://`, instead of a hang or a garbled error.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use super::TlsSetup;
use crate::http::forwarded::ViaTls;
use crate::http::server;

/// The start of the body a plain-HTTP request to the TLS port gets.
pub const PLAIN_HTTP_ON_TLS_PORT: &str = "this port speaks HTTPS; use https://";

/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then stops
/// accepting and lets open connections finish their requests for up to
/// `settings.drain` (`http.draintimeout`; 30 s when zero). A new connection
/// has `settings.handshake` (`http.tls.handshaketimeout`) to send its first
/// byte and finish the handshake.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: TlsSetup,
    settings: server::ConnSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls.server_config);
    let watcher = tls.resolver.clone().spawn_watcher();
    let builder = Arc::new(server::connection_builder(&settings));
    let limiter = settings.limiter();
    let local = listener.local_addr().context("listener address")?;
    let stopper = server::Stopper::new();
    tokio::pin!(shutdown);
    while let Some((tcp, peer, permit)) = server::accept(&listener, &limiter, &mut shutdown).await {
        let conn = Conn {
            acceptor: acceptor.clone(),
            builder: builder.clone(),
            app: app.clone(),
            stop: stopper.watcher(),
            settings,
            local,
        };
        let span = tracing::info_span!("https", %peer);
        tokio::spawn(
            async move {
                conn.run(tcp, peer).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
    drop(listener);
    watcher.abort();
    stopper.drain(settings.drain).await;
    Ok(())
}

/// Everything one connection's task needs.
struct Conn {
    acceptor: TlsAcceptor,
    builder: Arc<auto::Builder<server::SpanExecutor>>,
    app: Router,
    stop: watch::Receiver<bool>,
    settings: server::ConnSettings,
    local: SocketAddr,
}

impl Conn {
    async fn run(self, tcp: TcpStream, peer: SocketAddr) {
        let limit = self.settings.handshake;
        let started = tokio::time::Instant::now();
        let mut first = [0u8; 1];
        match within(limit, tcp.peek(&mut first)).await {
            Some(Ok(1..)) => {}
            Some(Ok(_)) | None => return, // closed, or silent too long
            Some(Err(e)) => {
                tracing::debug!("reading from {peer}: {e}");
                return;
            }
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            tracing::info!("plain HTTP request on the TLS port; answered 400 (use https://)");
            refuse_plain_http(tcp, self.local).await;
            return;
        }
        let left = if limit.is_zero() {
            limit
        } else {
            limit
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1))
        };
        let tls = match within(left, self.acceptor.accept(tcp)).await {
            Some(Ok(tls)) => tls,
            Some(Err(e)) => {
                // Clients without the CA, or without a client certificate.
                tracing::debug!("TLS handshake with {peer} failed: {e}");
                return;
            }
            None => {
                tracing::debug!("TLS handshake with {peer} took over {limit:?}; dropped");
                return;
            }
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        server::serve_connection(
            tls,
            peer,
            h2,
            self.app,
            mark_https,
            &self.builder,
            &self.settings,
            self.stop,
        )
        .await;
    }
}

/// `fut`'s output, or `None` when `limit` (non-zero) passes first.
async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    if limit.is_zero() {
        return Some(fut.await);
    }
    tokio::time::timeout(limit, fut).await.ok()
}

/// Tells the router the request came over TLS: the [`ViaTls`] mark, from
/// which the router states `X-Forwarded-Proto: https` (unless a trusted
/// proxy in front already said; see `http::forwarded`), so absolute
/// `Location` URLs say `https://`; and `Host` from the HTTP/2
/// `:authority`, which HTTP/2 clients send instead of `Host`.
fn mark_https(
    mut req: axum::http::Request<hyper::body::Incoming>,
) -> axum::http::Request<hyper::body::Incoming> {
    use axum::http::header::{HeaderValue, HOST};
    req.extensions_mut().insert(ViaTls);
    if !req.headers().contains_key(HOST) {
        let authority = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        if let Some(host) = authority {
            req.headers_mut().insert(HOST, host);
        }
    }
    req
}

/// Answers a plain-HTTP client on the TLS port with `400` and a body naming
/// the `https://` URL to use, then closes. The request head is read first
/// (bounded) so closing does not reset the connection before the client
/// reads the answer.
async fn refuse_plain_http(mut tcp: TcpStream, local: SocketAddr) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read_head).await;
    let host = host_header(&head).unwrap_or_else(|| local.to_string());
    let body = format!("{PLAIN_HTTP_ON_TLS_PORT}{host}\n");
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        // Drain whatever the client still sends until it closes.
        while tcp.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The request's `Host` header, when it is a plain `host[:port]`.
fn host_header(head: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    let value = text.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim().to_string())
    })?;
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    plain.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::host_header;

    #[test]
    fn host_header_parsing() {
        let head = b"GET /v2/ HTTP/1.1\r\nUser-Agent: x\r\nHOST: reg.example:5000\r\n\r\n";
        assert_eq!(host_header(head).as_deref(), Some("reg.example:5000"));
        assert_eq!(host_header(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(
            host_header(b"GET / HTTP/1.1\r\nHost: <script>\r\n\r\n"),
            None
        );
        assert_eq!(
            host_header(b"GET / HTTP/1.1\r\nHost: [::1]:5000\r\n\r\n").as_deref(),
            Some("[::1]:5000")
        );
    }
}
