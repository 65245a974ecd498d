//! Bearer tokens per the Docker token authentication spec: [`TokenVerifier`]
//! checks tokens from an external token server (`auth.token` with
//! `rootcertbundle` and/or `jwks`), [`TokenIssuer`] is berth's own token
//! server (`auth.token.builtin: true`). HTTP (the `/auth/token` endpoint and
//! the challenges) lives in `http`; this module only signs and checks.
//!
//! Verification follows registry:2: the signature must come from a trusted
//! key (the header's `kid` picks it when it names one, otherwise each
//! trusted key whose type fits `alg` is tried), `iss` must equal `issuer`,
//! `aud` must be or contain `service`, `exp` is required and `nbf` honoured,
//! both with 60 s leeway. Certificate chains in the `x5c` header are not
//! followed: the signing key itself must be in the bundle or the JWKS.

mod issuer;
mod keys;
mod scope;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::auth::ResourceAccess;
use crate::config::auth::TokenAuthConfig;

pub use issuer::{IssuedToken, TokenIssuer};
pub use scope::{format_scope, parse_scope, parse_scopes};

use keys::TrustedKey;

/// Clock skew allowed on `exp` and `nbf`, as registry:2.
pub const LEEWAY_SECS: u64 = 60;

/// Why a token or the token configuration was refused. Messages name the
/// reason (expired, wrong issuer, bad signature, malformed...), never the
/// token or a key.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The `auth.token` configuration or a file it names is unusable.
    #[error("token auth config: {0}")]
    Config(String),
    /// A presented token is not acceptable.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verified claims the registry acts on.
#[derive(Debug, Clone)]
pub struct TokenClaims {
    /// `sub`: the user the token server authenticated; empty for anonymous.
    pub subject: String,
    /// `access`: what the token grants, as the token server wrote it.
    pub access: Vec<ResourceAccess>,
    /// `exp`, for callers that cache verified tokens.
    pub expires_at: SystemTime,
}

/// Checks bearer tokens: signature by a trusted key, issuer, audience
/// (service), exp/nbf (60 s leeway). Cheap to clone (shared inside).
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    issuer: String,
    service: String,
    keys: Vec<TrustedKey>,
}

impl std::fmt::Debug for TokenVerifier {
    /// Names the issuer, service and key ids; never key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.inner.issuer)
            .field("service", &self.inner.service)
            .field("keys", &self.inner.keys)
            .finish()
    }
}

/// The claims berth reads; jsonwebtoken validates `exp`/`nbf`/`iss`/`aud`.
#[derive(Deserialize)]
struct WireClaims {
    #[serde(default)]
    sub: Option<String>,
    /// Optional here so that a missing `exp` is reported as such by the
    /// validation (which runs after deserializing), not as malformed JSON.
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    access: Option<Vec<WireAccess>>,
}

/// An `access` entry as token servers write it (`actions` may be null).
#[derive(Deserialize)]
struct WireAccess {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    actions: Option<Vec<String>>,
}

impl TokenVerifier {
    /// From `auth.token` with `rootcertbundle` and/or `jwks` (external token
    /// server): `issuer` and `service` are required, and at least one key
    /// source. For `builtin: true` use [`TokenIssuer::verifier`] instead.
    pub fn from_config(cfg: &TokenAuthConfig) -> Result<Self, TokenError> {
        if cfg.issuer.is_empty() {
            return Err(TokenError::Config("auth.token.issuer is required".into()));
        }
        if cfg.service.is_empty() {
            return Err(TokenError::Config("auth.token.service is required".into()));
        }
        let mut keys = Vec::new();
        if !cfg.rootcertbundle.is_empty() {
            keys.extend(keys::load_cert_bundle(Path::new(&cfg.rootcertbundle))?);
        }
        if !cfg.jwks.is_empty() {
            keys.extend(keys::load_jwks(Path::new(&cfg.jwks))?);
        }
        if keys.is_empty() {
            return Err(TokenError::Config(
                "auth.token needs rootcertbundle or jwks (the token server's keys)".into(),
            ));
        }
        Ok(Self::with_keys(&cfg.issuer, &cfg.service, keys))
    }

    pub(crate) fn with_keys(issuer: &str, service: &str, keys: Vec<TrustedKey>) -> Self {
        TokenVerifier {
            inner: Arc::new(VerifierInner {
                issuer: issuer.to_string(),
                service: service.to_string(),
                keys,
            }),
        }
    }

    /// The `service` tokens must be issued for (the challenge's `service`).
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Verifies a compact JWS token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let invalid = |why: &str| TokenError::Invalid(why.to_string());
        if token.split('.').count() != 3 {
            return Err(invalid("malformed: not a three-part JWT"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::Json(_) => invalid(
                "malformed header or unsupported alg (none and unknown algorithms are refused)",
            ),
            _ => invalid("malformed header"),
        })?;
        let alg = header.alg;
        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(invalid("HMAC algorithms are refused"));
        }
        let fits = |k: &&TrustedKey| k.algorithms.contains(&alg);
        let by_kid: Vec<&TrustedKey> = match header.kid.as_deref() {
            Some(kid) => self
                .inner
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .filter(fits)
                .collect(),
            None => Vec::new(),
        };
        // The kid is a hint, not trust: when it names no trusted key, every
        // key that fits the algorithm is tried (the signature decides).
        let candidates: Vec<&TrustedKey> = if by_kid.is_empty() {
            self.inner.keys.iter().filter(fits).collect()
        } else {
            by_kid
        };
        if candidates.is_empty() {
            return Err(TokenError::Invalid(format!(
                "bad signature: no trusted key for alg {alg:?}"
            )));
        }
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.service]);
        for key in candidates {
            match jsonwebtoken::decode::<WireClaims>(token, &key.key, &validation) {
                Ok(data) => return claims_from_wire(data.claims),
                Err(e) => match e.kind() {
                    // Another key may have signed it (ring also says
                    // "unspecified" for a key of the wrong size or curve).
                    ErrorKind::InvalidSignature | ErrorKind::Crypto(_) => continue,
                    kind => return Err(map_error(kind)),
                },
            }
        }
        Err(invalid("bad signature: not signed by a trusted key"))
    }
}

fn map_error(kind: &ErrorKind) -> TokenError {
    let why = match kind {
        ErrorKind::ExpiredSignature => "expired".to_string(),
        ErrorKind::ImmatureSignature => "not valid yet (nbf in the future)".to_string(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_string(),
        ErrorKind::InvalidAudience => "wrong audience (not for this service)".to_string(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c:?}"),
        ErrorKind::InvalidAlgorithm => "algorithm not allowed for the key".to_string(),
        ErrorKind::Json(_) => "malformed claims".to_string(),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            "malformed".to_string()
        }
        _ => "unusable token".to_string(),
    };
    TokenError::Invalid(why)
}

fn claims_from_wire(c: WireClaims) -> Result<TokenClaims, TokenError> {
    let exp = c.exp.unwrap_or(f64::NAN);
    if !exp.is_finite() || exp < 0.0 {
        return Err(TokenError::Invalid("malformed exp".into()));
    }
    let expires_at = UNIX_EPOCH
        .checked_add(Duration::from_secs(exp as u64))
        .ok_or_else(|| TokenError::Invalid("malformed exp".into()))?;
    let access = c
        .access
        .unwrap_or_default()
        .into_iter()
        .map(|a| ResourceAccess {
            kind: a.kind,
            name: a.name,
            actions: a.actions.unwrap_or_default(),
        })
        .collect();
    Ok(TokenClaims {
        subject: c.sub.unwrap_or_default(),
        access,
        expires_at,
    })
}
