//! `health:` section: the periodic checks registry:2 runs (storage driver,
//! files, HTTP and TCP endpoints); a failing check makes the registry answer
//! 503 until it recovers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de, duration};

/// registry:2's interval when a check gives none (`defaultCheckInterval`).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// `health:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HealthConfig {
    /// The storage driver check.
    pub storagedriver: StorageDriverCheck,
    /// Checks failing while a file exists (maintenance switches).
    pub file: Vec<FileCheck>,
    /// Checks of HTTP endpoints (a `HEAD` expecting a status).
    pub http: Vec<HttpCheck>,
    /// Checks that a TCP address accepts connections.
    pub tcp: Vec<TcpCheck>,
}

/// `health.storagedriver`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorageDriverCheck {
    /// Run the check.
    pub enabled: bool,
    /// Time between checks (10 s when zero).
    #[serde(with = "duration::serde_go")]
    pub interval: Duration,
    /// Consecutive failures before the registry reports unhealthy (0: the first).
    #[serde(deserialize_with = "de::count")]
    pub threshold: usize,
}

/// One `health.file` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FileCheck {
    /// The path whose existence makes the registry unhealthy.
    #[serde(deserialize_with = "de::string")]
    pub file: String,
    /// Time between checks (10 s when zero).
    #[serde(with = "duration::serde_go")]
    pub interval: Duration,
}

/// One `health.http` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpCheck {
    /// The `http://` URL to send `HEAD` to.
    #[serde(deserialize_with = "de::string")]
    pub uri: String,
    /// Request headers.
    #[serde(deserialize_with = "de::headers")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Expected status (200 when zero).
    pub statuscode: u16,
    /// Time the request may take (registry:2: none when zero; berth: 10 s).
    #[serde(with = "duration::serde_go")]
    pub timeout: Duration,
    /// Time between checks (10 s when zero).
    #[serde(with = "duration::serde_go")]
    pub interval: Duration,
    /// Consecutive failures before unhealthy (0: the first).
    #[serde(deserialize_with = "de::count")]
    pub threshold: usize,
}

/// One `health.tcp` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TcpCheck {
    /// `host:port` to connect to.
    #[serde(deserialize_with = "de::string")]
    pub addr: String,
    /// Time the connection may take (registry:2: none when zero; berth: 10 s).
    #[serde(with = "duration::serde_go")]
    pub timeout: Duration,
    /// Time between checks (10 s when zero).
    #[serde(with = "duration::serde_go")]
    pub interval: Duration,
    /// Consecutive failures before unhealthy (0: the first).
    #[serde(deserialize_with = "de::count")]
    pub threshold: usize,
}
