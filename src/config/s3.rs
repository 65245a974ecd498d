//! `storage.s3:` with distribution's keys, so a registry:2 S3 config works
//! unchanged. Values are lenient the way distribution's are (`secure: "false"`,
//! `chunksize: "10485760"`, or both from `REGISTRY_STORAGE_S3_*`).

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::{de as lenient, ConfigError};

/// distribution's default part size for multipart uploads.
pub const DEFAULT_CHUNK_SIZE: u64 = 10 << 20;
/// S3's minimum size of every part but the last.
pub const MIN_CHUNK_SIZE: u64 = 5 << 20;
/// S3's largest part.
pub const MAX_CHUNK_SIZE: u64 = 5 << 30;

/// `storage.s3:` section. Keys and defaults follow distribution's s3 driver.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct S3Config {
    /// Access key id; empty means credentials from the environment
    /// (`AWS_*` variables, web identity, container or instance role).
    #[serde(deserialize_with = "lenient::string")]
    pub accesskey: String,
    /// Secret access key (with `accesskey`).
    #[serde(deserialize_with = "lenient::string")]
    pub secretkey: String,
    /// Session token for temporary credentials (with `accesskey`).
    #[serde(deserialize_with = "lenient::string")]
    pub sessiontoken: String,
    /// AWS region (or any name an S3-compatible server expects).
    #[serde(deserialize_with = "lenient::string")]
    pub region: String,
    /// Endpoint of an S3-compatible server (`http://minio:9000`); a bare
    /// host gets `https://`, or `http://` when `secure` is false.
    #[serde(deserialize_with = "lenient::string")]
    pub regionendpoint: String,
    /// Bucket name (required).
    #[serde(deserialize_with = "lenient::string")]
    pub bucket: String,
    /// Prefix of every key in the bucket (distribution's layout below it).
    #[serde(deserialize_with = "lenient::string")]
    pub rootdirectory: String,
    /// Use HTTPS to a bare `regionendpoint` host (default true).
    #[serde(deserialize_with = "bool_lenient")]
    pub secure: bool,
    /// Path-style requests (`endpoint/bucket/key`). Unset: on when
    /// `regionendpoint` is set, as distribution 2.x does.
    #[serde(
        deserialize_with = "opt_bool_lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub forcepathstyle: Option<bool>,
    /// Multipart part size in bytes (default 10 MiB, at least 5 MiB).
    #[serde(deserialize_with = "u64_lenient")]
    pub chunksize: u64,
    /// berth: a request to the store fails when the store sends nothing
    /// (response head or body chunk) and takes no request body for this
    /// long; `0s` waits forever (default 60s).
    #[serde(with = "super::duration::serde_go")]
    pub idletimeout: std::time::Duration,
    /// Server-side encryption (SSE-S3, or SSE-KMS with `keyid`).
    #[serde(deserialize_with = "bool_lenient")]
    pub encrypt: bool,
    /// KMS key id for SSE-KMS (with `encrypt: true`).
    #[serde(deserialize_with = "lenient::string")]
    pub keyid: String,
    /// Storage class of new objects (default STANDARD; NONE sends none).
    #[serde(deserialize_with = "lenient::string")]
    pub storageclass: String,
    /// Accept any TLS certificate from the endpoint (testing only).
    #[serde(deserialize_with = "bool_lenient")]
    pub skipverify: bool,
    /// Accepted for compatibility; requests are always signed with SigV4.
    #[serde(deserialize_with = "bool_lenient")]
    pub v4auth: bool,
    /// distribution tuning keys berth accepts and ignores (multipart copy
    /// sizes, user agent, dual stack, acceleration, ACL, log level, checksums).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipartcopychunksize: Option<Value>,
    /// Accepted, ignored (see `multipartcopychunksize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipartcopymaxconcurrency: Option<Value>,
    /// Accepted, ignored: berth copies server-side up to 5 GiB and streams above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipartcopythresholdsize: Option<Value>,
    /// Accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub useragent: Option<Value>,
    /// Accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usedualstack: Option<Value>,
    /// Accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerate: Option<Value>,
    /// Accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objectacl: Option<Value>,
    /// Accepted, ignored (use `log.level`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loglevel: Option<Value>,
    /// Accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksumdisabled: Option<Value>,
    /// Accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksumalgorithm: Option<Value>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            accesskey: String::new(),
            secretkey: String::new(),
            sessiontoken: String::new(),
            region: String::new(),
            regionendpoint: String::new(),
            bucket: String::new(),
            rootdirectory: String::new(),
            secure: true,
            forcepathstyle: None,
            chunksize: DEFAULT_CHUNK_SIZE,
            idletimeout: super::DEFAULT_IDLE_TIMEOUT,
            encrypt: false,
            keyid: String::new(),
            storageclass: "STANDARD".into(),
            skipverify: false,
            v4auth: true,
            multipartcopychunksize: None,
            multipartcopymaxconcurrency: None,
            multipartcopythresholdsize: None,
            useragent: None,
            usedualstack: None,
            accelerate: None,
            objectacl: None,
            loglevel: None,
            checksumdisabled: None,
            checksumalgorithm: None,
        }
    }
}

