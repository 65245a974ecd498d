//! `limits:` (berth only): how much one client, one repository or the
//! whole process may hold at once, so one misbehaving client cannot take
//! the registry from everyone else. Zero turns a limit off.

use serde::{Deserialize, Serialize};

/// `limits:` section. Over a count limit the answer is 429
/// `TOOMANYREQUESTS` with `Retry-After`; over a size limit, 413.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LimitsConfig {
    /// Blob upload requests (POST, PATCH, PUT under `blobs/uploads/`)
    /// served at once, all clients together.
    pub uploads: usize,
    /// Blob upload requests served at once from one client address (the
    /// one `http.trustedproxies` resolves).
    pub uploadsperclient: usize,
    /// Largest manifest body accepted, in bytes (registry:2's and zot's
    /// fixed 4 MiB by default).
    pub manifestsize: usize,
    /// Upload sessions open at once in one repository (started and not
    /// yet finished, cancelled or purged).
    pub uploadsessionsperrepository: usize,
    /// Bytes per second one client address's upload bodies are read at,
    /// all its uploads together, while another address is being served
    /// (see `http::upload_pace`).
    pub uploadrateperclient: u64,
}

/// `limits.uploads` default.
pub const DEFAULT_UPLOADS: usize = 512;
/// `limits.uploadsperclient` default: a `docker push` runs 3 layer
/// uploads at once, a CI runner a handful of pushes.
pub const DEFAULT_UPLOADS_PER_CLIENT: usize = 64;
/// `limits.manifestsize` default: 4 MiB, as distribution and zot.
pub const DEFAULT_MANIFEST_SIZE: usize = crate::oci::manifest::MAX_MANIFEST_SIZE;
/// `limits.uploadsessionsperrepository` default.
pub const DEFAULT_UPLOAD_SESSIONS_PER_REPOSITORY: usize = 1000;
/// `limits.uploadrateperclient` default: 32 MiB/s, about a quarter of a
/// 1 Gbit/s link, for one address while others are served (measured in
/// docs/reliability.md, "the flood test").
pub const DEFAULT_UPLOAD_RATE_PER_CLIENT: u64 = 32 << 20;

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            uploads: DEFAULT_UPLOADS,
            uploadsperclient: DEFAULT_UPLOADS_PER_CLIENT,
            manifestsize: DEFAULT_MANIFEST_SIZE,
            uploadsessionsperrepository: DEFAULT_UPLOAD_SESSIONS_PER_REPOSITORY,
            uploadrateperclient: DEFAULT_UPLOAD_RATE_PER_CLIENT,
        }
    }
}
