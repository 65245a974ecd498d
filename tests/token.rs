//! Black-box tests of bearer tokens: berth's issuer and the verifier for
//! tokens of an external token server (keys from a certificate bundle or a
//! JWKS file), per the Docker token spec and registry:2's checks.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use berth::auth::token::{TokenError, TokenIssuer, TokenVerifier};
use berth::auth::ResourceAccess;
use berth::config::auth::TokenAuthConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ISSUER: &str = "test-issuer";
const SERVICE: &str = "test-service";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn pull(name: &str) -> ResourceAccess {
    ResourceAccess {
        kind: "repository".into(),
        name: name.into(),
        actions: vec!["pull".into()],
    }
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// A token server's key: signs tokens, and its self-signed certificate.
struct Server {
    key: EncodingKey,
    alg: Algorithm,
    cert_pem: String,
}

impl Server {
    fn es256() -> Server {
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
    fn rs256() -> Server {
        let key_pem = std::fs::read(fixture("token-rsa.key")).unwrap();
        Server {
            key: EncodingKey::from_rsa_pem(&key_pem).unwrap(),
            alg: Algorithm::RS256,
            cert_pem: std::fs::read_to_string(fixture("token-rsa.crt")).unwrap(),
        }
    }

    fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn good_claims() -> Value {
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

fn with(claims: &Value, key: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[key] = value;
    c
}

fn without(claims: &Value, key: &str) -> Value {
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove(key);
    c
}

fn write_file(dir: &tempfile::TempDir, name: &str, data: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    path.to_string_lossy().into_owned()
}

fn bundle_config(dir: &tempfile::TempDir, certs: &[&str]) -> TokenAuthConfig {
    TokenAuthConfig {
        issuer: ISSUER.into(),
        service: SERVICE.into(),
        realm: "https://auth.example/token".into(),
        rootcertbundle: write_file(dir, "bundle.pem", &certs.concat()),
        ..Default::default()
    }
}

fn verifier_for(dir: &tempfile::TempDir, certs: &[&str]) -> TokenVerifier {
    TokenVerifier::from_config(&bundle_config(dir, certs)).unwrap()
}

fn invalid(result: Result<impl std::fmt::Debug, TokenError>) -> String {
    match result {
        Err(TokenError::Invalid(why)) => why,
        other => panic!("expected TokenError::Invalid, got {other:?}"),
    }
}

fn config_error(result: Result<impl std::fmt::Debug, TokenError>) -> String {
    match result {
        Err(TokenError::Config(why)) => why,
        other => panic!("expected TokenError::Config, got {other:?}"),
    }
}

#[test]
fn issuer_round_trip() {
    let issuer = TokenIssuer::from_config(&TokenAuthConfig::default()).unwrap();
    assert_eq!(issuer.service(), "berth");
    let access = vec![
        pull("team/app"),
        ResourceAccess {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        },
    ];
    let before = now();
    let issued = issuer.issue("alice", access.clone()).unwrap();
    assert_eq!(issued.token, issued.access_token);
    assert_eq!(issued.expires_in, 300);
    let issued_at = time::OffsetDateTime::parse(
        &issued.issued_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((issued_at.unix_timestamp() as u64).abs_diff(before) <= 2);

    let claims = issuer.verifier().verify(&issued.token).unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.access, access);
    let exp = claims
        .expires_at
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(exp.abs_diff(before + 300) <= 2, "exp {exp} vs {before}");

    // What registry:2 and other verifiers read.
    let header = decode_part(&issued.token, 0);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], issuer.key_id());
    let body = decode_part(&issued.token, 1);
    assert_eq!(body["iss"], "berth");
    assert_eq!(body["aud"], "berth");
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["nbf"], body["iat"]);
    assert_eq!(
        body["exp"].as_u64().unwrap(),
        body["iat"].as_u64().unwrap() + 300
    );
    assert_eq!(body["jti"].as_str().unwrap().len(), 32);
    assert_eq!(body["access"][0]["type"], "repository");
    assert_eq!(body["access"][0]["name"], "team/app");
    assert_eq!(body["access"][0]["actions"], json!(["pull"]));

    // Two tokens never share a jti.
    let other = issuer.issue("alice", access).unwrap();
    assert_ne!(decode_part(&other.token, 1)["jti"], body["jti"]);

    // JSON shape of the token endpoint's response.
    let response = serde_json::to_value(&issued).unwrap();
    let mut keys: Vec<&str> = response
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in", "issued_at", "token"]);
}

#[test]
fn issuer_uses_configured_names_and_lifetime() {
    let cfg = TokenAuthConfig {
        issuer: "my-issuer".into(),
        service: "my-registry".into(),
        expiration: Duration::from_secs(90),
        ..Default::default()
    };
    let issuer = TokenIssuer::from_config(&cfg).unwrap();
    assert_eq!(issuer.service(), "my-registry");
    let issued = issuer.issue("", vec![]).unwrap();
    assert_eq!(issued.expires_in, 90);
    let body = decode_part(&issued.token, 1);
    assert_eq!(body["iss"], "my-issuer");
    assert_eq!(body["aud"], "my-registry");
    let claims = issuer.verifier().verify(&issued.token).unwrap();
    assert_eq!(claims.subject, "");
    assert!(claims.access.is_empty());

    let zero = TokenAuthConfig {
        expiration: Duration::ZERO,
        ..Default::default()
    };
    config_error(TokenIssuer::from_config(&zero));
}

#[test]
fn another_issuers_tokens_are_refused() {
    let a = TokenIssuer::from_config(&TokenAuthConfig::default()).unwrap();
    let b = TokenIssuer::from_config(&TokenAuthConfig::default()).unwrap();
    let token = a.issue("alice", vec![pull("x")]).unwrap().token;
    let why = invalid(b.verifier().verify(&token));
    assert!(why.contains("signature"), "{why}");
}

#[test]
fn signing_key_is_persisted_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/token.key");
    let cfg = TokenAuthConfig {
        signingkey: path.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let first = TokenIssuer::from_config(&cfg).unwrap();
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No temporary file left beside the key.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let token = first.issue("alice", vec![pull("a")]).unwrap().token;
    let second = TokenIssuer::from_config(&cfg).unwrap();
    assert_eq!(second.key_id(), first.key_id());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        pem,
        "key rewritten"
    );
    let claims = second.verifier().verify(&token).unwrap();
    assert_eq!(claims.subject, "alice");
}

