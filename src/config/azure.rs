//! `storage.azure:` with distribution's keys (2.x: `accountname`,
//! `accountkey`, `container`, `realm`, `rootdirectory`; 3.x adds
//! `credentials`, `serviceurl`, `connectionstring`), so a registry:2 Azure
//! config works unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::s3::u64_lenient;
use super::{de as lenient, ConfigError};

/// distribution's default storage suffix (public Azure).
pub const DEFAULT_REALM: &str = "core.windows.net";
/// Default block size of berth's block uploads.
pub const DEFAULT_CHUNK_SIZE: u64 = 10 << 20;
/// Smallest block size berth accepts (Azure itself has no minimum).
pub const MIN_CHUNK_SIZE: u64 = 1 << 20;
/// Azure's largest block (4,000 MiB).
pub const MAX_CHUNK_SIZE: u64 = 4000 << 20;

/// `storage.azure.credentials:` (distribution 3).
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AzureCredentials {
    /// `shared_key` (the `accountkey`), `client_secret` (an Entra ID app) or
    /// `default_credentials` (workload identity, `AZURE_*` variables,
    /// managed identity).
    #[serde(rename = "type", deserialize_with = "lenient::string")]
    pub kind: String,
    /// Application (client) id, for `client_secret`.
    #[serde(deserialize_with = "lenient::string")]
    pub clientid: String,
    /// Directory (tenant) id, for `client_secret`.
    #[serde(deserialize_with = "lenient::string")]
    pub tenantid: String,
    /// Client secret, for `client_secret`.
    #[serde(deserialize_with = "lenient::string")]
    pub secret: String,
}

/// `storage.azure:` section. Keys and defaults follow distribution's
/// azure driver.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AzureConfig {
    /// Storage account name (required).
    #[serde(deserialize_with = "lenient::string")]
    pub accountname: String,
    /// Shared key of the account; required unless `credentials` says
    /// otherwise.
    #[serde(deserialize_with = "lenient::string")]
    pub accountkey: String,
    /// Container holding the registry (required; must exist).
    #[serde(deserialize_with = "lenient::string")]
    pub container: String,
    /// Domain suffix of the blob endpoint (`core.chinacloudapi.cn`, ...).
    #[serde(deserialize_with = "lenient::string")]
    pub realm: String,
    /// Prefix of every blob name (distribution's layout below it).
    #[serde(deserialize_with = "lenient::string")]
    pub rootdirectory: String,
    /// Account URL replacing `https://<accountname>.blob.<realm>`, e.g.
    /// Azurite's `http://127.0.0.1:10000/devstoreaccount1` (distribution 3's
    /// key; `endpoint` is accepted as an alias).
    #[serde(alias = "endpoint", deserialize_with = "lenient::string")]
    pub serviceurl: String,
    /// How to authenticate (distribution 3); unset means `shared_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AzureCredentials>,
    /// An Azure connection string (`AccountName=...;AccountKey=...;
    /// BlobEndpoint=...`); its values fill the keys left empty.
    #[serde(deserialize_with = "lenient::string")]
    pub connectionstring: String,
    /// Block size of uploads (berth's key; default 10 MiB).
    #[serde(deserialize_with = "u64_lenient")]
    pub chunksize: u64,
    /// berth: a request to the store fails when the store sends nothing
    /// (response head or body chunk) and takes no request body for this
    /// long; `0s` waits forever (default 60s).
    #[serde(with = "super::duration::serde_go")]
    pub idletimeout: std::time::Duration,
    /// Accepted, ignored: berth's copies finish synchronously.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_status_poll_max_retry: Option<Value>,
    /// Accepted, ignored (see `copy_status_poll_max_retry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_status_poll_delay: Option<Value>,
    /// Accepted, ignored: object_store retries with its own backoff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<Value>,
    /// Accepted, ignored (see `max_retries`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Value>,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            accountname: String::new(),
            accountkey: String::new(),
            container: String::new(),
            realm: DEFAULT_REALM.into(),
            rootdirectory: String::new(),
            serviceurl: String::new(),
            credentials: None,
            connectionstring: String::new(),
            chunksize: DEFAULT_CHUNK_SIZE,
            idletimeout: super::DEFAULT_IDLE_TIMEOUT,
            copy_status_poll_max_retry: None,
            copy_status_poll_delay: None,
            max_retries: None,
            retry_delay: None,
        }
    }
}

