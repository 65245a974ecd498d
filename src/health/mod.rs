//! Health checks as registry:2 runs them (`health:`): each check runs every
//! interval in its own task; one that failed `threshold` times in a row
//! makes the registry unhealthy (every request answers 503) until it passes
//! again. Uses the registry layer for the storage check, never HTTP types.

mod checks;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{Config, HealthConfig, DEFAULT_CHECK_INTERVAL};
use crate::registry::Registry;
use checks::Probe;

/// The registered checks and their latest outcomes. Cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    checks: Vec<Check>,
    /// Keyed by check name; only checks that ran are present.
    states: Mutex<BTreeMap<String, State>>,
}

struct Check {
    name: String,
    probe: Probe,
    interval: Duration,
    /// registry:2's threshold; 0 reports the first failure.
    threshold: usize,
}

#[derive(Default)]
struct State {
    error: Option<String>,
    /// Consecutive failures, counted up to the threshold.
    count: usize,
}

impl Health {
    /// The checks `config.health` asks for (none without a `health:`
    /// section). Nothing runs until [`Health::spawn`] or [`Health::run_once`].
    pub fn from_config(config: &Config, registry: &Registry) -> Health {
        let Some(h) = &config.health else {
            return Health::default();
        };
        Health {
            inner: Arc::new(Inner {
                checks: checks_of(h, registry),
                states: Mutex::default(),
            }),
        }
    }

    /// How many checks are registered.
    pub fn len(&self) -> usize {
        self.inner.checks.len()
    }

    /// True when no check is registered.
    pub fn is_empty(&self) -> bool {
        self.inner.checks.is_empty()
    }

    /// The failing checks (name → error), as `/debug/health` reports them;
    /// empty while healthy.
    pub fn failing(&self) -> BTreeMap<String, String> {
        let states = self.states();
        let mut out = BTreeMap::new();
        for check in &self.inner.checks {
            if let Some(s) = states.get(&check.name) {
                if let Some(e) = s.error.as_ref().filter(|_| s.count >= check.threshold) {
                    out.insert(check.name.clone(), e.clone());
                }
            }
        }
        out
    }

    /// True while no check is failing.
    pub fn is_healthy(&self) -> bool {
        self.failing().is_empty()
    }

    /// Runs every check once, in order, and records the outcomes (tests,
    /// and a first round before serving is not needed: registry:2 starts
    /// healthy and checks after the first interval).
    pub async fn run_once(&self) {
        for i in 0..self.inner.checks.len() {
            self.run_check(i).await;
        }
    }

    async fn run_check(&self, i: usize) {
        let Some(check) = self.inner.checks.get(i) else {
            return;
        };
        let result = check.probe.run().await;
        let mut states = self.states();
        let state = states.entry(check.name.clone()).or_default();
        let was_failing = state.error.is_some() && state.count >= check.threshold;
        match result {
            Ok(()) => {
                state.count = 0;
                state.error = None;
            }
            Err(e) => {
                if state.count < check.threshold {
                    state.count += 1;
                }
                state.error = Some(e);
            }
        }
        let failing = state.error.is_some() && state.count >= check.threshold;
        if failing && !was_failing {
            tracing::error!(
                check = %check.name,
                error = state.error.as_deref().unwrap_or_default(),
                "health check failing: requests answer 503 until it passes"
            );
        } else if was_failing && !failing {
            tracing::info!(check = %check.name, "health check passes again");
        }
    }

    /// Starts one task per check, each running every interval (the first
    /// run one interval after start, as registry:2's tickers) until
    /// `shutdown` turns true.
    pub fn spawn(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.inner.checks.len())
            .map(|i| {
                let health = self.clone();
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let Some(interval) = health.inner.checks.get(i).map(|c| c.interval) else {
                        return;
                    };
                    let start = tokio::time::Instant::now() + interval;
                    let mut ticks = tokio::time::interval_at(start, interval);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let stop = async move {
                        let _ = shutdown.wait_for(|stop| *stop).await;
                    };
                    tokio::pin!(stop);
                    loop {
                        tokio::select! {
                            _ = ticks.tick() => health.run_check(i).await,
                            () = &mut stop => return,
                        }
                    }
                })
            })
            .collect()
    }

    fn states(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, State>> {
        self.inner
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn or_default(interval: Duration) -> Duration {
    if interval.is_zero() {
        DEFAULT_CHECK_INTERVAL
    } else {
        interval
    }
}

/// The checks of a `health:` section, named as registry:2 names them
/// (`storagedriver_<driver>`, the file path, the URI, the address).
fn checks_of(h: &HealthConfig, registry: &Registry) -> Vec<Check> {
    let mut out = Vec::new();
    if h.storagedriver.enabled {
        out.push(Check {
            name: format!("storagedriver_{}", registry.driver().name()),
            probe: Probe::Storage(registry.clone()),
            interval: or_default(h.storagedriver.interval),
            threshold: h.storagedriver.threshold,
        });
    }
    for f in &h.file {
        out.push(Check {
            name: f.file.clone(),
            probe: Probe::File(f.file.clone().into()),
            interval: or_default(f.interval),
            threshold: 0,
        });
    }
    for c in h.http.iter().filter(|c| c.uri.starts_with("http://")) {
        out.push(Check {
            name: c.uri.clone(),
            probe: Probe::Http(c.clone()),
            interval: or_default(c.interval),
            threshold: c.threshold,
        });
    }
    for c in &h.tcp {
        out.push(Check {
            name: c.addr.clone(),
            probe: Probe::Tcp {
                addr: c.addr.clone(),
                timeout: c.timeout,
            },
            interval: or_default(c.interval),
            threshold: c.threshold,
        });
    }
    out
}