#[test]
fn concurrent_first_starts_agree_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TokenAuthConfig {
        signingkey: dir
            .path()
            .join("k/token.key")
            .to_string_lossy()
            .into_owned(),
        ..Default::default()
    };
    let kids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| TokenIssuer::from_config(&cfg).unwrap().key_id().to_string()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
    let names = std::fs::read_dir(dir.path().join("k")).unwrap().count();
    assert_eq!(names, 1, "temporary files left behind");
}

#[test]
fn unreadable_signing_key_is_a_config_error_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "token.key", "not a key\n");
    let cfg = TokenAuthConfig {
        signingkey: path.clone(),
        ..Default::default()
    };
    let why = config_error(TokenIssuer::from_config(&cfg));
    assert!(why.contains("token.key"), "{why}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key\n");

    let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    let cfg = TokenAuthConfig {
        signingkey: write_file(&dir, "sec1.key", sec1),
        ..Default::default()
    };
    let why = config_error(TokenIssuer::from_config(&cfg));
    assert!(why.contains("pkcs8"), "{why}");
}

/// The issuer's kid is the libtrust fingerprint registry:2 computes from a
/// certificate of the same key, and a bundle verifier accepts its tokens:
/// berth's tokens work with a registry that trusts berth's certificate.
#[test]
fn issuer_tokens_verify_against_a_certificate_of_its_key() {
    let dir = tempfile::tempdir().unwrap();
    // RSA (PKCS#8 from openssl) ...
    let rsa_cfg = TokenAuthConfig {
        issuer: ISSUER.into(),
        service: SERVICE.into(),
        signingkey: fixture("token-rsa.key").to_string_lossy().into_owned(),
        ..Default::default()
    };
    let rsa = TokenIssuer::from_config(&rsa_cfg).unwrap();
    let token = rsa.issue("bob", vec![pull("r")]).unwrap().token;
    assert_eq!(decode_part(&token, 0)["alg"], "RS256");
    let cert = std::fs::read_to_string(fixture("token-rsa.crt")).unwrap();
    // Computed independently: openssl's SPKI DER, SHA-256, base32 (python).
    assert_eq!(
        rsa.key_id(),
        "GFWQ:O7FV:LIQN:OCX7:NRDC:GP4U:3EEZ:QN3Y:NW63:J6GT:W7J6:6SIY"
    );
    assert_eq!(decode_part(&token, 0)["kid"], rsa.key_id());
    let verifier = verifier_for(&dir, &[&cert]);
    assert_eq!(verifier.verify(&token).unwrap().subject, "bob");
    assert!(format!("{verifier:?}").contains(rsa.key_id()));

    // ... and EC P-256 (PKCS#8 from rcgen).
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["berth".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let ec_cfg = TokenAuthConfig {
        issuer: ISSUER.into(),
        service: SERVICE.into(),
        signingkey: write_file(&dir, "ec.key", &kp.serialize_pem()),
        ..Default::default()
    };
    let ec = TokenIssuer::from_config(&ec_cfg).unwrap();
    let token = ec.issue("carol", vec![]).unwrap().token;
    let dir2 = tempfile::tempdir().unwrap();
    let verifier = verifier_for(&dir2, &[&cert.pem()]);
    assert_eq!(verifier.verify(&token).unwrap().subject, "carol");
    assert!(format!("{verifier:?}").contains(ec.key_id()));
    assert!(ec
        .public_key_pem()
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));
}

