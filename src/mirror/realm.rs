//! Realm pinning: whether the upstream's credentials may go to a token
//! realm. The upstream picks the realm (it is in its `WWW-Authenticate`), so
//! a hostile or compromised upstream, or anyone able to rewrite its answer,
//! could otherwise collect the mirror's password (the class of
//! distribution's CVE-2026-33540). A pure function, table-tested.

use reqwest::Url;

/// Docker Hub's registry hosts, whose realm `auth.docker.io` is trusted
/// with their credentials without configuration.
const DOCKER_HUB_HOSTS: &[&str] = &["registry-1.docker.io", "index.docker.io", "docker.io"];
/// Docker Hub's token realm host.
const DOCKER_HUB_REALM: &str = "auth.docker.io";

/// What the client may do with a token realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealmDecision {
    /// The realm may receive the upstream's credentials (Basic).
    Credentials,
    /// The realm may be asked, but only for an anonymous token: no
    /// `Authorization` header ever goes there.
    AnonymousOnly,
    /// The realm is not asked at all (why, for the error message).
    Refused(String),
}

/// Host part compared case-insensitively, without a trailing dot.
fn norm_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Decides what may be sent to `realm` when authenticating to `upstream`:
/// credentials only when the realm's host is the upstream's host, is one
/// of `allowed_hosts` (`host` or `host:port`, case-insensitive), or is
/// `auth.docker.io` for Docker Hub; an anonymous request for any other
/// http(s) realm. Refused: a scheme other than http(s), an `http` realm
/// for an `https` upstream, user information in the realm URL (which
/// would be sent as Basic credentials), a realm without a host.
pub fn realm_decision(upstream: &Url, realm: &Url, allowed_hosts: &[String]) -> RealmDecision {
    match realm.scheme() {
        "https" => {}
        "http" if upstream.scheme() == "https" => {
            return RealmDecision::Refused(format!(
                "token realm {} is plain http for an https upstream",
                realm_for_log(realm)
            ))
        }
        "http" => {}
        other => {
            return RealmDecision::Refused(format!("token realm scheme {other:?} is not http(s)"))
        }
    }
    if !realm.username().is_empty() || realm.password().is_some() {
        return RealmDecision::Refused("token realm URL carries user information".to_string());
    }
    let Some(realm_host) = realm.host_str().map(norm_host) else {
        return RealmDecision::Refused("token realm URL has no host".to_string());
    };
    let upstream_host = upstream.host_str().map(norm_host).unwrap_or_default();
    if !upstream_host.is_empty() && realm_host == upstream_host {
        return RealmDecision::Credentials;
    }
    let realm_port = realm.port_or_known_default().unwrap_or(0);
    let with_port = format!("{realm_host}:{realm_port}");
    if allowed_hosts.iter().any(|a| {
        let a = norm_host(a.trim());
        a == realm_host || a == with_port
    }) {
        return RealmDecision::Credentials;
    }
    if realm_host == DOCKER_HUB_REALM
        && realm.scheme() == "https"
        && DOCKER_HUB_HOSTS.contains(&upstream_host.as_str())
    {
        return RealmDecision::Credentials;
    }
    RealmDecision::AnonymousOnly
}

/// The realm as it may appear in logs and errors: scheme, host, port and
/// path, never a query (which could carry anything).
pub fn realm_for_log(realm: &Url) -> String {
    format!(
        "{}://{}{}{}",
        realm.scheme(),
        realm.host_str().unwrap_or(""),
        realm.port().map(|p| format!(":{p}")).unwrap_or_default(),
        realm.path()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decide(upstream: &str, realm: &str, allowed: &[&str]) -> RealmDecision {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        realm_decision(
            &Url::parse(upstream).unwrap(),
            &Url::parse(realm).unwrap(),
            &allowed,
        )
    }

    #[test]
    fn same_host_gets_credentials_whatever_the_port_and_case() {
        use RealmDecision::*;
        let cases = [
            (
                "http://127.0.0.1:5000",
                "http://127.0.0.1:5000/auth/token",
                Credentials,
            ),
            (
                "http://127.0.0.1:5000",
                "http://127.0.0.1:9999/token",
                Credentials,
            ),
            (
                "https://Registry.Example.com",
                "https://registry.example.com./token",
                Credentials,
            ),
            (
                "https://registry.example.com",
                "https://registry.example.com:8443/t",
                Credentials,
            ),
        ];
        for (up, realm, want) in cases {
            assert_eq!(decide(up, realm, &[]), want, "{up} / {realm}");
        }
    }

    #[test]
    fn other_hosts_get_anonymous_requests_only() {
        use RealmDecision::*;
        let cases = [
            ("http://127.0.0.1:5000", "http://localhost:5000/auth/token"),
            (
                "https://registry.example.com",
                "https://auth.example.com/token",
            ),
            ("https://registry.example.com", "https://evil.example/token"),
            // Suffix tricks are just other hosts.
            (
                "https://registry.example.com",
                "https://registry.example.com.evil.example/t",
            ),
            ("https://example.com", "https://notexample.com/t"),
            // Docker Hub's realm only for Docker Hub.
            (
                "https://registry.example.com",
                "https://auth.docker.io/token",
            ),
            // And Docker Hub itself trusts nothing else.
            (
                "https://registry-1.docker.io",
                "https://auth.docker.io.evil.example/token",
            ),
        ];
        for (up, realm) in cases {
            assert_eq!(decide(up, realm, &[]), AnonymousOnly, "{up} / {realm}");
        }
    }

    #[test]
    fn allowed_hosts_and_docker_hub_get_credentials() {
        use RealmDecision::*;
        assert_eq!(
            decide(
                "http://127.0.0.1:5000",
                "http://localhost:7/t",
                &["LOCALHOST"]
            ),
            Credentials
        );
        assert_eq!(
            decide(
                "https://r.example.com",
                "https://auth.example.com/t",
                &["auth.example.com:443"]
            ),
            Credentials
        );
        assert_eq!(
            decide(
                "https://r.example.com",
                "https://auth.example.com:444/t",
                &["auth.example.com:443"]
            ),
            AnonymousOnly
        );
        assert_eq!(
            decide(
                "https://registry-1.docker.io",
                "https://auth.docker.io/token",
                &[]
            ),
            Credentials
        );
        // Plain http to auth.docker.io is not Docker Hub's realm.
        assert!(matches!(
            decide(
                "https://registry-1.docker.io",
                "http://auth.docker.io/token",
                &[]
            ),
            Refused(_)
        ));
    }

    #[test]
    fn unsafe_realms_are_refused() {
        let cases = [
            ("https://r.example.com", "http://r.example.com/token"),
            ("https://r.example.com", "ftp://r.example.com/token"),
            ("http://r.example.com", "file:///etc/passwd"),
            (
                "https://r.example.com",
                "https://user:pw@r.example.com/token",
            ),
            ("http://r.example.com", "data:text/plain,hello"),
        ];
        for (up, realm) in cases {
            assert!(
                matches!(
                    decide(up, realm, &["r.example.com"]),
                    RealmDecision::Refused(_)
                ),
                "{up} / {realm}"
            );
        }
    }

    #[test]
    fn realm_logs_without_query() {
        let u = Url::parse("https://auth.example.com:8443/token?secret=1").unwrap();
        assert_eq!(realm_for_log(&u), "https://auth.example.com:8443/token");
    }
}
