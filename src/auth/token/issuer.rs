//! berth's own token server (`auth.token.builtin: true`): a signing key kept
//! on disk (or in memory) and short-lived tokens for the access the policy
//! granted. Signing is done with ring directly so that PKCS#8 EC and RSA
//! keys and PKCS#1 RSA keys all work the same way.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde::Serialize;
use x509_parser::pem::Pem;

use super::keys::{self, TrustedKey};
use super::{TokenError, TokenVerifier};
use crate::auth::ResourceAccess;
use crate::config::auth::TokenAuthConfig;

/// Name used for `iss` and `aud` when the config leaves them empty.
const DEFAULT_NAME: &str = "berth";

/// berth's own token server (`auth.token.builtin: true`): signs short-lived
/// tokens that [`TokenIssuer::verifier`] (and any registry trusting its
/// public key) accepts.
pub struct TokenIssuer {
    issuer: String,
    service: String,
    lifetime: Duration,
    key: SigningKey,
    kid: String,
    spki_der: Vec<u8>,
    rng: SystemRandom,
}

enum SigningKey {
    Ecdsa { pair: EcdsaKeyPair, p384: bool },
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for TokenIssuer {
    /// Names the issuer, service, lifetime and key id; never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .field("lifetime", &self.lifetime)
            .field("kid", &self.kid)
            .finish()
    }
}

/// The token endpoint's response body (Docker token spec): `token` and its
/// OAuth2 alias `access_token`, lifetime in seconds, issue time in RFC 3339.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub issued_at: String,
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: &'a [ResourceAccess],
}

impl TokenIssuer {
    /// Loads the PEM signing key at `cfg.signingkey` (PKCS#8 EC P-256/P-384 or
    /// RSA, or PKCS#1 RSA), generating (ES256 P-256) and writing it there
    /// (mode 0600, parent dirs created) when missing; in memory only when
    /// `signingkey` is empty. issuer/service default to "berth" / "berth"
    /// when empty. Lifetime `cfg.expiration` (default 5 min).
    pub fn from_config(cfg: &TokenAuthConfig) -> Result<Self, TokenError> {
        if cfg.expiration.is_zero() {
            return Err(TokenError::Config(
                "auth.token.expiration must be positive".into(),
            ));
        }
        let rng = SystemRandom::new();
        let key = if cfg.signingkey.is_empty() {
            let doc = generate_p256(&rng)?;
            parse_key(&[("PRIVATE KEY", doc.as_slice())], &rng)
        } else {
            load_or_create(Path::new(&cfg.signingkey), &rng)
        }
        .map_err(|why| {
            let place = if cfg.signingkey.is_empty() {
                "generated key".to_string()
            } else {
                cfg.signingkey.clone()
            };
            TokenError::Config(format!("auth.token.signingkey {place}: {why}"))
        })?;
        let spki_der = match &key {
            SigningKey::Ecdsa { pair, p384 } => {
                keys::ec_spki_der(pair.public_key().as_ref(), *p384)
            }
            SigningKey::Rsa(pair) => keys::rsa_spki_der(pair.public().as_ref()),
        };
        let or_default = |s: &str| {
            if s.is_empty() {
                DEFAULT_NAME.to_string()
            } else {
                s.to_string()
            }
        };
        Ok(TokenIssuer {
            issuer: or_default(&cfg.issuer),
            service: or_default(&cfg.service),
            lifetime: cfg.expiration,
            kid: keys::libtrust_key_id(&spki_der),
            spki_der,
            key,
            rng,
        })
    }

