//! A fault-injecting HTTP proxy between berth's S3 driver and the object
//! store: each request, by a seeded schedule, is passed through or answered
//! with a 503 SlowDown, a 500 InternalError, a reset connection, a stall
//! (the answer held back 1 s, then passed), or a response whose body is
//! cut half-way. It counts what it did and how often each request (method
//! and path) came, so retries can be counted. Forced on demand (never by
//! the schedule): a store that never answers (`Hang`) or sends the head
//! and half the body and then nothing more (`HangBody`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the proxy did to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Pass,
    SlowDown,
    Internal,
    Reset,
    Stall,
    Truncate,
    /// The request is read, then nothing is ever sent back.
    Hang,
    /// The real status, headers and half the body, then nothing more
    /// (the connection stays open).
    HangBody,
}

const FAULTS: [Fault; 5] = [
    Fault::SlowDown,
    Fault::Internal,
    Fault::Reset,
    Fault::Stall,
    Fault::Truncate,
];

/// What the proxy saw and did.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub by_fault: BTreeMap<String, u32>,
    /// Requests that repeat (same `METHOD path?query`) one the proxy had
    /// failed: retries.
    pub retries: u32,
    /// Per request key, (was its last attempt failed, attempts in a row
    /// since one got through).
    chains: BTreeMap<String, (bool, u32)>,
    /// The longest run of attempts of one request.
    pub most_attempts: u32,
    pub requests: u32,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    rng: Mutex<StdRng>,
    /// Faults per thousand requests.
    rate: AtomicU32,
    /// When set, every request gets this fault (an outage).
    forced: Mutex<Option<Fault>>,
    /// When set, only requests whose `METHOD path?query` contains this get
    /// the forced fault; the others pass.
    forced_on: Mutex<Option<String>>,
    counts: Mutex<Counts>,
}