#[test]
fn external_tokens_signed_by_a_bundled_certificate_are_accepted() {
    for server in [Server::es256(), Server::rs256()] {
        let dir = tempfile::tempdir().unwrap();
        let other = Server::es256();
        // The signer's certificate among others in the bundle.
        let verifier = verifier_for(&dir, &[&other.cert_pem, &server.cert_pem]);
        for kid in [None, Some("UNKNOWN:KEY:ID")] {
            let token = server.sign(&good_claims(), kid);
            let claims = verifier.verify(&token).unwrap();
            assert_eq!(claims.subject, "alice");
            assert_eq!(
                claims.access,
                vec![
                    ResourceAccess {
                        kind: "repository".into(),
                        name: "team/app".into(),
                        actions: vec!["pull".into(), "push".into()],
                    },
                    ResourceAccess {
                        kind: "registry".into(),
                        name: "catalog".into(),
                        actions: vec!["*".into()],
                    },
                ]
            );
        }
        // Not in the bundle: refused.
        let dir2 = tempfile::tempdir().unwrap();
        let stranger = verifier_for(&dir2, &[&other.cert_pem]);
        let token = server.sign(&good_claims(), None);
        let why = invalid(stranger.verify(&token));
        assert!(why.contains("signature"), "{:?}: {why}", server.alg);
    }
}

#[test]
fn kid_selects_the_key_when_it_names_a_trusted_one() {
    // Two RSA-capable paths: the kid of the issuer's key from its cert.
    let dir = tempfile::tempdir().unwrap();
    let rsa_cfg = TokenAuthConfig {
        signingkey: fixture("token-rsa.key").to_string_lossy().into_owned(),
        issuer: ISSUER.into(),
        service: SERVICE.into(),
        ..Default::default()
    };
    let issuer = TokenIssuer::from_config(&rsa_cfg).unwrap();
    let server = Server::rs256();
    let cert = std::fs::read_to_string(fixture("token-rsa.crt")).unwrap();
    let verifier = verifier_for(&dir, &[&Server::es256().cert_pem, &cert]);
    let token = server.sign(&good_claims(), Some(issuer.key_id()));
    assert!(verifier.verify(&token).is_ok());
    // A kid naming a trusted key does not let another key's signature in.
    let es = Server::es256();
    let forged = es.sign(&good_claims(), Some(issuer.key_id()));
    invalid(verifier.verify(&forged));
}

