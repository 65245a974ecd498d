//! Serving connections: the hyper connection settings shared by the plain
//! and the TLS listener, the plain-HTTP accept loop, and the drain on
//! shutdown. A loop of our own rather than `axum::serve`, which exposes no
//! hyper settings: the read buffer size alone moves push CPU by 12 %.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::EXPECT;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

use super::activity::{Activity, GuardedBody};
use super::conn_limit::{ConnLimiter, ConnPermit};
use super::early;
use super::head_limit::HeadLimited;

/// Largest read buffer of an HTTP/1 connection (hyper's default is about
/// 400 KiB). A blob upload then takes up to 2 MiB per `recv`: fewer reads,
/// wake-ups and scheduler round trips per GiB. Measured on 512 MiB
/// monolithic pushes, interleaved: 1.08 CPU-s/GiB with the default, 0.95
/// with 1 MiB, 0.92 with 2 MiB (docs/performance.md). The buffer grows only
/// while reads fill it, so small requests keep hyper's 8 KiB. A request
/// head is bounded separately and much lower (`http.maxheaderbytes`,
/// `head_limit`), so the large buffer serves only bodies.
pub const READ_BUF_MAX: usize = 2 << 20;

/// How long shutdown waits for in-flight requests when `http.draintimeout`
/// is not set.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// HTTP/2 keep-alive: a PING after this long without a frame from the
/// client...
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// ...and the connection closed when its ACK does not come within this.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Most concurrent streams of one HTTP/2 connection (Go's server default).
const H2_MAX_STREAMS: u32 = 250;

/// How long a connection closed for idleness (or asked to stop) may take
/// to wind down before it is dropped (an HTTP/2 peer stuck mid-HEADERS
/// never answers the GOAWAY's PING).
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// The connection settings `berth serve` applies, from the `http` section.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    /// How long shutdown waits for in-flight requests (30 s when zero).
    pub drain: Duration,
    /// How long a client may take to send a request head once it started
    /// (slow-header clients otherwise hold connections forever); zero: no
    /// limit.
    pub read_header: Duration,
    /// How long a connection may sit with no request in progress; zero: no
    /// limit.
    pub idle: Duration,
    /// How long the TLS port waits for the first byte and the handshake.
    pub handshake: Duration,
    /// Serve HTTP/2 (ALPN `h2` over TLS, h2c on the plain port).
    pub http2: bool,
    /// Largest request head (HTTP/1) or header list (HTTP/2); zero: no
    /// bound beyond the read buffer.
    pub max_header_bytes: usize,
    /// Most open connections; zero: no cap.
    pub max_connections: usize,
    /// Most open connections per client address; zero: no cap.
    pub max_connections_per_client: usize,
}

impl ConnSettings {
    /// From the `http` section.
    pub fn from_config(http: &crate::config::HttpConfig) -> ConnSettings {
        ConnSettings {
            drain: http.draintimeout,
            read_header: http.readheadertimeout,
            idle: http.idletimeout,
            handshake: http.tls.handshaketimeout,
            http2: !http.http2.disabled,
            max_header_bytes: http.maxheaderbytes,
            max_connections: http.maxconnections,
            max_connections_per_client: http.maxconnectionsperclient,
        }
    }

    /// The cap on open connections these settings ask for.
    pub fn limiter(&self) -> Arc<ConnLimiter> {
        ConnLimiter::new(self.max_connections, self.max_connections_per_client)
    }
}

/// hyper's connection builder with berth's settings; HTTP/2 only where
/// `settings.http2` says.
pub fn connection_builder(settings: &ConnSettings) -> auto::Builder<SpanExecutor> {
    let mut builder = auto::Builder::new(SpanExecutor);
    builder.http1().max_buf_size(READ_BUF_MAX);
    if !settings.read_header.is_zero() {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.read_header);
    }
    if !settings.http2 {
        return builder.http1_only();
    }
    let mut h2 = builder.http2();
    h2.timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        .max_concurrent_streams(H2_MAX_STREAMS);
    if settings.max_header_bytes > 0 {
        h2.max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    }
    builder
}

/// The router as a hyper service for one connection from `peer`: the peer
/// address goes into each request as axum's `ConnectInfo` (access log,
/// login throttling), after `tweak` (the TLS listener marks HTTPS). Each
/// request counts as in progress on `activity` until its response body is
/// sent, and an early response waits for a small unread body
/// (`early::settle`).
pub fn service_for(
    app: Router,
    peer: SocketAddr,
    tweak: fn(Request<Incoming>) -> Request<Incoming>,
    activity: Arc<Activity>,
) -> TowerToHyperService<
    impl tower::Service<
            Request<Incoming>,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send,
