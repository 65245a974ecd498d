//! Who is calling: checks the credentials of a request against the
//! configured scheme (none, htpasswd, bearer tokens), with login throttling.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::htpasswd::HtpasswdFile;
use super::login_cache::{Flight, FlightKey, LoginCache, LoginKey};
use super::ratelimit::LoginLimiter;
use super::token::{TokenClaims, TokenIssuer, TokenVerifier};
use super::Credentials;
use crate::config::auth::AuthConfig;

/// The caller, once credentials are checked.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No credentials presented.
    Anonymous,
    /// A user who proved a password (htpasswd).
    User(String),
    /// A bearer token's verified claims.
    Token(TokenClaims),
}

impl Identity {
    /// The user or token subject, for logs; None when anonymous.
    pub fn name(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::User(u) => Some(u),
            Identity::Token(c) if c.subject.is_empty() => None,
            Identity::Token(c) => Some(&c.subject),
        }
    }
}

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Wrong user or password, or a credential kind this scheme does not take.
    BadCredentials,
    /// Too many failures from this address, or too many of its logins under
    /// way at once; retry after the duration.
    RateLimited(Duration),
    /// The bearer token did not verify (the reason is for logs only).
    InvalidToken(String),
}

/// A start-up error in the `auth` section, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct AuthSetupError {
    pub key: String,
    pub message: String,
}

fn setup_err(key: &str, message: impl std::fmt::Display) -> AuthSetupError {
    AuthSetupError {
        key: key.to_string(),
        message: message.to_string(),
    }
}

/// berth's own token server: the issuer and the users it knows.
pub struct BuiltinIssuer {
    pub issuer: TokenIssuer,
    pub users: HtpasswdFile,
}

enum Scheme {
    Open,
    Htpasswd {
        file: HtpasswdFile,
        realm: String,
    },
    Token {
        verifier: TokenVerifier,
        realm: String,
        service: String,
        builtin: Option<Box<BuiltinIssuer>>,
    },
}

/// Checks credentials for every request and for `/auth/token`.
pub struct Authenticator {
    scheme: Scheme,
    limiter: Arc<LoginLimiter>,
    /// Recently verified htpasswd logins (see `login_cache`).
    cache: Arc<LoginCache<Result<(), AuthFailure>>>,
}

impl Authenticator {
    /// Builds the configured scheme; files and keys are loaded now, so a bad
    /// file fails start-up with a message naming the key.
    pub fn from_config(cfg: Option<&AuthConfig>) -> Result<Authenticator, AuthSetupError> {
        let scheme = match cfg {
            None => Scheme::Open,
            Some(a) if a.none.is_some() => Scheme::Open,
            Some(a) if a.silly.is_some() => {
                return Err(setup_err(
                    "auth.silly",
                    "the silly scheme lets anyone in; berth does not support it (use htpasswd or token)",
                ))
            }
            Some(AuthConfig { htpasswd: Some(h), .. }) => {
                if h.path.is_empty() {
                    return Err(setup_err("auth.htpasswd.path", "the htpasswd file must be given"));
                }
                Scheme::Htpasswd {
                    file: HtpasswdFile::open(&h.path).map_err(|e| setup_err("auth.htpasswd.path", e))?,
                    realm: if h.realm.is_empty() { "berth".into() } else { h.realm.clone() },
                }
            }
            Some(AuthConfig { token: Some(t), .. }) if t.builtin => {
                if t.htpasswd.is_empty() {
                    return Err(setup_err(
                        "auth.token.htpasswd",
                        "the built-in token issuer needs an htpasswd file of users",
                    ));
                }
                let users = HtpasswdFile::open(&t.htpasswd).map_err(|e| setup_err("auth.token.htpasswd", e))?;
                let issuer = TokenIssuer::from_config(t).map_err(|e| setup_err("auth.token", e))?;
                Scheme::Token {
                    verifier: issuer.verifier(),
                    realm: t.realm.clone(),
                    service: issuer.service().to_string(),
                    builtin: Some(Box::new(BuiltinIssuer { issuer, users })),
                }
            }
            Some(AuthConfig { token: Some(t), .. }) => {
                if t.realm.is_empty() {
                    return Err(setup_err("auth.token.realm", "the token server's URL must be given"));
                }
                if t.rootcertbundle.is_empty() && t.jwks.is_empty() {
                    return Err(setup_err(
                        "auth.token.rootcertbundle",
                        "rootcertbundle or jwks must name the keys that sign tokens",
                    ));
                }
                Scheme::Token {
                    verifier: TokenVerifier::from_config(t).map_err(|e| setup_err("auth.token", e))?,
                    realm: t.realm.clone(),
                    service: t.service.clone(),
                    builtin: None,
                }
            }
            Some(_) => Scheme::Open,
        };
        Ok(Authenticator {
            scheme,
            limiter: Arc::new(LoginLimiter::default()),
            cache: Arc::new(LoginCache::new()),
        })
    }

