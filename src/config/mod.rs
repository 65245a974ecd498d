//! Configuration in distribution's YAML schema, so a `config.yml` written for
//! registry:2 works unchanged. Loading order: built-in defaults < file <
//! `REGISTRY_*` environment overrides (see `env`) < command-line flags.

pub mod env;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole configuration. Field names follow distribution's YAML keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Schema version; distribution only knows "0.1".
    pub version: String,
    pub log: LogConfig,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub catalog: CatalogConfig,
}

/// `log:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogConfig {
    /// error, warn, info, debug (distribution's levels).
    pub level: String,
    /// text or json.
    pub formatter: String,
    pub accesslog: AccessLogConfig,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            formatter: "text".into(),
            accesslog: AccessLogConfig::default(),
        }
    }
}

/// `log.accesslog:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccessLogConfig {
    pub disabled: bool,
}

/// `storage:` section: one driver key plus the reserved keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorageConfig {
    pub filesystem: Option<FilesystemConfig>,
    pub inmemory: Option<serde_yaml_ng::Value>,
    pub delete: DeleteConfig,
    pub maintenance: MaintenanceConfig,
    pub redirect: RedirectConfig,
    pub cache: Option<serde_yaml_ng::Value>,
}

/// `storage.filesystem:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FilesystemConfig {
    pub rootdirectory: PathBuf,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            rootdirectory: PathBuf::from("/var/lib/registry"),
        }
    }
}

/// `storage.delete:` section. Off by default, as in distribution.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DeleteConfig {
    pub enabled: bool,
}

/// `storage.maintenance:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MaintenanceConfig {
    pub readonly: ReadOnlyConfig,
}

/// `storage.maintenance.readonly:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReadOnlyConfig {
    pub enabled: bool,
}

/// `storage.redirect:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RedirectConfig {
    pub disable: bool,
}

/// `http:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpConfig {
    /// Listen address; `:5000` (Go style) means all interfaces.
    pub addr: String,
    /// URL prefix the registry is served under, e.g. `/registry/`.
    pub prefix: String,
    /// External base URL used for `Location` headers, when set.
    pub host: String,
    /// Secret signing upload state; must be shared by replicas.
    pub secret: String,
    /// Emit relative `Location` URLs.
    pub relativeurls: bool,
    /// Extra response headers, each with a list of values.
    pub headers: BTreeMap<String, Vec<String>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:5000".into(),
            prefix: String::new(),
            host: String::new(),
            secret: String::new(),
            relativeurls: false,
            headers: BTreeMap::new(),
        }
    }
}

/// `catalog:` section (distribution 2.8.2's CVE-2023-2253 fix).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CatalogConfig {
    /// Largest `n` accepted on `_catalog` and `tags/list`; above it → 400.
    pub maxentries: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig { maxentries: 1000 }
    }
}
