//! `log:` section.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::de;

/// `log:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogConfig {
    /// error, warn, info, debug (distribution's levels).
    #[serde(deserialize_with = "de::string")]
    pub level: String,
    /// text or json.
    #[serde(deserialize_with = "de::string")]
    pub formatter: String,
    /// Static fields added to every log line (e.g. `service: registry`).
    pub fields: BTreeMap<String, Value>,
    /// Access log switch.
    pub accesslog: AccessLogConfig,
    /// Logrus hooks (mail); accepted, not implemented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Value>,
    /// Report the calling function in log lines (distribution 3); accepted, ignored.
    #[serde(deserialize_with = "de::bool")]
    pub reportcaller: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            formatter: "text".into(),
            fields: BTreeMap::new(),
            accesslog: AccessLogConfig::default(),
            hooks: None,
            reportcaller: false,
        }
    }
}

/// `log.accesslog:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccessLogConfig {
    /// Turn off the per-request access log.
    #[serde(deserialize_with = "de::bool")]
    pub disabled: bool,
}
