//! Mirror: the upstream side of the pull-through cache, an HTTP client of
//! another registry (challenge parsing, the token flow, realm pinning).
//! The registry layer reaches it only through [`Upstream`], so `registry`
//! sees no HTTP types and tests can plug in a fake upstream. It never
//! touches storage: what it fetches is stored by the registry layer.

mod auth;
mod body;
pub mod challenge;
mod client;
pub mod realm;
mod settings;
mod tokens;

pub use client::HttpUpstream;
pub use settings::UpstreamSettings;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

use crate::oci::digest::Digest;
use crate::storage::ByteStream;

/// What the upstream says a manifest reference points at (from a `HEAD`,
/// which Docker Hub does not count against its pull limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDescriptor {
    /// `Docker-Content-Digest` of the upstream's answer.
    pub digest: Digest,
    /// `Content-Type` of the upstream's answer.
    pub media_type: String,
    /// `Content-Length` of the upstream's answer.
    pub size: u64,
}

/// A manifest fetched from the upstream: its exact bytes and media type.
/// The caller checks the bytes against the digest it asked for (by digest)
/// or computes the digest itself (by tag).
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    pub media_type: String,
    pub body: Bytes,
    /// `Docker-Content-Digest` as the upstream sent it, when it did.
    pub digest: Option<Digest>,
}

/// A blob on its way from the upstream. The stream yields the upstream's
/// bytes unverified; the caller hashes them and must not store or finish
/// serving them unless they match the digest.
pub struct RemoteBlob {
    /// `Content-Length` of the upstream's answer, when it sent one.
    pub size: Option<u64>,
    pub stream: ByteStream,
}

impl fmt::Debug for RemoteBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteBlob")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Why an upstream call failed. `Unavailable` is what makes the registry
/// serve cached content instead (connection refused, timeout, 5xx, 429).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream cannot answer now: connection refused or reset, a
    /// timeout, a 5xx or a 429. Cached content is served instead.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// The upstream refused our credentials or the token flow failed
    /// (401/403 after authenticating, a realm we may not send them to).
    #[error("upstream denied access: {0}")]
    Denied(String),
    /// The upstream answered something that is not a registry answer
    /// (bad digest header, unparsable challenge, oversized manifest).
    #[error("upstream answer invalid: {0}")]
    Invalid(String),
}

/// One upstream registry, as the registry layer sees it. `name` is the
/// repository name *on the upstream* (prefix already stripped, `library/`
/// already added where the upstream needs it); `Ok(None)` means the
/// upstream answered 404 (name or reference unknown there).
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Resolves a tag or digest with a `HEAD` of the manifest.
    async fn head_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<RemoteDescriptor>, UpstreamError>;

    /// Fetches a manifest by tag or digest, accepting every manifest media
    /// type berth stores.
    async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<RemoteManifest>, UpstreamError>;

    /// The size of a blob, from a `HEAD`, without fetching it.
    async fn head_blob(&self, name: &str, digest: &Digest) -> Result<Option<u64>, UpstreamError>;

    /// Starts streaming a blob; the first bytes are available as soon as
    /// the upstream sends them.
    async fn get_blob(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<RemoteBlob>, UpstreamError>;

    /// A short label for logs and metrics (the entry's prefix or host);
    /// never contains credentials.
    fn label(&self) -> &str;
}
