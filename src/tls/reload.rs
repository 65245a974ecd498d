//! The served certificate, reloaded from disk without a restart: a rustls
//! certificate resolver whose certificate is swapped when the files change
//! (polled every [`RELOAD_INTERVAL`]) or on SIGHUP. A file that does not load
//! (half-written, garbage, key not matching) is logged and the previous
//! certificate keeps serving, so a bad deploy never takes the registry down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// How often the certificate files are checked for changes. A change is
/// loaded once the files have looked the same for two checks in a row, so
/// a certificate and key copied one after the other load together.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The certificate chain and key files (`http.tls.certificate` / `key`).
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// What identifies a version of a file without reading it.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// Stamps of both files.
type Stamps = (Stamp, Stamp);

/// Serves the current certificate to every handshake; [`Self::reload`]
/// swaps it.
pub struct ReloadingResolver {
    files: CertFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// (stamps of the files last loaded or tried, stamps seen last tick).
    stamps: Mutex<(Stamps, Stamps)>,
}

impl std::fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingResolver")
            .field("files", &self.files)
            .field("fingerprint", &fingerprint(&self.current()))
            .finish()
    }
}

impl ReloadingResolver {
    /// Loads the files now; an error here is a startup error.
    pub fn load(files: CertFiles, provider: Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let stamps = (stamp(&files.certificate), stamp(&files.key));
        let key = read_certified_key(&files, &provider)?;
        Ok(ReloadingResolver {
            files,
            provider,
            current: RwLock::new(Arc::new(key)),
            stamps: Mutex::new((stamps, stamps)),
        })
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the files again and, if they load, serves them from now on.
    /// On error the previous certificate stays.
    pub fn reload(&self) -> anyhow::Result<Arc<CertifiedKey>> {
        let now = (stamp(&self.files.certificate), stamp(&self.files.key));
        {
            let mut s = self
                .stamps
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *s = (now, now);
        }
        let key = Arc::new(read_certified_key(&self.files, &self.provider)?);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = key.clone();
        Ok(key)
    }

    /// True when the files changed since the last load attempt and have not
    /// changed since the previous check (so they are not mid-copy).
    fn changed_and_settled(&self) -> bool {
        let now = (stamp(&self.files.certificate), stamp(&self.files.key));
        let mut s = self
            .stamps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tried, last_seen) = *s;
        s.1 = now;
        now != tried && now == last_seen
    }

    /// Reloads and logs the outcome; `why` says what triggered it.
    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(key) => tracing::info!(
                "TLS certificate reloaded ({why}) from {}: now serving {}",
                self.files.certificate.display(),
                describe(&key)
            ),
            Err(e) => tracing::error!(
                "TLS certificate reload ({why}) failed, still serving {}: {e:#}",
                describe(&self.current())
            ),
        }
    }

    /// Polls the files every [`RELOAD_INTERVAL`] and reloads on SIGHUP,
    /// until the returned task is aborted.
    pub fn spawn_watcher(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let sighup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {
                        if self.changed_and_settled() {
                            self.reload_logged("files changed");
                        }
                    }
                    _ = sighup => self.reload_logged("SIGHUP"),
                }
            }
        })
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Loads chain + key and checks that the key belongs to the leaf.
fn read_certified_key(
    files: &CertFiles,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let chain = super::read_certs(&files.certificate).context("http.tls.certificate")?;
    let key = super::read_key(&files.key).context("http.tls.key")?;
    CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!(
            "{} and {} do not form a usable certificate and key",
            files.certificate.display(),
            files.key.display()
        )
    })
}

/// SHA-256 fingerprint of the leaf, as `openssl x509 -fingerprint -sha256`
/// prints it (colon-separated upper-case hex): what operators compare.
pub fn fingerprint(key: &CertifiedKey) -> String {
    key.cert
        .first()
        .map(|c| {
            Sha256::digest(c.as_ref())
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}

/// A log-friendly description of the served certificate.
pub fn describe(key: &CertifiedKey) -> String {
    format!("certificate sha256 {}", fingerprint(key))
}
