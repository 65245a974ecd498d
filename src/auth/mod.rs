//! Authentication and authorization: who is calling (htpasswd, bearer
//! tokens) and what they may do (access policies). Sits beside the registry:
//! `http` asks `auth`, then calls `registry`; `auth` knows nothing of storage.

pub mod authenticator;
pub mod htpasswd;
pub mod login_cache;
pub mod policy;
pub mod ratelimit;
pub mod token;

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// What a request does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    /// Every action, for "*" rules.
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    /// The name used in scopes, token claims and policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pull" => Ok(Action::Pull),
            "push" => Ok(Action::Push),
            "delete" => Ok(Action::Delete),
            other => Err(format!(
                "unknown action {other:?} (expected pull, push or delete)"
            )),
        }
    }
}

/// One entry of a token's `access` claim and of a token request's `scope`
/// (Docker token spec): `{"type":"repository","name":"a/b","actions":["pull"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccess {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Credentials a request presents in its `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

impl fmt::Debug for Credentials {
    /// Never prints secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Credentials {
    /// Parses an `Authorization` header value; anything unreadable counts as
    /// no credentials (the caller then gets the challenge).
    pub fn from_header(value: Option<&str>) -> Credentials {
        let Some(v) = value.map(str::trim) else {
            return Credentials::None;
        };
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return Credentials::None;
            };
            let Ok(text) = String::from_utf8(raw) else {
                return Credentials::None;
            };
            match text.split_once(':') {
                Some((u, p)) => Credentials::Basic {
                    user: u.to_string(),
                    password: p.to_string(),
                },
                None => Credentials::None,
            }
        } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            Credentials::Bearer(rest.to_string())
        } else {
            Credentials::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_parsing() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let table = [
            (None, Credentials::None),
            (
                Some(format!("Basic {}", b64("alice:s3cr:et"))),
                Credentials::Basic {
                    user: "alice".into(),
                    password: "s3cr:et".into(),
                },
            ),
            (
                Some(format!("basic  {}", b64("bob:"))),
                Credentials::Basic {
                    user: "bob".into(),
                    password: "".into(),
                },
            ),
            (Some("Basic !!!".into()), Credentials::None),
            (Some(format!("Basic {}", b64("nocolon"))), Credentials::None),
            (
                Some("Bearer abc.def.ghi".into()),
                Credentials::Bearer("abc.def.ghi".into()),
            ),
            (Some("Bearer ".into()), Credentials::None),
            (Some("Digest x".into()), Credentials::None),
        ];
        for (header, want) in table {
            assert_eq!(
                Credentials::from_header(header.as_deref()),
                want,
                "{header:?}"
            );
        }
        let dbg = format!(
            "{:?}",
            Credentials::Basic {
                user: "u".into(),
                password: "hunter2".into()
            }
        );
        assert!(!dbg.contains("hunter2"));
    }

    #[test]
    fn actions() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert!("admin".parse::<Action>().is_err());
    }
}
