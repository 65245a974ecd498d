//! Which `X-Forwarded-Host`/`X-Forwarded-Proto` berth believes, and which
//! host values may go into the URLs it hands out (`Location`, the token
//! realm of `WWW-Authenticate`). With `http.trustedproxies` set, only those
//! proxies' forwarded headers count; without it every client's do, as in
//! registry:2 (most deployments sit behind a proxy that sets them). A host
//! value is used only when it is a well-formed `host[:port]` authority.

use std::net::Ipv6Addr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::HttpState;

/// Marks a request that arrived over berth's own TLS listener, so its
/// scheme is `https` whatever an untrusted client's headers say.
#[derive(Debug, Clone, Copy)]
pub struct ViaTls;

const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Middleware: drops `X-Forwarded-Host`/`-Proto` that did not come from a
/// trusted proxy, then states `X-Forwarded-Proto: https` for a request
/// that came over TLS and has none (what a TLS-terminating proxy would
/// say), so handlers read one set of headers they may believe.
pub async fn sanitize(State(st): State<Arc<HttpState>>, mut req: Request, next: Next) -> Response {
    let peer = super::peer_addr(req.extensions());
    let via_tls = req.extensions().get::<ViaTls>().is_some();
    let headers = req.headers_mut();
    if !st.client_ip.trusts_forwarded(peer) {
        headers.remove(X_FORWARDED_HOST);
        headers.remove(X_FORWARDED_PROTO);
    }
    if via_tls && !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    }
    next.run(req).await
}

/// True when `s` is a URL authority berth may put into a URL it returns:
/// `host[:port]` with a DNS name or IPv4 address (letters, digits, `-`,
/// `.`, `_`), or `[IPv6]` with an optional port; a port is 1 to 5 digits
/// up to 65535. Anything else (quotes, spaces, `/`, `@`, commas...) is
/// refused, so a client cannot inject into headers or redirect elsewhere.
pub fn valid_authority(s: &str) -> bool {
    if s.is_empty() || s.len() > 261 {
        return false;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    });
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for ok in [
            "registry.example.com",
            "registry.example.com:5000",
            "localhost",
            "my_host:1",
            "127.0.0.1:65535",
            "[::1]",
            "[2001:db8::1]:443",
        ] {
            assert!(valid_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "a\",service=\"x",
            "http://a",
            "a b",
            "a/b",
            "user@host",
            "host:",
            "host:65536",
            "host:80:80",
            "host:8a",
            "a,b",
            "[::1",
            "[nope]:80",
            "[::1]x",
            "[::1]:",
            ":80",
            "höst",
            &"a".repeat(300),
        ] {
            assert!(!valid_authority(bad), "{bad}");
        }
    }
}
