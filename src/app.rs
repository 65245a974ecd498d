//! Application wiring: storage from config, the registry over it, the HTTP
//! router over that, and the server with graceful shutdown.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;

mod mirrors;
mod preflight;
mod signals;

pub use mirrors::mirrors_for;
pub use preflight::{prepare, Prepared};

use crate::auth::authenticator::Authenticator;
use crate::auth::policy::Policy;
use crate::config::{Config, StorageDriverConfig};
use crate::http::{router, HttpState};
use crate::registry::{Registry, RegistryOptions};
use crate::storage::filesystem::FilesystemDriver;
use crate::storage::memory::MemoryDriver;
use crate::storage::StorageDriver;

/// Builds the storage driver the configuration names.
pub fn open_storage(config: &Config) -> anyhow::Result<Arc<dyn StorageDriver>> {
    Ok(match config.storage_driver()? {
        StorageDriverConfig::Filesystem { root, sync } => Arc::new(FilesystemDriver::with_sync(
            root,
            sync == crate::config::FsSync::File,
        )),
        StorageDriverConfig::InMemory => Arc::new(MemoryDriver::new()),
        StorageDriverConfig::S3 { config: s3 } => Arc::new(
            crate::storage::object_store::s3::build(&s3, !config.storage.redirect.disable)
                .context("cannot set up the s3 storage driver")?,
        ),
        StorageDriverConfig::Azure { config: azure } => Arc::new(
            crate::storage::object_store::azure::build(&azure, !config.storage.redirect.disable)
                .context("cannot set up the azure storage driver")?,
        ),
        StorageDriverConfig::Gcs { config: gcs } => Arc::new(
            crate::storage::object_store::gcs::build(&gcs, !config.storage.redirect.disable)
                .context("cannot set up the gcs storage driver")?,
        ),
    })
}

/// The complete HTTP application over a given driver; tests call this with
/// memory or temporary-directory drivers. Fails on a bad `auth`/`access`
/// section (files that cannot be read, unknown actions), naming the key.
pub fn build_app(config: Config, driver: Arc<dyn StorageDriver>) -> anyhow::Result<Router> {
    let registry = mirrors::attach(&config, registry_for(&config, driver))?;
    build_app_with(config, registry)
}

/// The registry layer the configuration describes, over `driver`; with
/// `http.debug.prometheus.enabled`, the driver's calls are measured.
pub fn registry_for(config: &Config, driver: Arc<dyn StorageDriver>) -> Registry {
    let options = RegistryOptions {
        delete_enabled: config.storage.delete.enabled,
        index_limit: config.catalog.indexlimit,
        manifest_size: config.limits.manifestsize,
        upload_sessions_per_repository: config.limits.uploadsessionsperrepository,
    };
    if !config.http.debug.prometheus.enabled {
        // Nothing is scraped, so nothing is measured: no wrapper, no cost.
        return Registry::new(driver, options);
    }
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let driver = Arc::new(crate::storage::metered::Metered::new(
        driver,
        metrics.clone(),
    ));
    Registry::new(driver, options).with_metrics(metrics)
}

/// [`build_app`] over an existing registry, so background workers (online
/// GC) share its in-process state with the request path.
pub fn build_app_with(config: Config, registry: Registry) -> anyhow::Result<Router> {
    Ok(build_apps(config, registry)?.main)
}

/// The routers of a serving registry and the health checks they report.
pub struct Apps {
    /// The main listener's router.
    pub main: Router,
    /// The debug listener's router (`http.debug.addr`).
    pub debug: Router,
    /// The `health:` checks; [`Health::spawn`](crate::health::Health::spawn)
    /// runs them.
    pub health: crate::health::Health,
    /// `/readyz`'s draining flag; shutdown sets it before the drain.
    pub readiness: crate::http::ready::Readiness,
    /// Notification delivery, when endpoints are configured; stop it with
    /// [`Notifier::shutdown`](crate::events::Notifier::shutdown).
    pub notifier: Option<Arc<crate::events::Notifier>>,
}

/// [`build_app_with`] plus the debug router and the health checks, sharing
/// one state. Fails on a bad `auth`/`access` section or `http.prefix`.
pub fn build_apps(config: Config, registry: Registry) -> anyhow::Result<Apps> {
    let auth = Authenticator::from_config(config.auth.as_ref())?;
    let policy =
        Policy::from_config(config.access.as_ref(), auth.enabled()).map_err(anyhow::Error::msg)?;
    let client_ip = crate::http::client_ip::ClientIp::from_config(&config.http.trustedproxies)
        .map_err(anyhow::Error::msg)?;
    apps_from_parts(config, registry, auth, policy, client_ip)
}

