//! Fixtures shared by the token tests: a token server's keys, claims and
//! verifier configurations.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use berth::auth::token::{TokenError, TokenVerifier};
use berth::auth::ResourceAccess;
use berth::config::auth::TokenAuthConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const ISSUER: &str = "test-issuer";
pub const SERVICE: &str = "test-service";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn pull(name: &str) -> ResourceAccess {
    ResourceAccess {
        kind: "repository".into(),
        name: name.into(),
        actions: vec!["pull".into()],
    }
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

pub fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// A token server's key: signs tokens, and its self-signed certificate.
pub struct Server {
    pub key: EncodingKey,
    pub alg: Algorithm,
    pub cert_pem: String,
}

impl Server {
    pub fn es256() -> Server {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["token.example".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        Server {
            key: EncodingKey::from_ec_der(&kp.serialize_der()),
            alg: Algorithm::ES256,
            cert_pem: cert.pem(),
        }
    }

    /// RSA from a committed fixture (made once with openssl: rcgen on ring
    /// cannot generate RSA keys).
    pub fn rs256() -> Server {
        let key_pem = std::fs::read(fixture("token-rsa.key")).unwrap();
        Server {
            key: EncodingKey::from_rsa_pem(&key_pem).unwrap(),
            alg: Algorithm::RS256,
            cert_pem: std::fs::read_to_string(fixture("token-rsa.crt")).unwrap(),
        }
    }

    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

pub fn good_claims() -> Value {
    let t = now();
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": SERVICE,
        "exp": t + 300,
        "nbf": t,
        "iat": t,
        "jti": "abc",
        "access": [
            {"type": "repository", "name": "team/app", "actions": ["pull", "push"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]}
        ]
    })
}

pub fn with(claims: &Value, key: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[key] = value;
    c
}

pub fn without(claims: &Value, key: &str) -> Value {
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove(key);
    c
}

pub fn write_file(dir: &tempfile::TempDir, name: &str, data: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    path.to_string_lossy().into_owned()
}

pub fn bundle_config(dir: &tempfile::TempDir, certs: &[&str]) -> TokenAuthConfig {
    TokenAuthConfig {
        issuer: ISSUER.into(),
        service: SERVICE.into(),
        realm: "https://auth.example/token".into(),
        rootcertbundle: write_file(dir, "bundle.pem", &certs.concat()),
        ..Default::default()
    }
}

pub fn verifier_for(dir: &tempfile::TempDir, certs: &[&str]) -> TokenVerifier {
    TokenVerifier::from_config(&bundle_config(dir, certs)).unwrap()
}

pub fn invalid(result: Result<impl std::fmt::Debug, TokenError>) -> String {
    match result {
        Err(TokenError::Invalid(why)) => why,
        other => panic!("expected TokenError::Invalid, got {other:?}"),
    }
}

pub fn config_error(result: Result<impl std::fmt::Debug, TokenError>) -> String {
    match result {
        Err(TokenError::Config(why)) => why,
        other => panic!("expected TokenError::Config, got {other:?}"),
    }
}
