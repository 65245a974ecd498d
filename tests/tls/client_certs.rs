//! `http.tls.clientcas`: clients must present a certificate signed by one
//! of the listed CAs.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::procs::require_tools;
use crate::{curl_fails, curl_ok, TlsRegistry};

/// Writes `NAME-ca.crt` and a client certificate `NAME.crt` / `NAME.key`
/// signed by it into `dir`.
fn client_ca_and_cert(dir: &Path, name: &str) {
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} client CA"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, format!("{name} client"));
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();

    std::fs::write(dir.join(format!("{name}-ca.crt")), ca_cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

#[test]
fn client_certificate_required_when_clientcas_set() {
    if !require_tools(&["curl", "openssl"]) {
        return;
    }
    let reg = TlsRegistry::start_with(|certs| {
        client_ca_and_cert(certs, "team");
        client_ca_and_cert(certs, "stranger");
        format!(
            "    clientcas:\n      - {}\n",
            certs.join("team-ca.crt").display()
        )
    });
    let c = |f: &str| reg.certs.join(f).to_str().unwrap().to_string();
    let url = reg.url("/v2/");

    curl_fails(&["--cacert", &c("ca.crt"), &url]);
    curl_fails(&[
        "--cacert",
        &c("ca.crt"),
        "--cert",
        &c("stranger.crt"),
        "--key",
        &c("stranger.key"),
        &url,
    ]);
    for http in ["--http1.1", "--http2"] {
        let out = curl_ok(&[
            "--cacert",
            &c("ca.crt"),
            http,
            "--cert",
            &c("team.crt"),
            "--key",
            &c("team.key"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ]);
        assert_eq!(out, "200", "{http} with the team client certificate");
    }
    assert!(reg.log().contains("client certificates required"));
}