> {
    TowerToHyperService::new(tower::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        let guard = activity.start();
        async move {
            let mut req = tweak(req);
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let version = req.version();
            let expects_continue = req
                .headers()
                .get(EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            let (req, unread) = early::track(req);
            let Ok(resp) = app.oneshot(req).await;
            let resp = early::settle(resp, unread, version, expects_continue).await;
            Ok::<_, Infallible>(resp.map(|b| Body::new(GuardedBody::new(b, guard))))
        }
    }))
}

/// Accepts the next connection that fits under `limiter`'s caps (others
/// are closed at once); accept errors (EMFILE and friends) are logged and
/// retried after a pause instead of spinning. `None` once `shutdown`
/// resolved.
pub async fn accept(
    listener: &TcpListener,
    limiter: &Arc<ConnLimiter>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<(TcpStream, SocketAddr, ConnPermit)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Some(permit) = limiter.try_acquire(peer.ip()) else {
                        drop(tcp);
                        continue;
                    };
                    // Responses go out whole (one writev); no reason to wait.
                    let _ = tcp.set_nodelay(true);
                    return Some((tcp, peer, permit));
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

/// Tells open connections to finish; see [`Stopper::drain`].
pub struct Stopper {
    tx: watch::Sender<bool>,
}

impl Stopper {
    /// A stopper no connection watches yet.
    pub fn new() -> Stopper {
        Stopper {
            tx: watch::channel(false).0,
        }
    }

    /// What one connection watches.
    pub fn watcher(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Asks every connection to finish its requests and close, and waits
    /// up to `drain` (`http.draintimeout`; 30 s when zero) for them.
    pub async fn drain(self, drain: Duration) {
        let drain = if drain.is_zero() {
            DEFAULT_DRAIN
        } else {
            drain
        };
        tracing::info!(
            "shutting down: waiting up to {}s for {} open connection(s)",
            drain.as_secs(),
            self.tx.receiver_count()
        );
        let _ = self.tx.send(true);
        if tokio::time::timeout(drain, self.tx.closed()).await.is_err() {
            tracing::warn!("connections still open after {drain:?}; closing them");
        }
    }
}

impl Default for Stopper {
    fn default() -> Self {
        Stopper::new()
    }
}

/// Serves one accepted connection (plain TCP, or TLS after the handshake)
/// until it ends: heads bounded (`head_limit`), closed after
/// `settings.idle` with no request in progress, and wound down when
/// `stop` says so. `h2`: the connection negotiated HTTP/2 by ALPN.
#[allow(clippy::too_many_arguments)]
pub async fn serve_connection<T>(
    io: T,
    peer: SocketAddr,
    h2: bool,
    app: Router,
    tweak: fn(Request<Incoming>) -> Request<Incoming>,
    builder: &auto::Builder<SpanExecutor>,
    settings: &ConnSettings,
    mut stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let io = HeadLimited::new(io, activity.clone(), settings.max_header_bytes, h2);
    let service = service_for(app, peer, tweak, activity.clone());
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    tokio::pin!(conn);
    let mut stopping = false;
    let mut closing: Option<Instant> = None;
    loop {
        let wake = match (closing, activity.idle_since()) {
            (Some(deadline), _) => Some(deadline),
            _ if settings.idle.is_zero() => None,
            (None, Some(since)) => Some(since + settings.idle),
            (None, None) => Some(Instant::now() + settings.idle),
        };
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!("connection from {peer} ended: {e}");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = sleep_until_or_never(wake) => {
                let now = Instant::now();
                if closing.is_some_and(|deadline| now >= deadline) {
                    tracing::debug!("connection from {peer} did not close in time; dropped");
                    return;
                }
                let idle_for = activity.idle_since().map(|since| now.duration_since(since));
                if closing.is_none() && idle_for.is_some_and(|d| d >= settings.idle) {
                    tracing::debug!("closing connection from {peer}: idle for {idle_for:?}");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(now + CLOSE_GRACE);
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Serves `app` over plain HTTP on `listener` until `shutdown` resolves,
/// then drains as [`Stopper::drain`] does. HTTP/1.1, and HTTP/2 with prior
/// knowledge (h2c) unless `http.http2.disabled`.
pub async fn serve_plain(
    listener: TcpListener,
    app: Router,
    settings: ConnSettings,
    shutdown: impl Future<Output = ()>,
) {
    let builder = Arc::new(connection_builder(&settings));
    let limiter = settings.limiter();
    let stopper = Stopper::new();
    tokio::pin!(shutdown);
    while let Some((tcp, peer, permit)) = accept(&listener, &limiter, &mut shutdown).await {
        let (app, builder, stop) = (app.clone(), builder.clone(), stopper.watcher());
        let span = tracing::info_span!("http", %peer);
        tokio::spawn(
            async move {
                serve_connection(tcp, peer, false, app, |r| r, &builder, &settings, stop).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
    drop(listener);
    stopper.drain(settings.drain).await;
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
