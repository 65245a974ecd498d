//! Everything `serve` checks and builds before it binds a port, logs
//! "serving" or starts background work; `berth config check` runs exactly
//! this, so "valid" means `serve` would start.

use std::sync::Arc;

use anyhow::Context;

use crate::auth::authenticator::Authenticator;
use crate::auth::policy::Policy;
use crate::config::{Config, StorageDriverConfig};
use crate::http::client_ip::ClientIp;
use crate::storage::StorageDriver;
use crate::tls::TlsSetup;

/// What [`prepare`] checked and built, for `serve` to use as is.
pub struct Prepared {
    /// The listen address, parsed.
    pub addr: crate::config::ListenAddr,
    /// The storage driver (not yet used: nothing is written).
    pub driver: Arc<dyn StorageDriver>,
    /// What the storage is, for the "serving" line.
    pub storage_description: String,
    /// TLS for the listener, when `http.tls.certificate` is set.
    pub tls: Option<TlsSetup>,
    /// `auth:` with its files read.
    pub auth: Authenticator,
    /// `access:` compiled.
    pub policy: Policy,
    /// `http.trustedproxies` parsed.
    pub client_ip: ClientIp,
}

/// Validates `config` completely without binding ports: schema rules, the
/// listen address, the storage driver and (filesystem) its root, TLS files
/// (readable, PEM, key matching, allowed versions), `auth` files, access
/// policies and trusted proxies. The first problem is the error.
pub fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    config.validate().context("invalid configuration")?;
    let addr = config.listen_addr()?;
    let driver_config = config.storage_driver()?;
    if let StorageDriverConfig::Filesystem { root, .. } = &driver_config {
        let need_write = !config.storage.maintenance.readonly.enabled;
        crate::storage::filesystem::check_root(root, need_write)
            .map_err(|m| anyhow::anyhow!("storage.filesystem.rootdirectory: {m}"))?;
    }
    refuse_unsafe(config)?;
    crate::events::check_endpoints(config)?;
    let tls = if config.http.tls.certificate.is_empty() {
        None
    } else {
        let http2 = !config.http.http2.disabled;
        Some(crate::tls::setup(&config.http.tls, http2).context("cannot set up TLS")?)
    };
    let auth = Authenticator::from_config(config.auth.as_ref())?;
    let policy =
        Policy::from_config(config.access.as_ref(), auth.enabled()).map_err(anyhow::Error::msg)?;
    let client_ip =
        ClientIp::from_config(&config.http.trustedproxies).map_err(anyhow::Error::msg)?;
    super::mirrors::mirrors_for(config)?;
    let driver = super::open_storage(config)?;
    Ok(Prepared {
        addr,
        driver,
        storage_description: describe_storage(config, &driver_config),
        tls,
        auth,
        policy,
        client_ip,
    })
}

/// Refuses to start when the config asks for protection berth does not give
/// yet (ACME certificates): serving plain HTTP would silently expose what the
/// operator meant to protect.
fn refuse_unsafe(config: &Config) -> anyhow::Result<()> {
    let tls = &config.http.tls;
    let acme = &tls.letsencrypt;
    let acme_asked = !acme.cachefile.is_empty() || !acme.email.is_empty() || !acme.hosts.is_empty();
    if tls.certificate.is_empty() && acme_asked {
        anyhow::bail!(
            "http.tls.letsencrypt is configured, but berth does not fetch ACME certificates; \
             refusing to serve plain HTTP where TLS was asked for. Set http.tls.certificate and \
             http.tls.key (`berth cert` makes a CA and certificate; see docs/tls.md)"
        );
    }
    if tls.certificate.is_empty() && !tls.key.is_empty() {
        anyhow::bail!(
            "http.tls.key is set but http.tls.certificate is not: both are needed to serve TLS"
        );
    }
    Ok(())
}

/// "filesystem at /var/lib/registry", "s3 bucket b at ...": for the
/// "serving" log line.
fn describe_storage(config: &Config, driver: &StorageDriverConfig) -> String {
    match driver {
        StorageDriverConfig::Filesystem { root, .. } => {
            format!("filesystem at {}", root.display())
        }
        StorageDriverConfig::InMemory => "memory (lost on exit)".to_string(),
        StorageDriverConfig::S3 { config: s3 } => format!(
            "s3 bucket {} at {} under {:?}{}",
            s3.bucket,
            s3.endpoint_url()
                .unwrap_or_else(|| format!("AWS {}", s3.effective_region())),
            s3.rootdirectory,
            if config.storage.redirect.disable {
                ""
            } else {
                " (blob downloads redirect to presigned URLs)"
            }
        ),
        StorageDriverConfig::Azure { config: azure } => format!(
            "azure container {} at {} under {:?}",
            azure.container,
            azure.account_url(),
            azure.rootdirectory
        ),
        StorageDriverConfig::Gcs { config: gcs } => {
            format!("gcs bucket {} under {:?}", gcs.bucket, gcs.rootdirectory)
        }
    }
}
