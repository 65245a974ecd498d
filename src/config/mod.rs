//! Configuration in distribution's YAML schema, so a `config.yml` written for
//! registry:2 works unchanged. Loading order: built-in defaults < file <
//! `REGISTRY_*` environment overrides (see `env`) < command-line flags.
//!
//! Entry points: [`Config::load`] (file or embedded default, plus env),
//! [`Config::validate`], [`Config::listen_addr`], [`Config::storage_driver`].
//! See `docs/configuration.md` for the reference.

pub mod auth;
pub mod azure;
mod de;
mod driver;
pub mod duration;
pub mod env;
pub mod gcs;
mod health;
mod http;
pub mod limits;
mod log;
pub mod mirror;
pub mod notifications;
pub mod redact;
pub mod s3;
mod storage;
mod tree;
pub mod unimplemented;
pub mod unknown;
mod validate;
pub mod yaml;

pub use driver::StorageDriverConfig;
pub use health::*;
pub use http::*;
pub use log::*;
pub use storage::*;
use tree::{format_path, normalize_tree, parse_tree, storage_driver_keys};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

/// The whole configuration. Field names follow distribution's YAML keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Schema version; distribution only knows "0.1".
    #[serde(deserialize_with = "de::string")]
    pub version: String,
    /// Logging.
    pub log: LogConfig,
    /// Storage driver and storage behaviour.
    pub storage: StorageConfig,
    /// HTTP listener and URL generation.
    pub http: HttpConfig,
    /// Catalog and tag-list paging limits.
    pub catalog: CatalogConfig,
    /// `auth:` (htpasswd, token; silly refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<auth::AuthConfig>,
    /// `access:` (berth extension): access policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<auth::AccessConfig>,
    /// `limits:` (berth extension): in-flight uploads, manifest size,
    /// upload sessions per repository.
    pub limits: limits::LimitsConfig,
    /// `notifications:` webhook endpoints (see `crate::events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<notifications::NotificationsConfig>,
    /// `redis:`; accepted, not implemented yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<Value>,
    /// `health:` checks (storage driver, file, HTTP, TCP); a failing one
    /// makes requests answer 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
    /// `proxy:` (registry:2's pull-through cache of one upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<mirror::ProxyConfig>,
    /// `mirrors:` (berth): pull-through caches under name prefixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<mirror::MirrorConfig>,
    /// `mirrorfetch:` (berth): limits of upstream blob fetches.
    pub mirrorfetch: mirror::MirrorFetchConfig,
    /// `validation:`; accepted, not implemented yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<Value>,
    /// `compatibility:` (schema1); accepted, not implemented yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<Value>,
    /// `middleware:`; accepted, not implemented yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middleware: Option<Value>,
    /// `reporting:` (bugsnag/newrelic); accepted, not implemented yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting: Option<Value>,
    /// `ui:` (berth only): the web UI (docs/ui.md).
    pub ui: UiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: SUPPORTED_VERSION.into(),
            log: LogConfig::default(),
            storage: StorageConfig::default(),
            http: HttpConfig::default(),
            catalog: CatalogConfig::default(),
            auth: None,
            access: None,
            limits: limits::LimitsConfig::default(),
            notifications: None,
            redis: None,
            health: None,
            proxy: None,
            mirrors: Vec::new(),
            mirrorfetch: mirror::MirrorFetchConfig::default(),
            validation: None,
            compatibility: None,
            middleware: None,
            reporting: None,
            ui: UiConfig::default(),
        }
    }
}

/// `catalog:` section (distribution 2.8.2's CVE-2023-2253 fix).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CatalogConfig {
    /// Largest `n` accepted on `_catalog` and `tags/list`; above it → 400.
    #[serde(deserialize_with = "de::count")]
    pub maxentries: usize,
    /// berth only: how often the in-memory repository index is rebuilt from
    /// storage, which bounds how long other replicas' pushes and deletes
    /// take to show in `_catalog` and `/v1/search` (default 30s; 0 turns
    /// the index off: every listing walks storage).
    #[serde(with = "duration::serde_go")]
    pub refreshinterval: std::time::Duration,
    /// berth only: most repository names the index holds (about 100 bytes
    /// each); past it listings walk storage (default 1,000,000).
    pub indexlimit: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            maxentries: DEFAULT_MAX_ENTRIES,
            refreshinterval: std::time::Duration::from_secs(30),
            indexlimit: DEFAULT_INDEX_LIMIT,
        }
    }
}