/// Secrets stay out of debug logs (`berth serve` logs the storage config).
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("regionendpoint", &self.regionendpoint)
            .field("rootdirectory", &self.rootdirectory)
            .field("accesskey", &self.accesskey)
            .field(
                "secretkey",
                &if self.secretkey.is_empty() { "" } else { "***" },
            )
            .field("secure", &self.secure)
            .field("forcepathstyle", &self.path_style())
            .field("chunksize", &self.chunksize)
            .field("idletimeout", &self.idletimeout)
            .field("encrypt", &self.encrypt)
            .field("storageclass", &self.storageclass)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// Checks what distribution checks at startup, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bucket.is_empty() {
            return Err(ConfigError::invalid("storage.s3.bucket", "required"));
        }
        if self.region.is_empty() && self.regionendpoint.is_empty() {
            return Err(ConfigError::invalid(
                "storage.s3.region",
                "required (or set storage.s3.regionendpoint)",
            ));
        }
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunksize) {
            return Err(ConfigError::invalid(
                "storage.s3.chunksize",
                format!(
                    "{} is out of range ({MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE} bytes)",
                    self.chunksize
                ),
            ));
        }
        if self.accesskey.is_empty() != self.secretkey.is_empty() {
            return Err(ConfigError::invalid(
                "storage.s3.secretkey",
                "accesskey and secretkey go together (leave both empty for credentials from the environment)",
            ));
        }
        if !self.keyid.is_empty() && !self.encrypt {
            return Err(ConfigError::invalid(
                "storage.s3.keyid",
                "needs storage.s3.encrypt: true",
            ));
        }
        Ok(())
    }

    /// Whether requests are path-style (`forcepathstyle`, defaulting to on
    /// when a custom endpoint is set).
    pub fn path_style(&self) -> bool {
        self.forcepathstyle
            .unwrap_or(!self.regionendpoint.is_empty())
    }

    /// The region to sign for (`us-east-1` when only an endpoint is given).
    pub fn effective_region(&self) -> &str {
        if self.region.is_empty() {
            "us-east-1"
        } else {
            &self.region
        }
    }

    /// The endpoint URL, with a scheme from `secure` when the key has none.
    pub fn endpoint_url(&self) -> Option<String> {
        let e = self.regionendpoint.trim().trim_end_matches('/');
        if e.is_empty() {
            None
        } else if e.starts_with("http://") || e.starts_with("https://") {
            Some(e.to_string())
        } else if self.secure {
            Some(format!("https://{e}"))
        } else {
            Some(format!("http://{e}"))
        }
    }
}

/// A bool that also accepts Go's string spellings ("true", "False", "1")
/// and YAML 1.1's (`yes`, `on`, `off`, ...), as go-yaml v2 resolves them.
pub(super) fn bool_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    let s = lenient::LenientString::deserialize(de)?.0;
    if let Some(b) = lenient::yaml11_bool(s.trim()) {
        return Ok(b);
    }
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" => Ok(true),
        "false" | "0" | "f" | "no" | "" => Ok(false),
        other => Err(de::Error::custom(format!(
            "invalid boolean {other:?} (use true or false)"
        ))),
    }
}

fn opt_bool_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<Option<bool>, D::Error> {
    bool_lenient(de).map(Some)
}

/// A byte count given as a number or a numeric string.
pub(super) fn u64_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    let s = lenient::LenientString::deserialize(de)?.0;
    s.trim()
        .parse::<u64>()
        .map_err(|_| de::Error::custom(format!("invalid size {s:?} (a number of bytes)")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lenient_values_and_defaults() {
        let c: S3Config = serde_yaml_ng::from_str(
            "bucket: b\nregionendpoint: 127.0.0.1:3900\nsecure: \"false\"\nchunksize: \"5242880\"\n",
        )
        .unwrap();
        assert_eq!(c.chunksize, 5 << 20);
        assert!(!c.secure);
        assert!(c.path_style());
        assert_eq!(c.endpoint_url().as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(c.effective_region(), "us-east-1");
        c.validate().unwrap();
        let with_keys = S3Config {
            accesskey: "GK1".into(),
            secretkey: "hunter2hunter2".into(),
            ..c
        };
        assert!(!format!("{with_keys:?}").contains("hunter2"));

        let d = S3Config::default();
        assert!(d.secure && d.v4auth && !d.path_style());
        assert_eq!(d.chunksize, DEFAULT_CHUNK_SIZE);
        assert!(d.validate().unwrap_err().to_string().contains("bucket"));
    }

    #[test]
    fn validation_names_the_key() {
        let bad = |yaml: &str| {
            serde_yaml_ng::from_str::<S3Config>(yaml)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert!(bad("bucket: b\n").starts_with("storage.s3.region"));
        assert!(bad("bucket: b\nregion: r\nchunksize: 1000\n").starts_with("storage.s3.chunksize"));
        assert!(bad("bucket: b\nregion: r\naccesskey: a\n").starts_with("storage.s3.secretkey"));
        assert!(bad("bucket: b\nregion: r\nkeyid: k\n").starts_with("storage.s3.keyid"));
    }
}
