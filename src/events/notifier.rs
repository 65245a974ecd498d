//! The [`EventSink`] that delivers: per endpoint, a bounded channel the
//! request path `try_send`s into (never waiting), an intake task moving
//! events into the endpoint's backlog (memory or journal), and a delivery
//! task sending the backlog's head until it is accepted.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Notify};

use super::backlog::{Backlog, Offered};
use super::deliver::{delay, Sender};
use super::envelope::{Event, SourceRecord};
use super::journal::Journal;
use super::status::EndpointStatus;
use super::{EventSink, RegistryEvent, RequestContext};
use crate::config::notifications::EndpointConfig;
use crate::config::{Config, StorageDriverConfig};

/// Delivery counters of one endpoint.
#[derive(Default)]
pub(super) struct Counters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dropped: AtomicU64,
    /// The latest failure's text, for `/debug/events` and the status page.
    pub last_error: Mutex<Option<String>>,
}

/// One configured endpoint while serving.
struct Endpoint {
    cfg: EndpointConfig,
    tx: mpsc::Sender<Event>,
    counters: Counters,
    backlog: Mutex<Backlog>,
    wake: Notify,
    durable: bool,
}

impl Endpoint {
    fn ignores(&self, e: &Event) -> bool {
        let mt = &e.target.media_type;
        let c = &self.cfg;
        c.ignore.actions.contains(&e.action)
            || (!mt.is_empty()
                && (c.ignoredmediatypes.contains(mt) || c.ignore.mediatypes.contains(mt)))
    }

    fn drop_one(&self, why: &str) {
        let n = self.counters.dropped.fetch_add(1, Relaxed) + 1;
        if n == 1 || n.is_multiple_of(1000) {
            tracing::error!(endpoint = %self.cfg.name, dropped = n, "notification dropped: {why}");
        }
    }

    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Delivers events to the configured endpoints.
pub struct Notifier {
    endpoints: Vec<Arc<Endpoint>>,
    source: SourceRecord,
    include_references: bool,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Notifier {
    /// Starts delivery for the enabled endpoints of `config` (replaying
    /// journals on filesystem storage); `None` when there are none. Needs
    /// a tokio runtime.
    pub fn start(config: &Config) -> anyhow::Result<Option<Arc<Notifier>>> {
        let Some(n) = &config.notifications else {
            return Ok(None);
        };
        let enabled: Vec<&EndpointConfig> = n.endpoints.iter().filter(|e| !e.disabled).collect();
        for e in n.endpoints.iter().filter(|e| e.disabled) {
            tracing::info!(endpoint = %e.name, "notifications endpoint disabled, skipping");
        }
        if enabled.is_empty() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("notifications need a running tokio runtime"))?;
        let journal_dir = match config.storage_driver() {
            Ok(StorageDriverConfig::Filesystem { root, .. }) => {
                Some(std::path::Path::new(&root).join("_berth").join("events"))
            }
            _ => None,
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut endpoints = Vec::new();
        let mut tasks = Vec::new();
        for cfg in enabled {
            let sender = Sender::new(cfg)
                .map_err(|e| anyhow::anyhow!("notifications endpoint {:?}: {e}", cfg.name))?;
            let (backlog, durable) = open_backlog(journal_dir.as_deref(), cfg);
            let (tx, rx) = mpsc::channel(cfg.queuesize());
            let ep = Arc::new(Endpoint {
                cfg: cfg.clone(),
                tx,
                counters: Counters::default(),
                backlog: Mutex::new(backlog),
                wake: Notify::new(),
                durable,
            });
            tracing::info!(
                endpoint = %cfg.name,
                url = %cfg.redacted_url(),
                timeout = ?cfg.timeout(),
                pending = ep.backlog().len(),
                durable,
                "notifications endpoint configured"
            );
            tasks.push(runtime.spawn(intake(ep.clone(), rx, stop_rx.clone())));
            tasks.push(runtime.spawn(deliver(ep.clone(), sender, stop_rx.clone())));
            endpoints.push(ep);
        }
        Ok(Some(Arc::new(Notifier {
            endpoints,
            source: source_record(&config.http.addr),
            include_references: n.events.includereferences,
            stop,
            tasks: Mutex::new(tasks),
        })))
    }

    /// Stops delivery: events already accepted go to the journal (kept for
    /// the next start) or, in memory, are lost and logged.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        for ep in &self.endpoints {
            let left = ep.backlog().len();
            if left > 0 && !ep.durable {
                tracing::warn!(endpoint = %ep.cfg.name, events = left, "undelivered notifications lost at shutdown (kept in memory only)");
            }
        }
    }
}