/// `ui:` section (berth only): the web UI served at `/` to browsers and
/// under `/ui/`; unknown keys here are fatal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct UiConfig {
    /// Serve the UI (default true); false: `/ui/*` is 404 and `GET /`
    /// answers every client as the API does.
    pub enabled: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig { enabled: true }
    }
}

/// The only configuration version distribution (and berth) understands.
pub const SUPPORTED_VERSION: &str = "0.1";

/// distribution's `catalog.maxentries` default.
pub const DEFAULT_MAX_ENTRIES: usize = 1000;

/// berth: how long an object-store request may see no progress (no
/// response head or body chunk, no request body taken) before it fails
/// (`storage.{s3,azure,gcs}.idletimeout`).
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `catalog.indexlimit` default: repository names held in memory, about
/// 100 bytes each, so at most ~100 MB for a million repositories.
pub const DEFAULT_INDEX_LIMIT: usize = 1_000_000;

/// Keys under `storage:` that are settings, not drivers (distribution's
/// list plus `tag` from distribution 3).
pub const STORAGE_RESERVED_KEYS: &[&str] = &["maintenance", "cache", "delete", "redirect", "tag"];

/// Drivers distribution has that berth does not implement yet.
const KNOWN_UNSUPPORTED_DRIVERS: &[&str] = &["s3-aws", "swift", "oss"];

/// The configuration used when no file is given: listen on loopback only,
/// store under `./data`. A storage driver from `REGISTRY_STORAGE*`
/// replaces the filesystem default.
pub const EMBEDDED_DEFAULT_YAML: &str = "\
version: 0.1
http:
  addr: 127.0.0.1:5000
";

/// Root used by the embedded default when no storage driver is configured.
pub const EMBEDDED_DEFAULT_ROOT: &str = "./data";

