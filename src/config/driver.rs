//! Which storage backend a configuration asks for: exactly one driver
//! section, validated, resolved into what `app` builds.

use std::path::PathBuf;

use super::{azure, gcs, s3, Config, ConfigError, FsSync, KNOWN_UNSUPPORTED_DRIVERS};

/// The storage backend to build, resolved from `storage:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageDriverConfig {
    /// distribution's filesystem layout under `root`.
    Filesystem {
        /// `storage.filesystem.rootdirectory`.
        root: PathBuf,
        /// `storage.filesystem.sync`.
        sync: FsSync,
    },
    /// Process memory; lost on exit.
    InMemory,
    /// An S3 bucket (AWS or S3-compatible), distribution's layout under
    /// `rootdirectory`.
    S3 {
        /// `storage.s3`, validated.
        config: Box<s3::S3Config>,
    },
    /// An Azure Blob Storage container, distribution's layout under
    /// `rootdirectory`.
    Azure {
        /// `storage.azure`, with a connection string resolved, validated.
        config: Box<azure::AzureConfig>,
    },
    /// A Google Cloud Storage bucket, distribution's layout under
    /// `rootdirectory`.
    Gcs {
        /// `storage.gcs`, validated.
        config: Box<gcs::GcsConfig>,
    },
}

impl Config {
    /// The storage backend to build. Drivers distribution has but berth does
    /// not (swift, oss, ...) give a "not supported yet" error; s3, azure and
    /// gcs sections are validated here (required keys, chunk sizes).
    pub fn storage_driver(&self) -> Result<StorageDriverConfig, ConfigError> {
        let drivers = self.storage.driver_names();
        let name = match drivers.as_slice() {
            [] => {
                return Err(ConfigError::invalid(
                    "storage",
                    "no storage configuration provided",
                ))
            }
            [one] => one.as_str(),
            many => {
                return Err(ConfigError::invalid(
                    "storage",
                    format!(
                        "multiple storage drivers specified in configuration or environment: {}",
                        many.join(", ")
                    ),
                ))
            }
        };
        match (name, &self.storage.filesystem) {
            ("filesystem", Some(fs)) => Ok(StorageDriverConfig::Filesystem {
                root: fs.rootdirectory.clone(),
                sync: fs.sync,
            }),
            ("inmemory", _) => Ok(StorageDriverConfig::InMemory),
            ("s3", _) => {
                let s3 = self.storage.s3.clone().unwrap_or_default();
                s3.validate()?;
                Ok(StorageDriverConfig::S3 {
                    config: Box::new(s3),
                })
            }
            ("azure", _) => {
                let azure = self.storage.azure.clone().unwrap_or_default().resolved()?;
                azure.validate()?;
                Ok(StorageDriverConfig::Azure {
                    config: Box::new(azure),
                })
            }
            ("gcs", _) => {
                let gcs = self.storage.gcs.clone().unwrap_or_default();
                gcs.validate()?;
                Ok(StorageDriverConfig::Gcs {
                    config: Box::new(gcs),
                })
            }
            (other, _) if KNOWN_UNSUPPORTED_DRIVERS.contains(&other) => Err(ConfigError::invalid(
                &format!("storage.{other}"),
                format!("the {other} storage driver is not supported by berth yet (supported: filesystem, inmemory, s3, azure, gcs)"),
            )),
            (other, _) => {
                let supported = ["filesystem", "inmemory", "s3", "azure", "gcs"];
                let hint = super::unknown::nearest(other, &supported)
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                Err(ConfigError::invalid(
                    &format!("storage.{other}"),
                    format!("unknown storage driver ({hint}supported: filesystem, inmemory, s3, azure, gcs)"),
                ))
            }
        }
    }

    /// Makes filesystem storage at `root` the only driver (the CLI's
    /// `--root`), keeping `delete`, `maintenance` and the other settings.
    pub fn set_filesystem_root(&mut self, root: PathBuf) {
        self.storage.inmemory = None;
        self.storage.s3 = None;
        self.storage.azure = None;
        self.storage.gcs = None;
        self.storage.other_drivers.clear();
        let mut fs = self.storage.filesystem.take().unwrap_or_default();
        fs.rootdirectory = root;
        self.storage.filesystem = Some(fs);
    }
}