    /// True when requests must authenticate (any scheme but none).
    pub fn enabled(&self) -> bool {
        !matches!(self.scheme, Scheme::Open)
    }

    /// True for bearer-token schemes (challenges and insufficient-scope 401s).
    pub fn is_token(&self) -> bool {
        matches!(self.scheme, Scheme::Token { .. })
    }

    /// The built-in issuer, when berth serves `/auth/token`.
    pub fn builtin(&self) -> Option<&BuiltinIssuer> {
        match &self.scheme {
            Scheme::Token { builtin, .. } => builtin.as_deref(),
            _ => None,
        }
    }

    /// Identifies a request's caller. No credentials means anonymous (the
    /// policy decides what that may do); wrong credentials are an error.
    pub async fn authenticate(
        &self,
        creds: &Credentials,
        client: Option<IpAddr>,
    ) -> Result<Identity, AuthFailure> {
        match (&self.scheme, creds) {
            (Scheme::Open, _) | (_, Credentials::None) => Ok(Identity::Anonymous),
            (Scheme::Htpasswd { file, .. }, Credentials::Basic { user, password }) => {
                self.check_password(file, user, password, client).await?;
                Ok(Identity::User(user.clone()))
            }
            (
                Scheme::Token {
                    builtin: Some(b), ..
                },
                Credentials::Basic { user, password },
            ) => {
                self.check_password(&b.users, user, password, client)
                    .await?;
                Ok(Identity::User(user.clone()))
            }
            (Scheme::Token { verifier, .. }, Credentials::Bearer(token)) => verifier
                .verify(token)
                .map(Identity::Token)
                .map_err(|e| AuthFailure::InvalidToken(e.to_string())),
            _ => Err(AuthFailure::BadCredentials),
        }
    }

