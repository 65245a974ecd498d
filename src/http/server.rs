//! Serving connections: the hyper connection settings shared by the plain
//! and the TLS listener, the plain-HTTP accept loop, and the drain on
//! shutdown. A loop of our own rather than `axum::serve`, which exposes no
//! hyper settings: the read buffer size alone moves push CPU by 12 %.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;
use tracing::Instrument;

/// Largest read buffer of an HTTP/1 connection (hyper's default is about
/// 400 KiB). A blob upload then takes up to 2 MiB per `recv`: fewer reads,
/// wake-ups and scheduler round trips per GiB. Measured on 512 MiB
/// monolithic pushes, interleaved: 1.08 CPU-s/GiB with the default, 0.95
/// with 1 MiB, 0.92 with 2 MiB (docs/performance.md). The buffer grows only
/// while reads fill it, so small requests keep hyper's 8 KiB. It also bounds
/// a request head: one that overflows it gets 431 (Go's net/http allows
/// 1 MiB; tests/api/socket.rs).
pub const READ_BUF_MAX: usize = 2 << 20;

/// How long shutdown waits for in-flight requests when `http.draintimeout`
/// is not set.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// The connection timings `berth serve` applies (`http.draintimeout`,
/// `http.readheadertimeout`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// How long shutdown waits for in-flight requests (30 s when zero).
    pub drain: Duration,
    /// How long a client may take to send a request head, idle keep-alive
    /// time included (slow-header clients otherwise hold connections
    /// forever); zero: no limit.
    pub read_header: Duration,
}

impl Timeouts {
    /// From the `http` section.
    pub fn from_config(http: &crate::config::HttpConfig) -> Timeouts {
        Timeouts {
            drain: http.draintimeout,
            read_header: http.readheadertimeout,
        }
    }
}

/// hyper's connection builder with berth's settings; HTTP/2 only where
/// asked (TLS with ALPN).
pub fn connection_builder(http2: bool, timeouts: Timeouts) -> auto::Builder<SpanExecutor> {
    let mut builder = auto::Builder::new(SpanExecutor);
    builder.http1().max_buf_size(READ_BUF_MAX);
    if !timeouts.read_header.is_zero() {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.read_header);
    }
    if !http2 {
        builder = builder.http1_only();
    }
    builder
}

/// The router as a hyper service for one connection from `peer`: the peer
/// address goes into each request as axum's `ConnectInfo` (access log,
/// login throttling), after `tweak` (the TLS listener marks HTTPS).
pub fn service_for(
    app: Router,
    peer: SocketAddr,
    tweak: fn(
        axum::http::Request<hyper::body::Incoming>,
    ) -> axum::http::Request<hyper::body::Incoming>,
) -> TowerToHyperService<
    impl tower::Service<
            axum::http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send,
> {
    TowerToHyperService::new(app.map_request(
        move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            tweak(req)
        },
    ))
}

/// Accepts the next connection; accept errors (EMFILE and friends) are
/// logged and retried after a pause instead of spinning. `None` once
/// `shutdown` resolved.
pub async fn accept(
    listener: &TcpListener,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Responses go out whole (one writev); no reason to wait.
                    let _ = tcp.set_nodelay(true);
                    return Some((tcp, peer));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// Lets open connections finish their requests for up to `drain`
/// (`http.draintimeout`; 30 s when zero), then returns.
pub async fn drain_connections(graceful: GracefulShutdown, drain: Duration) {
    let drain = if drain.is_zero() {
        DEFAULT_DRAIN
    } else {
        drain
    };
    tracing::info!(
        "shutting down: waiting up to {}s for {} open connection(s)",
        drain.as_secs(),
        graceful.count()
    );
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}; closing them");
    }
}

/// Serves `app` over plain HTTP on `listener` until `shutdown` resolves,
/// then drains as [`drain_connections`] does. HTTP/1.1, and HTTP/2 with
/// prior knowledge (h2c) as `axum::serve` allowed before.
pub async fn serve_plain(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) {
    let builder = connection_builder(true, timeouts);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    while let Some((tcp, peer)) = accept(&listener, &mut shutdown).await {
        let conn = builder
            .clone()
            .serve_connection(TokioIo::new(tcp), service_for(app.clone(), peer, |r| r))
            .into_owned();
        let watcher: Watcher = graceful.watcher();
        tokio::spawn(async move {
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
    drop(listener);
    drain_connections(graceful, timeouts.drain).await;
}

/// Spawns hyper's per-stream tasks (HTTP/2) inside the connection's span, so
/// access-log lines name the peer for HTTP/2 requests too.
#[derive(Clone, Copy, Debug)]
pub struct SpanExecutor;

impl<F> hyper::rt::Executor<F> for SpanExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut.in_current_span());
    }
}