/// A running proxy on 127.0.0.1, stopped on drop.
pub struct FaultProxy {
    pub port: u16,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://127.0.0.1:PORT`) with faults on
    /// `per_mille` of the requests, chosen from `seed`.
    pub fn start(upstream: &str, seed: u64, per_mille: u32) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rate: AtomicU32::new(per_mille),
            forced: Mutex::new(None),
            forced_on: Mutex::new(None),
            counts: Mutex::new(Counts::default()),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::pin!(stopped);
                loop {
                    let conn = tokio::select! {
                        _ = &mut stopped => break,
                        c = listener.accept() => c,
                    };
                    let Ok((sock, _)) = conn else { continue };
                    let st = Arc::clone(&st);
                    tokio::spawn(async move {
                        let svc =
                            hyper::service::service_fn(move |req| handle(Arc::clone(&st), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(sock), svc)
                            .await;
                    });
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        FaultProxy {
            port,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Faults on `per_mille` of the requests from now on.
    pub fn set_rate(&self, per_mille: u32) {
        self.state.rate.store(per_mille, Ordering::SeqCst);
    }

    /// Every request gets `fault` (or, with `None`, the schedule again).
    pub fn force(&self, fault: Option<Fault>) {
        *self.state.forced_on.lock().expect("forced_on") = None;
        *self.state.forced.lock().expect("forced") = fault;
    }

    /// Requests whose `METHOD path?query` contains `needle` get `fault`;
    /// all others pass. `force(None)` ends it.
    pub fn force_where(&self, fault: Fault, needle: &str) {
        *self.state.forced_on.lock().expect("forced_on") = Some(needle.to_string());
        *self.state.forced.lock().expect("forced") = Some(fault);
    }

    /// What happened so far; `reset` starts counting again.
    pub fn counts(&self, reset: bool) -> Counts {
        let mut c = self.state.counts.lock().expect("counts");
        let out = c.clone();
        if reset {
            *c = Counts::default();
        }
        out
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(status: u16, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(
            Full::new(Bytes::from(text.to_string()))
                .map_err(|e: Infallible| match e {})
                .boxed(),
        )
        .expect("response")
}

fn s3_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>fault-proxy</RequestId></Error>"
    )
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
    let key = format!("{} {}", req.method(), req.uri());
    let fault = {
        let mut forced = *st.forced.lock().expect("forced");
        if let Some(needle) = st.forced_on.lock().expect("forced_on").as_deref() {
            if !key.contains(needle) {
                forced = Some(Fault::Pass);
            }
        }
        let mut rng = st.rng.lock().expect("rng");
        forced.unwrap_or_else(|| {
            if rng.gen_range(0..1000) < st.rate.load(Ordering::SeqCst) {
                FAULTS[rng.gen_range(0..FAULTS.len())]
            } else {
                Fault::Pass
            }
        })
    };
    {
        let mut c = st.counts.lock().expect("counts");
        *c.by_fault.entry(format!("{fault:?}")).or_default() += 1;
        c.requests += 1;
        let chain = c.chains.entry(key).or_insert((false, 0));
        let retry = chain.0;
        chain.1 = if retry { chain.1 + 1 } else { 1 };
        // A stall is passed on in the end; everything else failed.
        chain.0 = !matches!(fault, Fault::Pass | Fault::Stall);
        let attempts = chain.1;
        c.most_attempts = c.most_attempts.max(attempts);
        c.retries += u32::from(retry);
    }
    match fault {
        Fault::SlowDown => {
            drain(req).await;
            return Ok(full(
                503,
                &s3_error("SlowDown", "Please reduce your request rate."),
            ));
        }
        Fault::Internal => {
            drain(req).await;
            return Ok(full(
                500,
                &s3_error("InternalError", "We encountered an internal error."),
            ));
        }
        // No answer: the connection is closed under the client.
        Fault::Reset => return Err(std::io::Error::other("fault proxy: reset")),
        Fault::Stall => tokio::time::sleep(Duration::from_secs(1)).await,
        Fault::Hang => {
            drain(req).await;
            // Held until the client gives up and the connection closes.
            match std::future::pending::<Infallible>().await {}
        }
        Fault::Pass | Fault::Truncate | Fault::HangBody => {}
    }
    let resp = match forward(&st, req).await {
        Ok(r) => r,
        Err(e) => return Ok(full(502, &s3_error("BadGateway", &e))),
    };
    if !matches!(fault, Fault::Truncate | Fault::HangBody) {
        return Ok(resp);
    }
    // The status and Content-Length of the real answer, half its body,
    // then the connection breaks (or, for `HangBody`, stays silent).
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let head = futures::stream::iter(vec![Ok(Frame::data(half))]);
    if fault == Fault::HangBody {
        let stream = head.chain(futures::stream::pending());
        return Ok(Response::from_parts(
            parts,
            BodyExt::boxed(StreamBody::new(stream)),
        ));
    }
    let stream = head.chain(futures::stream::iter(vec![Err(std::io::Error::other(
        "fault proxy: body cut",
    ))]));
    Ok(Response::from_parts(
        parts,
        BodyExt::boxed(StreamBody::new(stream)),
    ))
}

async fn drain(req: Request<Incoming>) {
    let _ = req.into_body().collect().await;
}

async fn forward(st: &State, req: Request<Incoming>) -> Result<Response<Body>, String> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let url = format!(
        "{}{}",
        st.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut out = st.client.request(parts.method.clone(), url).body(body);
    for (k, v) in &parts.headers {
        // Host stays as signed (SigV4 covers it); the rest is passed on.
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out = out.header(k, v);
        }
    }
    let resp = out.send().await.map_err(|e| e.to_string())?;
    let mut builder = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if k != "transfer-encoding" && k != "connection" {
            builder = builder.header(k, v);
        }
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    builder
        .body(Full::new(bytes).map_err(|e: Infallible| match e {}).boxed())
        .map_err(|e| e.to_string())
}