    /// Checks a password. A login verified less than
    /// [`login_cache::TTL`](super::login_cache::TTL) ago against the
    /// current file is accepted without a check and without a throttle slot
    /// (unless its address is blocked by failures). Otherwise the check is
    /// throttled per client address: the attempt is counted before bcrypt
    /// runs (see [`LoginLimiter`]), concurrent requests from one address
    /// with the same credentials wait for one check and share its success
    /// (after a failure each is checked and counted), and the check runs to its
    /// end and is recorded even if the request is abandoned, so
    /// disconnecting cannot start checks beyond the bounds.
    pub async fn check_password(
        &self,
        file: &HtpasswdFile,
        user: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthFailure> {
        let key = self.cache.key(user, password);
        if self.cache.hit(&key, file.generation().await) {
            return self.cached_login(client);
        }
        let flight_key = (key, client);
        let Some(flight) = self.cache.flight(&flight_key) else {
            return self.run_check(file, key, user, password, client).await;
        };
        let landing = Landing {
            cache: &self.cache,
            key: flight_key,
            flight: flight.clone(),
        };
        let mut ran = false;
        let outcome = flight
            .get_or_init(|| async {
                ran = true;
                // A check that ended just before this one began has cached
                // its success.
                if self.cache.hit(&key, file.generation().await) {
                    return self.cached_login(client);
                }
                self.run_check(file, key, user, password, client).await
            })
            .await
            .clone();
        drop(landing);
        match outcome {
            // Only successes are shared: a request that waited on a
            // failed (or refused) check goes through the throttle itself.
            Err(_) if !ran => self.run_check(file, key, user, password, client).await,
            outcome => outcome,
        }
    }

    /// A login found in the cache: accepted unless its address is blocked
    /// by failures (a blocked address waits out the block whatever it
    /// sends, so the cache cannot tell a guesser which guess is right).
    fn cached_login(&self, client: Option<IpAddr>) -> Result<(), AuthFailure> {
        if let Some(ip) = client {
            if let Err(wait) = self.limiter.check(ip) {
                self.limiter
                    .stats()
                    .throttled
                    .fetch_add(1, Ordering::Relaxed);
                return Err(AuthFailure::RateLimited(wait));
            }
        }
        self.limiter
            .stats()
            .cache_hits
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// One throttled bcrypt check; a success is cached under `key`.
    async fn run_check(
        &self,
        file: &HtpasswdFile,
        key: LoginKey,
        user: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthFailure> {
        let attempt = self
            .limiter
            .begin(client)
            .await
            .map_err(AuthFailure::RateLimited)?;
        let (file, user_owned, password) = (file.clone(), user.to_string(), password.to_string());
        let cache = self.cache.clone();
        let check = tokio::spawn(async move {
            let (ok, generation) = file.verify_at(&user_owned, &password).await;
            attempt.finish(ok);
            if ok {
                cache.insert(key, generation);
            }
            ok
        });
        if check.await.unwrap_or(false) {
            Ok(())
        } else {
            tracing::warn!(user, client = ?client, "login failed");
            Err(AuthFailure::BadCredentials)
        }
    }

    /// Appends the login counters in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let stats = self.limiter.stats();
        let rows = [
            (
                "berth_login_checks_total",
                "Password checks run (bcrypt verifications).",
                &stats.checks,
            ),
            (
                "berth_login_failures_total",
                "Password checks that failed.",
                &stats.failures,
            ),
            (
                "berth_login_throttled_total",
                "Logins refused with 429 before any password check.",
                &stats.throttled,
            ),
            (
                "berth_login_cache_hits_total",
                "Logins accepted from the cache of recently verified passwords, without a check.",
                &stats.cache_hits,
            ),
        ];
        for (name, help, value) in rows {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            );
        }
    }

    /// The `WWW-Authenticate` value for a 401. `token_realm` is berth's own
    /// `/auth/token` URL as seen by this request (used by the built-in issuer
    /// when no realm is configured); `scope` is the scope the request needed.
    pub fn challenge(
        &self,
        token_realm: &str,
        scope: Option<&str>,
        error: Option<&str>,
    ) -> Option<String> {
        match &self.scheme {
            Scheme::Open => None,
            Scheme::Htpasswd { realm, .. } => Some(format!("Basic realm={}", quoted(realm))),
            Scheme::Token { realm, service, .. } => {
                let realm = if realm.is_empty() { token_realm } else { realm };
                let mut v = format!("Bearer realm={},service={}", quoted(realm), quoted(service));
                if let Some(s) = scope {
                    v.push_str(&format!(",scope={}", quoted(s)));
                }
                if let Some(e) = error {
                    v.push_str(&format!(",error={}", quoted(e)));
                }
                Some(v)
            }
        }
    }

    /// Whether password logins (the web UI's form) are possible, and
    /// whether `user` is still in the users file: a web UI session ends
    /// when its user is removed. `None` when the scheme has no passwords
    /// (none, or tokens from an external server).
    pub fn knows_user(&self, user: &str) -> Option<bool> {
        let file = match &self.scheme {
            Scheme::Htpasswd { file, .. } => file,
            Scheme::Token {
                builtin: Some(b), ..
            } => &b.users,
            _ => return None,
        };
        Some(file.users().iter().any(|u| u == user))
    }

    /// The Basic challenge of the built-in token endpoint.
    pub fn basic_challenge(&self) -> String {
        "Basic realm=\"berth\"".to_string()
    }
}

/// Ends a shared check for the requests that come after it (also when the
/// request running it is abandoned): they look at the cache, or check anew.
struct Landing<'a> {
    cache: &'a LoginCache<Result<(), AuthFailure>>,
    key: FlightKey,
    flight: Flight<Result<(), AuthFailure>>,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.cache.land(&self.key, &self.flight);
    }
}

/// `s` as a quoted challenge parameter, escaped as registry:2 writes them
/// (Go's `%q`): `"` and `\` get a backslash, and anything outside printable
/// ASCII becomes an escape (`\n`, `\x01`, `\u00e9`), so no value (a realm
/// built from a request's host, a configured name) can end the parameter
/// early or break the header.
pub fn quoted(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters_are_quoted_and_escaped() {
        let table = [
            ("berth", r#""berth""#),
            (r#"http://a",service="x"#, r#""http://a\",service=\"x""#),
            (r"back\slash", r#""back\\slash""#),
            ("line\nbreak\r\t", r#""line\nbreak\r\t""#),
            ("bell\u{7}del\u{7f}", r#""bell\x07del\x7f""#),
            ("café 😀", r#""caf\u00e9 \U0001f600""#),
        ];
        for (raw, want) in table {
            assert_eq!(quoted(raw), want, "{raw:?}");
            // Always a valid header value.
            assert!(axum::http::HeaderValue::from_str(&quoted(raw)).is_ok());
        }
    }
}