#[test]
fn claim_checks() {
    let server = Server::es256();
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier_for(&dir, &[&server.cert_pem]);
    let good = good_claims();
    let t = now();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("expired", with(&good, "exp", json!(t - 120)), "expired"),
        ("nbf in future", with(&good, "nbf", json!(t + 300)), "nbf"),
        ("wrong issuer", with(&good, "iss", json!("evil")), "issuer"),
        (
            "wrong audience",
            with(&good, "aud", json!("other")),
            "audience",
        ),
        (
            "audience list without service",
            with(&good, "aud", json!(["a", "b"])),
            "audience",
        ),
        ("no exp", without(&good, "exp"), "exp"),
        ("no iss", without(&good, "iss"), "iss"),
        ("no aud", without(&good, "aud"), "aud"),
    ];
    for (what, claims, want) in cases {
        let token = server.sign(&claims, None);
        let why = invalid(verifier.verify(&token));
        assert!(why.contains(want), "{what}: {why}");
        let shown = TokenError::Invalid(why).to_string();
        assert!(!shown.contains(&token), "{what}: message holds the token");
    }
    // Within the 60 s leeway, and the optional/alternative forms.
    let accepted = [
        with(&good, "exp", json!(t - 30)),
        with(&good, "nbf", json!(t + 30)),
        without(&good, "nbf"),
        with(&good, "aud", json!(["x", SERVICE])),
        without(&without(&good, "sub"), "access"),
        with(
            &good,
            "access",
            json!([{"type": "repository", "name": "a", "actions": null}]),
        ),
    ];
    for claims in accepted {
        let token = server.sign(&claims, None);
        if let Err(e) = verifier.verify(&token) {
            panic!("{claims}: {e}");
        }
    }
    let token = server.sign(&without(&good, "access"), None);
    assert!(verifier.verify(&token).unwrap().access.is_empty());
    let token = server.sign(
        &with(
            &good,
            "access",
            json!([{"type": "repository", "name": "a", "actions": null}]),
        ),
        None,
    );
    assert_eq!(
        verifier.verify(&token).unwrap().access,
        vec![ResourceAccess {
            kind: "repository".into(),
            name: "a".into(),
            actions: vec![],
        }]
    );
}

#[test]
fn unsigned_and_hmac_tokens_are_refused() {
    let server = Server::es256();
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier_for(&dir, &[&server.cert_pem]);
    let body = b64(good_claims().to_string().as_bytes());
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None"}),
        json!({"typ": "JWT"}),
    ] {
        let h = b64(header.to_string().as_bytes());
        for token in [format!("{h}.{body}."), format!("{h}.{body}.c2ln")] {
            invalid(verifier.verify(&token));
        }
    }
    // HS256 keyed with the certificate (algorithm confusion) is refused.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good_claims(),
        &EncodingKey::from_secret(server.cert_pem.as_bytes()),
    )
    .unwrap();
    let why = invalid(verifier.verify(&hs));
    assert!(why.contains("HMAC"), "{why}");
    // An ES256 header over an RS256 signature, and ES384 claimed for P-256.
    let rs = Server::rs256().sign(&good_claims(), None);
    let parts: Vec<&str> = rs.split('.').collect();
    let h = b64(json!({"alg": "ES256"}).to_string().as_bytes());
    invalid(verifier.verify(&format!("{h}.{}.{}", parts[1], parts[2])));
    let es = server.sign(&good_claims(), None);
    let parts: Vec<&str> = es.split('.').collect();
    let h = b64(json!({"alg": "ES384"}).to_string().as_bytes());
    invalid(verifier.verify(&format!("{h}.{}.{}", parts[1], parts[2])));
}

#[test]
fn malformed_tokens_are_refused_without_panic() {
    let server = Server::es256();
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier_for(&dir, &[&server.cert_pem]);
    let good = server.sign(&good_claims(), None);
    let parts: Vec<&str> = good.split('.').collect();
    let cases = vec![
        String::new(),
        "garbage".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        "...".into(),
        "!!!.@@@.###".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.!!!.{}", parts[0], parts[2]),
        format!("{}.{}.!!!", parts[0], parts[1]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}", parts[0], b64(b"not json"), parts[2]),
        format!("{}.{}.{}", b64(b"{"), parts[1], parts[2]),
        format!("{}.{}.{}x", parts[0], parts[1], parts[2]),
        format!("{good}.{good}"),
    ];
    for token in cases {
        let why = invalid(verifier.verify(&token));
        if token.len() > 8 {
            assert!(!why.contains(&token), "message holds the token");
        }
    }
    assert!(verifier.verify(&good).is_ok());
}

