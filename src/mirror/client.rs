//! [`HttpUpstream`]: the [`Upstream`] of a real registry over HTTP(S)
//! (reqwest on rustls + ring). Redirects are followed by hand so that
//! `Authorization` only ever goes to the upstream's own origin (a blob's
//! `307` to S3 or a CDN gets none), timeouts bound every phase, and the
//! upstream's answers map onto [`UpstreamError`].

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::auth::{pull_scope, Credentials, Learned};
use super::body::{read_bounded, IdleTimeout, ReadError};
use super::tokens::TokenCache;
use super::{
    RemoteBlob, RemoteDescriptor, RemoteManifest, Upstream, UpstreamError, UpstreamSettings,
};
use crate::oci::digest::Digest;
use crate::oci::manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_SIZE, OCI_INDEX, OCI_MANIFEST,
};
use crate::oci::name::{RepoName, Tag};
use crate::storage::ByteStream;

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// The `Accept` of manifest requests: every manifest type berth stores.
pub fn manifest_accept() -> String {
    [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ]
    .join(", ")
}

/// An upstream registry reached over HTTP(S); cheap to share (`Arc`), one
/// connection pool and token cache per upstream.
pub struct HttpUpstream {
    pub(super) label: String,
    /// `remote_url`, without a trailing `/`.
    pub(super) base: Url,
    pub(super) creds: Option<Credentials>,
    pub(super) realm_hosts: Vec<String>,
    pub(super) client: reqwest::Client,
    pub(super) response_timeout: Duration,
    pub(super) read_idle_timeout: Duration,
    pub(super) learned: Mutex<Learned>,
    pub(super) tokens: TokenCache,
    /// Serialises token fetches, so concurrent misses ask the realm once.
    pub(super) token_fetch: tokio::sync::Mutex<()>,
    /// The realm host credentials were last withheld from, for errors.
    pub(super) withheld_from: Mutex<Option<String>>,
}

impl fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpUpstream")
            .field("label", &self.label)
            .field("base", &self.base.as_str())
            .field("creds", &self.creds)
            .field("realm_hosts", &self.realm_hosts)
            .finish_non_exhaustive()
    }
}

