//! TLS for the registry listener: the rustls server configuration built from
//! `http.tls.*` (TLS 1.2+, ALPN h2/http1.1, optional client certificates),
//! certificates reloaded from disk without a restart, and the accept loop
//! that serves the axum router over TLS.
//!
//! Crypto is rustls with the ring provider only (no aws-lc).

mod listener;
mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::TlsConfig;

pub use listener::{serve_tls, PLAIN_HTTP_ON_TLS_PORT};
pub use reload::{describe, fingerprint, CertFiles, ReloadingResolver, RELOAD_INTERVAL};

/// What `serve` needs to run a TLS listener: the rustls configuration and
/// the resolver whose certificate the reload task swaps.
pub struct TlsSetup {
    /// Handed to every TLS handshake.
    pub server_config: Arc<ServerConfig>,
    /// Holds the current certificate; watched and swapped on file changes.
    pub resolver: Arc<ReloadingResolver>,
}

/// Builds the TLS setup from `http.tls`; `http2` advertises `h2` in ALPN.
/// Every problem (unreadable files, key not matching the certificate,
/// TLS 1.0/1.1 asked for) is a startup error naming the file or setting.
pub fn setup(tls: &TlsConfig, http2: bool) -> anyhow::Result<TlsSetup> {
    if tls.key.is_empty() {
        bail!("http.tls.certificate is set but http.tls.key is not: both are needed to serve TLS");
    }
    let versions = protocol_versions(&tls.minimumtls)?;
    let provider = Arc::new(provider_with_suites(&tls.ciphersuites)?);
    let files = CertFiles {
        certificate: PathBuf::from(&tls.certificate),
        key: PathBuf::from(&tls.key),
    };
    let resolver = Arc::new(ReloadingResolver::load(files, provider.clone())?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .context("TLS protocol versions")?;
    let builder = if tls.clientcas.is_empty() {
        builder.with_no_client_auth()
    } else {
        let roots = client_roots(&tls.clientcas)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .context("http.tls.clientcas: cannot build the client certificate verifier")?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsSetup {
        server_config: Arc::new(config),
        resolver,
    })
}

/// `http.tls.minimumtls` → the versions rustls may negotiate. berth speaks
/// TLS 1.2 and 1.3 only: 1.0 and 1.1 are refused with a clear message.
pub fn protocol_versions(
    minimum: &str,
) -> anyhow::Result<&'static [&'static SupportedProtocolVersion]> {
    static BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match minimum.to_ascii_lowercase().as_str() {
        "" | "tls1.2" => Ok(BOTH),
        "tls1.3" => Ok(TLS13_ONLY),
        "tls1.0" | "tls1.1" => bail!(
            "http.tls.minimumtls: {minimum} is not supported: berth requires TLS 1.2 or later \
             (set minimumtls to tls1.2 or tls1.3, or remove it)"
        ),
        other => bail!("http.tls.minimumtls: unknown TLS version {other:?} (use tls1.2 or tls1.3)"),
    }
}

/// The ring provider, its TLS 1.2 suites restricted to `http.tls.ciphersuites`
/// when that is set (Go's names, as in distribution). TLS 1.3 suites are not
/// configurable, as in Go. Names rustls does not implement (CBC, RSA key
/// exchange) are skipped with a warning; none left is an error.
pub fn provider_with_suites(names: &[String]) -> anyhow::Result<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let wanted: Vec<String> = names.iter().map(|n| go_suite_name(n)).collect();
    let mut kept = Vec::new();
    for suite in &provider.cipher_suites {
        let name = format!("{:?}", suite.suite());
        let is_tls13 = matches!(suite, rustls::SupportedCipherSuite::Tls13(_));
        if is_tls13 || wanted.contains(&name) {
            kept.push(*suite);
        }
    }
    for (given, normal) in names.iter().zip(&wanted) {
        let known = provider
            .cipher_suites
            .iter()
            .any(|s| format!("{:?}", s.suite()) == *normal);
        if !known && !normal.starts_with("TLS13_") {
            tracing::warn!("http.tls.ciphersuites: {given} is not available in berth; ignored");
        }
    }
    if !kept
        .iter()
        .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)))
    {
        bail!(
            "http.tls.ciphersuites: none of {names:?} is a TLS 1.2 suite berth supports (ECDHE with \
             AES-GCM or CHACHA20-POLY1305); remove the list to use berth's defaults"
        );
    }
    provider.cipher_suites = kept;
    Ok(provider)
}

/// Go spells some suites differently from IANA/rustls: the CHACHA20 suites
/// without `_SHA256`, and TLS 1.3 suites without the `13`.
fn go_suite_name(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper.contains("CHACHA20_POLY1305") && !upper.ends_with("_SHA256") {
        return format!("{upper}_SHA256");
    }
    if upper.starts_with("TLS_AES_") || upper.starts_with("TLS_CHACHA20") {
        return upper.replacen("TLS_", "TLS13_", 1);
    }
    upper
}

/// Reads every certificate in the `clientcas` files into a root store.
fn client_roots(files: &[String]) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for file in files {
        let certs = read_certs(Path::new(file))
            .with_context(|| format!("http.tls.clientcas: reading {file}"))?;
        for cert in certs {
            roots
                .add(cert)
                .with_context(|| format!("http.tls.clientcas: {file} holds an unusable CA"))?;
        }
    }
    Ok(roots)
}

/// Every PEM certificate in `path`; an error when there is none.
pub fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// The PEM private key in `path` (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read a PEM private key from {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_tls_versions() {
        assert_eq!(protocol_versions("").map(|v| v.len()).ok(), Some(2));
        assert_eq!(protocol_versions("tls1.2").map(|v| v.len()).ok(), Some(2));
        assert_eq!(protocol_versions("tls1.3").map(|v| v.len()).ok(), Some(1));
        for old in ["tls1.0", "tls1.1"] {
            let err = format!(
                "{:#}",
                protocol_versions(old)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            );
            assert!(err.contains("requires TLS 1.2"), "{err}");
        }
        assert!(protocol_versions("ssl3").is_err());
    }

    #[test]
    fn cipher_suites_from_go_names() {
        let p = provider_with_suites(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).ok();
        let names: Vec<String> = p
            .map(|p| {
                p.cipher_suites
                    .iter()
                    .map(|s| format!("{:?}", s.suite()))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            names.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string()));
        assert!(names.iter().any(|n| n.starts_with("TLS13_")));
        assert_eq!(
            go_suite_name("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        );
        assert!(provider_with_suites(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()]).is_err());
    }
}
