//! Issue 12 item 11: which `X-Forwarded-Host`/`-Proto` berth believes, the
//! host values it puts into URLs, and quoting of `WWW-Authenticate`
//! parameters. The in-process requests come from 127.0.0.1.

use axum::http::{Method, StatusCode};
use berth::config::auth::{AuthConfig, HtpasswdAuthConfig, TokenAuthConfig};
use berth::config::Config;

use crate::auth::users;
use crate::support::*;

const FORWARDED: [(&str, &str); 2] = [
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "registry.example.com"),
];

/// The `Location` of a new upload sent with `headers`.
async fn upload_location(reg: &TestRegistry, headers: &[(&str, &str)]) -> String {
    let r = reg
        .req(Method::POST, "/v2/p/blobs/uploads/", headers, "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    r.header("location").unwrap().to_string()
}

/// With `http.trustedproxies` set, a peer that is not one of them cannot
/// choose the scheme and host of the URLs berth hands out; a trusted proxy
/// can; with none configured everyone can, as in registry:2.
#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let elsewhere = TestRegistry::memory_with(|c| {
        c.http.trustedproxies = vec!["10.0.0.0/8".into()];
    });
    let loc = upload_location(&elsewhere, &FORWARDED).await;
    assert!(
        loc.starts_with("http://registry.test/v2/p/blobs/uploads/"),
        "{loc}"
    );

    let local = TestRegistry::memory_with(|c| {
        c.http.trustedproxies = vec!["127.0.0.0/8".into()];
    });
    let loc = upload_location(&local, &FORWARDED).await;
    assert!(
        loc.starts_with("https://registry.example.com/v2/p/blobs/uploads/"),
        "{loc}"
    );

    let unset = TestRegistry::memory_with(|_| {});
    let loc = upload_location(&unset, &FORWARDED).await;
    assert!(
        loc.starts_with("https://registry.example.com/v2/p/blobs/uploads/"),
        "{loc}"
    );
}

fn builtin_token(dir: &tempfile::TempDir) -> impl Fn(&mut Config) + '_ {
    move |c: &mut Config| {
        c.auth = Some(AuthConfig {
            token: Some(TokenAuthConfig {
                builtin: true,
                htpasswd: dir.path().join("htpasswd").display().to_string(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
}

/// The challenge of an anonymous `GET /v2/` sent with `headers`.
async fn challenge(reg: &TestRegistry, headers: &[(&str, &str)]) -> String {
    let r = reg.req(Method::GET, "/v2/", headers, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.header("www-authenticate").unwrap().to_string()
}

/// A host value that is not a `host[:port]` authority is not used: the
/// next one (X-Forwarded-Host, then Host) is, else the URL is relative. So
/// `realm="http://a",service="x"` cannot be injected into the challenge.
#[tokio::test]
async fn invalid_host_values_are_not_used() {
    let dir = users();
    let reg = TestRegistry::memory_with(builtin_token(&dir));
    let inject = r#"a",service="x"#;

    let ch = challenge(&reg, &[("x-forwarded-host", inject)]).await;
    assert_eq!(
        ch,
        r#"Bearer realm="http://registry.test/auth/token",service="berth""#
    );
    let ch = challenge(&reg, &[("host", inject)]).await;
    assert_eq!(ch, r#"Bearer realm="/auth/token",service="berth""#);
    let ch = challenge(
        &reg,
        &[("host", inject), ("x-forwarded-host", "reg.example:5000")],
    )
    .await;
    assert_eq!(
        ch,
        r#"Bearer realm="http://reg.example:5000/auth/token",service="berth""#
    );

    let open = TestRegistry::memory_with(|_| {});
    for bad in ["evil.example/x", "user@evil.example", "a b", "host:99999"] {
        let loc = upload_location(&open, &[("x-forwarded-host", bad)]).await;
        assert!(
            loc.starts_with("http://registry.test/v2/p/"),
            "{bad}: {loc}"
        );
    }
    let loc = upload_location(&open, &[("host", "a\"b")]).await;
    assert!(loc.starts_with("/v2/p/blobs/uploads/"), "{loc}");
    let loc = upload_location(&open, &[("host", "[2001:db8::1]:5000")]).await;
    assert!(loc.starts_with("http://[2001:db8::1]:5000/v2/p/"), "{loc}");
}

/// Challenge parameters are escaped as registry:2 writes them (Go's `%q`),
/// whatever the configured realm or service holds.
#[tokio::test]
async fn challenge_parameters_are_escaped() {
    let dir = users();
    let path = dir.path().join("htpasswd").display().to_string();
    let basic = TestRegistry::memory_with(|c| {
        c.auth = Some(AuthConfig {
            htpasswd: Some(HtpasswdAuthConfig {
                realm: r#"my "realm" \ here"#.into(),
                path: path.clone(),
            }),
            ..Default::default()
        });
    });
    assert_eq!(
        challenge(&basic, &[]).await,
        r#"Basic realm="my \"realm\" \\ here""#
    );

    let token = TestRegistry::memory_with(|c| {
        builtin_token(&dir)(c);
        if let Some(t) = c.auth.as_mut().and_then(|a| a.token.as_mut()) {
            t.realm = r#"https://auth.example/token",service="x"#.into();
        }
    });
    assert_eq!(
        challenge(&token, &[]).await,
        r#"Bearer realm="https://auth.example/token\",service=\"x",service="berth""#
    );
}
