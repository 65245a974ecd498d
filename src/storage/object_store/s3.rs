//! The S3 constructor: distribution's `storage.s3` keys mapped onto
//! `object_store`'s Amazon S3 client (AWS, Garage, MinIO, moto, ...).

use std::str::FromStr;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::ClientOptions;

use super::{storage_class_attributes, DriverOptions, ObjectStoreDriver};
use crate::config::s3::S3Config;
use crate::storage::{StorageError, StorageResult};

/// Driver name in logs and errors.
pub const DRIVER: &str = "s3";

/// Builds an S3 driver from a validated `storage.s3` section. `redirect`
/// is false when `storage.redirect.disable` is set: blobs are then streamed
/// by berth rather than served from presigned URLs. Nothing is contacted
/// here; a wrong endpoint or credentials show on the first request.
pub fn build(cfg: &S3Config, redirect: bool) -> StorageResult<ObjectStoreDriver> {
    let err = |e: object_store::Error| StorageError::backend(DRIVER, e);
    // Without keys, credentials come from the environment (AWS_* variables,
    // web identity, ECS/EKS container credentials, EC2 instance role).
    let mut b = if cfg.accesskey.is_empty() {
        AmazonS3Builder::from_env()
    } else {
        let b = AmazonS3Builder::new()
            .with_access_key_id(&cfg.accesskey)
            .with_secret_access_key(&cfg.secretkey);
        if cfg.sessiontoken.is_empty() {
            b
        } else {
            b.with_token(&cfg.sessiontoken)
        }
    };
    b = b
        .with_bucket_name(&cfg.bucket)
        .with_region(cfg.effective_region())
        .with_virtual_hosted_style_request(!cfg.path_style())
        .with_retry(super::retry_config())
        .with_http_connector(super::idle::connector(cfg.idletimeout))
        // Large blobs stream to slow clients: no overall request deadline.
        .with_client_options(
            ClientOptions::new()
                .with_timeout_disabled()
                .with_allow_invalid_certificates(cfg.skipverify),
        );
    if let Some(endpoint) = cfg.endpoint_url() {
        let endpoint = if cfg.path_style() {
            endpoint
        } else {
            // object_store takes a virtual-hosted endpoint with the bucket
            // already in the host name.
            virtual_host(&endpoint, &cfg.bucket)
        };
        b = b
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    if cfg.encrypt {
        b = if cfg.keyid.is_empty() {
            let key = AmazonS3ConfigKey::from_str("aws_server_side_encryption").map_err(err)?;
            b.with_config(key, "AES256")
        } else {
            b.with_sse_kms_encryption(&cfg.keyid)
        };
    }
    let store = b.build().map_err(err)?;
    let chunk_size = usize::try_from(cfg.chunksize)
        .map_err(|_| StorageError::backend(DRIVER, "chunksize too large"))?;
    let opts = DriverOptions {
        chunk_size,
        redirect,
        // STANDARD is S3's default: sending it only trips servers that do
        // not know storage classes.
        attributes: if cfg.storageclass.eq_ignore_ascii_case("STANDARD") {
            object_store::Attributes::new()
        } else {
            storage_class_attributes(&cfg.storageclass)
        },
        ..DriverOptions::default()
    };
    Ok(ObjectStoreDriver::new(
        DRIVER,
        store,
        &cfg.rootdirectory,
        opts,
    ))
}

/// `https://host:port` → `https://bucket.host:port`.
fn virtual_host(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{bucket}.{rest}"),
        None => format!("{bucket}.{endpoint}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::StorageDriver;

    #[test]
    fn builds_from_distribution_keys() {
        let cfg: S3Config = serde_yaml_ng::from_str(
            "bucket: b\nregionendpoint: 127.0.0.1:3900\nsecure: false\naccesskey: GK1\n\
             secretkey: s\nrootdirectory: /reg/\nencrypt: true\nstorageclass: REDUCED_REDUNDANCY\n",
        )
        .unwrap();
        let d = build(&cfg, true).unwrap();
        assert_eq!(d.name(), "s3");
        let dbg = format!("{d:?}");
        assert!(dbg.contains("root: \"reg\""), "{dbg}");
        assert_eq!(
            virtual_host("https://s3.example:9000", "bkt"),
            "https://bkt.s3.example:9000"
        );
    }
}
