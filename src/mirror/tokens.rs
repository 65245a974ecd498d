//! Bearer tokens from a token realm: the realm's JSON answer and a bounded
//! cache per scope, so a pull of many blobs asks the realm once. Tokens are
//! secrets: their `Debug` is redacted and they are never logged.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;

/// `expires_in` when the realm gives none (the token spec's minimum).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60);
/// A longer lifetime than this is not believed.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(24 * 3600);
/// A token is dropped this long before it expires (clock skew, latency).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Scopes remembered at once.
pub const MAX_CACHED_TOKENS: usize = 1024;
/// A realm answer larger than this is refused.
pub const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

/// A bearer token; `Debug` shows no part of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The `Authorization: Bearer ...` header value (marked sensitive).
    pub fn header(&self) -> Option<HeaderValue> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0)).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// Reads a realm's answer: `token` (or OAuth2's `access_token`) and
/// `expires_in` seconds (default 60, at most a day). The error names what
/// is wrong, never the body.
pub fn parse_token_answer(body: &[u8]) -> Result<(Token, Duration), String> {
    let a: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
        format!(
            "token realm answer is not the expected JSON ({})",
            e.classify_name()
        )
    })?;
    let token = a
        .token
        .filter(|t| !t.is_empty())
        .or(a.access_token.filter(|t| !t.is_empty()))
        .ok_or("token realm answer has no token")?;
    // A token must fit in a header: visible ASCII, no spaces.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("token realm answer has a token with invalid characters".to_string());
    }
    let expires = match a.expires_in {
        Some(s) if s > 0 => Duration::from_secs(s as u64).min(MAX_EXPIRES_IN),
        _ => DEFAULT_EXPIRES_IN,
    };
    Ok((Token(token), expires))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong field types",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// Tokens per scope (`repository:library/alpine:pull`) until shortly
/// before they expire; at most [`MAX_CACHED_TOKENS`] (expired ones go first,
/// then the one expiring soonest).
#[derive(Default)]
pub struct TokenCache {
    map: Mutex<HashMap<String, (Token, Instant)>>,
}

impl TokenCache {
    /// A live token for `scope`.
    pub fn get(&self, scope: &str) -> Option<Token> {
        let map = self.map.lock().ok()?;
        map.get(scope)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(t, _)| t.clone())
    }

    /// Remembers `token` for `scope` for `expires_in` minus a margin.
    pub fn put(&self, scope: &str, token: Token, expires_in: Duration) {
        let Some(life) = expires_in
            .checked_sub(EXPIRY_MARGIN)
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        let now = Instant::now();
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= MAX_CACHED_TOKENS && !map.contains_key(scope) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_CACHED_TOKENS {
                if let Some(k) = map
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&k);
                }
            }
        }
        map.insert(scope.to_string(), (token, now + life));
    }

    /// Forgets `scope`'s token (the upstream refused it).
    pub fn remove(&self, scope: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(scope);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_like_docker_does() {
        let (t, e) = parse_token_answer(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.0.as_str(), e), ("abc", Duration::from_secs(300)));
        let (t, e) = parse_token_answer(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!((t.0.as_str(), e), ("xyz", DEFAULT_EXPIRES_IN));
        let (t, _) = parse_token_answer(br#"{"token":"","access_token":"o"}"#).unwrap();
        assert_eq!(t.0, "o");
        let (_, e) = parse_token_answer(br#"{"token":"a","expires_in":-5}"#).unwrap();
        assert_eq!(e, DEFAULT_EXPIRES_IN);
        let (_, e) = parse_token_answer(br#"{"token":"a","expires_in":99999999999}"#).unwrap();
        assert_eq!(e, MAX_EXPIRES_IN);
        for bad in [
            &b"{}"[..],
            b"not json",
            br#"{"token":"a b"}"#,
            br#"{"token":"a\r\nX-Evil: 1"}"#,
            br#"{"token":5}"#,
        ] {
            let err = parse_token_answer(bad).unwrap_err();
            assert!(!err.contains("Evil"), "{err}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let (t, _) = parse_token_answer(br#"{"token":"sekrit-token"}"#).unwrap();
        assert!(!format!("{t:?}").contains("sekrit"));
    }

    #[test]
    fn cache_keeps_tokens_until_shortly_before_expiry_and_is_bounded() {
        let c = TokenCache::default();
        let t = Token("t".into());
        c.put("a", t.clone(), Duration::from_secs(300));
        assert_eq!(c.get("a"), Some(t.clone()));
        assert_eq!(c.get("b"), None);
        // Shorter than the margin: not cached at all.
        c.put("short", t.clone(), Duration::from_secs(5));
        assert_eq!(c.get("short"), None);
        c.remove("a");
        assert_eq!(c.get("a"), None);
        for i in 0..MAX_CACHED_TOKENS + 10 {
            c.put(
                &format!("s{i}"),
                t.clone(),
                Duration::from_secs(300 + i as u64),
            );
        }
        assert_eq!(c.len(), MAX_CACHED_TOKENS);
        // The newest stays, the soonest-expiring went.
        assert!(c.get(&format!("s{}", MAX_CACHED_TOKENS + 9)).is_some());
        assert!(c.get("s0").is_none());
    }
}