    /// Signs a token for `subject` granting `access` (already filtered by the
    /// access policy: the token says exactly what it carries).
    pub fn issue(
        &self,
        subject: &str,
        access: Vec<ResourceAccess>,
    ) -> Result<IssuedToken, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TokenError::Config("system clock before 1970".into()))?;
        let iat = now.as_secs();
        let lifetime = self.lifetime.as_secs().max(1);
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| TokenError::Config("no randomness for jti".into()))?;
        let header = Header {
            typ: "JWT",
            alg: self.alg_name(),
            kid: &self.kid,
        };
        let claims = Claims {
            iss: &self.issuer,
            sub: subject,
            aud: &self.service,
            exp: iat + lifetime,
            nbf: iat,
            iat,
            jti: hex::encode(jti),
            access: &access,
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!(
            "{}.{}",
            b64.encode(to_json(&header)?),
            b64.encode(to_json(&claims)?)
        );
        let signature = self.sign(signing_input.as_bytes())?;
        let token = format!("{signing_input}.{}", b64.encode(signature));
        let issued_at = time::OffsetDateTime::from_unix_timestamp(iat as i64)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .ok_or_else(|| TokenError::Config("cannot format issue time".into()))?;
        Ok(IssuedToken {
            access_token: token.clone(),
            token,
            expires_in: lifetime,
            issued_at,
        })
    }

    /// A verifier that accepts exactly this issuer's tokens.
    pub fn verifier(&self) -> TokenVerifier {
        let (key, algorithm) = match &self.key {
            SigningKey::Ecdsa { pair, p384 } => (
                DecodingKey::from_ec_der(pair.public_key().as_ref()),
                if *p384 {
                    Algorithm::ES384
                } else {
                    Algorithm::ES256
                },
            ),
            SigningKey::Rsa(pair) => (
                DecodingKey::from_rsa_der(pair.public().as_ref()),
                Algorithm::RS256,
            ),
        };
        TokenVerifier::with_keys(
            &self.issuer,
            &self.service,
            vec![TrustedKey {
                kid: Some(self.kid.clone()),
                key,
                algorithms: vec![algorithm],
            }],
        )
    }

    /// The service name tokens are issued for (for challenges).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The header `kid` of issued tokens: the libtrust fingerprint of the
    /// public key, which registry:2 computes for its `rootcertbundle` too.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for
    /// other services that want to verify berth's tokens.
    pub fn public_key_pem(&self) -> String {
        keys::pem_encode("PUBLIC KEY", &self.spki_der)
    }

    fn alg_name(&self) -> &'static str {
        match &self.key {
            SigningKey::Ecdsa { p384: false, .. } => "ES256",
            SigningKey::Ecdsa { p384: true, .. } => "ES384",
            SigningKey::Rsa(_) => "RS256",
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let failed = |_| TokenError::Config("signing failed".into());
        match &self.key {
            SigningKey::Ecdsa { pair, .. } => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(failed),
            SigningKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, TokenError> {
    serde_json::to_vec(value).map_err(|e| TokenError::Config(format!("encoding token: {e}")))
}

fn generate_p256(rng: &SystemRandom) -> Result<Vec<u8>, TokenError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| TokenError::Config("cannot generate a signing key".into()))
}

/// Reads the key at `path`, or generates one and writes it there first.
fn load_or_create(path: &Path, rng: &SystemRandom) -> Result<SigningKey, String> {
    match std::fs::read(path) {
        Ok(data) => parse_pem(&data, rng),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pkcs8 = generate_p256(rng).map_err(|e| e.to_string())?;
            let pem = keys::pem_encode("PRIVATE KEY", &pkcs8);
            if write_private(path, pem.as_bytes(), rng)? {
                parse_key(&[("PRIVATE KEY", &pkcs8)], rng)
            } else {
                // Another process (a replica sharing the file) was first:
                // use its key so that both accept each other's tokens.
                let data = std::fs::read(path).map_err(|e| e.to_string())?;
                parse_pem(&data, rng)
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Writes a new key file readable by the owner only: written under a
/// temporary name with mode 0600, then linked into place, so a crash never
/// leaves a half-written key, the key is never world-readable, and of
/// several processes creating it at once exactly one wins. Returns false
/// when the file appeared meanwhile (left as it is).
fn write_private(path: &Path, data: &[u8], rng: &SystemRandom) -> Result<bool, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut nonce = [0u8; 8];
    rng.fill(&mut nonce)
        .map_err(|_| "no randomness for a temporary name".to_string())?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        hex::encode(nonce)
    ));
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()));
    let result = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // Filesystems without hard links: rename (last writer wins).
        Err(_) => std::fs::rename(&tmp, path).map(|()| true),
    });
    let _ = std::fs::remove_file(&tmp);
    result.map_err(|e| format!("writing new key: {e}"))
}

fn parse_pem(data: &[u8], rng: &SystemRandom) -> Result<SigningKey, String> {
    let mut blocks = Vec::new();
    for pem in Pem::iter_from_buffer(data) {
        let pem = pem.map_err(|e| format!("not PEM: {e}"))?;
        blocks.push(pem);
    }
    let refs: Vec<(&str, &[u8])> = blocks
        .iter()
        .map(|p| (p.label.as_str(), p.contents.as_slice()))
        .collect();
    parse_key(&refs, rng)
}

/// The first private key among PEM blocks (label, DER).
fn parse_key(blocks: &[(&str, &[u8])], rng: &SystemRandom) -> Result<SigningKey, String> {
    for (label, der) in blocks {
        match *label {
            "PRIVATE KEY" => {
                if let Ok(pair) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, rng)
                {
                    return Ok(SigningKey::Ecdsa { pair, p384: false });
                }
                if let Ok(pair) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der, rng)
                {
                    return Ok(SigningKey::Ecdsa { pair, p384: true });
                }
                return RsaKeyPair::from_pkcs8(der)
                    .map(SigningKey::Rsa)
                    .map_err(|e| {
                        format!("PKCS#8 key is not EC P-256/P-384 or RSA (2048+ bits): {e}")
                    });
            }
            "RSA PRIVATE KEY" => {
                return RsaKeyPair::from_der(der)
                    .map(SigningKey::Rsa)
                    .map_err(|e| format!("unusable RSA key: {e}"));
            }
            "EC PRIVATE KEY" => {
                return Err("SEC1 EC keys are not read; convert with \
                            `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`"
                    .into())
            }
            "ENCRYPTED PRIVATE KEY" => return Err("encrypted keys are not supported".into()),
            _ => continue,
        }
    }
    Err("no PRIVATE KEY block found".into())
}
