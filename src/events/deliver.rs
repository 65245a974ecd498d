//! One delivery attempt (a POST of one envelope) and the wait before the
//! next: registry:2's threshold/backoff, with exponential growth, jitter
//! and a cap. Redirects are not followed; TLS is verified (system roots
//! plus the endpoint's `cafile`).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use super::envelope::{body, Event, EVENTS_MEDIA_TYPE};
use crate::config::notifications::EndpointConfig;

/// The header carrying the HMAC of the body (`hmacsecret`).
pub const SIGNATURE_HEADER: &str = "x-berth-signature";

/// Sends envelopes to one endpoint.
pub struct Sender {
    client: reqwest::Client,
    url: String,
    key: Option<ring::hmac::Key>,
}

/// Why an attempt failed, for the one log line per failure.
#[derive(Debug)]
pub enum Failure {
    /// The endpoint answered with a status outside 2xx.
    Status(u16),
    /// No answer (connect, TLS, timeout).
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s) if (300..400).contains(s) => {
                write!(f, "status {s} (redirects are not followed)")
            }
            Failure::Status(s) => write!(f, "status {s}"),
            Failure::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl Sender {
    /// The client for `cfg`: its headers, timeout, CA file, no redirects.
    pub fn new(cfg: &EndpointConfig) -> anyhow::Result<Sender> {
        let mut headers = HeaderMap::new();
        for (name, values) in &cfg.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| anyhow::anyhow!("header name {name:?} is not valid"))?;
            for v in values {
                // The value is a secret as often as not: never echo it.
                let value = HeaderValue::from_str(v)
                    .map_err(|_| anyhow::anyhow!("the value of header {name} is not valid"))?;
                headers.append(name.clone(), value);
            }
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout())
            .default_headers(headers)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if !cfg.cafile.is_empty() {
            let pem = std::fs::read(&cfg.cafile)
                .map_err(|e| anyhow::anyhow!("cafile {}: {e}", cfg.cafile))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("cafile {}: {e}", cfg.cafile))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let key = (!cfg.hmacsecret.is_empty())
            .then(|| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, cfg.hmacsecret.as_bytes()));
        Ok(Sender {
            client: builder.build()?,
            url: cfg.url.clone(),
            key,
        })
    }

    /// POSTs one envelope holding `event`; 2xx is success.
    pub async fn send(&self, event: &Event) -> Result<(), Failure> {
        let body = body(std::slice::from_ref(event));
        let mut req = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, EVENTS_MEDIA_TYPE);
        if let Some(key) = &self.key {
            req = req.header(SIGNATURE_HEADER, signature(key, &body));
        }
        match req.body(body).send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(Failure::Status(resp.status().as_u16())),
            // The error's text names the URL: strip it (it may hold credentials).
            Err(e) => Err(Failure::Transport(describe(&e))),
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body`.
pub fn signature(key: &ring::hmac::Key, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(key, body).as_ref())
    )
}

fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

/// The wait after the `failures`-th consecutive failure: below
/// `threshold`, short retries (50 ms doubling, at most `backoff`), as
/// registry:2 retries at once; from the threshold on, `backoff` doubling
/// per failure up to `cap`. `unit` in [0, 1) picks the jitter: the wait is
/// between half and all of the computed one.
pub fn delay(
    failures: usize,
    threshold: usize,
    backoff: Duration,
    cap: Duration,
    unit: f64,
) -> Duration {
    let doubling = |base: Duration, n: usize| {
        let factor = 1u32 << n.min(20);
        base.saturating_mul(factor)
    };
    let d = if failures < threshold {
        doubling(Duration::from_millis(50), failures.saturating_sub(1)).min(backoff)
    } else {
        doubling(backoff, failures - threshold).min(cap)
    };
    d.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let d = |n| delay(n, 3, s(1), s(10), 1.0);
        assert_eq!(d(1), ms(50));
        assert_eq!(d(2), ms(100));
        assert_eq!(d(3), s(1));
        assert_eq!(d(4), s(2));
        assert_eq!(d(6), s(8));
        assert_eq!(d(7), s(10));
        assert_eq!(d(100), s(10));
        assert_eq!(delay(7, 3, s(1), s(10), 0.0), s(5));
    }

    #[test]
    fn signature_is_github_style() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"It's a Secret to Everybody");
        // GitHub's documented example.
        assert_eq!(
            signature(&key, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    fn event() -> Event {
        Event::new(
            &super::super::RequestContext::default(),
            super::super::RegistryEvent::TagDeleted {
                repository: "r".into(),
                tag: "t".into(),
            },
            &super::super::envelope::SourceRecord::default(),
            false,
        )
    }

    /// A one-request-at-a-time HTTPS server answering 204, with a
    /// certificate from a fresh CA; returns its port and the CA file.
    async fn tls_server(dir: &std::path::Path) -> anyhow::Result<(u16, String)> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let w = crate::cert::make(&crate::cert::CertRequest {
            hosts: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse()?],
            out: dir.to_path_buf(),
            days: 1,
        })?;
        let certs =
            CertificateDer::pem_file_iter(&w.server_cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&w.server_key)?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    continue;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and the body it announces, then answer.
                while let Ok(n) = tls.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            }
        });
        Ok((port, w.ca_cert.display().to_string()))
    }

    #[tokio::test]
    async fn tls_is_verified_and_cafile_trusted() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (port, ca) = tls_server(dir.path()).await?;
        let mk = |cafile: &str| EndpointConfig {
            name: "t".into(),
            url: format!("https://127.0.0.1:{port}/hook"),
            cafile: cafile.into(),
            ..EndpointConfig::default()
        };
        // A certificate the system does not trust: refused.
        match Sender::new(&mk(""))?.send(&event()).await {
            Err(Failure::Transport(e)) => {
                assert!(e.contains("certificate") || e.contains("Unknown"), "{e}")
            }
            other => panic!("expected a TLS failure, got {other:?}"),
        }
        // Trusted through the endpoint's cafile: delivered.
        let sent = Sender::new(&mk(&ca))?.send(&event()).await;
        assert!(sent.is_ok(), "{sent:?}");
        Ok(())
    }
}