/// The journal for `cfg` under `dir`, or memory (object stores, or when the
/// journal is locked by another process or cannot be opened).
fn open_backlog(dir: Option<&std::path::Path>, cfg: &EndpointConfig) -> (Backlog, bool) {
    let Some(dir) = dir else {
        return (Backlog::memory(cfg.queuesize()), false);
    };
    match Journal::open(dir, &cfg.name, cfg.journalmaxsize()) {
        Ok(j) => (Backlog::Journal(Box::new(j)), true),
        Err(e) => {
            tracing::warn!(endpoint = %cfg.name, error = %e, "events journal unavailable; keeping undelivered events in memory only");
            (Backlog::memory(cfg.queuesize()), false)
        }
    }
}

/// distribution's `source.addr`: this host's name and the listening port.
fn source_record(http_addr: &str) -> SourceRecord {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    let port = http_addr.rsplit_once(':').map(|(_, p)| p);
    let addr = match (host, port) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h,
        (None, _) => http_addr.to_string(),
    };
    SourceRecord {
        addr,
        instance_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// Moves accepted events into the backlog until shutdown, then moves what
/// is left in the channel.
async fn intake(ep: Arc<Endpoint>, mut rx: mpsc::Receiver<Event>, mut stop: watch::Receiver<bool>) {
    let keep = |ep: &Endpoint, e: Event| {
        let offered = ep.backlog().push(&e);
        match offered {
            Offered::Kept => ep.wake.notify_one(),
            Offered::Full if ep.durable => ep.drop_one("the journal is full (journalmaxsize)"),
            Offered::Full => ep.drop_one("the queue is full (queuesize)"),
            Offered::Failed => ep.drop_one("the journal cannot be written"),
        }
    };
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(e) => keep(&ep, e),
                None => return,
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    rx.close();
    while let Ok(e) = rx.try_recv() {
        keep(&ep, e);
    }
}

/// Sends the backlog's head until accepted (or `maxattempts` runs out),
/// waiting between attempts; stops at shutdown.
async fn deliver(ep: Arc<Endpoint>, sender: Sender, mut stop: watch::Receiver<bool>) {
    let cfg = &ep.cfg;
    let mut consecutive = 0usize;
    loop {
        let Some(event) = ep.backlog().peek() else {
            tokio::select! {
                _ = ep.wake.notified() => continue,
                _ = stop.wait_for(|s| *s) => return,
            }
        };
        let mut attempts = 0usize;
        loop {
            let outcome = tokio::select! {
                r = sender.send(&event) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match outcome {
                Ok(()) => {
                    ep.counters.sent.fetch_add(1, Relaxed);
                    consecutive = 0;
                    ep.backlog().ack();
                    break;
                }
                Err(failure) => {
                    ep.counters.failed.fetch_add(1, Relaxed);
                    *ep.counters
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(failure.to_string());
                    attempts += 1;
                    consecutive += 1;
                    tracing::warn!(endpoint = %cfg.name, event = %event.id, attempt = attempts, "notification delivery failed: {failure}");
                    if cfg.maxattempts > 0 && attempts >= cfg.maxattempts {
                        ep.drop_one("maxattempts reached");
                        ep.backlog().ack();
                        break;
                    }
                    ep.counters.retried.fetch_add(1, Relaxed);
                    let wait = delay(
                        consecutive,
                        cfg.threshold(),
                        cfg.backoff(),
                        cfg.maxbackoff(),
                        rand::random::<f64>(),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }
}

impl EventSink for Notifier {
    fn enabled(&self) -> bool {
        true
    }

    fn wants_references(&self) -> bool {
        self.include_references
    }

    fn record(&self, ctx: &RequestContext, event: RegistryEvent) {
        let event = Event::new(ctx, event, &self.source, self.include_references);
        for ep in &self.endpoints {
            if ep.ignores(&event) {
                continue;
            }
            if ep.tx.try_send(event.clone()).is_err() {
                ep.drop_one("the intake queue is full (queuesize)");
            }
        }
    }

    fn status(&self) -> Vec<EndpointStatus> {
        self.endpoints
            .iter()
            .map(|ep| {
                let c = &ep.counters;
                let queued = (ep.tx.max_capacity() - ep.tx.capacity()) as u64;
                EndpointStatus {
                    name: ep.cfg.name.clone(),
                    url: ep.cfg.redacted_url(),
                    durable: ep.durable,
                    sent: c.sent.load(Relaxed),
                    failed: c.failed.load(Relaxed),
                    retried: c.retried.load(Relaxed),
                    dropped: c.dropped.load(Relaxed),
                    pending: ep.backlog().len() + queued,
                    last_error: c
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                }
            })
            .collect()
    }

    fn render_metrics(&self, out: &mut String) {
        super::status::render(&self.status(), out);
    }
}
