//! The signals `berth serve` answers: SIGTERM / Ctrl-C start a graceful
//! shutdown, SIGHUP (systemd's `ExecReload=kill -HUP`) reloads what can be
//! reloaded instead of killing the process, in every mode.

/// Resolves on Ctrl-C or SIGTERM with the signal's name.
pub(super) async fn shutdown_signal() -> &'static str {
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
        _ = ctrl_c => "SIGINT",
        _ = term => "SIGTERM",
    }
}

/// Installs the SIGHUP handler now (so the default action, terminating the
/// process, is gone before the server says it serves) and returns the task
/// that logs each SIGHUP. With TLS the certificate watcher reloads the
/// certificate on the same signal; htpasswd files are re-read whenever they
/// change, so nothing else needs reloading. Abort the task at shutdown.
pub(super) fn spawn_hangup_logger(tls: bool) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use anyhow::Context;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot install the SIGHUP handler")?;
        Ok(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if tls {
                    tracing::info!(
                        "SIGHUP: reloading the TLS certificate and key; htpasswd files are \
                         re-read when they change; other settings need a restart"
                    );
                } else {
                    tracing::info!(
                        "SIGHUP: nothing to reload without TLS; htpasswd files are re-read \
                         when they change; other settings need a restart"
                    );
                }
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = tls;
        Ok(tokio::spawn(async {}))
    }
}
