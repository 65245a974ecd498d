//! `storage.gcs:` with distribution's keys (`bucket`, `keyfile`,
//! `credentials`, `rootdirectory`, `chunksize`), so a registry:2 GCS config
//! works unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::s3::u64_lenient;
use super::{de as lenient, ConfigError};

/// distribution's default chunk size.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;
/// distribution's granularity: chunk sizes are multiples of 256 KiB.
pub const CHUNK_GRANULARITY: u64 = 256 << 10;
/// GCS's smallest part of an XML multipart upload (all but the last), which
/// berth uses; smaller `chunksize` values are raised to it.
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// GCS's largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// `storage.gcs:` section. Keys and defaults follow distribution's gcs driver.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct GcsConfig {
    /// Bucket name (required).
    #[serde(deserialize_with = "lenient::string")]
    pub bucket: String,
    /// Path of a service account JSON key. Without it (and without
    /// `credentials`), application default credentials are used
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, then the instance metadata server).
    #[serde(deserialize_with = "lenient::string")]
    pub keyfile: String,
    /// The service account key inline, as a map (distribution's
    /// alternative to `keyfile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Value>,
    /// Prefix of every object name (distribution's layout below it).
    #[serde(deserialize_with = "lenient::string")]
    pub rootdirectory: String,
    /// Upload chunk size: a multiple of 256 KiB (default 16 MiB). Parts
    /// of berth's multipart uploads are at least 5 MiB, GCS's minimum.
    #[serde(deserialize_with = "u64_lenient")]
    pub chunksize: u64,
    /// berth: a request to the store fails when the store sends nothing
    /// (response head or body chunk) and takes no request body for this
    /// long; `0s` waits forever (default 60s).
    #[serde(with = "super::duration::serde_go")]
    pub idletimeout: std::time::Duration,
    /// Accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub useragent: Option<Value>,
    /// Accepted, ignored: berth bounds concurrency per upload instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconcurrency: Option<Value>,
}

impl Default for GcsConfig {
    fn default() -> Self {
        GcsConfig {
            bucket: String::new(),
            keyfile: String::new(),
            credentials: None,
            rootdirectory: String::new(),
            chunksize: DEFAULT_CHUNK_SIZE,
            idletimeout: super::DEFAULT_IDLE_TIMEOUT,
            useragent: None,
            maxconcurrency: None,
        }
    }
}

/// The inline key stays out of debug logs.
impl fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field("keyfile", &self.keyfile)
            .field(
                "credentials",
                &if self.credentials.is_some() {
                    "***"
                } else {
                    ""
                },
            )
            .field("rootdirectory", &self.rootdirectory)
            .field("chunksize", &self.chunksize)
            .field("idletimeout", &self.idletimeout)
            .finish_non_exhaustive()
    }
}

impl GcsConfig {
    /// Checks what distribution checks at startup, naming the key at fault.
    /// The key file is read when the driver is built, not here.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bucket.is_empty() {
            return Err(ConfigError::invalid("storage.gcs.bucket", "required"));
        }
        if self.chunksize < CHUNK_GRANULARITY
            || !self.chunksize.is_multiple_of(CHUNK_GRANULARITY)
            || self.chunksize > MAX_PART_SIZE
        {
            return Err(ConfigError::invalid(
                "storage.gcs.chunksize",
                format!(
                    "{} must be a multiple of {CHUNK_GRANULARITY} bytes, at most {MAX_PART_SIZE}",
                    self.chunksize
                ),
            ));
        }
        if !self.keyfile.is_empty() && self.credentials.is_some() {
            return Err(ConfigError::invalid(
                "storage.gcs.credentials",
                "set keyfile or credentials, not both",
            ));
        }
        if let Some(c) = &self.credentials {
            if !c.is_mapping() {
                return Err(ConfigError::invalid(
                    "storage.gcs.credentials",
                    "must be a map (the service account key's fields)",
                ));
            }
        }
        Ok(())
    }

    /// The multipart part size: `chunksize`, raised to GCS's 5 MiB minimum.
    pub fn part_size(&self) -> u64 {
        self.chunksize.max(MIN_PART_SIZE)
    }

    /// The inline `credentials` map as service account JSON.
    pub fn credentials_json(&self) -> Result<Option<String>, ConfigError> {
        self.credentials
            .as_ref()
            .map(|c| {
                serde_json::to_string(c)
                    .map_err(|e| ConfigError::invalid("storage.gcs.credentials", e.to_string()))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(yaml: &str) -> GcsConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn distribution_keys_and_defaults() {
        let c = parse("bucket: b\nkeyfile: /etc/key.json\nrootdirectory: /r\n");
        c.validate().unwrap();
        assert_eq!(c.chunksize, DEFAULT_CHUNK_SIZE);
        assert_eq!(c.part_size(), DEFAULT_CHUNK_SIZE);
        let c = parse("bucket: b\nchunksize: \"262144\"\n");
        c.validate().unwrap();
        assert_eq!(c.part_size(), MIN_PART_SIZE);
        let c = parse(
            "bucket: b\ncredentials:\n  type: service_account\n  client_email: a@b\n  private_key: secret-pem\n",
        );
        c.validate().unwrap();
        let json = c.credentials_json().unwrap().unwrap();
        assert!(json.contains("\"client_email\":\"a@b\""), "{json}");
        assert!(!format!("{c:?}").contains("secret-pem"));
    }

    #[test]
    fn validation_names_the_key() {
        let bad = |yaml: &str| parse(yaml).validate().unwrap_err().to_string();
        assert!(bad("keyfile: k\n").starts_with("storage.gcs.bucket"));
        assert!(bad("bucket: b\nchunksize: 1000\n").starts_with("storage.gcs.chunksize"));
        assert!(bad("bucket: b\nchunksize: 300000\n").starts_with("storage.gcs.chunksize"));
        assert!(bad("bucket: b\nkeyfile: k\ncredentials: {a: 1}\n")
            .starts_with("storage.gcs.credentials"));
        assert!(bad("bucket: b\ncredentials: text\n").starts_with("storage.gcs.credentials"));
    }
}
