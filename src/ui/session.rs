//! Web UI sessions: a signed cookie naming the user (or nobody) and when it
//! expires, and the per-session CSRF token every state-changing form
//! carries. Nothing is stored on the server, so replicas sharing
//! `http.secret` share sessions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The cookie's name.
pub const COOKIE: &str = "berth_session";

/// How long a session lasts after it was made (a login starts a new one).
pub const TTL: Duration = Duration::from_secs(12 * 3600);

/// The key that signs session cookies and CSRF tokens.
pub struct SessionKey(hmac::Key);

impl SessionKey {
    /// Derived from `http.secret` when it is set, so replicas share
    /// sessions; else random, made at start (sessions end on restart).
    pub fn from_secret(secret: &str) -> SessionKey {
        if secret.is_empty() {
            let mut raw = [0u8; 32];
            // SystemRandom fails only when the OS has no randomness; then
            // fall back to the clock and the address space, still
            // unpredictable enough to be better than refusing to start.
            if SystemRandom::new().fill(&mut raw).is_err() {
                let t = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                raw[..16].copy_from_slice(&t.to_le_bytes());
            }
            return SessionKey(hmac::Key::new(hmac::HMAC_SHA256, &raw));
        }
        let base = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let derived = hmac::sign(&base, b"berth web ui session key v1");
        SessionKey(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    fn sign(&self, purpose: &str, data: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(data.as_bytes());
        B64.encode(ctx.sign().as_ref())
    }

    fn verify(&self, purpose: &str, data: &str, tag: &str) -> bool {
        let Ok(tag) = B64.decode(tag) else {
            return false;
        };
        let mut msg = Vec::with_capacity(purpose.len() + 1 + data.len());
        msg.extend_from_slice(purpose.as_bytes());
        msg.push(0);
        msg.extend_from_slice(data.as_bytes());
        hmac::verify(&self.0, &msg, &tag).is_ok()
    }
}

/// One browser's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user; `None` for an anonymous visitor.
    pub user: Option<String>,
    /// Unix seconds after which the cookie is refused.
    pub expires: u64,
    /// Random id: the CSRF token is bound to it.
    pub id: String,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Session {
    /// A new session for `user` (or an anonymous one), valid for [`TTL`].
    pub fn new(user: Option<String>, now: SystemTime) -> Session {
        let mut id = [0u8; 16];
        let _ = SystemRandom::new().fill(&mut id);
        Session {
            user,
            expires: unix(now) + TTL.as_secs(),
            id: hex::encode(id),
        }
    }

    fn payload(&self) -> String {
        format!(
            "v1|{}|{}|{}",
            self.expires,
            self.id,
            self.user.as_deref().unwrap_or("")
        )
    }

    /// The cookie value: the payload and its signature, base64url.
    pub fn encode(&self, key: &SessionKey) -> String {
        let payload = B64.encode(self.payload());
        let tag = key.sign("session", &payload);
        format!("{payload}.{tag}")
    }

    /// Reads a cookie value; `None` when forged, malformed or expired.
    pub fn decode(value: &str, key: &SessionKey, now: SystemTime) -> Option<Session> {
        let (payload, tag) = value.split_once('.')?;
        if payload.len() > 2048 || !key.verify("session", payload, tag) {
            return None;
        }
        let text = String::from_utf8(B64.decode(payload).ok()?).ok()?;
        let mut parts = text.splitn(4, '|');
        if parts.next()? != "v1" {
            return None;
        }
        let expires: u64 = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_string();
        let user = parts.next()?;
        if expires <= unix(now) || id.is_empty() {
            return None;
        }
        Some(Session {
            user: (!user.is_empty()).then(|| user.to_string()),
            expires,
            id,
        })
    }

    /// The CSRF token of this session, for hidden form fields.
    pub fn csrf_token(&self, key: &SessionKey) -> String {
        key.sign("csrf", &self.payload())
    }

    /// True when `token` is this session's CSRF token (constant time).
    pub fn check_csrf(&self, key: &SessionKey, token: &str) -> bool {
        !token.is_empty() && key.verify("csrf", &self.payload(), token)
    }
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn cookie_value<'a>(headers: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value for `value`: `HttpOnly`, `SameSite=Strict`,
/// `Path=/`, `Secure` when the request came over TLS; `Max-Age=0` clears.
pub fn set_cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn cookie_round_trip_and_forgery() {
        let key = SessionKey::from_secret("s3cret");
        let s = Session::new(Some("alice".into()), at(1_000_000));
        let v = s.encode(&key);
        assert_eq!(Session::decode(&v, &key, at(1_000_001)), Some(s.clone()));
        // Expired.
        assert_eq!(
            Session::decode(&v, &key, at(1_000_000 + TTL.as_secs())),
            None
        );
        // Another key (another secret, or a random one) refuses it.
        assert_eq!(
            Session::decode(&v, &SessionKey::from_secret("other"), at(1_000_001)),
            None
        );
        assert_eq!(
            Session::decode(&v, &SessionKey::from_secret(""), at(1_000_001)),
            None
        );
        // The same secret on another replica accepts it.
        assert!(Session::decode(&v, &SessionKey::from_secret("s3cret"), at(1_000_001)).is_some());
        // A payload changed to another user keeps the old tag: refused.
        let (_, tag) = v.split_once('.').unwrap();
        let forged = B64.encode(format!("v1|{}|{}|admin", s.expires, s.id));
        assert_eq!(
            Session::decode(&format!("{forged}.{tag}"), &key, at(1_000_001)),
            None
        );
        for junk in ["", ".", "abc", "a.b", "v1|1|x|y"] {
            assert_eq!(Session::decode(junk, &key, at(0)), None, "{junk}");
        }
    }

    #[test]
    fn anonymous_sessions_and_user_names_with_separators() {
        let key = SessionKey::from_secret("");
        let anon = Session::new(None, at(10));
        assert_eq!(
            Session::decode(&anon.encode(&key), &key, at(11))
                .unwrap()
                .user,
            None
        );
        let odd = Session::new(Some("a|b|c".into()), at(10));
        let back = Session::decode(&odd.encode(&key), &key, at(11)).unwrap();
        assert_eq!(back.user.as_deref(), Some("a|b|c"));
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let key = SessionKey::from_secret("k");
        let a = Session::new(Some("alice".into()), at(10));
        let b = Session::new(Some("alice".into()), at(10));
        let t = a.csrf_token(&key);
        assert!(a.check_csrf(&key, &t));
        assert!(!b.check_csrf(&key, &t), "another session's token");
        assert!(!a.check_csrf(&key, ""));
        assert!(!a.check_csrf(&key, "not base64 !"));
        assert!(!a.check_csrf(&SessionKey::from_secret("k2"), &t));
        // A session token is not a CSRF token (different purpose).
        let cookie = a.encode(&key);
        let (_, sig) = cookie.split_once('.').unwrap();
        assert!(!a.check_csrf(&key, sig));
    }

    #[test]
    fn cookie_parsing_and_attributes() {
        let h = ["a=1; berth_session=xyz.abc; b=2"];
        assert_eq!(cookie_value(h.iter().copied()), Some("xyz.abc"));
        assert_eq!(cookie_value(["berth_sessionx=1"].iter().copied()), None);
        let c = set_cookie("v", 60, true);
        assert_eq!(
            c,
            "berth_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert!(!set_cookie("v", 60, false).contains("Secure"));
    }
}
