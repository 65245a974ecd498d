//! The GCS constructor: distribution's `storage.gcs` keys mapped onto
//! `object_store`'s Google Cloud Storage client (XML API; multipart uploads
//! are XML multipart uploads, aborted with their upload id).
//!
//! The service account key may carry object_store's `gcs_base_url` and
//! `disable_oauth` fields, which point the client at another endpoint (an
//! emulator) without credentials.

use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::ClientOptions;

use super::{DriverOptions, ObjectStoreDriver};
use crate::config::gcs::GcsConfig;
use crate::storage::{StorageError, StorageResult};

/// Driver name in logs and errors.
pub const DRIVER: &str = "gcs";

/// Builds a GCS driver from a validated `storage.gcs` section. `redirect`
/// is false when `storage.redirect.disable` is set: blobs are then streamed
/// by berth rather than served from signed URLs. The key file is read
/// here (a missing or malformed file is an error now); the bucket is first
/// contacted on the first request.
pub fn build(cfg: &GcsConfig, redirect: bool) -> StorageResult<ObjectStoreDriver> {
    let err = |e: object_store::Error| StorageError::backend(DRIVER, e);
    let inline = cfg
        .credentials_json()
        .map_err(|e| StorageError::backend(DRIVER, e))?;
    let b = if let Some(json) = inline {
        GoogleCloudStorageBuilder::new().with_service_account_key(json)
    } else if !cfg.keyfile.is_empty() {
        GoogleCloudStorageBuilder::new().with_service_account_path(&cfg.keyfile)
    } else {
        // GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_SERVICE_ACCOUNT*, then the
        // instance metadata server, as distribution's default credentials.
        GoogleCloudStorageBuilder::from_env()
    };
    let store = b
        .with_bucket_name(&cfg.bucket)
        // Large blobs stream to slow clients: no overall request deadline.
        .with_retry(super::retry_config())
        .with_http_connector(super::idle::connector(cfg.idletimeout))
        .with_client_options(ClientOptions::new().with_timeout_disabled())
        .build()
        .map_err(err)?;
    let chunk_size = usize::try_from(cfg.part_size())
        .map_err(|_| StorageError::backend(DRIVER, "chunksize too large"))?;
    let opts = DriverOptions {
        chunk_size,
        redirect,
        ..DriverOptions::default()
    };
    Ok(ObjectStoreDriver::new(
        DRIVER,
        store,
        &cfg.rootdirectory,
        opts,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::StorageDriver;

    fn cfg(yaml: &str) -> GcsConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn builds_from_a_key_file_and_inline_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(
            &key,
            r#"{"gcs_base_url": "http://127.0.0.1:1", "disable_oauth": true,
                "client_email": "", "private_key": "", "private_key_id": ""}"#,
        )
        .unwrap();
        let yaml = format!("bucket: b\nkeyfile: {}\nrootdirectory: /r\n", key.display());
        let d = build(&cfg(&yaml), true).unwrap();
        assert_eq!(d.name(), "gcs");
        assert!(format!("{d:?}").contains("chunk_size: 16777216"));
        let inline = "bucket: b\nchunksize: 262144\ncredentials:\n  disable_oauth: true\n  \
                      client_email: \"\"\n  private_key: \"\"\n  private_key_id: \"\"\n";
        let d = build(&cfg(inline), true).unwrap();
        assert!(format!("{d:?}").contains("chunk_size: 5242880"));
    }

    #[test]
    fn unreadable_or_bad_key_file_is_an_error() {
        let e = build(&cfg("bucket: b\nkeyfile: /nonexistent/key.json\n"), true).unwrap_err();
        assert!(e.to_string().contains("gcs"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(&key, "not json").unwrap();
        let yaml = format!("bucket: b\nkeyfile: {}\n", key.display());
        assert!(build(&cfg(&yaml), true).is_err());
    }
}
