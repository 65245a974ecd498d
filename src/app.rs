//! Application wiring: storage from config, the registry over it, the HTTP
//! router over that, and the server with graceful shutdown.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;

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
        StorageDriverConfig::Filesystem { root } => Arc::new(FilesystemDriver::new(root)),
        StorageDriverConfig::InMemory => Arc::new(MemoryDriver::new()),
    })
}

/// The complete HTTP application over a given driver; tests call this with
/// memory or temporary-directory drivers. Fails on a bad `auth`/`access`
/// section (files that cannot be read, unknown actions), naming the key.
pub fn build_app(config: Config, driver: Arc<dyn StorageDriver>) -> anyhow::Result<Router> {
    let options = RegistryOptions {
        delete_enabled: config.storage.delete.enabled,
    };
    let auth = Authenticator::from_config(config.auth.as_ref())?;
    let policy =
        Policy::from_config(config.access.as_ref(), auth.enabled()).map_err(anyhow::Error::msg)?;
    let state = Arc::new(HttpState {
        registry: Registry::new(driver, options),
        config: Arc::new(config),
        auth,
        policy,
    });
    Ok(router(state))
}

/// Runs the registry server until Ctrl-C / SIGTERM, then drains connections.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let driver = open_storage(&config)?;
    let addr = config.listen_addr()?;
    let where_ = match config.storage_driver()? {
        StorageDriverConfig::Filesystem { root } => format!("filesystem at {}", root.display()),
        StorageDriverConfig::InMemory => "memory (lost on exit)".to_string(),
    };
    let listener = tokio::net::TcpListener::bind(addr.to_string())
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        "berth {} serving http://{local}/v2/ with storage {where_}",
        env!("CARGO_PKG_VERSION")
    );
    if !local.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on {local}: docker will refuse it from other hosts unless TLS is set up \
             (http.tls.certificate/key) or each daemon lists it in insecure-registries"
        );
    }
    let app = build_app(config, driver)?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server error")?;
    tracing::info!("berth stopped");
    Ok(())
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
