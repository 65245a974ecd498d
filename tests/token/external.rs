//! Tokens of an external token server: keys from a certificate bundle or a
//! JWKS file, claim checks, refused and malformed tokens, config errors.

use berth::auth::token::{TokenError, TokenIssuer, TokenVerifier};
use berth::auth::ResourceAccess;
use berth::config::auth::TokenAuthConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::support::*;

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
