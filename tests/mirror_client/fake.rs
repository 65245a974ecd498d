//! Scripted HTTP servers on 127.0.0.1 for what a real registry will not do
//! on demand (recording token realms, 503s, redirects to other hosts,
//! stalled bodies). Each records every request it receives; it stops when
//! dropped.

use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
}

/// A running scripted server.
pub struct Fake {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Fake {
    /// Serves every request with `handler`, on a free port of 127.0.0.1.
    pub async fn start<F, Fut>(handler: F) -> Fake
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler = Arc::new(handler);
        let app = axum::Router::new().fallback(move |req: Request| {
            let log = log.clone();
            let handler = handler.clone();
            async move {
                let s = Seen {
                    method: req.method().to_string(),
                    path: req.uri().path().to_string(),
                    query: req.uri().query().unwrap_or("").to_string(),
                    authorization: req
                        .headers()
                        .get("authorization")
                        .map(|v| v.to_str().unwrap_or("<binary>").to_string()),
                };
                log.lock().unwrap().push(s.clone());
                handler(s).await
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Fake {
            port,
            seen,
            _stop: tx,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `http://<host>:PORT` (`host` is `127.0.0.1` or `localhost`).
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }
}

/// A response with `status`, `headers` and `body`.
pub fn resp(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}