/// The routers over already-built parts (what [`prepare`] checked).
fn apps_from_parts(
    config: Config,
    registry: Registry,
    auth: Authenticator,
    policy: Policy,
    client_ip: crate::http::client_ip::ClientIp,
) -> anyhow::Result<Apps> {
    let prefix = crate::config::http_prefix(&config.http.prefix)
        .map_err(|m| anyhow::anyhow!("http.prefix: {m}"))?;
    let health = crate::health::Health::from_config(&config, &registry);
    let readiness = crate::http::ready::Readiness::new();
    let notifier = crate::events::Notifier::start(&config)?;
    let events: Arc<dyn crate::events::EventSink> = match &notifier {
        Some(n) => n.clone(),
        None => Arc::new(crate::events::NoEvents),
    };
    if let Some(m) = registry.mirrors() {
        let fetches = crate::events::FetchEvents::new(events.clone(), &config.http.host);
        m.set_listener(Arc::new(fetches));
    }
    let ui = crate::ui::UiState::new(&config);
    let uploads = crate::http::limits::UploadLimiter::new(&config.limits);
    let state = Arc::new(HttpState {
        registry,
        ui,
        config: Arc::new(config),
        auth,
        policy,
        client_ip,
        health: health.clone(),
        prefix,
        readiness: readiness.clone(),
        events,
        uploads,
    });
    Ok(Apps {
        main: router(state.clone()),
        debug: crate::http::debug::router(state),
        health,
        readiness,
        notifier,
    })
}

/// The background maintenance workers of a serving registry (online GC,
/// upload purging); [`Maintenance::stop`] ends them.
pub struct Maintenance {
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Returns freed heap memory to the system (not a storage worker).
    trimmer: tokio::task::JoinHandle<()>,
    /// Refreshes the repository index (reads only, so also in read-only
    /// mode); none when `catalog.refreshinterval` is 0.
    index: Option<tokio::task::JoinHandle<()>>,
}

impl Maintenance {
    /// Starts the workers the configuration enables. None that write run in
    /// read-only mode (they would delete behind the operator's back); the
    /// repository index refresher, which only reads, always runs.
    pub fn start(config: &Config, registry: &Registry) -> Maintenance {
        use crate::registry::gc::{purge::PurgeOptions, worker, GcOptions};
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let trimmer = crate::memtrim::spawn(crate::memtrim::INTERVAL, rx.clone());
        let every = config.catalog.refreshinterval;
        let index = (!every.is_zero()).then(|| {
            crate::registry::repo_index::spawn_refresh(registry.clone(), every, rx.clone())
        });
        let mut tasks = Vec::new();
        let m = &config.storage.maintenance;
        if m.readonly.enabled {
            if m.gc.enabled || m.uploadpurging.enabled {
                tracing::info!("read-only mode: garbage collection and upload purging are off");
            }
            return Maintenance {
                shutdown,
                tasks,
                trimmer,
                index,
            };
        }
        // At start, not at the first upload: an object store is probed for
        // conditional writes (upload-session claims) and the mode logged.
        // Detached: a store that does not answer must not hold up a stop.
        let probe = registry.clone();
        tokio::spawn(async move {
            let _ = probe.check_storage().await;
        });
        if m.uploadpurging.enabled {
            let opts = PurgeOptions {
                age: m.uploadpurging.age,
                dry_run: m.uploadpurging.dryrun,
            };
            tasks.push(worker::spawn_purge(
                registry.clone(),
                m.uploadpurging.interval,
                opts,
                rx.clone(),
            ));
        }
        if m.gc.enabled {
            let opts = GcOptions {
                dry_run: m.gc.dryrun,
                delete_untagged: m.gc.deleteuntagged,
                grace: m.gc.graceperiod,
                cache: crate::registry::gc::expiry::CachePolicy::from_config(config),
            };
            tasks.push(worker::spawn_gc(registry.clone(), m.gc.interval, opts, rx));
        }
        Maintenance {
            shutdown,
            tasks,
            trimmer,
            index,
        }
    }

    /// How many workers are running (none in read-only mode).
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Signals the workers and waits for them; a run in progress stops at its
    /// next storage call (each delete is of unreferenced data, so any stopping
    /// point is safe).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.trimmer.await;
        if let Some(index) = self.index {
            let _ = index.await;
        }
    }
}

