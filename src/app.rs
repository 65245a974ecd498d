//! Application wiring: state, router, server (to be written).

use crate::config::Config;

/// Runs the registry server until Ctrl-C / SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let _ = config;
    anyhow::bail!("the server is not wired yet")
}