impl HttpUpstream {
    /// Checks the settings and builds the client: `remote_url` must be
    /// http(s) with a host and no user information, query or fragment;
    /// `ca_file` must hold at least one PEM certificate.
    pub fn new(settings: UpstreamSettings) -> anyhow::Result<HttpUpstream> {
        let mut base = Url::parse(settings.remote_url.trim())
            .with_context(|| format!("mirror {}: remote URL is not a URL", settings.label))?;
        anyhow::ensure!(
            matches!(base.scheme(), "http" | "https") && base.host_str().is_some(),
            "mirror {}: remote URL must be http(s)://host[:port]",
            settings.label
        );
        anyhow::ensure!(
            base.username().is_empty() && base.password().is_none(),
            "mirror {}: put credentials in username/password, not in the remote URL",
            settings.label
        );
        anyhow::ensure!(
            base.query().is_none() && base.fragment().is_none(),
            "mirror {}: remote URL may not have a query or fragment",
            settings.label
        );
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);
        let creds = match (settings.username, settings.password) {
            (Some(user), password) if !user.is_empty() => Some(Credentials {
                user,
                password: password.unwrap_or_default(),
            }),
            (_, Some(p)) if !p.is_empty() => {
                anyhow::bail!("mirror {}: a password without a username", settings.label)
            }
            _ => None,
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .http2_adaptive_window(true)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca).with_context(|| {
                format!(
                    "mirror {}: reading CA file {}",
                    settings.label,
                    ca.display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "mirror {}: CA file {} is not PEM",
                    settings.label,
                    ca.display()
                )
            })?;
            anyhow::ensure!(
                !certs.is_empty(),
                "mirror {}: CA file {} holds no certificate",
                settings.label,
                ca.display()
            );
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .with_context(|| format!("mirror {}: building the HTTP client", settings.label))?;
        Ok(HttpUpstream {
            label: settings.label,
            base,
            creds,
            realm_hosts: settings.token_realm_hosts,
            client,
            response_timeout: settings.response_timeout,
            read_idle_timeout: settings.read_idle_timeout,
            learned: Mutex::new(Learned::Unknown),
            tokens: TokenCache::default(),
            token_fetch: tokio::sync::Mutex::new(()),
            withheld_from: Mutex::new(None),
        })
    }

    pub(super) fn unavailable(&self, what: String) -> UpstreamError {
        UpstreamError::Unavailable(format!("{}: {what}", self.label))
    }

    pub(super) fn denied(&self, what: String) -> UpstreamError {
        UpstreamError::Denied(format!("{}: {what}", self.label))
    }

    pub(super) fn invalid(&self, what: String) -> UpstreamError {
        UpstreamError::Invalid(format!("{}: {what}", self.label))
    }

    /// `<remote_url>/v2/<name>/<kind>/<reference>`, after checking `name`
    /// and `reference` against the spec's grammars (nothing else reaches
    /// the upstream's path).
    fn endpoint(&self, name: &str, kind: &str, reference: &str) -> Result<Url, UpstreamError> {
        name.parse::<RepoName>()
            .map_err(|_| self.invalid(format!("repository name {name:?} is invalid")))?;
        if reference.parse::<Digest>().is_err() && reference.parse::<Tag>().is_err() {
            return Err(self.invalid(format!("reference {reference:?} is invalid")));
        }
        let mut url = self.base.clone();
        let prefix = self.base.path().trim_end_matches('/');
        url.set_path(&format!("{prefix}/v2/{name}/{kind}/{reference}"));
        Ok(url)
    }

    /// Sends `req` with the response timeout; transport failures are
    /// `Unavailable` (with no URL in the message: a redirect's may be signed).
    pub(super) async fn send(&self, req: RequestBuilder) -> Result<Response, UpstreamError> {
        match tokio::time::timeout(self.response_timeout, req.send()).await {
            Err(_) => Err(self.unavailable(format!(
                "no response within {}s",
                self.response_timeout.as_secs_f64()
            ))),
            Ok(Err(e)) if e.is_builder() => Err(self.invalid(error_chain(e))),
            Ok(Err(e)) => Err(self.unavailable(error_chain(e))),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// A response body as a [`ByteStream`].
    pub(super) fn body_stream(&self, resp: Response) -> ByteStream {
        Box::pin(
            resp.bytes_stream()
                .map(|r| r.map_err(|e| std::io::Error::other(error_chain(e)))),
        )
    }

    /// Sends `method url`, following up to [`MAX_REDIRECTS`] redirects;
    /// `authz` goes only to the upstream's own origin. Returns the final
    /// response and whether it came from the upstream's origin.
    async fn send_following(
        &self,
        method: &Method,
        mut url: Url,
        authz: Option<&HeaderValue>,
        accept: Option<&str>,
    ) -> Result<(Response, bool), UpstreamError> {
        for hop in 0..=MAX_REDIRECTS {
            let on_upstream = same_origin(&url, &self.base);
            let mut req = self.client.request(method.clone(), url.clone());
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let (true, Some(h)) = (on_upstream, authz) {
                req = req.header(AUTHORIZATION, h.clone());
            }
            let resp = self.send(req).await?;
            let redirect = matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308);
            let Some(location) = resp.headers().get(LOCATION).filter(|_| redirect) else {
                return Ok((resp, on_upstream));
            };
            if hop == MAX_REDIRECTS {
                return Err(self.invalid(format!("more than {MAX_REDIRECTS} redirects")));
            }
            let next = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| self.invalid("redirect to an invalid location".into()))?;
            let scheme_ok =
                next.scheme() == "https" || (next.scheme() == "http" && url.scheme() == "http");
            if !scheme_ok || !next.username().is_empty() || next.password().is_some() {
                return Err(self.invalid(format!(
                    "redirect from {} to a {} location refused",
                    url.scheme(),
                    next.scheme()
                )));
            }
            url = next;
        }
        Err(self.invalid("redirect loop".into()))
    }

    /// One authenticated request for repository `name`: answers one `401`
    /// challenge, then maps the status: 2xx `Some`, 404 `None`, the rest
    /// an error.
    async fn fetch(
        &self,
        method: Method,
        url: Url,
        name: &str,
        accept: Option<&str>,
    ) -> Result<Option<Response>, UpstreamError> {
        let scope = pull_scope(name);
        let mut authz = self.preemptive_auth(&scope).await?;
        let mut answered = false;
        loop {
            let (resp, on_upstream) = self
                .send_following(&method, url.clone(), authz.as_ref(), accept)
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && on_upstream && !answered {
                authz = Some(self.answer_challenge(&resp, &scope, authz.as_ref()).await?);
                answered = true;
                continue;
            }
            tracing::debug!(upstream = %self.label, %method, path = url.path(), status = status.as_u16(), "upstream answered");
            return match status.as_u16() {
                200..=299 => Ok(Some(resp)),
                404 => Ok(None),
                401 | 403 => Err(self.denied(format!(
                    "{method} {} answered {status}{}",
                    url.path(),
                    self.withheld_hint()
                ))),
                408 | 429 | 500..=599 => {
                    Err(self.unavailable(format!("{method} {} answered {status}", url.path())))
                }
                _ => Err(self.invalid(format!("{method} {} answered {status}", url.path()))),
            };
        }
    }

    fn digest_header(&self, headers: &HeaderMap) -> Result<Option<Digest>, UpstreamError> {
        let Some(v) = headers.get("docker-content-digest") else {
            return Ok(None);
        };
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<Digest>().ok())
            .map(Some)
            .ok_or_else(|| self.invalid("Docker-Content-Digest header is not a digest".into()))
    }

    fn media_type(&self, headers: &HeaderMap) -> Result<String, UpstreamError> {
        headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.invalid("manifest answer without a Content-Type".into()))
    }

    fn content_length(headers: &HeaderMap) -> Option<u64> {
        headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse().ok())
    }

    /// The digest the upstream names for a manifest: its header, which must
    /// agree with `reference` when that is a digest.
    fn manifest_digest(
        &self,
        headers: &HeaderMap,
        reference: &str,
    ) -> Result<Option<Digest>, UpstreamError> {
        let header = self.digest_header(headers)?;
        if let Ok(asked) = reference.parse::<Digest>() {
            if header.as_ref().is_some_and(|h| *h != asked) {
                return Err(
                    self.invalid(format!("asked for {asked}, upstream named another digest"))
                );
            }
            return Ok(Some(asked));
        }
        Ok(header)
    }
}

