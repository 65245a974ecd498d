//! `storage:` section: the driver key and the reserved settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::{azure, de, duration, gcs, s3};

/// `storage:` section: one driver key plus the reserved keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorageConfig {
    /// The filesystem driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FilesystemConfig>,
    /// The S3 driver (AWS or any S3-compatible server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<s3::S3Config>,
    /// The Azure Blob Storage driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<azure::AzureConfig>,
    /// The Google Cloud Storage driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs: Option<gcs::GcsConfig>,
    /// The in-memory driver (takes no parameters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inmemory: Option<Value>,
    /// Whether manifest/blob deletion is allowed.
    pub delete: DeleteConfig,
    /// Upload purging and read-only mode.
    pub maintenance: MaintenanceConfig,
    /// Redirects to the backend for blob downloads.
    pub redirect: RedirectConfig,
    /// `cache:` (blobdescriptor: inmemory|redis); accepted, not implemented yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<Value>,
    /// `tag:` (concurrencylimit, distribution 3); accepted, not implemented yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<Value>,
    /// Any other driver key (s3, azure, gcs, swift, oss, ...), kept raw so
    /// such configs parse and [`Config::storage_driver`] can name them.
    #[serde(flatten)]
    pub other_drivers: BTreeMap<String, Value>,
}

/// `storage.filesystem:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FilesystemConfig {
    /// Root of distribution's on-disk layout (`docker/registry/v2/...`).
    pub rootdirectory: PathBuf,
    /// Distribution's cap on concurrent filesystem operations; accepted, ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxthreads: Option<u64>,
    /// berth: how durable writes reach the disk (docs/storage.md).
    pub sync: FsSync,
}

/// How the filesystem driver makes writes durable.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsSync {
    /// Group commit: one `syncfs` serves every request waiting at that
    /// moment. Best on a volume of its own.
    #[default]
    Group,
    /// An `fsync` of each written file and directory: for a root shared
    /// with other heavy writers, whose dirty data `syncfs` would flush too.
    File,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            rootdirectory: PathBuf::from("/var/lib/registry"),
            maxthreads: None,
            sync: FsSync::Group,
        }
    }
}

/// `storage.delete:` section. Off by default, as in distribution.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DeleteConfig {
    /// Allow `DELETE` on manifests and blobs.
    #[serde(deserialize_with = "de::bool")]
    pub enabled: bool,
}

/// `storage.maintenance:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MaintenanceConfig {
    /// Periodic removal of abandoned uploads.
    pub uploadpurging: UploadPurgingConfig,
    /// Read-only mode.
    pub readonly: ReadOnlyConfig,
    /// Online garbage collection (berth extension; distribution ignores
    /// unknown `maintenance` keys, so the file stays valid for registry:2).
    pub gc: GcConfig,
}

/// `storage.maintenance.gc:` section (berth only): the online collector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GcConfig {
    /// Run the collector while serving (default false).
    #[serde(deserialize_with = "de::bool")]
    pub enabled: bool,
    /// Time between runs (default 1h).
    #[serde(with = "duration::serde_go")]
    pub interval: Duration,
    /// Nothing written, linked or used more recently than this is removed;
    /// must exceed the longest push (default 1h).
    #[serde(with = "duration::serde_go")]
    pub graceperiod: Duration,
    /// Also unlink manifests no tag keeps, like `--delete-untagged`.
    #[serde(deserialize_with = "de::bool")]
    pub deleteuntagged: bool,
    /// Only log what would be removed.
    #[serde(deserialize_with = "de::bool")]
    pub dryrun: bool,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            enabled: false,
            interval: Duration::from_secs(3600),
            graceperiod: Duration::from_secs(3600),
            deleteuntagged: false,
            dryrun: false,
        }
    }
}

/// `storage.maintenance.uploadpurging:` section, with distribution's defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct UploadPurgingConfig {
    /// Run the purger at all (default true).
    #[serde(deserialize_with = "de::bool")]
    pub enabled: bool,
    /// Uploads older than this are removed (default 168h).
    #[serde(with = "duration::serde_go")]
    pub age: Duration,
    /// How often the purger runs (default 24h).
    #[serde(with = "duration::serde_go")]
    pub interval: Duration,
    /// Only log what would be removed.
    #[serde(deserialize_with = "de::bool")]
    pub dryrun: bool,
}

impl Default for UploadPurgingConfig {
    fn default() -> Self {
        UploadPurgingConfig {
            enabled: true,
            age: Duration::from_secs(168 * 3600),
            interval: Duration::from_secs(24 * 3600),
            dryrun: false,
        }
    }
}

/// `storage.maintenance.readonly:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReadOnlyConfig {
    /// Reject writes (pushes, deletes) with 405.
    #[serde(deserialize_with = "de::bool")]
    pub enabled: bool,
}

/// `storage.redirect:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RedirectConfig {
    /// Serve blobs through the registry instead of redirecting.
    #[serde(deserialize_with = "de::bool")]
    pub disable: bool,
}

impl StorageConfig {
    /// Names of the configured driver keys (everything that is not a
    /// reserved setting), sorted.
    pub fn driver_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.other_drivers.keys().cloned().collect();
        if self.filesystem.is_some() {
            names.push("filesystem".into());
        }
        if self.inmemory.is_some() {
            names.push("inmemory".into());
        }
        if self.s3.is_some() {
            names.push("s3".into());
        }
        if self.azure.is_some() {
            names.push("azure".into());
        }
        if self.gcs.is_some() {
            names.push("gcs".into());
        }
        names.sort();
        names
    }
}
