//! Pull-through cache settings: registry:2's `proxy:` (the whole registry
//! mirrors one upstream) and berth's `mirrors:` list (several upstreams,
//! each under its own first name component, beside local repositories),
//! plus `mirrorfetch:` (how many upstream blob fetches run at once).
//! Passwords never leave in `config print`/`config check` output.

use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::{de, duration, ConfigError};

/// registry:2's proxy `ttl` when none is given (`24 * 7 * time.Hour`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(168 * 3600);

/// How long a tag is served from the cache before it is checked upstream
/// again with a `HEAD` (registry:2's proxy checks on every request).
pub const DEFAULT_TAG_REVALIDATE: Duration = Duration::from_secs(60);

/// Upstream blob fetches running at once when `mirrorfetch.maxconcurrent`
/// is not set; more misses answer 429 with `Retry-After`.
pub const DEFAULT_MAX_CONCURRENT_FETCHES: usize = 32;

/// `proxy:` (registry:2): the whole registry is a read-only mirror of one
/// upstream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProxyConfig {
    /// The upstream registry's URL, `https://registry-1.docker.io`.
    #[serde(deserialize_with = "de::string")]
    pub remoteurl: String,
    /// Upstream user (basic or token flow); empty: anonymous.
    #[serde(deserialize_with = "de::string")]
    pub username: String,
    /// Upstream password; shown as `<redacted>` when printed.
    #[serde(deserialize_with = "de::string", serialize_with = "redact")]
    pub password: String,
    /// How long cached content is kept after its last pull (default 168h;
    /// 0: forever). Enforced by the garbage collector.
    #[serde(with = "duration::serde_go")]
    pub ttl: Duration,
    /// berth: how long a tag is served from the cache before a `HEAD`
    /// upstream checks it again (default 1m; 0: every request, as
    /// registry:2 does).
    #[serde(with = "duration::serde_go")]
    pub tagrevalidate: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            remoteurl: String::new(),
            username: String::new(),
            password: String::new(),
            ttl: DEFAULT_TTL,
            tagrevalidate: DEFAULT_TAG_REVALIDATE,
        }
    }
}

/// One `mirrors:` entry (berth): names under `prefix/` are pulled through
/// from `remoteurl`; every other name stays an ordinary repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MirrorConfig {
    /// The first name component that routes here (`dockerhub`).
    #[serde(deserialize_with = "de::string")]
    pub prefix: String,
    /// The upstream registry's URL.
    #[serde(deserialize_with = "de::string")]
    pub remoteurl: String,
    /// Upstream user; empty: anonymous.
    #[serde(deserialize_with = "de::string")]
    pub username: String,
    /// Upstream password; shown as `<redacted>` when printed.
    #[serde(deserialize_with = "de::string", serialize_with = "redact")]
    pub password: String,
    /// How long cached content is kept after its last pull (default 168h;
    /// 0: forever). Enforced by the garbage collector.
    #[serde(with = "duration::serde_go")]
    pub ttl: Duration,
    /// Most bytes this entry's cache may hold (`10GiB`, `500MB`, a plain
    /// number of bytes); least recently pulled content goes first. Enforced
    /// by the garbage collector. `None`: no limit.
    #[serde(
        deserialize_with = "de_size",
        serialize_with = "ser_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxsize: Option<u64>,
    /// Upstream host names containerd sends as `?ns=` (`docker.io`) that
    /// map to this entry.
    #[serde(deserialize_with = "de::string_vec")]
    pub hosts: Vec<String>,
    /// Token realm hosts (besides the upstream's own) that may receive the
    /// credentials.
    #[serde(deserialize_with = "de::string_vec")]
    pub tokenrealms: Vec<String>,
    /// A PEM file of CA certificates trusted for this upstream (besides the
    /// system's).
    #[serde(deserialize_with = "de::string")]
    pub cafile: String,
    /// How long a tag is served from the cache before a `HEAD` upstream
    /// checks it again (default 1m; 0: every request).
    #[serde(with = "duration::serde_go")]
    pub tagrevalidate: Duration,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            prefix: String::new(),
            remoteurl: String::new(),
            username: String::new(),
            password: String::new(),
            ttl: DEFAULT_TTL,
            maxsize: None,
            hosts: Vec::new(),
            tokenrealms: Vec::new(),
            cafile: String::new(),
            tagrevalidate: DEFAULT_TAG_REVALIDATE,
        }
    }
}

/// `mirrorfetch:` (berth): limits of upstream blob fetches on a miss.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MirrorFetchConfig {
    /// Upstream blob fetches running at once (default 32); a miss over it
    /// answers 429 TOOMANYREQUESTS with `Retry-After`.
    #[serde(deserialize_with = "de::count")]
    pub maxconcurrent: usize,
    /// Directory for the spool files blobs stream through while they are
    /// fetched (default: the system's temporary directory). Files are
    /// unlinked as soon as they are created, so nothing is left behind.
    #[serde(deserialize_with = "de::string")]
    pub spooldir: String,
}

