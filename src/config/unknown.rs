//! Unknown keys: which ones are fatal and what the nearest known key is.
//!
//! A misspelt key where a typo weakens security or moves data (an auth
//! scheme or its settings, TLS settings, a storage driver's parameters) stops
//! the load; anywhere else it is a warning, as registry:2 users carry old
//! keys. Known keys come from the typed structs themselves, so a new field
//! is known without touching this file.

use serde::de::{self, Deserialize, Visitor};

use super::notifications as notif;
use super::{
    auth, azure, gcs, mirror, s3, FilesystemConfig, LetsEncryptConfig, TlsConfig, UiConfig,
};

/// Sections in which an unknown key is an error, with the struct whose
/// fields are the known keys there. The longest matching section wins.
fn strict_sections() -> [(&'static str, &'static [&'static str]); 19] {
    [
        ("limits", fields::<super::limits::LimitsConfig>()),
        ("auth", fields::<auth::AuthConfig>()),
        ("auth.htpasswd", fields::<auth::HtpasswdAuthConfig>()),
        ("auth.token", fields::<auth::TokenAuthConfig>()),
        ("http.tls", fields::<TlsConfig>()),
        ("http.tls.letsencrypt", fields::<LetsEncryptConfig>()),
        ("storage.filesystem", fields::<FilesystemConfig>()),
        ("storage.s3", fields::<s3::S3Config>()),
        ("storage.azure", fields::<azure::AzureConfig>()),
        (
            "storage.azure.credentials",
            fields::<azure::AzureCredentials>(),
        ),
        ("storage.gcs", fields::<gcs::GcsConfig>()),
        ("proxy", fields::<mirror::ProxyConfig>()),
        ("mirrors", fields::<mirror::MirrorConfig>()),
        ("mirrorfetch", fields::<mirror::MirrorFetchConfig>()),
        ("notifications", fields::<notif::NotificationsConfig>()),
        ("notifications.events", fields::<notif::EventsConfig>()),
        ("notifications.endpoints", fields::<notif::EndpointConfig>()),
        (
            "notifications.endpoints.ignore",
            fields::<notif::IgnoreConfig>(),
        ),
        ("ui", fields::<UiConfig>()),
    ]
}

/// What to do about one unknown key.
#[derive(Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Refuse the configuration with this message.
    Fatal(String),
    /// Warn with this message.
    Warning(String),
}

/// Classifies the unknown key at dotted `path` (as `serde_ignored` reports it).
pub fn classify(path: &str) -> Unknown {
    // List indexes (`notifications.endpoints.0.url`) do not name a section.
    let path = &path
        .split('.')
        .filter(|s| s.parse::<usize>().is_err())
        .collect::<Vec<_>>()
        .join(".");
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    // A list entry's keys (`mirrors.0.prefx`) belong to the list's section.
    let parent = parent
        .strip_suffix(|c: char| c.is_ascii_digit())
        .map(|p| p.trim_end_matches(|c: char| c.is_ascii_digit()))
        .and_then(|p| p.strip_suffix('.'))
        .unwrap_or(parent);
    let strict = strict_sections()
        .into_iter()
        .filter(|(section, _)| path.starts_with(&format!("{section}.")))
        .max_by_key(|(section, _)| section.len());
    match strict {
        Some((section, known)) => {
            let hint = if section == parent {
                nearest(key, known)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_else(|| format!(" (known keys: {})", known.join(", ")))
            } else {
                String::new()
            };
            let what = if section == "auth" && parent == "auth" {
                "unknown authentication scheme"
            } else {
                "unknown configuration key"
            };
            Unknown::Fatal(format!(
                "{what} `{path}`{hint} (a typo in `{section}` is refused: ignoring it \
                 could weaken security or move data)"
            ))
        }
        None => Unknown::Warning(format!("unknown configuration key `{path}` (ignored)")),
    }
}

/// The known key closest to `key` by edit distance, when close enough to
/// be a typo (at most 3 edits and a third of the longer name), else a known
/// key that `key` abbreviates (`rootdir` → `rootdirectory`).
pub fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    let close = known
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, k)| *d <= 3 && *d * 3 <= key.len().max(k.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    close.or_else(|| {
        known
            .iter()
            .find(|k| key.len() >= 4 && k.starts_with(key.as_str()))
            .copied()
    })
}

/// Edit distance over characters: insertions, deletions, substitutions
/// and swaps of adjacent characters each count one (optimal string
/// alignment), so `kye` is one edit from `key`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

/// The field names a derived `Deserialize` struct accepts, read by asking
/// it to deserialize from a recorder that only notes the field list.
pub fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut recorder = Recorder { fields: &[] };
    let _ = T::deserialize(&mut recorder);
    recorder.fields
}

struct Recorder {
    fields: &'static [&'static str],
}

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field list recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for &mut Recorder {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Stop> {
        self.fields = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_table() {
        for (a, b, d) in [
            ("", "", 0),
            ("htpaswd", "htpasswd", 1),
            ("rootdir", "rootdirectory", 6),
            ("kitten", "sitting", 3),
            ("certificat", "certificate", 1),
            ("kye", "key", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn fields_come_from_the_structs() {
        assert_eq!(
            fields::<auth::AuthConfig>(),
            &["htpasswd", "token", "silly", "none"]
        );
        assert!(fields::<FilesystemConfig>().contains(&"rootdirectory"));
        assert!(fields::<s3::S3Config>().contains(&"regionendpoint"));
    }

    #[test]
    fn classify_table() {
        let fatal = |p: &str| match classify(p) {
            Unknown::Fatal(m) => m,
            Unknown::Warning(m) => panic!("{p}: warning {m}"),
        };
        assert!(fatal("auth.htpaswd")
            .starts_with("unknown authentication scheme `auth.htpaswd`; did you mean `htpasswd`?"));
        assert!(fatal("auth.htpasswd.pth").contains("did you mean `path`?"));
        assert!(fatal("storage.filesystem.rootdirectroy").contains("did you mean `rootdirectory`?"));
        assert!(fatal("storage.filesystem.rootdir").contains("did you mean `rootdirectory`?"));
        assert!(fatal("http.tls.certficate").contains("did you mean `certificate`?"));
        assert!(fatal("proxy.remoteurll").contains("did you mean `remoteurl`?"));
        assert!(fatal("mirrors.1.prefx").contains("did you mean `prefix`?"));
        assert!(fatal("mirrorfetch.maxconcurent").contains("did you mean `maxconcurrent`?"));
        assert!(fatal("storage.s3.regionendpont").contains("did you mean `regionendpoint`?"));
        assert!(fatal("auth.token.zzz").contains("known keys: realm"));
        assert!(fatal("notifications.endpoints.0.treshold").contains("did you mean `threshold`?"));
        assert!(
            fatal("notifications.endpoints.3.ignore.action").contains("did you mean `actions`?")
        );
        assert!(fatal("notifications.event").contains("did you mean `events`?"));
        assert_eq!(
            classify("http.adr"),
            Unknown::Warning("unknown configuration key `http.adr` (ignored)".into())
        );
        assert!(matches!(
            classify("storage.delete.enbled"),
            Unknown::Warning(_)
        ));
    }
}
