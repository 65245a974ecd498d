//! `http:` section and the listen address it names.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{de, duration};

/// `http:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpConfig {
    /// Listen address; `:5000` (Go style) means all interfaces.
    #[serde(deserialize_with = "de::string")]
    pub addr: String,
    /// Socket type: `tcp` (default) or `unix` (not supported yet).
    #[serde(deserialize_with = "de::string")]
    pub net: String,
    /// URL prefix the registry is served under, e.g. `/registry/`.
    #[serde(deserialize_with = "de::string")]
    pub prefix: String,
    /// External base URL used for `Location` headers, when set.
    #[serde(deserialize_with = "de::string")]
    pub host: String,
    /// Secret signing upload state; must be shared by replicas.
    #[serde(deserialize_with = "de::string")]
    pub secret: String,
    /// Emit relative `Location` URLs.
    #[serde(deserialize_with = "de::bool")]
    pub relativeurls: bool,
    /// berth's: proxies (addresses or CIDR networks) whose
    /// `X-Forwarded-For` names the client, for login throttling and the
    /// access log. Empty: the connection's peer is the client.
    #[serde(deserialize_with = "de::string_vec")]
    pub trustedproxies: Vec<String>,
    /// How long to wait for in-flight requests on shutdown; zero means do
    /// not wait (distribution's behaviour when unset).
    #[serde(with = "duration::serde_go")]
    pub draintimeout: Duration,
    /// berth's: how long a client may take to send a request's head
    /// (HTTP/1, idle keep-alive connections included) before the connection
    /// is closed; zero: no limit.
    #[serde(with = "duration::serde_go")]
    pub readheadertimeout: Duration,
    /// berth's: how long a blob or manifest body may stall (no byte
    /// arriving) before the request fails (an upload keeps what arrived);
    /// zero: no limit.
    #[serde(with = "duration::serde_go")]
    pub bodyidletimeout: Duration,
    /// berth's: how long a connection may stay open with no request in
    /// progress (before its first request, between HTTP/1 keep-alive
    /// requests, or with no open HTTP/2 stream) before it is closed; zero:
    /// no limit.
    #[serde(with = "duration::serde_go")]
    pub idletimeout: Duration,
    /// berth's: most connections open at once (plain and TLS listener);
    /// a new one past it is closed at once. Zero: no limit.
    pub maxconnections: usize,
    /// berth's: most connections open at once from one client address;
    /// zero: no limit. Behind a proxy every connection has the proxy's
    /// address: raise it or set zero there.
    pub maxconnectionsperclient: usize,
    /// berth's: largest request head (request line and headers) in bytes;
    /// an HTTP/1 head past it gets 431, an HTTP/2 header list past it is
    /// refused.
    pub maxheaderbytes: usize,
    /// Extra response headers, each with a list of values.
    #[serde(deserialize_with = "de::headers")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// TLS for the main listener.
    pub tls: TlsConfig,
    /// Debug/metrics listener.
    pub debug: DebugConfig,
    /// HTTP/2 switch.
    pub http2: Http2Config,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:5000".into(),
            net: "tcp".into(),
            prefix: String::new(),
            host: String::new(),
            secret: String::new(),
            relativeurls: false,
            trustedproxies: Vec::new(),
            draintimeout: Duration::ZERO,
            readheadertimeout: Duration::from_secs(60),
            bodyidletimeout: Duration::from_secs(120),
            idletimeout: Duration::from_secs(120),
            maxconnections: 4096,
            maxconnectionsperclient: 512,
            maxheaderbytes: 64 << 10,
            headers: BTreeMap::new(),
            tls: TlsConfig::default(),
            debug: DebugConfig::default(),
            http2: Http2Config::default(),
        }
    }
}

/// `http.prefix` as the router mounts it: `""` (no prefix) or `/a/b` (one
/// leading slash, none trailing), so `registry`, `/registry` and
/// `/registry/` are the same prefix. Refuses characters a URL path or the
/// router would read specially, and empty or dot segments.
pub fn http_prefix(prefix: &str) -> Result<String, String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "{prefix:?}: empty, `.` or `..` path segment (use e.g. /registry/)"
            ));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Err(format!(
                "{prefix:?}: character {c:?} is not allowed (letters, digits, - . _ ~ and /)"
            ));
        }
    }
    Ok(format!("/{trimmed}"))
}

