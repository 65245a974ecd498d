//! [`Config::validate`]: the rules distribution enforces on a loaded
//! configuration, plus berth's own.

use super::*;

impl Config {
    /// Checks the rules distribution enforces (plus berth's own): version
    /// `0.1`, exactly one storage driver, a parseable `http.addr`, a known
    /// log level and formatter, `catalog.maxentries > 0`. Call again after
    /// changing fields (the CLI does after applying flags).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != SUPPORTED_VERSION {
            return Err(ConfigError::invalid(
                "version",
                format!(
                    "unsupported version {:?} (only {SUPPORTED_VERSION:?} is supported)",
                    self.version
                ),
            ));
        }
        let gc = &self.storage.maintenance.gc;
        if gc.enabled && gc.interval.is_zero() {
            return Err(ConfigError::invalid(
                "storage.maintenance.gc.interval",
                "must be greater than zero when gc is enabled",
            ));
        }
        if gc.enabled && gc.graceperiod.is_zero() {
            return Err(ConfigError::invalid(
                "storage.maintenance.gc.graceperiod",
                "must be greater than zero when gc is enabled (it protects pushes in progress)",
            ));
        }
        if self.storage.maintenance.uploadpurging.enabled
            && self.storage.maintenance.uploadpurging.interval.is_zero()
        {
            return Err(ConfigError::invalid(
                "storage.maintenance.uploadpurging.interval",
                "must be greater than zero when upload purging is enabled",
            ));
        }
        mirror::validate(self.proxy.as_ref(), &self.mirrors)?;
        if let Some(n) = &self.notifications {
            if let Err((key, message)) = notifications::check(n) {
                return Err(ConfigError::invalid(&key, message));
            }
        }
        if self.limits.manifestsize == 0 {
            return Err(ConfigError::invalid(
                "limits.manifestsize",
                "must be greater than zero (the default is 4194304, 4 MiB)",
            ));
        }
        if let Err(e) = trusted_proxy_nets(&self.http.trustedproxies) {
            let (key, message) = e.split_once(": ").unwrap_or(("http.trustedproxies", &e));
            return Err(ConfigError::invalid(key, message));
        }
        match self.log.level.to_ascii_lowercase().as_str() {
            "panic" | "fatal" | "error" | "warn" | "warning" | "info" | "debug" | "trace" => {}
            other => {
                return Err(ConfigError::invalid(
                    "log.level",
                    format!("unknown level {other:?} (use error, warn, info or debug)"),
                ))
            }
        }
        match self.log.formatter.as_str() {
            "" | "text" | "json" | "logstash" => {}
            other => {
                return Err(ConfigError::invalid(
                    "log.formatter",
                    format!("unsupported logging formatter {other:?} (use text or json)"),
                ))
            }
        }
        let drivers = self.storage.driver_names();
        if drivers.len() > 1 {
            return Err(ConfigError::invalid(
                "storage",
                format!(
                    "multiple storage drivers specified in configuration or environment: {}",
                    drivers.join(", ")
                ),
            ));
        }
        if drivers.is_empty() {
            return Err(ConfigError::invalid(
                "storage",
                "no storage configuration provided",
            ));
        }
        match self.http.net.as_str() {
            "" | "tcp" | "unix" => {}
            other => {
                return Err(ConfigError::invalid(
                    "http.net",
                    format!("unsupported network {other:?} (use tcp)"),
                ))
            }
        }
        if self.http.net != "unix" {
            ListenAddr::parse(&self.http.addr).map_err(|m| ConfigError::invalid("http.addr", m))?;
        }
        http_prefix(&self.http.prefix).map_err(|m| ConfigError::invalid("http.prefix", m))?;
        if !self.http.debug.addr.is_empty() {
            ListenAddr::parse(&self.http.debug.addr)
                .map_err(|m| ConfigError::invalid("http.debug.addr", m))?;
        }
        match self.http.tls.minimumtls.as_str() {
            "" | "tls1.0" | "tls1.1" | "tls1.2" | "tls1.3" => {}
            other => {
                return Err(ConfigError::invalid(
                    "http.tls.minimumtls",
                    format!("unknown TLS version {other:?} (use tls1.2 or tls1.3)"),
                ))
            }
        }
        if self.catalog.maxentries == 0 {
            return Err(ConfigError::invalid(
                "catalog.maxentries",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
