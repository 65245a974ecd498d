//! Authenticating to an upstream: answering its `401` challenge with Basic
//! credentials or a bearer token from its realm (Docker's token flow), with
//! the realm pinned by [`realm_decision`]. What the upstream asked for is
//! remembered, so later requests authenticate without a `401` first.

use std::fmt;

use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode, Url};

use super::body::{read_bounded, IdleTimeout, ReadError};
use super::challenge::{parse_challenges, Challenge};
use super::client::HttpUpstream;
use super::realm::{realm_decision, realm_for_log, RealmDecision};
use super::tokens::{parse_token_answer, MAX_TOKEN_RESPONSE};
use super::UpstreamError;

/// A user and password for the upstream; `Debug` shows only the user.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// `Authorization: Basic ...`, marked sensitive.
    pub fn basic_header(&self) -> Option<HeaderValue> {
        use base64::Engine as _;
        let raw = format!("{}:{}", self.user, self.password);
        let enc = base64::engine::general_purpose::STANDARD.encode(raw);
        let mut v = HeaderValue::from_str(&format!("Basic {enc}")).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What the upstream last challenged with.
#[derive(Debug, Clone, Default)]
pub enum Learned {
    /// Nothing yet: requests go anonymously until a `401`.
    #[default]
    Unknown,
    /// `Basic`: the credentials go with every request to the upstream.
    Basic,
    /// `Bearer`: a token per scope from this realm.
    Bearer { realm: Url, service: Option<String> },
}

/// The scope a pull of `name` needs.
pub fn pull_scope(name: &str) -> String {
    format!("repository:{name}:pull")
}

impl HttpUpstream {
    /// Remembers (for error messages) and logs once that the credentials
    /// were withheld from `realm`'s host.
    fn note_withheld(&self, realm: &Url) {
        let host = realm.host_str().unwrap_or("").to_string();
        let Ok(mut w) = self.withheld_from.lock() else {
            return;
        };
        if w.as_deref() != Some(host.as_str()) {
            tracing::warn!(
                upstream = %self.label,
                realm = %realm_for_log(realm),
                "token realm is not on the upstream's host: asking it for anonymous tokens, \
                 credentials withheld (list its host in the mirror's token realm hosts to trust it)"
            );
            *w = Some(host);
        }
    }

    /// A hint for `Denied` errors when credentials were withheld.
    pub(super) fn withheld_hint(&self) -> String {
        match self.withheld_from.lock().ok().and_then(|w| w.clone()) {
            Some(host) => format!(
                " (credentials were withheld from token realm host {host:?}, not the upstream's; \
                 list it in the mirror's token realm hosts to trust it)"
            ),
            None => String::new(),
        }
    }

    /// The `Authorization` to send before any challenge: Basic once the
    /// upstream asked for it, a cached token (or a new one from the known
    /// realm) once it asked for bearer tokens, nothing at first.
    pub(super) async fn preemptive_auth(
        &self,
        scope: &str,
    ) -> Result<Option<HeaderValue>, UpstreamError> {
        let learned = self.learned.lock().map(|l| l.clone()).unwrap_or_default();
        match learned {
            Learned::Unknown => Ok(None),
            Learned::Basic => Ok(self.creds.as_ref().and_then(Credentials::basic_header)),
            Learned::Bearer { realm, service } => {
                if let Some(t) = self.tokens.get(scope) {
                    return Ok(t.header());
                }
                // One fetch at a time: concurrent misses share its token.
                let _one = self.token_fetch.lock().await;
                if let Some(t) = self.tokens.get(scope) {
                    return Ok(t.header());
                }
                self.fetch_token(&realm, service.as_deref(), scope)
                    .await
                    .map(Some)
            }
        }
    }

    /// Answers the `401` in `resp` to a request that carried `sent`: a
    /// fresh bearer token when the upstream offers `Bearer` (preferred; one
    /// that a concurrent request just fetched is shared), else Basic
    /// credentials.
    pub(super) async fn answer_challenge(
        &self,
        resp: &Response,
        scope: &str,
        sent: Option<&HeaderValue>,
    ) -> Result<HeaderValue, UpstreamError> {
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = bearer
                .param("realm")
                .ok_or_else(|| self.invalid("Bearer challenge without a realm".into()))?;
            let realm = Url::parse(realm)
                .map_err(|e| self.invalid(format!("Bearer challenge realm is not a URL: {e}")))?;
            let service = bearer.param("service").map(str::to_string);
            let _one = self.token_fetch.lock().await;
            let fresh = self.tokens.get(scope).and_then(|t| t.header());
            let header = match fresh {
                Some(h) if Some(&h) != sent => h,
                _ => {
                    self.tokens.remove(scope);
                    self.fetch_token(&realm, service.as_deref(), scope).await?
                }
            };
            if let Ok(mut l) = self.learned.lock() {
                *l = Learned::Bearer { realm, service };
            }
            return Ok(header);
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(header) = self.creds.as_ref().and_then(Credentials::basic_header) else {
                return Err(self
                    .denied("upstream asks for Basic credentials and none are configured".into()));
            };
            if let Ok(mut l) = self.learned.lock() {
                *l = Learned::Basic;
            }
            return Ok(header);
        }
        Err(self.denied("upstream answered 401 without a Bearer or Basic challenge".into()))
    }

    /// Gets a token for `scope` from `realm` (credentials only where
    /// [`realm_decision`] allows), caches it and returns its header.
    pub(super) async fn fetch_token(
        &self,
        realm: &Url,
        service: Option<&str>,
        scope: &str,
    ) -> Result<HeaderValue, UpstreamError> {
        let creds = match realm_decision(&self.base, realm, &self.realm_hosts) {
            RealmDecision::Refused(why) => return Err(self.denied(why)),
            RealmDecision::Credentials => self.creds.as_ref(),
            RealmDecision::AnonymousOnly => {
                if self.creds.is_some() {
                    self.note_withheld(realm);
                }
                None
            }
        };
        let mut url = realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
        }
        let mut req = self.client.get(url);
        if let Some(h) = creds.and_then(Credentials::basic_header) {
            req = req.header(AUTHORIZATION, h);
        }
        let resp = self.send(req).await?;
        let status = resp.status();
        let shown = realm_for_log(realm);
        if status != StatusCode::OK {
            let what = format!("token realm {shown} answered {status}");
            return Err(match status.as_u16() {
                401 | 403 => self.denied(what),
                408 | 429 | 500..=599 => self.unavailable(what),
                _ => self.invalid(what),
            });
        }
        let body = IdleTimeout::new(self.body_stream(resp), self.read_idle_timeout);
        let body = read_bounded(body, MAX_TOKEN_RESPONSE)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge(n) => {
                    self.invalid(format!("token realm {shown} answer exceeds {n} bytes"))
                }
                ReadError::Io(e) => self.unavailable(format!("token realm {shown}: {e}")),
            })?;
        let (token, expires_in) =
            parse_token_answer(&body).map_err(|e| self.invalid(format!("{shown}: {e}")))?;
        let header = token
            .header()
            .ok_or_else(|| self.invalid(format!("{shown}: token unusable as a header")))?;
        self.tokens.put(scope, token, expires_in);
        Ok(header)
    }
}