/// Secrets stay out of debug logs (`berth serve` logs the storage config).
impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |s: &str| if s.is_empty() { "" } else { "***" };
        f.debug_struct("AzureConfig")
            .field("accountname", &self.accountname)
            .field("accountkey", &hide(&self.accountkey))
            .field("container", &self.container)
            .field("realm", &self.realm)
            .field("serviceurl", &self.serviceurl)
            .field("rootdirectory", &self.rootdirectory)
            .field("credentials", &self.credential_kind())
            .field("connectionstring", &hide(&self.connectionstring))
            .field("chunksize", &self.chunksize)
            .field("idletimeout", &self.idletimeout)
            .finish_non_exhaustive()
    }
}

/// How the driver authenticates, resolved from `credentials.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// The account's shared key (`accountkey`).
    SharedKey,
    /// An Entra ID application with a client secret.
    ClientSecret,
    /// Whatever the environment provides (workload identity, `AZURE_*`
    /// variables, managed identity).
    Default,
}

impl AzureConfig {
    /// The section with a `connectionstring`'s values filled into the keys
    /// left empty; what the driver and `validate` use.
    pub fn resolved(&self) -> Result<AzureConfig, ConfigError> {
        let mut c = self.clone();
        for part in self.connectionstring.split(';').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let Some((k, v)) = part.split_once('=') else {
                return Err(ConfigError::invalid(
                    "storage.azure.connectionstring",
                    format!("{part:?} is not Key=Value"),
                ));
            };
            let slot = match k.to_ascii_lowercase().as_str() {
                "accountname" => &mut c.accountname,
                "accountkey" => &mut c.accountkey,
                "blobendpoint" => &mut c.serviceurl,
                "endpointsuffix" if c.realm == DEFAULT_REALM => {
                    c.realm = v.to_string();
                    continue;
                }
                _ => continue,
            };
            if slot.is_empty() {
                *slot = v.to_string();
            }
        }
        Ok(c)
    }

    /// The authentication method `credentials.type` names (shared key when
    /// unset), or `None` for an unknown type.
    pub fn credential_kind(&self) -> Option<CredentialKind> {
        let kind = self.credentials.as_ref().map_or("", |c| c.kind.as_str());
        match kind.trim().to_ascii_lowercase().as_str() {
            "" | "shared_key" => Some(CredentialKind::SharedKey),
            "client_secret" => Some(CredentialKind::ClientSecret),
            "default_credentials" => Some(CredentialKind::Default),
            _ => None,
        }
    }

    /// Checks what distribution checks at startup, naming the key at fault.
    /// Call on [`AzureConfig::resolved`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let required = [
            ("storage.azure.accountname", &self.accountname),
            ("storage.azure.container", &self.container),
        ];
        for (key, value) in required {
            if value.is_empty() {
                return Err(ConfigError::invalid(key, "required"));
            }
        }
        match self.credential_kind() {
            None => {
                return Err(ConfigError::invalid(
                    "storage.azure.credentials.type",
                    "must be shared_key, client_secret or default_credentials",
                ))
            }
            Some(CredentialKind::SharedKey) if self.accountkey.is_empty() => {
                return Err(ConfigError::invalid(
                    "storage.azure.accountkey",
                    "required (or set storage.azure.credentials.type)",
                ))
            }
            Some(CredentialKind::ClientSecret) => {
                let c = self.credentials.clone().unwrap_or_default();
                for (key, value) in [
                    ("clientid", &c.clientid),
                    ("tenantid", &c.tenantid),
                    ("secret", &c.secret),
                ] {
                    if value.is_empty() {
                        return Err(ConfigError::invalid(
                            &format!("storage.azure.credentials.{key}"),
                            "required for type client_secret",
                        ));
                    }
                }
            }
            _ => {}
        }
        let url = &self.serviceurl;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "storage.azure.serviceurl",
                "must be an http:// or https:// URL",
            ));
        }
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunksize) {
            return Err(ConfigError::invalid(
                "storage.azure.chunksize",
                format!(
                    "{} is out of range ({MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE} bytes)",
                    self.chunksize
                ),
            ));
        }
        Ok(())
    }

    /// The account URL: `serviceurl`, or `https://<account>.blob.<realm>`.
    pub fn account_url(&self) -> String {
        let url = self.serviceurl.trim().trim_end_matches('/');
        if url.is_empty() {
            let realm = if self.realm.is_empty() {
                DEFAULT_REALM
            } else {
                self.realm.trim_matches('.')
            };
            format!("https://{}.blob.{realm}", self.accountname)
        } else {
            url.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(yaml: &str) -> AzureConfig {
        serde_yaml_ng::from_str::<AzureConfig>(yaml)
            .unwrap()
            .resolved()
            .unwrap()
    }

    #[test]
    fn distribution_keys_and_defaults() {
        let c = parse("accountname: acct\naccountkey: a2V5\ncontainer: reg\n");
        c.validate().unwrap();
        assert_eq!(c.account_url(), "https://acct.blob.core.windows.net");
        assert_eq!(c.chunksize, DEFAULT_CHUNK_SIZE);
        assert!(!format!("{c:?}").contains("a2V5"));
        let c = parse(
            "accountname: acct\naccountkey: k\ncontainer: reg\nrealm: core.chinacloudapi.cn\n",
        );
        assert_eq!(c.account_url(), "https://acct.blob.core.chinacloudapi.cn");
        let c = parse(
            "accountname: a\naccountkey: k\ncontainer: c\nendpoint: http://127.0.0.1:10000/a/\n",
        );
        assert_eq!(c.account_url(), "http://127.0.0.1:10000/a");
    }

    #[test]
    fn connection_string_fills_keys() {
        let c = parse(
            "container: reg\nconnectionstring: \"DefaultEndpointsProtocol=http;AccountName=dev;\
             AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/dev;\"\n",
        );
        c.validate().unwrap();
        assert_eq!(c.accountname, "dev");
        assert_eq!(c.accountkey, "a2V5");
        assert_eq!(c.account_url(), "http://127.0.0.1:10000/dev");
    }

    #[test]
    fn validation_names_the_key() {
        let bad = |yaml: &str| parse(yaml).validate().unwrap_err().to_string();
        assert!(bad("accountkey: k\ncontainer: c\n").starts_with("storage.azure.accountname"));
        assert!(bad("accountname: a\naccountkey: k\n").starts_with("storage.azure.container"));
        assert!(bad("accountname: a\ncontainer: c\n").starts_with("storage.azure.accountkey"));
        assert!(
            bad("accountname: a\ncontainer: c\ncredentials:\n  type: magic\n")
                .starts_with("storage.azure.credentials.type")
        );
        assert!(bad(
            "accountname: a\ncontainer: c\ncredentials:\n  type: client_secret\n  clientid: i\n"
        )
        .starts_with("storage.azure.credentials.tenantid"));
        assert!(
            bad("accountname: a\naccountkey: k\ncontainer: c\nchunksize: 10\n")
                .starts_with("storage.azure.chunksize")
        );
        assert!(
            bad("accountname: a\naccountkey: k\ncontainer: c\nserviceurl: x:1\n")
                .starts_with("storage.azure.serviceurl")
        );
        let ok = parse("accountname: a\ncontainer: c\ncredentials:\n  type: default_credentials\n");
        ok.validate().unwrap();
        assert_eq!(ok.credential_kind(), Some(CredentialKind::Default));
    }
}