/// The networks of `http.trustedproxies`: CIDR networks (`10.0.0.0/8`,
/// `fd00::/8`) or single addresses. Errors name the entry
/// (`http.trustedproxies[1]: ...`).
pub fn trusted_proxy_nets(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let entry = e.trim();
            entry
                .parse::<IpNet>()
                .ok()
                .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
                .ok_or_else(|| {
                    format!(
                        "http.trustedproxies[{i}]: {e:?} is not an address or a CIDR network \
                         (e.g. 10.0.0.0/8)"
                    )
                })
        })
        .collect()
}

/// `http.tls:` section. TLS is on when `certificate` is set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM certificate chain file.
    #[serde(deserialize_with = "de::string")]
    pub certificate: String,
    /// PEM private key file.
    #[serde(deserialize_with = "de::string")]
    pub key: String,
    /// CA files for client-certificate authentication.
    #[serde(deserialize_with = "de::string_vec")]
    pub clientcas: Vec<String>,
    /// `tls1.0` .. `tls1.3`; empty means the library default.
    #[serde(deserialize_with = "de::string")]
    pub minimumtls: String,
    /// Allowed cipher suites (Go names).
    #[serde(deserialize_with = "de::string_vec")]
    pub ciphersuites: Vec<String>,
    /// ACME certificates; accepted, not implemented yet.
    pub letsencrypt: LetsEncryptConfig,
    /// berth's: how long a new connection on the TLS port may take to send
    /// its first byte and finish the handshake (slow-handshake guard);
    /// zero: no limit.
    #[serde(with = "duration::serde_go")]
    pub handshaketimeout: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: String::new(),
            key: String::new(),
            clientcas: Vec::new(),
            minimumtls: String::new(),
            ciphersuites: Vec::new(),
            letsencrypt: LetsEncryptConfig::default(),
            handshaketimeout: Duration::from_secs(10),
        }
    }
}

/// `http.tls.letsencrypt:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LetsEncryptConfig {
    /// Where issued certificates are cached.
    #[serde(deserialize_with = "de::string")]
    pub cachefile: String,
    /// ACME account email.
    #[serde(deserialize_with = "de::string")]
    pub email: String,
    /// Host names to request certificates for.
    #[serde(deserialize_with = "de::string_vec")]
    pub hosts: Vec<String>,
    /// ACME directory URL.
    #[serde(deserialize_with = "de::string")]
    pub directoryurl: String,
}

/// `http.debug:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DebugConfig {
    /// Debug listener address; empty means no debug listener.
    #[serde(deserialize_with = "de::string")]
    pub addr: String,
    /// Prometheus metrics on the debug listener.
    pub prometheus: PrometheusConfig,
}

/// `http.debug.prometheus:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PrometheusConfig {
    /// Expose metrics.
    #[serde(deserialize_with = "de::bool")]
    pub enabled: bool,
    /// Metrics path (default `/metrics`).
    #[serde(deserialize_with = "de::string")]
    pub path: String,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            enabled: false,
            path: "/metrics".into(),
        }
    }
}

/// `http.http2:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Http2Config {
    /// Serve HTTP/1.1 only.
    #[serde(deserialize_with = "de::bool")]
    pub disabled: bool,
}

/// A TCP listen address from `http.addr`, with Go's `:5000` resolved to
/// `0.0.0.0:5000`. `host` may be a name (`localhost`) to be resolved at bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// IP literal (without brackets) or host name.
    pub host: String,
    /// TCP port; 0 picks a free one.
    pub port: u16,
}

impl ListenAddr {
    /// Parses Go `host:port` forms: `:5000`, `0.0.0.0:5000`, `[::1]:5000`,
    /// `localhost:5000`. Named ports (`:http`) are not accepted.
    pub fn parse(s: &str) -> Result<ListenAddr, String> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: missing ']' in address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("{s:?}: missing port in address"))?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{s:?}: {h:?} is not an IPv6 address"));
            }
            (h.to_string(), port)
        } else {
            let (h, port) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("{s:?}: missing port in address (use e.g. \":5000\")"))?;
            if h.contains(':') {
                return Err(format!(
                    "{s:?}: too many colons in address (put IPv6 in brackets: \"[::1]:5000\")"
                ));
            }
            if h.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(format!("{s:?}: invalid host {h:?}"));
            }
            let host = if h.is_empty() { "0.0.0.0" } else { h };
            (host.to_string(), port)
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{s:?}: invalid port {port:?}"))?;
        Ok(ListenAddr { host, port })
    }

    /// The socket address when `host` is an IP literal (no DNS needed).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// Formats as `host:port` (IPv6 bracketed), ready for `TcpListener::bind`.
impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