#[test]
fn jwks_keys_are_accepted() {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = kp.public_key_raw();
    assert_eq!(point.len(), 65);
    let jwks = json!({"keys": [
        {"kty": "EC", "use": "enc", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
        {"kty": "EC", "use": "sig", "crv": "P-256", "kid": "k1", "alg": "ES256",
         "x": b64(&point[1..33]), "y": b64(&point[33..])}
    ]});
    let dir = tempfile::tempdir().unwrap();
    let cfg = TokenAuthConfig {
        issuer: ISSUER.into(),
        service: SERVICE.into(),
        jwks: write_file(&dir, "jwks.json", &jwks.to_string()),
        ..Default::default()
    };
    let verifier = TokenVerifier::from_config(&cfg).unwrap();
    assert_eq!(verifier.service(), SERVICE);
    let server = Server {
        key: EncodingKey::from_ec_der(&kp.serialize_der()),
        alg: Algorithm::ES256,
        cert_pem: String::new(),
    };
    for kid in [Some("k1"), None] {
        let token = server.sign(&good_claims(), kid);
        assert_eq!(verifier.verify(&token).unwrap().subject, "alice");
    }
    let token = Server::es256().sign(&good_claims(), Some("k1"));
    invalid(verifier.verify(&token));

    // RSA JWK from the fixture's modulus and exponent is accepted too.
    let rsa_jwks = json!({"keys": [rsa_fixture_jwk()]});
    let cfg = TokenAuthConfig {
        jwks: write_file(&dir, "rsa.json", &rsa_jwks.to_string()),
        ..cfg
    };
    let verifier = TokenVerifier::from_config(&cfg).unwrap();
    let token = Server::rs256().sign(&good_claims(), None);
    assert!(verifier.verify(&token).is_ok());

    // Symmetric keys never.
    let oct = json!({"keys": [{"kty": "oct", "k": b64(b"secret")}]});
    let cfg = TokenAuthConfig {
        jwks: write_file(&dir, "oct.json", &oct.to_string()),
        ..cfg
    };
    let why = config_error(TokenVerifier::from_config(&cfg));
    assert!(why.contains("oct"), "{why}");
}

/// The fixture certificate's RSA key as a JWK (modulus and exponent read
/// from the certificate with x509-parser).
fn rsa_fixture_jwk() -> Value {
    let pem = std::fs::read(fixture("token-rsa.crt")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let x509_parser::public_key::PublicKey::RSA(rsa) = cert.public_key().parsed().unwrap() else {
        panic!("fixture is not RSA");
    };
    let trim = |b: &[u8]| {
        let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[start..].to_vec()
    };
    json!({"kty": "RSA", "n": b64(&trim(rsa.modulus)), "e": b64(&trim(rsa.exponent))})
}

#[test]
fn verifier_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::es256();
    let good = bundle_config(&dir, &[&server.cert_pem]);
    let cases = vec![
        (
            TokenAuthConfig {
                issuer: String::new(),
                ..good.clone()
            },
            "issuer",
        ),
        (
            TokenAuthConfig {
                service: String::new(),
                ..good.clone()
            },
            "service",
        ),
        (
            TokenAuthConfig {
                rootcertbundle: String::new(),
                ..good.clone()
            },
            "rootcertbundle or jwks",
        ),
        (
            TokenAuthConfig {
                rootcertbundle: dir.path().join("missing.pem").to_string_lossy().into(),
                ..good.clone()
            },
            "missing.pem",
        ),
        (
            TokenAuthConfig {
                rootcertbundle: write_file(&dir, "empty.pem", "hello\n"),
                ..good.clone()
            },
            "no PEM certificate",
        ),
        (
            TokenAuthConfig {
                jwks: write_file(&dir, "bad.json", "{}"),
                ..good.clone()
            },
            "keys",
        ),
    ];
    for (cfg, want) in cases {
        let why = config_error(TokenVerifier::from_config(&cfg));
        assert!(why.contains(want), "{want}: {why}");
    }
    // Bundle and JWKS together: keys from both.
    assert!(TokenVerifier::from_config(&good).is_ok());
}
