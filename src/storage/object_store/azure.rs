//! The Azure constructor: distribution's `storage.azure` keys mapped onto
//! `object_store`'s Azure Blob Storage client (Azure, Azurite).
//!
//! Multipart uploads are block blobs: a part is a Put Block (random block
//! ids, so concurrent writers never mix blocks), completion a Put Block
//! List. Azure cannot abort them; see `DriverOptions::discard_blocks`.

use object_store::azure::MicrosoftAzureBuilder;
use object_store::ClientOptions;

use super::inner::IDENTIFIER_MARKER;
use super::{DriverOptions, ObjectStoreDriver};
use crate::config::azure::{AzureConfig, CredentialKind};
use crate::storage::{StorageError, StorageResult};

/// Driver name in logs and errors.
pub const DRIVER: &str = "azure";

/// Builds an Azure driver from a resolved, validated `storage.azure`
/// section. `redirect` is false when `storage.redirect.disable` is set:
/// blobs are then streamed by berth rather than served from SAS URLs.
/// Nothing is contacted here; a wrong account or key shows on the first
/// request.
pub fn build(cfg: &AzureConfig, redirect: bool) -> StorageResult<ObjectStoreDriver> {
    let err = |e: object_store::Error| StorageError::backend(DRIVER, e);
    let url = cfg.account_url();
    let mut b = match cfg.credential_kind() {
        // AZURE_* variables, workload identity, then managed identity.
        Some(CredentialKind::Default) => MicrosoftAzureBuilder::from_env(),
        Some(CredentialKind::ClientSecret) => {
            let c = cfg.credentials.clone().unwrap_or_default();
            MicrosoftAzureBuilder::new()
                .with_client_id(c.clientid)
                .with_client_secret(c.secret)
                .with_tenant_id(c.tenantid)
        }
        Some(CredentialKind::SharedKey) => {
            MicrosoftAzureBuilder::new().with_access_key(&cfg.accountkey)
        }
        None => {
            return Err(StorageError::backend(
                DRIVER,
                "unknown storage.azure.credentials.type",
            ))
        }
    };
    b = b
        .with_account(&cfg.accountname)
        .with_container_name(&cfg.container)
        // Large blobs stream to slow clients: no overall request deadline.
        // (Client options first: they replace `allow_http`.)
        .with_retry(super::retry_config())
        .with_http_connector(super::idle::connector(cfg.idletimeout))
        .with_client_options(ClientOptions::new().with_timeout_disabled())
        .with_allow_http(url.starts_with("http://"))
        .with_endpoint(url);
    let store = b.build().map_err(err)?;
    let chunk_size = usize::try_from(cfg.chunksize)
        .map_err(|_| StorageError::backend(DRIVER, "chunksize too large"))?;
    let opts = DriverOptions {
        chunk_size,
        redirect,
        upload_marker: IDENTIFIER_MARKER,
        discard_blocks: true,
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

    fn cfg(yaml: &str) -> AzureConfig {
        serde_yaml_ng::from_str::<AzureConfig>(yaml)
            .unwrap()
            .resolved()
            .unwrap()
    }

    #[test]
    fn builds_from_distribution_keys() {
        let d = build(
            &cfg("accountname: acct\naccountkey: a2V5\ncontainer: c\nrootdirectory: /reg/\n"),
            true,
        )
        .unwrap();
        assert_eq!(d.name(), "azure");
        assert!(format!("{d:?}").contains("root: \"reg\""));
        let c = cfg(
            "accountname: a\ncontainer: c\ncredentials:\n  type: client_secret\n  clientid: i\n  tenantid: t\n  secret: s\n",
        );
        build(&c, false).unwrap();
    }

    #[test]
    fn bad_key_is_a_backend_error() {
        let e = build(
            &cfg("accountname: a\naccountkey: not base64!\ncontainer: c\n"),
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("azure"), "{e}");
    }
}
