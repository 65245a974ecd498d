//! `berth healthcheck`: the probe a container `HEALTHCHECK` (or a script)
//! runs. berth's image has no shell and no curl, so the binary asks its own
//! listener: `GET /healthz` on the address the configuration names, over
//! TLS when the configuration serves TLS, and succeeds only on a 200.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;

/// Longest status line the probe reads before giving up on the answer.
const MAX_STATUS_LINE: usize = 1024;

/// Where the probe connects: the configured listener, with a wildcard
/// address (`:5000`, `0.0.0.0`, `::`) replaced by loopback.
pub fn target(config: &Config) -> anyhow::Result<(String, u16, bool)> {
    let listen = config.listen_addr()?;
    let host = match listen.host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" => "::1".to_string(),
        h => h.to_string(),
    };
    let tls = !config.http.tls.certificate.is_empty();
    Ok((host, listen.port, tls))
}

/// Asks the registry at `config`'s listener for `/healthz` within
/// `timeout`; Ok with the status line when it answered 200.
pub async fn probe(config: &Config, timeout: Duration) -> anyhow::Result<String> {
    let (host, port, tls) = target(config)?;
    let path = health_path(&config.http.prefix);
    tokio::time::timeout(timeout, ask(&host, port, tls, &path))
        .await
        .with_context(|| format!("no answer from {host}:{port} within {timeout:?}"))?
}

/// `/healthz` under `http.prefix`.
fn health_path(prefix: &str) -> String {
    format!("{}/healthz", prefix.trim_end_matches('/'))
}

async fn ask(host: &str, port: u16, tls: bool, path: &str) -> anyhow::Result<String> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let status = if tls {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(liveness_tls_config()?));
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .with_context(|| format!("{host:?} is not a TLS server name"))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr} failed"))?;
        status_line(stream, &addr, path).await?
    } else {
        status_line(tcp, &addr, path).await?
    };
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        bail!("{addr}{path} answered {status:?}");
    }
    Ok(status)
}

/// Sends the request and reads the response's status line.
async fn status_line<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: &str,
    path: &str,
) -> anyhow::Result<String> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: berth-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut got = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !got.contains(&b'\n') && got.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    match text.split_once("\r\n") {
        Some((line, _)) => Ok(line.to_string()),
        None => bail!("{addr} sent no HTTP status line"),
    }
}

/// TLS for a liveness probe of the local listener: it sends no credentials
/// and reads only a status, so the certificate (often made for the
/// registry's public name, not loopback) is not verified.
fn liveness_tls_config() -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(config)
}

/// Accepts any server certificate, checking only that the handshake's
/// signatures are made by it (see [`liveness_tls_config`]).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_probed_on_loopback() {
        let mut c = Config::default();
        c.http.addr = ":5000".into();
        assert_eq!(target(&c).unwrap(), ("127.0.0.1".into(), 5000, false));
        c.http.addr = "[::]:5001".into();
        assert_eq!(target(&c).unwrap(), ("::1".into(), 5001, false));
        c.http.addr = "10.1.2.3:443".into();
        c.http.tls.certificate = "/certs/server.crt".into();
        assert_eq!(target(&c).unwrap(), ("10.1.2.3".into(), 443, true));
        assert_eq!(health_path(""), "/healthz");
        assert_eq!(health_path("/registry/"), "/registry/healthz");
    }
}
