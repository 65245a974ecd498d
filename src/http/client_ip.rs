//! The client's address behind trusted proxies (`http.trustedproxies`):
//! login throttling counts failures per client address, and behind a load
//! balancer every connection comes from the balancer, so without this one
//! bad password script locks everybody out. Only proxies the operator
//! names are believed; anyone else's `X-Forwarded-For` is ignored, so a
//! client cannot pick the address it is throttled under.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Which peers may tell berth the client's address.
#[derive(Debug, Clone, Default)]
pub struct ClientIp {
    trusted: Vec<IpNet>,
}

impl ClientIp {
    /// From `http.trustedproxies` entries (parsed by the config layer).
    /// Errors name the entry.
    pub fn from_config(entries: &[String]) -> Result<ClientIp, String> {
        Ok(ClientIp {
            trusted: crate::config::trusted_proxy_nets(entries)?,
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// True when `peer`'s `X-Forwarded-Host`/`-Proto` may be believed: it
    /// is a trusted proxy, or no proxies are configured (registry:2 trusts
    /// every client's forwarded headers; see `docs/proxy.md`).
    pub fn trusts_forwarded(&self, peer: Option<IpAddr>) -> bool {
        self.trusted.is_empty() || peer.is_some_and(|p| self.trusts(p))
    }

    /// The client's address: the peer itself, unless the peer is a trusted
    /// proxy; then `X-Forwarded-For` is read from its end (the entry the
    /// trusted proxy added last) back past every trusted proxy, and the
    /// first address that is not one is the client. An entry that is not
    /// an address stops the walk at the last good one.
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(|p| p.to_canonical());
        let mut client = peer?;
        if !self.trusts(client) {
            return Some(client);
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, `[v6]`, or either with a port
/// (`1.2.3.4:5678`, `[::1]:5678`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("header"));
        }
        h
    }

    fn proxies(entries: &[&str]) -> ClientIp {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        ClientIp::from_config(&entries).expect("config")
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let none = ClientIp::default();
        let h = xff(&["203.0.113.9"]);
        assert_eq!(none.resolve(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.1")));
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(lb.resolve(Some(ip("192.0.2.7")), &h), Some(ip("192.0.2.7")));
        assert_eq!(lb.resolve(None, &h), None);
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_entries_are_skipped() {
        let lb = proxies(&["10.0.0.0/8", "192.168.1.5"]);
        let peer = Some(ip("10.0.0.1"));
        // The client sent a forged first entry; the balancer appended the
        // address it saw.
        let h = xff(&["1.1.1.1, 203.0.113.9"]);
        assert_eq!(lb.resolve(peer, &h), Some(ip("203.0.113.9")));
        // Two trusted hops (two headers, as some proxies send them).
        let h = xff(&["1.1.1.1, 203.0.113.9", "192.168.1.5"]);
        assert_eq!(lb.resolve(peer, &h), Some(ip("203.0.113.9")));
        // No header: the proxy itself.
        assert_eq!(lb.resolve(peer, &HeaderMap::new()), peer);
        // Every hop trusted: the farthest one.
        let h = xff(&["10.1.1.1, 10.2.2.2"]);
        assert_eq!(lb.resolve(peer, &h), Some(ip("10.1.1.1")));
        // Garbage stops the walk at the last good address.
        let h = xff(&["203.0.113.9, not-an-ip, 10.3.3.3"]);
        assert_eq!(lb.resolve(peer, &h), Some(ip("10.3.3.3")));
    }

    #[test]
    fn ipv6_ports_and_mapped_addresses() {
        let lb = proxies(&["fd00::/8", "127.0.0.1"]);
        let h = xff(&["[2001:db8::1]:4711"]);
        assert_eq!(lb.resolve(Some(ip("fd00::2")), &h), Some(ip("2001:db8::1")));
        let h = xff(&["198.51.100.4:5000"]);
        assert_eq!(
            lb.resolve(Some(ip("::ffff:127.0.0.1")), &h),
            Some(ip("198.51.100.4"))
        );
    }

    #[test]
    fn forwarded_headers_are_trusted_from_configured_proxies_only() {
        assert!(ClientIp::default().trusts_forwarded(Some(ip("192.0.2.7"))));
        assert!(ClientIp::default().trusts_forwarded(None));
        let lb = proxies(&["10.0.0.0/8"]);
        assert!(lb.trusts_forwarded(Some(ip("10.1.2.3"))));
        assert!(lb.trusts_forwarded(Some(ip("::ffff:10.1.2.3"))));
        assert!(!lb.trusts_forwarded(Some(ip("192.0.2.7"))));
        assert!(!lb.trusts_forwarded(None));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = ClientIp::from_config(&["10.0.0.0/8".into(), "ten".into()]).expect_err("ten");
        assert!(e.starts_with("http.trustedproxies[1]"), "{e}");
        assert!(ClientIp::from_config(&["10.0.0.0/33".into()]).is_err());
    }
}