impl Default for MirrorFetchConfig {
    fn default() -> Self {
        MirrorFetchConfig {
            maxconcurrent: DEFAULT_MAX_CONCURRENT_FETCHES,
            spooldir: String::new(),
        }
    }
}

fn redact<S: Serializer>(s: &str, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(if s.is_empty() {
        ""
    } else {
        super::redact::REDACTED
    })
}

fn ser_size<S: Serializer>(v: &Option<u64>, ser: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => ser.serialize_u64(*n),
        None => ser.serialize_none(),
    }
}

fn de_size<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    let s = de::LenientString::deserialize(de)?.0;
    if s.trim().is_empty() {
        return Ok(None);
    }
    parse_size(&s).map(Some).map_err(serde::de::Error::custom)
}

/// Parses a byte size: a number with an optional unit (`B`, `KB`/`MB`/
/// `GB`/`TB` in powers of 1000, `KiB`/`MiB`/`GiB`/`TiB` in powers of 1024).
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000_u64.pow(2),
        "g" | "gb" => 1000_u64.pow(3),
        "t" | "tb" => 1000_u64.pow(4),
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {input:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {input:?}: expected a number such as 10GiB"))?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("invalid size {input:?}: must be at least one byte"));
    }
    Ok(bytes as u64)
}

/// True for Docker Hub, whose one-component names live under `library/`.
pub fn is_docker_hub(remoteurl: &str) -> bool {
    matches!(
        url_host(remoteurl).as_deref(),
        Some("registry-1.docker.io" | "docker.io" | "index.docker.io")
    )
}

/// The host of an `http(s)://host[:port]/...` URL, lowercased.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))?
    } else {
        authority.split(':').next()?.to_string()
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Checks one upstream URL.
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url_host(url).is_none() {
        return Err(ConfigError::invalid(
            key,
            format!("{url:?} is not an http:// or https:// URL with a host"),
        ));
    }
    Ok(())
}

/// The `proxy:`/`mirrors:` rules: URLs with a host, prefixes that are one
/// valid, unique name component, `hosts` bound to one entry, and not both
/// modes at once.
pub(super) fn validate(
    proxy: Option<&ProxyConfig>,
    mirrors: &[MirrorConfig],
) -> Result<(), ConfigError> {
    if let Some(p) = proxy {
        if !p.remoteurl.is_empty() && !mirrors.is_empty() {
            return Err(ConfigError::invalid(
                "mirrors",
                "cannot be combined with proxy.remoteurl (which makes the whole registry one \
                 upstream's mirror); move that upstream into a mirrors: entry instead",
            ));
        }
        if !p.remoteurl.is_empty() {
            check_url("proxy.remoteurl", &p.remoteurl)?;
        }
    }
    let mut seen_prefix: Vec<&str> = Vec::new();
    let mut seen_host: Vec<String> = Vec::new();
    for (i, m) in mirrors.iter().enumerate() {
        let key = |k: &str| format!("mirrors.{i}.{k}");
        let valid_prefix =
            !m.prefix.contains('/') && m.prefix.parse::<crate::oci::name::RepoName>().is_ok();
        if !valid_prefix {
            return Err(ConfigError::invalid(
                &key("prefix"),
                format!(
                    "{:?} is not one repository name component (lowercase letters, digits, \
                     and . _ - between them; no /)",
                    m.prefix
                ),
            ));
        }
        if seen_prefix.contains(&m.prefix.as_str()) {
            return Err(ConfigError::invalid(
                &key("prefix"),
                format!(
                    "{:?} is used by an earlier entry; prefixes must be unique",
                    m.prefix
                ),
            ));
        }
        seen_prefix.push(&m.prefix);
        if m.remoteurl.is_empty() {
            return Err(ConfigError::invalid(&key("remoteurl"), "is required"));
        }
        check_url(&key("remoteurl"), &m.remoteurl)?;
        for h in &m.hosts {
            let h = h.to_ascii_lowercase();
            if h.is_empty() || h.contains('/') {
                return Err(ConfigError::invalid(
                    &key("hosts"),
                    format!("{h:?} is not a host name"),
                ));
            }
            if seen_host.contains(&h) {
                return Err(ConfigError::invalid(
                    &key("hosts"),
                    format!("{h:?} is bound to an earlier entry; a host maps to one prefix"),
                ));
            }
            seen_host.push(h);
        }
    }
    Ok(())
}