/// Why a configuration could not be loaded or used. Every message names the
/// file, variable or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("parsing {source_name}: {message}")]
    Syntax {
        /// File name (or "embedded default").
        source_name: String,
        /// The YAML error.
        message: String,
    },
    /// A `REGISTRY_*` value is not valid YAML.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable name.
        var: String,
        /// The YAML error.
        message: String,
    },
    /// An unknown key where a typo could weaken security or move data
    /// (`auth.*`, `http.tls.*`, a storage driver's section).
    #[error("{message}")]
    UnknownKey {
        /// Full key path, e.g. `auth.htpaswd`.
        key: String,
        /// What is wrong, with the nearest known key.
        message: String,
    },
    /// A key has a wrong type or a value berth refuses.
    #[error("{key}: {message}")]
    Invalid {
        /// Full key path, e.g. `storage.delete.enabled`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Where a configuration tree came from; decides the storage default.
enum Source<'a> {
    /// A file (or string) in distribution's schema.
    File(&'a str),
    /// No file: [`EMBEDDED_DEFAULT_YAML`].
    Embedded,
}

impl Config {
    /// Loads the effective configuration: the file at `path` (or the embedded
    /// default when `None`) with the `REGISTRY_*` variables from `env`
    /// applied, then validated. Returns the config and warnings (unknown
    /// keys, accepted-but-unimplemented sections, normalised values) for
    /// the caller to log.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::load_str(&text, &path.display().to_string(), env)
            }
            None => {
                let mut warnings = Vec::new();
                let tree = parse_tree(EMBEDDED_DEFAULT_YAML, "embedded default", &mut warnings)?;
                Self::from_tree(tree, Source::Embedded, env, warnings)
            }
        }
    }

    /// The embedded default as a value (loopback `127.0.0.1:5000`,
    /// filesystem storage at `./data`), without reading the environment;
    /// handy for tests and for building configs in code.
    pub fn embedded_default() -> Config {
        let mut config = Config::default();
        config.set_filesystem_root(PathBuf::from(EMBEDDED_DEFAULT_ROOT));
        config
    }

    /// Like [`Config::load`] for file contents already in memory;
    /// `source_name` is used in error messages.
    pub fn load_str(
        yaml: &str,
        source_name: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let tree = parse_tree(yaml, source_name, &mut warnings)?;
        Self::from_tree(tree, Source::File(source_name), env, warnings)
    }

    /// Applies the environment, then builds and validates the config; an
    /// error at a key a `REGISTRY_*` variable set names the variable.
    fn from_tree(
        mut tree: Value,
        source: Source<'_>,
        env: impl IntoIterator<Item = (String, String)>,
        mut warnings: Vec<String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let applied = env::apply_env_overrides(&mut tree, env, &mut warnings)?;
        match Self::from_merged_tree(tree, source, &mut warnings) {
            Ok(config) => Ok((config, warnings)),
            Err(e) => Err(env::blame(e, &applied)),
        }
    }

    fn from_merged_tree(
        mut tree: Value,
        source: Source<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Config, ConfigError> {
        normalize_tree(&mut tree, warnings)?;
        let Value::Mapping(root) = &mut tree else {
            return Err(ConfigError::invalid(
                ".",
                "the configuration must be a YAML mapping",
            ));
        };

        if !root.contains_key("version") {
            return Err(ConfigError::invalid(
                "version",
                format!("missing; distribution's schema requires `version: {SUPPORTED_VERSION}`"),
            ));
        }
        let has_driver = root
            .get("storage")
            .and_then(Value::as_mapping)
            .is_some_and(|m| !storage_driver_keys(m).is_empty());
        if !has_driver {
            match source {
                Source::File(name) => {
                    return Err(ConfigError::invalid(
                        "storage",
                        format!("no storage configuration provided in {name}"),
                    ))
                }
                Source::Embedded => {
                    let storage = root
                        .entry(Value::from("storage"))
                        .or_insert_with(|| Value::Mapping(Mapping::new()));
                    if let Value::Mapping(m) = storage {
                        let mut fs = Mapping::new();
                        fs.insert("rootdirectory".into(), EMBEDDED_DEFAULT_ROOT.into());
                        m.insert("filesystem".into(), Value::Mapping(fs));
                    }
                }
            }
        }

        let not_implemented = unimplemented::warnings(&tree);
        let mut unknown = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(format_path(&path));
        let de = serde_ignored::Deserializer::new(tree, &mut on_unknown);
        let deserialized: Result<Config, _> = serde_path_to_error::deserialize(de);
        // A typo in a security or storage section explains a type error
        // there better than the error itself, so it is reported first.
        let mut fatal = Vec::new();
        for key in unknown {
            match unknown::classify(&key) {
                unknown::Unknown::Fatal(message) => fatal.push((key, message)),
                unknown::Unknown::Warning(message) => warnings.push(message),
            }
        }
        if let Some((key, _)) = fatal.first() {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                message: fatal
                    .iter()
                    .map(|(_, m)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
        let mut config = deserialized.map_err(|e| ConfigError::Invalid {
            key: e.path().to_string(),
            message: de::humanize(&e.into_inner().to_string()),
        })?;

        if config.catalog.maxentries == 0 {
            // distribution's conversion: `<= 0` means the default.
            config.catalog.maxentries = DEFAULT_MAX_ENTRIES;
            warnings.push(format!(
                "catalog.maxentries <= 0 means the default ({DEFAULT_MAX_ENTRIES}), as in distribution"
            ));
        }
        warnings.extend(not_implemented);
        warnings.extend(config.value_warnings());
        config.validate()?;
        Ok(config)
    }

    /// The TCP address to listen on, with Go's `:5000` turned into
    /// `0.0.0.0:5000`. Fails for `http.net: unix` (not supported yet).
    pub fn listen_addr(&self) -> Result<ListenAddr, ConfigError> {
        if self.http.net == "unix" {
            return Err(ConfigError::invalid(
                "http.net",
                "unix sockets are not supported by berth yet",
            ));
        }
        ListenAddr::parse(&self.http.addr).map_err(|m| ConfigError::invalid("http.addr", m))
    }

    /// The effective configuration as YAML, for `berth config print`, with
    /// every secret replaced by `<redacted>` ([`redact`]).
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        let invalid = |e: serde_yaml_ng::Error| ConfigError::invalid(".", e.to_string());
        let mut tree = serde_yaml_ng::to_value(self).map_err(invalid)?;
        redact::redact_tree(&mut tree);
        serde_yaml_ng::to_string(&tree).map_err(invalid)
    }

    /// Warnings about values (not keys) berth handles differently.
    fn value_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.log.formatter == "logstash" {
            w.push("log.formatter logstash is not implemented; using json".into());
        }
        if let Some(h) = &self.health {
            for c in h.http.iter().filter(|c| !c.uri.starts_with("http://")) {
                w.push(format!(
                    "health.http uri {:?}: berth checks only http:// URLs; this check is not run",
                    c.uri
                ));
            }
        }
        let host = &self.http.host;
        let has_scheme = host.starts_with("http://") || host.starts_with("https://");
        if !host.is_empty() && !has_scheme {
            w.push(format!(
                "http.host {:?} has no http:// or https:// scheme; generated URLs may be wrong",
                self.http.host
            ));
        }
        w
    }
}

#[cfg(test)]
mod tests;
