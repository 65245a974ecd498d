//! How to reach one upstream registry: its URL, credentials, trusted realm
//! hosts, extra CA and timeouts. Filled by the mirror configuration;
//! `Debug` never shows the password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one [`HttpUpstream`](super::HttpUpstream).
#[derive(Clone)]
pub struct UpstreamSettings {
    /// For logs and metrics, e.g. `dockerhub`; never a secret.
    pub label: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5001`: scheme, host,
    /// optional port and path prefix (requests go to `<remote_url>/v2/...`).
    pub remote_url: String,
    /// Credentials for the upstream (Basic, or at a trusted token realm).
    pub username: Option<String>,
    pub password: Option<String>,
    /// Hosts besides the upstream's own whose token realm may receive the
    /// credentials (`auth.example.com` or `auth.example.com:8443`).
    pub token_realm_hosts: Vec<String>,
    /// An extra trusted CA bundle (PEM) for the upstream and its realm,
    /// on top of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// TCP + TLS connection setup.
    pub connect_timeout: Duration,
    /// From sending a request until the response headers arrive.
    pub response_timeout: Duration,
    /// The longest a response body may stall between two chunks.
    pub read_idle_timeout: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            label: String::new(),
            remote_url: String::new(),
            username: None,
            password: None,
            token_realm_hosts: Vec::new(),
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
            read_idle_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for UpstreamSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamSettings")
            .field("label", &self.label)
            .field("remote_url", &self.remote_url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token_realm_hosts", &self.token_realm_hosts)
            .field("ca_file", &self.ca_file)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("read_idle_timeout", &self.read_idle_timeout)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let s = UpstreamSettings {
            username: Some("bob".into()),
            password: Some("hunter2-secret".into()),
            ..Default::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("bob"),
            "{shown}"
        );
        assert_eq!(s.read_idle_timeout, Duration::from_secs(60));
    }
}