/// Runs the registry server until Ctrl-C / SIGTERM, then drains connections.
/// Serves HTTPS when `http.tls.certificate` is set, plain HTTP otherwise.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    crate::rlimit::raise_nofile();
    let Prepared {
        addr,
        driver,
        storage_description,
        tls,
        auth,
        policy,
        client_ip,
    } = prepare(&config)?;
    let registry = mirrors::attach(&config, registry_for(&config, driver))?;
    let apps = apps_from_parts(config.clone(), registry.clone(), auth, policy, client_ip)?;
    let listener = tokio::net::TcpListener::bind(addr.to_string())
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let debug_listener = bind_debug(&config).await?;
    let local = listener.local_addr()?;
    // Before the serving line: from then on SIGHUP must not kill us.
    let hangup = signals::spawn_hangup_logger(tls.is_some())?;
    let auth_mode = describe_auth(&config);
    match &tls {
        Some(tls) => tracing::info!(
            "berth {} serving https://{local}/v2/ (TLS on) with storage {storage_description}, \
             {auth_mode}; {} from {} (reloaded when the files change or on SIGHUP){}",
            env!("BERTH_LONG_VERSION"),
            crate::tls::describe(&tls.resolver.current()),
            config.http.tls.certificate,
            if config.http.tls.clientcas.is_empty() {
                String::new()
            } else {
                "; client certificates required".to_string()
            }
        ),
        None => log_plain_serving(local, &storage_description, &auth_mode),
    }
    let settings = crate::http::server::ConnSettings::from_config(&config.http);
    let notifier = apps.notifier.clone();
    let maintenance = Maintenance::start(&config, &registry);
    // One shutdown for the listeners, the checks and the maintenance workers.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let readiness = apps.readiness.clone();
    let signal = tokio::spawn(async move {
        let name = signals::shutdown_signal().await;
        // Not ready first, so load balancers stop sending while we drain.
        readiness.start_draining();
        tracing::info!("{name} received: /readyz answers 503; stopping");
        let _ = stop_tx.send(true);
    });
    let checks = apps.health.spawn(stop_rx.clone());
    // Background work stops at the signal, between its operations, while
    // the listeners drain (or when serving ends otherwise: the sender is
    // dropped with the signal task).
    let background = {
        let rx = stop_rx.clone();
        tokio::spawn(async move {
            stopped(rx).await;
            maintenance.stop().await;
        })
    };
    let debug = debug_listener.map(|l| {
        tokio::spawn(crate::http::server::serve_plain(
            l,
            apps.debug,
            settings,
            stopped(stop_rx.clone()),
        ))
    });
    let served = match tls {
        Some(tls) => {
            crate::tls::serve_tls(listener, apps.main, tls, settings, stopped(stop_rx)).await
        }
        None => {
            crate::http::server::serve_plain(listener, apps.main, settings, stopped(stop_rx)).await;
            Ok(())
        }
    };
    signal.abort();
    hangup.abort();
    if let Some(debug) = debug {
        let _ = debug.await;
    }
    for c in checks {
        let _ = c.await;
    }
    let _ = background.await;
    if let Some(n) = notifier {
        n.shutdown().await;
    }
    served?;
    tracing::info!("berth stopped");
    Ok(())
}

/// Binds `http.debug.addr` when set (before the main listener serves, so a
/// taken port is a start-up error).
async fn bind_debug(config: &Config) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    if config.http.debug.addr.is_empty() {
        return Ok(None);
    }
    let addr = crate::config::ListenAddr::parse(&config.http.debug.addr)
        .map_err(|m| anyhow::anyhow!("http.debug.addr: {m}"))?;
    let listener = tokio::net::TcpListener::bind(addr.to_string())
        .await
        .with_context(|| format!("cannot listen on {addr} (http.debug.addr)"))?;
    tracing::info!(
        "debug server listening on http://{}/ (/debug/health, /debug/vars, /debug/events{})",
        listener.local_addr()?,
        if config.http.debug.prometheus.enabled {
            format!(", {}", config.http.debug.prometheus.path)
        } else {
            String::new()
        }
    );
    Ok(Some(listener))
}

/// The "serving" line of the plain-HTTP server (the default, and what a
/// TLS-terminating proxy talks to), with advice when it is reachable from
/// other hosts.
fn log_plain_serving(local: std::net::SocketAddr, storage: &str, auth_mode: &str) {
    tracing::info!(
        "berth {} serving http://{local}/v2/ (TLS off) with storage {storage}, {auth_mode}",
        env!("BERTH_LONG_VERSION")
    );
    if !local.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on {local}: docker will refuse it from other hosts unless each \
             daemon lists it in insecure-registries. To serve HTTPS, make a certificate with \
             `berth cert --host NAME --out DIR` and set http.tls.certificate / http.tls.key \
             (REGISTRY_HTTP_TLS_CERTIFICATE / REGISTRY_HTTP_TLS_KEY); see docs/tls.md"
        );
    }
}

/// Resolves once the shutdown flag turns true (or its sender is gone).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The authentication mode for the start-up line: `auth: none`, `auth:
/// htpasswd (FILE)`, `auth: token (...)`.
fn describe_auth(config: &Config) -> String {
    let Some(auth) = config.auth.as_ref() else {
        return "auth: none".to_string();
    };
    if let Some(h) = &auth.htpasswd {
        return format!("auth: htpasswd ({})", h.path);
    }
    if let Some(t) = &auth.token {
        return if t.builtin {
            format!("auth: token (built-in issuer, users from {})", t.htpasswd)
        } else {
            format!("auth: token (realm {})", t.realm)
        };
    }
    "auth: none".to_string()
}
