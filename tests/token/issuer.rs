//! berth's own token issuer: round trips, configured names, the persisted
//! signing key, and its tokens against a certificate of its key.

use std::time::{Duration, UNIX_EPOCH};

use berth::auth::token::TokenIssuer;
use berth::auth::ResourceAccess;
use berth::config::auth::TokenAuthConfig;
use serde_json::json;

use super::support::*;

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
