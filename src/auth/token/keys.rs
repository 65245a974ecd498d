//! Public keys that may sign tokens: read from a `rootcertbundle` (PEM X.509
//! certificates) or a JWKS file, each with the algorithms its type allows and
//! a key id. Kept apart from the verifier so the issuer can build the same
//! kind of entry for its own key.

use std::path::Path;

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::pem::Pem;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::TokenError;

/// RSA signature algorithms accepted for an RSA key. HMAC is never accepted:
/// a verifier holds public keys only, and HS* with a public key as the secret
/// is the classic algorithm-confusion attack.
const RSA_ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// One key trusted to sign tokens.
#[derive(Clone)]
pub(crate) struct TrustedKey {
    /// Key id matched against the token header's `kid` (libtrust fingerprint
    /// for certificates and the issuer's key, the JWK's own `kid` for JWKS).
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// Algorithms this key may verify; decided by the key, never by the token.
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// Reads every certificate of a PEM bundle and returns its public key.
pub(crate) fn load_cert_bundle(path: &Path) -> Result<Vec<TrustedKey>, TokenError> {
    let data = std::fs::read(path)
        .map_err(|e| TokenError::Config(format!("rootcertbundle {}: {e}", path.display())))?;
    let mut keys = Vec::new();
    for (i, pem) in Pem::iter_from_buffer(&data).enumerate() {
        let pem = pem.map_err(|e| {
            TokenError::Config(format!(
                "rootcertbundle {}: PEM block {}: {e}",
                path.display(),
                i + 1
            ))
        })?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        let cert = pem.parse_x509().map_err(|e| {
            TokenError::Config(format!(
                "rootcertbundle {}: certificate {}: {e}",
                path.display(),
                i + 1
            ))
        })?;
        let key = key_from_spki(cert.public_key()).map_err(|why| {
            TokenError::Config(format!(
                "rootcertbundle {}: certificate {}: {why}",
                path.display(),
                i + 1
            ))
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(TokenError::Config(format!(
            "rootcertbundle {}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(keys)
}

/// The key of a certificate's SubjectPublicKeyInfo, with its libtrust key id.
fn key_from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<TrustedKey, String> {
    let kid = Some(libtrust_key_id(spki.raw));
    let bits = &spki.subject_public_key.data;
    let oid = &spki.algorithm.algorithm;
    if *oid == OID_PKCS1_RSAENCRYPTION {
        // The BIT STRING of an RSA SPKI is the PKCS#1 RSAPublicKey ring wants.
        return Ok(TrustedKey {
            kid,
            key: DecodingKey::from_rsa_der(bits),
            algorithms: RSA_ALGS.to_vec(),
        });
    }
    if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or("EC key without a named curve")?;
        let alg = if curve == OID_EC_P256 {
            Algorithm::ES256
        } else if curve == OID_NIST_EC_P384 {
            Algorithm::ES384
        } else {
            return Err(format!(
                "unsupported EC curve {curve} (P-256 and P-384 are)"
            ));
        };
        // The BIT STRING of an EC SPKI is the uncompressed point.
        return Ok(TrustedKey {
            kid,
            key: DecodingKey::from_ec_der(bits),
            algorithms: vec![alg],
        });
    }
    if *oid == OID_SIG_ED25519 {
        return Ok(TrustedKey {
            kid,
            key: DecodingKey::from_ed_der(bits),
            algorithms: vec![Algorithm::EdDSA],
        });
    }
    Err(format!(
        "unsupported public key algorithm {oid} (RSA, EC P-256/P-384 and Ed25519 are)"
    ))
}

/// Reads a JWKS file (`{"keys": [...]}`); keys marked `"use": "enc"` are
/// skipped, symmetric (`oct`) keys refused.
pub(crate) fn load_jwks(path: &Path) -> Result<Vec<TrustedKey>, TokenError> {
    let cfg = |why: String| TokenError::Config(format!("jwks {}: {why}", path.display()));
    let data = std::fs::read(path).map_err(|e| cfg(e.to_string()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&data).map_err(|e| cfg(format!("not JSON: {e}")))?;
    let list = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| cfg("no \"keys\" array".into()))?;
    let mut keys = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let jwk: Jwk =
            serde_json::from_value(raw.clone()).map_err(|e| cfg(format!("key {}: {e}", i + 1)))?;
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let key = key_from_jwk(&jwk).map_err(|why| cfg(format!("key {}: {why}", i + 1)))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(cfg("no signing key".into()));
    }
    Ok(keys)
}

fn key_from_jwk(jwk: &Jwk) -> Result<TrustedKey, String> {
    let algorithms = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_ALGS.to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("unsupported EC curve (P-256 and P-384 are)".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return Err("unsupported OKP curve (Ed25519 is)".into()),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (oct) keys are not accepted".into())
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))?;
    Ok(TrustedKey {
        kid: jwk.common.key_id.clone(),
        key,
        algorithms,
    })
}

/// libtrust's key id, which registry:2 computes for the keys of its
/// `rootcertbundle` and token servers put in `kid`: SHA-256 of the DER
/// SubjectPublicKeyInfo, first 240 bits, base32 without padding, in 12
/// colon-separated groups of 4.
pub(crate) fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let b32 = base32_nopad(&digest[..30]);
    let groups: Vec<&str> = b32
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    groups.join(":")
}

/// RFC 4648 base32 (standard alphabet), no padding.
fn base32_nopad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// DER SubjectPublicKeyInfo of an uncompressed EC point on P-256 or P-384.
pub(crate) fn ec_spki_der(point: &[u8], p384: bool) -> Vec<u8> {
    // SEQUENCE { SEQUENCE { id-ecPublicKey, curve }, BIT STRING }, fixed prefixes.
    let prefix: &[u8] = if p384 {
        &[
            0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
        ]
    } else {
        &[
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ]
    };
    [prefix, point].concat()
}

/// DER SubjectPublicKeyInfo of a PKCS#1 RSAPublicKey.
pub(crate) fn rsa_spki_der(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    let alg: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let bit_string = der_tlv(0x03, &[&[0x00][..], pkcs1].concat());
    der_tlv(0x30, &[alg, &bit_string].concat())
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// PEM armour, 64 columns, as openssl writes it.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_nopad(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn libtrust_key_id_shape() {
        let kid = libtrust_key_id(b"anything");
        let groups: Vec<&str> = kid.split(':').collect();
        assert_eq!(groups.len(), 12, "{kid}");
        assert!(groups.iter().all(|g| g.len() == 4), "{kid}");
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der_tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
    }
}