/// One line per loaded mirror for `berth config check`: prefix, upstream,
/// hosts, auth kind, ttl and maxsize. Never shows a password.
pub fn describe(proxy: Option<&ProxyConfig>, mirrors: &[MirrorConfig]) -> Vec<String> {
    let auth = |user: &str| {
        if user.is_empty() {
            "anonymous".to_string()
        } else {
            format!("credentials of {user:?}")
        }
    };
    let ttl = |d: Duration| {
        if d.is_zero() {
            "never expires".to_string()
        } else {
            format!("ttl {}", duration::format_go_duration(d))
        }
    };
    let mut out = Vec::new();
    if let Some(p) = proxy.filter(|p| !p.remoteurl.is_empty()) {
        out.push(format!(
            "proxy: every name -> {} ({}, {}, tags rechecked after {}); pushes and deletes refused",
            super::redact::url(&p.remoteurl),
            auth(&p.username),
            ttl(p.ttl),
            duration::format_go_duration(p.tagrevalidate),
        ));
    }
    for m in mirrors {
        let hosts = if m.hosts.is_empty() {
            String::new()
        } else {
            format!(", ?ns= hosts [{}]", m.hosts.join(", "))
        };
        let size = m.maxsize.map_or("no size limit".to_string(), |s| {
            format!("maxsize {s} bytes")
        });
        out.push(format!(
            "mirror: {}/<name> -> {}{}{} ({}, {}, {}, tags rechecked after {})",
            m.prefix,
            super::redact::url(&m.remoteurl),
            if is_docker_hub(&m.remoteurl) {
                " (one-component names get library/)"
            } else {
                ""
            },
            hosts,
            auth(&m.username),
            ttl(m.ttl),
            size,
            duration::format_go_duration(m.tagrevalidate),
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("GiB").is_err());
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://registry-1.docker.io").as_deref(),
            Some("registry-1.docker.io")
        );
        assert_eq!(
            url_host("http://u@127.0.0.1:5000/x").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("ftp://x"), None);
        assert!(is_docker_hub("https://registry-1.docker.io/"));
        assert!(!is_docker_hub("https://ghcr.io"));
    }

    fn entry(prefix: &str) -> MirrorConfig {
        MirrorConfig {
            prefix: prefix.into(),
            remoteurl: "https://ghcr.io".into(),
            ..MirrorConfig::default()
        }
    }

    #[test]
    fn prefixes_are_one_unique_component() {
        assert!(validate(None, &[entry("dockerhub"), entry("ghcr")]).is_ok());
        for bad in ["", "a/b", "Dockerhub", "-x"] {
            assert!(validate(None, &[entry(bad)]).is_err(), "{bad}");
        }
        let err = validate(None, &[entry("a"), entry("a")]).unwrap_err();
        assert!(err.to_string().contains("unique"), "{err}");
        let mut a = entry("a");
        a.hosts = vec!["docker.io".into()];
        let mut b = entry("b");
        b.hosts = vec!["Docker.io".into()];
        assert!(validate(None, &[a, b]).is_err());
        let proxy = ProxyConfig {
            remoteurl: "https://x.io".into(),
            ..ProxyConfig::default()
        };
        assert!(validate(Some(&proxy), &[entry("a")]).is_err());
    }

    #[test]
    fn proxy_from_env_mirrors_from_yaml_passwords_redacted_and_described() {
        let yaml = "version: 0.1\nstorage:\n  inmemory:\nmirrors:\n  - prefix: dockerhub\n    \
                    remoteurl: https://registry-1.docker.io\n    username: bob\n    password: hunter2\n    \
                    hosts: [docker.io]\n    maxsize: 10GiB\n    ttl: 0\n";
        let (c, _) = crate::config::Config::load_str(yaml, "t", Vec::new()).unwrap();
        let m = &c.mirrors[0];
        assert_eq!(m.maxsize, Some(10 << 30));
        assert_eq!(m.ttl, Duration::ZERO);
        assert_eq!(m.tagrevalidate, DEFAULT_TAG_REVALIDATE);
        let printed = c.to_yaml().unwrap();
        assert!(
            !printed.contains("hunter2") && printed.contains("<redacted>"),
            "{printed}"
        );
        let lines = describe(c.proxy.as_ref(), &c.mirrors).join("\n");
        assert!(
            lines.contains("dockerhub/<name> -> https://registry-1.docker.io")
                && lines.contains("library/")
                && lines.contains("docker.io")
                && lines.contains("credentials of \"bob\"")
                && lines.contains("never expires")
                && lines.contains("maxsize 10737418240 bytes")
                && !lines.contains("hunter2"),
            "{lines}"
        );
        let env = vec![
            (
                "REGISTRY_PROXY_REMOTEURL".to_string(),
                "http://127.0.0.1:5000".to_string(),
            ),
            ("REGISTRY_PROXY_PASSWORD".to_string(), "pw".to_string()),
        ];
        let (c, _) =
            crate::config::Config::load_str("version: 0.1\nstorage:\n  inmemory:\n", "t", env)
                .unwrap();
        let p = c.proxy.unwrap();
        assert_eq!(
            (p.remoteurl.as_str(), p.password.as_str()),
            ("http://127.0.0.1:5000", "pw")
        );
        assert_eq!(p.ttl, DEFAULT_TTL);
        let err = crate::config::Config::load_str(
            "version: 0.1\nstorage:\n  inmemory:\nmirrors:\n  - prefix: a\n    remoteurl: http://x\n    tagrevalidat: 1s\n",
            "t",
            Vec::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("did you mean `tagrevalidate`"),
            "{err}"
        );
    }
}
