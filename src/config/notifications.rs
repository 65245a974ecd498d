//! `notifications:` section: registry:2's webhook endpoints, with berth's
//! bounds (queue, journal, backoff cap) and extras (HMAC signature, CA file).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de, duration};

/// `notifications:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NotificationsConfig {
    /// `notifications.events`: what goes into each event.
    pub events: EventsConfig,
    /// `notifications.endpoints`: where events are sent.
    pub endpoints: Vec<EndpointConfig>,
}

/// `notifications.events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EventsConfig {
    /// Manifest events list the manifest's references (`target.references`).
    #[serde(deserialize_with = "de::bool")]
    pub includereferences: bool,
}

/// One `notifications.endpoints[]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EndpointConfig {
    /// Names the endpoint in logs, status and metrics (and its journal).
    #[serde(deserialize_with = "de::string")]
    pub name: String,
    /// Skip this endpoint.
    #[serde(deserialize_with = "de::bool")]
    pub disabled: bool,
    /// The URL events are POSTed to (http or https).
    #[serde(deserialize_with = "de::string")]
    pub url: String,
    /// Headers added to every request (values never logged).
    #[serde(deserialize_with = "de::headers")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Time one delivery may take (registry:2 default 1s).
    #[serde(with = "duration::serde_go")]
    pub timeout: Duration,
    /// Consecutive failures before backing off (registry:2 default 10).
    #[serde(deserialize_with = "de::count")]
    pub threshold: usize,
    /// First wait once the threshold is reached (registry:2 default 1s);
    /// berth doubles it per further failure, with jitter, up to `maxbackoff`.
    #[serde(with = "duration::serde_go")]
    pub backoff: Duration,
    /// Events whose target has one of these media types are not sent.
    #[serde(deserialize_with = "de::string_vec")]
    pub ignoredmediatypes: Vec<String>,
    /// Media types and actions not sent.
    pub ignore: IgnoreConfig,
    /// berth: the longest wait between attempts (default 5m).
    #[serde(with = "duration::serde_go")]
    pub maxbackoff: Duration,
    /// berth: attempts per event before it is logged, counted as dropped
    /// and skipped (default 0: retry until delivered, as registry:2).
    #[serde(deserialize_with = "de::count")]
    pub maxattempts: usize,
    /// berth: events held in memory for this endpoint (default 1000).
    #[serde(deserialize_with = "de::count")]
    pub queuesize: usize,
    /// berth (filesystem storage): largest journal file in bytes (default
    /// 64 MiB); events beyond it are dropped, counted and logged.
    #[serde(deserialize_with = "de::count")]
    pub journalmaxsize: usize,
    /// berth: PEM file of CAs trusted for this endpoint (besides the system's).
    #[serde(deserialize_with = "de::string")]
    pub cafile: String,
    /// berth: adds `X-Berth-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(deserialize_with = "de::string")]
    pub hmacsecret: String,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            name: String::new(),
            disabled: false,
            url: String::new(),
            headers: BTreeMap::new(),
            timeout: Duration::ZERO,
            threshold: 0,
            backoff: Duration::ZERO,
            ignoredmediatypes: Vec::new(),
            ignore: IgnoreConfig::default(),
            maxbackoff: Duration::ZERO,
            maxattempts: 0,
            queuesize: 0,
            journalmaxsize: 0,
            cafile: String::new(),
            hmacsecret: String::new(),
        }
    }
}

/// `notifications.endpoints[].ignore`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IgnoreConfig {
    /// Target media types not sent.
    #[serde(deserialize_with = "de::string_vec")]
    pub mediatypes: Vec<String>,
    /// Actions (`push`, `pull`, `mount`, `delete`) not sent.
    #[serde(deserialize_with = "de::string_vec")]
    pub actions: Vec<String>,
}