/// Same scheme, host and port.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A reqwest error and its causes on one line, without the URL.
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[async_trait]
impl Upstream for HttpUpstream {
    async fn head_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<RemoteDescriptor>, UpstreamError> {
        let url = self.endpoint(name, "manifests", reference)?;
        let accept = manifest_accept();
        let Some(resp) = self.fetch(Method::HEAD, url, name, Some(&accept)).await? else {
            return Ok(None);
        };
        let h = resp.headers();
        let digest = self
            .manifest_digest(h, reference)?
            .ok_or_else(|| self.invalid("HEAD of a tag without Docker-Content-Digest".into()))?;
        let size = Self::content_length(h)
            .ok_or_else(|| self.invalid("HEAD of a manifest without Content-Length".into()))?;
        if size > MAX_MANIFEST_SIZE as u64 {
            return Err(self.invalid(format!(
                "manifest of {size} bytes exceeds {MAX_MANIFEST_SIZE}"
            )));
        }
        Ok(Some(RemoteDescriptor {
            digest,
            media_type: self.media_type(h)?,
            size,
        }))
    }

    async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<RemoteManifest>, UpstreamError> {
        let url = self.endpoint(name, "manifests", reference)?;
        let accept = manifest_accept();
        let Some(resp) = self.fetch(Method::GET, url, name, Some(&accept)).await? else {
            return Ok(None);
        };
        let digest = self.manifest_digest(resp.headers(), reference)?;
        let media_type = self.media_type(resp.headers())?;
        if Self::content_length(resp.headers()).is_some_and(|n| n > MAX_MANIFEST_SIZE as u64) {
            return Err(self.invalid(format!("manifest exceeds {MAX_MANIFEST_SIZE} bytes")));
        }
        let body = IdleTimeout::new(self.body_stream(resp), self.read_idle_timeout);
        let body = read_bounded(body, MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge(n) => self.invalid(format!("manifest exceeds {n} bytes")),
                ReadError::Io(e) => self.unavailable(format!("reading a manifest: {e}")),
            })?;
        Ok(Some(RemoteManifest {
            media_type,
            body,
            digest,
        }))
    }

    async fn head_blob(&self, name: &str, digest: &Digest) -> Result<Option<u64>, UpstreamError> {
        let url = self.endpoint(name, "blobs", &digest.to_string())?;
        let Some(resp) = self.fetch(Method::HEAD, url, name, None).await? else {
            return Ok(None);
        };
        Self::content_length(resp.headers())
            .map(Some)
            .ok_or_else(|| self.invalid("HEAD of a blob without Content-Length".into()))
    }

    async fn get_blob(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<RemoteBlob>, UpstreamError> {
        let url = self.endpoint(name, "blobs", &digest.to_string())?;
        let Some(resp) = self.fetch(Method::GET, url, name, None).await? else {
            return Ok(None);
        };
        let size = Self::content_length(resp.headers());
        let stream = IdleTimeout::new(self.body_stream(resp), self.read_idle_timeout);
        Ok(Some(RemoteBlob {
            size,
            stream: Box::pin(stream),
        }))
    }

    fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
