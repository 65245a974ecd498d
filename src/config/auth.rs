//! `auth:` (distribution's schema plus berth's built-in token issuer) and
//! `access:` (berth's access policies).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::{de, duration};

/// `auth:` — exactly one scheme, as in distribution.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AuthConfig {
    /// Basic auth against an Apache htpasswd file (bcrypt entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<HtpasswdAuthConfig>,
    /// Bearer tokens (Docker token spec), from an external server or berth's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenAuthConfig>,
    /// distribution's development scheme; refused by berth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silly: Option<Value>,
    /// Explicitly no authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub none: Option<Value>,
}

impl AuthConfig {
    /// The configured scheme's name, for messages and dispatch.
    pub fn scheme(&self) -> Option<&'static str> {
        if self.htpasswd.is_some() {
            Some("htpasswd")
        } else if self.token.is_some() {
            Some("token")
        } else if self.silly.is_some() {
            Some("silly")
        } else if self.none.is_some() {
            Some("none")
        } else {
            None
        }
    }
}

/// `auth.htpasswd:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HtpasswdAuthConfig {
    /// Realm named in the `WWW-Authenticate: Basic` challenge.
    #[serde(deserialize_with = "de::string")]
    pub realm: String,
    /// The htpasswd file; re-read when it changes.
    #[serde(deserialize_with = "de::string")]
    pub path: String,
}

/// `auth.token:`. distribution's keys verify tokens from an external token
/// server; with `builtin: true` (berth extension) berth issues them itself at
/// `/auth/token` for the users of `htpasswd`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TokenAuthConfig {
    /// Token endpoint named in the `WWW-Authenticate: Bearer` challenge. With
    /// `builtin` it may be empty: berth names its own `/auth/token`.
    #[serde(deserialize_with = "de::string")]
    pub realm: String,
    /// Audience (`aud`) tokens must carry, and `service` of the challenge.
    #[serde(deserialize_with = "de::string")]
    pub service: String,
    /// Issuer (`iss`) tokens must carry.
    #[serde(deserialize_with = "de::string")]
    pub issuer: String,
    /// PEM certificates whose keys may sign tokens.
    #[serde(deserialize_with = "de::string")]
    pub rootcertbundle: String,
    /// A JWKS file whose keys may sign tokens.
    #[serde(deserialize_with = "de::string")]
    pub jwks: String,
    /// distribution's `autoredirect`; accepted, has no effect.
    #[serde(deserialize_with = "de::bool")]
    pub autoredirect: bool,
    /// berth extension: issue tokens at `/auth/token`.
    #[serde(deserialize_with = "de::bool")]
    pub builtin: bool,
    /// berth extension (builtin): the users, as an htpasswd file.
    #[serde(deserialize_with = "de::string")]
    pub htpasswd: String,
    /// berth extension (builtin): PEM signing key; generated there on first
    /// start when missing. Empty: `<storage root>/../berth-token.key` is not
    /// assumed; a key is generated in memory and tokens die with the process.
    #[serde(deserialize_with = "de::string")]
    pub signingkey: String,
    /// berth extension (builtin): token lifetime.
    #[serde(with = "duration::serde_go")]
    pub expiration: Duration,
}

impl Default for TokenAuthConfig {
    fn default() -> Self {
        TokenAuthConfig {
            realm: String::new(),
            service: String::new(),
            issuer: String::new(),
            rootcertbundle: String::new(),
            jwks: String::new(),
            autoredirect: false,
            builtin: false,
            htpasswd: String::new(),
            signingkey: String::new(),
            expiration: Duration::from_secs(300),
        }
    }
}

/// `access:` (berth extension): who may do what, by repository glob.
/// Without this section: with no auth everyone may do everything; with auth,
/// every authenticated user may do everything and anonymous callers nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccessConfig {
    /// Rules for callers without credentials (e.g. public pull).
    pub anonymous: Vec<AccessRule>,
    /// Rules for every authenticated user (the default policy).
    pub authenticated: Vec<AccessRule>,
    /// Rules for named users.
    pub users: BTreeMap<String, Vec<AccessRule>>,
    /// Named groups of users sharing rules.
    pub groups: BTreeMap<String, AccessGroup>,
}

/// A group in `access.groups`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccessGroup {
    /// User names in the group.
    #[serde(deserialize_with = "de::string_vec")]
    pub members: Vec<String>,
    /// Rules every member gets.
    pub rules: Vec<AccessRule>,
}

/// One rule: repository globs (`*` within a path component, `**` across
/// components) and the actions they allow (`pull`, `push`, `delete`, `*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccessRule {
    #[serde(deserialize_with = "de::string_vec")]
    pub repositories: Vec<String>,
    #[serde(deserialize_with = "de::string_vec")]
    pub actions: Vec<String>,
}