/// registry:2's defaults for zero values, and berth's for its own keys.
impl EndpointConfig {
    /// Delivery timeout (1s when zero).
    pub fn timeout(&self) -> Duration {
        nonzero(self.timeout, Duration::from_secs(1))
    }
    /// Failures before backing off (10 when zero).
    pub fn threshold(&self) -> usize {
        if self.threshold == 0 {
            10
        } else {
            self.threshold
        }
    }
    /// First backoff (1s when zero).
    pub fn backoff(&self) -> Duration {
        nonzero(self.backoff, Duration::from_secs(1))
    }
    /// Backoff cap (5m when zero; never below `backoff`).
    pub fn maxbackoff(&self) -> Duration {
        nonzero(self.maxbackoff, Duration::from_secs(300)).max(self.backoff())
    }
    /// In-memory bound (1000 when zero).
    pub fn queuesize(&self) -> usize {
        if self.queuesize == 0 {
            1000
        } else {
            self.queuesize
        }
    }
    /// Journal bound in bytes (64 MiB when zero).
    pub fn journalmaxsize(&self) -> u64 {
        if self.journalmaxsize == 0 {
            64 << 20
        } else {
            self.journalmaxsize as u64
        }
    }
    /// The URL without user:password and query values, for logs, `config
    /// check`, `/debug/events` and the UI's status page.
    pub fn redacted_url(&self) -> String {
        super::redact::url(&self.url)
    }
}

fn nonzero(d: Duration, default: Duration) -> Duration {
    if d.is_zero() {
        default
    } else {
        d
    }
}

/// Checks endpoint names (present, unique) and URLs (http/https with a
/// host); the key of the first problem and what is wrong.
pub fn check(n: &NotificationsConfig) -> Result<(), (String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in n.endpoints.iter().enumerate() {
        let key = |k: &str| format!("notifications.endpoints[{i}].{k}");
        if e.name.trim().is_empty() {
            return Err((key("name"), "every endpoint needs a name".into()));
        }
        if !seen.insert(e.name.clone()) {
            return Err((key("name"), format!("duplicate endpoint name {:?}", e.name)));
        }
        let ok = match e.url.split_once("://") {
            Some((scheme, rest)) => {
                matches!(scheme, "http" | "https")
                    && !rest.is_empty()
                    && !rest.starts_with('/')
                    && !rest.contains(char::is_whitespace)
            }
            None => false,
        };
        if !ok {
            return Err((
                key("url"),
                format!("{:?} is not an http:// or https:// URL", e.redacted_url()),
            ));
        }
        for a in &e.ignore.actions {
            if !matches!(a.as_str(), "push" | "pull" | "mount" | "delete") {
                return Err((
                    key("ignore.actions"),
                    format!("unknown action {a:?} (push, pull, mount, delete)"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        let e = |u: &str| EndpointConfig {
            url: u.into(),
            ..Default::default()
        };
        assert_eq!(
            e("https://u:p@h:1/x?y").redacted_url(),
            "https://h:1/x?<redacted>".to_string()
        );
        assert_eq!(e("http://h/p@q").redacted_url(), "http://h/p@q");
        assert_eq!(e("http://h").redacted_url(), "http://h");
    }

    #[test]
    fn defaults_are_registry2s() {
        let e = EndpointConfig::default();
        assert_eq!(e.timeout(), Duration::from_secs(1));
        assert_eq!(e.threshold(), 10);
        assert_eq!(e.backoff(), Duration::from_secs(1));
        assert_eq!(e.queuesize(), 1000);
    }

    #[test]
    fn names_and_urls_are_checked() {
        let mk = |name: &str, url: &str| EndpointConfig {
            name: name.into(),
            url: url.into(),
            ..Default::default()
        };
        let n = |eps: Vec<EndpointConfig>| NotificationsConfig {
            endpoints: eps,
            ..Default::default()
        };
        assert!(check(&n(vec![mk("a", "http://h/x")])).is_ok());
        assert!(check(&n(vec![mk("", "http://h/x")])).is_err());
        assert!(check(&n(vec![mk("a", "ftp://h/x")])).is_err());
        assert!(check(&n(vec![mk("a", "http:///x")])).is_err());
        let dup = check(&n(vec![mk("a", "http://h"), mk("a", "http://i")]));
        assert_eq!(
            dup.expect_err("duplicate").0,
            "notifications.endpoints[1].name"
        );
    }
}
