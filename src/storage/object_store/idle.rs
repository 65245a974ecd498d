//! An idle timeout on every object-store request: the HTTP client under
//! `object_store` (whose own `timeout` bounds a whole transfer, which berth
//! must disable for large blobs) with a clock that runs only while berth
//! waits on the store. Sending a request body, waiting for the response
//! head, and each wait for a chunk of the response body must see progress
//! within `idle`; a transfer that keeps moving may take as long as it needs.
//! A store that accepts a request and then sends nothing is cut off, the
//! request fails as a timeout (retried by `object_store` within its retry
//! budget, then `storage unavailable`), and its connection is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService, ReqwestConnector,
};
use object_store::{ClientConfigKey, ClientOptions};
use tokio::time::{Instant, Sleep};

/// Words of the timeout error; `Inner::err` reports it as `storage
/// unavailable`.
pub(crate) const IDLE_MESSAGE: &str = "no data from the object store for";

/// Request bodies are handed to the connection in slices this size, so the
/// clock sees a slow upload moving.
const SLICE: usize = 64 << 10;

/// Builds the store's HTTP client with the idle clock around every request
/// (or, with no limit, `object_store`'s own client).
#[derive(Debug, Clone, Copy)]
pub struct IdleConnector {
    idle: Option<Duration>,
}

/// The connector for `storage.<driver>.idletimeout`: `0s` means no limit.
pub fn connector(idle: Duration) -> IdleConnector {
    IdleConnector {
        idle: (!idle.is_zero()).then_some(idle),
    }
}

impl HttpConnector for IdleConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let Some(idle) = self.idle else {
            return ReqwestConnector::default().connect(options);
        };
        let client = reqwest_client(options).map_err(|e| object_store::Error::Generic {
            store: "HTTP client",
            source: Box::new(e),
        })?;
        Ok(HttpClient::new(IdleService { client, idle }))
    }
}

/// The reqwest client `object_store` would build from the options berth
/// and the environment can set (`ClientOptions::client` is private).
fn reqwest_client(o: &ClientOptions) -> reqwest::Result<reqwest::Client> {
    let get = |k: ClientConfigKey| o.get_config_value(&k);
    let flag = |k: ClientConfigKey| get(k).is_some_and(|v| v == "true");
    let duration = |k: ClientConfigKey| {
        get(k).and_then(|v| crate::config::duration::parse_go_duration(&v).ok())
    };
    let mut b = reqwest::Client::builder()
        .user_agent(get(ClientConfigKey::UserAgent).unwrap_or_else(|| {
            concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")).to_string()
        }))
        .connect_timeout(
            duration(ClientConfigKey::ConnectTimeout).unwrap_or(Duration::from_secs(5)),
        )
        .danger_accept_invalid_certs(flag(ClientConfigKey::AllowInvalidCertificates))
        .https_only(!flag(ClientConfigKey::AllowHttp))
        // Compression would break Content-Length, which gives object sizes.
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .no_deflate();
    if let Some(t) = duration(ClientConfigKey::Timeout) {
        b = b.timeout(t);
    }
    if let Some(t) = duration(ClientConfigKey::PoolIdleTimeout) {
        b = b.pool_idle_timeout(t);
    }
    if let Some(url) = get(ClientConfigKey::ProxyUrl) {
        let mut proxy = reqwest::Proxy::all(&url)?;
        if let Some(no) = get(ClientConfigKey::ProxyExcludes) {
            proxy = proxy.no_proxy(reqwest::NoProxy::from_string(&no));
        }
        b = b.proxy(proxy);
    }
    if flag(ClientConfigKey::Http1Only) {
        b = b.http1_only();
    }
    if flag(ClientConfigKey::Http2Only) {
        b = b.http2_prior_knowledge();
    }
    b.build()
}

/// When the store last showed progress, shared by a request's body and its
/// wait for the response head.
#[derive(Debug, Clone)]
struct Clock(Arc<Mutex<Instant>>);

impl Clock {
    fn new() -> Self {
        Clock(Arc::new(Mutex::new(Instant::now())))
    }

    fn touch(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = Instant::now();
        }
    }

    fn last(&self) -> Instant {
        self.0.lock().map_or_else(|_| Instant::now(), |t| *t)
    }
}

#[derive(Debug)]
struct IdleService {
    client: reqwest::Client,
    idle: Duration,
}

fn timeout(idle: Duration) -> HttpError {
    HttpError::new(
        HttpErrorKind::Timeout,
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{IDLE_MESSAGE} {}s", idle.as_secs_f64()),
        ),
    )
}

#[async_trait]
impl HttpService for IdleService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        let mut out = reqwest::Request::new(parts.method, url);
        *out.headers_mut() = parts.headers;
        let clock = Clock::new();
        *out.body_mut() = Some(if body.content_length() == 0 {
            reqwest::Body::from(Bytes::new())
        } else {
            reqwest::Body::wrap(Progress {
                inner: body,
                rest: Bytes::new(),
                clock: clock.clone(),
            })
        });
        let pending = self.client.execute(out);
        tokio::pin!(pending);
        let res = loop {
            let deadline = clock.last() + self.idle;
            tokio::select! {
                res = &mut pending => break res.map_err(http_error)?,
                () = tokio::time::sleep_until(deadline) => {
                    // The body may have moved meanwhile: then wait again.
                    if clock.last() + self.idle <= Instant::now() {
                        return Err(timeout(self.idle));
                    }
                }
            }
        };
        let res: http::Response<reqwest::Body> = res.into();
        let (parts, body) = res.into_parts();
        let body = IdleBody {
            inner: body.map_err(http_error),
            idle: self.idle,
            sleep: Box::pin(tokio::time::sleep(self.idle)),
            waiting: false,
        };
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// A reqwest error with the kind `object_store` retries on: timeouts,
/// refused connections, and connections closed or reset mid-request.
fn http_error(e: reqwest::Error) -> HttpError {
    let mut kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Unknown
    };
    let mut source = std::error::Error::source(&e);
    while let (HttpErrorKind::Unknown, Some(s)) = (kind, source) {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_closed() || h.is_incomplete_message() || h.is_body_write_aborted() {
                kind = HttpErrorKind::Request;
            } else if h.is_timeout() {
                kind = HttpErrorKind::Timeout;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::TimedOut => kind = HttpErrorKind::Timeout,
                K::ConnectionAborted | K::ConnectionReset | K::BrokenPipe | K::UnexpectedEof => {
                    kind = HttpErrorKind::Interrupted
                }
                _ => {}
            }
        }
        source = s.source();
    }
    HttpError::new(kind, e.without_url())
}

/// A request body handed out in slices, each one moving the clock.
struct Progress {
    inner: HttpRequestBody,
    rest: Bytes,
    clock: Clock,
}

impl Body for Progress {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.rest.is_empty() {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.rest = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return other,
            }
        }
        let n = self.rest.len().min(SLICE);
        let slice = self.rest.split_to(n);
        self.clock.touch();
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + rest);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

/// A response body that fails when a wait for its next chunk lasts
/// `idle`; the clock starts when berth asks for a chunk the store has not
/// sent, so a slow registry client does not count against the store.
struct IdleBody<B> {
    inner: B,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes, Error = HttpError> + Unpin,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                self.waiting = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.waiting {
                    self.waiting = true;
                    let at = Instant::now() + self.idle;
                    self.sleep.as_mut().reset(at);
                }
                match self.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(timeout(self.idle)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
