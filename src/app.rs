//! Application wiring: storage from config, the registry over it, the HTTP
//! router over that, and the server with graceful shutdown.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;

mod preflight;

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
    let registry = registry_for(&config, driver);
    build_app_with(config, registry)
}

/// The registry layer the configuration describes, over `driver`.
pub fn registry_for(config: &Config, driver: Arc<dyn StorageDriver>) -> Registry {
    let options = RegistryOptions {
        delete_enabled: config.storage.delete.enabled,
    };
    Registry::new(driver, options)
}

/// [`build_app`] over an existing registry, so background workers (online
/// GC) share its in-process state with the request path.
pub fn build_app_with(config: Config, registry: Registry) -> anyhow::Result<Router> {
    let auth = Authenticator::from_config(config.auth.as_ref())?;
    let policy =
        Policy::from_config(config.access.as_ref(), auth.enabled()).map_err(anyhow::Error::msg)?;
    let client_ip = crate::http::client_ip::ClientIp::from_config(&config.http.trustedproxies)
        .map_err(anyhow::Error::msg)?;
    Ok(app_from_parts(config, registry, auth, policy, client_ip))
}

/// The router over already-built parts (what [`prepare`] checked).
fn app_from_parts(
    config: Config,
    registry: Registry,
    auth: Authenticator,
    policy: Policy,
    client_ip: crate::http::client_ip::ClientIp,
) -> Router {
    let state = Arc::new(HttpState {
        registry,
        config: Arc::new(config),
        auth,
        policy,
        client_ip,
    });
    router(state)
}

/// The background maintenance workers of a serving registry (online GC,
/// upload purging); [`Maintenance::stop`] ends them.
pub struct Maintenance {
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Returns freed heap memory to the system (not a storage worker).
    trimmer: tokio::task::JoinHandle<()>,
}

impl Maintenance {
    /// Starts the workers the configuration enables. None run in read-only
    /// mode: they would write (delete) behind the operator's back.
    pub fn start(config: &Config, registry: &Registry) -> Maintenance {
        use crate::registry::gc::{purge::PurgeOptions, worker, GcOptions};
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let trimmer = crate::memtrim::spawn(crate::memtrim::INTERVAL, rx.clone());
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
            };
        }
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
            };
            tasks.push(worker::spawn_gc(registry.clone(), m.gc.interval, opts, rx));
        }
        Maintenance {
            shutdown,
            tasks,
            trimmer,
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
    }
}

/// Runs the registry server until Ctrl-C / SIGTERM, then drains connections.
/// Serves HTTPS when `http.tls.certificate` is set, plain HTTP otherwise.
/// Everything is checked ([`prepare`]) before the port is bound, "serving"
/// is logged or a background worker starts.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let Prepared {
        addr,
        driver,
        storage_description,
        tls,
        auth,
        policy,
        client_ip,
    } = prepare(&config)?;
    let timeouts = crate::http::server::Timeouts::from_config(&config.http);
    let registry = registry_for(&config, driver);
    let app = app_from_parts(config.clone(), registry.clone(), auth, policy, client_ip);
    let listener = tokio::net::TcpListener::bind(addr.to_string())
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let Some(tls) = tls else {
        log_plain_serving(local, &storage_description);
        let maintenance = Maintenance::start(&config, &registry);
        crate::http::server::serve_plain(listener, app, timeouts, shutdown_signal()).await;
        maintenance.stop().await;
        tracing::info!("berth stopped");
        return Ok(());
    };
    tracing::info!(
        "berth {} serving https://{local}/v2/ with storage {storage_description}; {} from {} \
         (reloaded when the files change or on SIGHUP){}",
        env!("CARGO_PKG_VERSION"),
        crate::tls::describe(&tls.resolver.current()),
        config.http.tls.certificate,
        if config.http.tls.clientcas.is_empty() {
            String::new()
        } else {
            "; client certificates required".to_string()
        }
    );
    let http2 = !config.http.http2.disabled;
    let maintenance = Maintenance::start(&config, &registry);
    let served =
        crate::tls::serve_tls(listener, app, tls, http2, timeouts, shutdown_signal()).await;
    maintenance.stop().await;
    served?;
    tracing::info!("berth stopped");
    Ok(())
}

/// The "serving" line of the plain-HTTP server (the default, and what a
/// TLS-terminating proxy talks to), with advice when it is reachable from
/// other hosts.
fn log_plain_serving(local: std::net::SocketAddr, storage: &str) {
    tracing::info!(
        "berth {} serving http://{local}/v2/ with storage {storage}",
        env!("CARGO_PKG_VERSION")
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

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
