//! Token authentication through the HTTP API: berth's own token server
//! (`auth.token` with an issuer) and tokens of an external one.

use axum::http::{Method, StatusCode};
use berth::config::auth::{AccessConfig, AuthConfig, TokenAuthConfig};
use berth::config::Config;

use crate::auth::{basic, push_as, rule, users};
use crate::support::*;

/// Auth by berth's built-in token issuer over the `users()` htpasswd file,
/// with `access` rules.
pub(crate) fn token_config(
    dir: &tempfile::TempDir,
    access: Option<AccessConfig>,
) -> impl Fn(&mut Config) + '_ {
    move |c: &mut Config| {
        c.auth = Some(AuthConfig {
            token: Some(TokenAuthConfig {
                builtin: true,
                htpasswd: dir.path().join("htpasswd").display().to_string(),
                ..Default::default()
            }),
            ..Default::default()
        });
        c.access = access.clone();
    }
}

/// alice may pull and push `a/*`, bob `b/*`.
pub(crate) fn alice_a_bob_b() -> AccessConfig {
    let mut access = AccessConfig::default();
    access
        .users
        .insert("alice".into(), vec![rule(&["a/*"], &["pull", "push"])]);
    access
        .users
        .insert("bob".into(), vec![rule(&["b/*"], &["pull", "push"])]);
    access
}

async fn get_token(reg: &TestRegistry, auth: Option<&str>, scope: &str) -> (StatusCode, String) {
    let h: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
    let r = reg
        .req(
            Method::GET,
            &format!("/auth/token?service=berth&scope={scope}"),
            &h,
            "",
        )
        .await;
    if r.status != StatusCode::OK {
        return (r.status, String::new());
    }
    let j = r.json();
    assert_eq!(j["token"], j["access_token"]);
    assert!(j["expires_in"].as_u64().unwrap() > 0);
    (r.status, j["token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn builtin_token_server() {
    let dir = users();
    let reg = TestRegistry::memory_with(token_config(&dir, Some(alice_a_bob_b())));

    let r = reg.get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"http://registry.test/auth/token\",service=\"berth\"")
    );

    let (status, _) = get_token(&reg, Some(&basic("alice", "bad")), "repository:a/x:pull").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, tok) = get_token(
        &reg,
        Some(&basic("alice", "alicepw")),
        "repository:a/x:pull,push",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let bearer = format!("Bearer {tok}");
    assert_eq!(
        reg.req(Method::GET, "/v2/", &[("authorization", &bearer)], "")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(push_as(&reg, "a/x", &bearer).await, StatusCode::CREATED);
    // The token is for a/x only: pushing to a/y needs a new token, so 401
    // with an insufficient_scope challenge naming what is needed.
    let r = reg
        .req(
            Method::POST,
            "/v2/a/y/blobs/uploads/",
            &[("authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let ch = r.header("www-authenticate").unwrap();
    assert!(
        ch.contains("scope=\"repository:a/y:pull,push\"")
            && ch.contains("error=\"insufficient_scope\""),
        "{ch}"
    );

    // Scopes are trimmed by policy: bob asks for a/x push and gets nothing there.
    let (_, tok) = get_token(
        &reg,
        Some(&basic("bob", "bobpw")),
        "repository:a/x:pull,push",
    )
    .await;
    let bob = format!("Bearer {tok}");
    assert_eq!(
        reg.req(
            Method::GET,
            "/v2/a/x/manifests/v1",
            &[("authorization", &bob)],
            ""
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(push_as(&reg, "a/x", &bob).await, StatusCode::UNAUTHORIZED);

    // Search requires what _catalog requires: anonymous callers get the
    // catalog challenge; a token's user sees what the policy lets them pull.
    for url in ["/v1/search?q=", "/v2/_catalog"] {
        let r = reg.get(url).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"http://registry.test/auth/token\",service=\"berth\",scope=\"registry:catalog:*\""),
            "{url}"
        );
    }
    assert_eq!(
        push_as(&reg, "b/mine", &bob).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, tok) = get_token(
        &reg,
        Some(&basic("bob", "bobpw")),
        "repository:b/mine:pull,push",
    )
    .await;
    let bob_b = format!("Bearer {tok}");
    assert_eq!(push_as(&reg, "b/mine", &bob_b).await, StatusCode::CREATED);
    for indexed in [false, true] {
        if indexed {
            reg.refresh_index().await;
        }
        assert_eq!(
            crate::auth::search(&reg, Some(&bearer)).await,
            serde_json::json!(["a/x"])
        );
        assert_eq!(
            crate::auth::search(&reg, Some(&bob)).await,
            serde_json::json!(["b/mine"])
        );
    }

    // A forged or garbage token is refused.
    let r = reg
        .req(
            Method::GET,
            "/v2/",
            &[("authorization", "Bearer not.a.token")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));

    // OAuth2 password grant, as some clients use.
    let r = reg
        .req(
            Method::POST,
            "/auth/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            "grant_type=password&username=alice&password=alicepw&service=berth&scope=repository%3Aa%2Fx%3Apull",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn token_endpoint_absent_without_builtin_issuer() {
    let reg = TestRegistry::memory_with(|_| {});
    assert_eq!(
        reg.get("/auth/token?scope=repository:a:pull").await.status,
        StatusCode::NOT_FOUND
    );
}

/// A token signed by the RSA test key, as an external token server would.
fn external_token(exp_offset: i64, access: serde_json::Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({
        "iss": "auth.example.com", "sub": "ci-bot", "aud": "registry.example.com",
        "iat": now, "nbf": now, "exp": now + exp_offset, "jti": format!("j{now}{exp_offset}"),
        "access": access,
    });
    let key = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/token-rsa.key"
    ))
    .unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&key).unwrap(),
    )
    .unwrap()
}

/// A registry trusting the RSA test key's external token server.
fn external_registry() -> TestRegistry {
    TestRegistry::memory_with(|c| {
        c.auth = Some(AuthConfig {
            token: Some(TokenAuthConfig {
                realm: "https://auth.example.com/token".into(),
                service: "registry.example.com".into(),
                issuer: "auth.example.com".into(),
                rootcertbundle: concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/token-rsa.crt"
                )
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        });
    })
}

#[tokio::test]
async fn external_token_server_tokens() {
    let reg = external_registry();
    let r = reg.get("/v2/ext/app/manifests/v1").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:ext/app:pull\"")
    );
    let grant =
        serde_json::json!([{"type": "repository", "name": "ext/app", "actions": ["pull", "push"]}]);
    let good = format!("Bearer {}", external_token(300, grant.clone()));
    assert_eq!(push_as(&reg, "ext/app", &good).await, StatusCode::CREATED);
    let r = reg
        .req(
            Method::GET,
            "/v2/ext/app/manifests/v1",
            &[("authorization", &good)],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // The grant covers ext/app only.
    assert_eq!(
        push_as(&reg, "ext/other", &good).await,
        StatusCode::UNAUTHORIZED
    );
    // Expired beyond the leeway: refused.
    let old = format!("Bearer {}", external_token(-600, grant));
    let r = reg
        .req(
            Method::GET,
            "/v2/ext/app/manifests/v1",
            &[("authorization", &old)],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    // Search requires what _catalog requires (a `registry:catalog` grant):
    // a token without one (docker login's has an empty access list) is
    // refused with the catalog challenge; with one, search lists what
    // _catalog lists (everything, as registry:2's catalog).
    let catalog_challenge = "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"registry:catalog:*\",error=\"insufficient_scope\"";
    let login = format!("Bearer {}", external_token(300, serde_json::json!([])));
    for token in [&login, &good] {
        for url in ["/v1/search?q=", "/v2/_catalog"] {
            let r = reg
                .req(Method::GET, url, &[("authorization", token)], "")
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{url}");
            assert_eq!(
                r.header("www-authenticate"),
                Some(catalog_challenge),
                "{url}"
            );
        }
    }
    let r = reg.get("/v1/search?q=").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let hidden = serde_json::json!([
        {"type": "repository", "name": "ext/hidden", "actions": ["pull", "push"]}
    ]);
    let hidden = format!("Bearer {}", external_token(300, hidden));
    assert_eq!(
        push_as(&reg, "ext/hidden", &hidden).await,
        StatusCode::CREATED
    );
    let cat = serde_json::json!([
        {"type": "registry", "name": "catalog", "actions": ["*"]}
    ]);
    let lister = format!("Bearer {}", external_token(300, cat));
    let r = reg
        .req(
            Method::GET,
            "/v2/_catalog",
            &[("authorization", &lister)],
            "",
        )
        .await;
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["ext/app", "ext/hidden"])
    );
    for indexed in [false, true] {
        if indexed {
            reg.refresh_index().await;
        }
        assert_eq!(
            crate::auth::search(&reg, Some(&lister)).await,
            serde_json::json!(["ext/app", "ext/hidden"])
        );
    }

    // No /auth/token here: tokens come from the external server.
    assert_eq!(reg.get("/auth/token").await.status, StatusCode::NOT_FOUND);
}

/// Issue 12 item 12: as registry:2's token access set, a token's unknown
/// action strings grant nothing themselves but do not void the known ones
/// beside them; `*` grants every action.
#[tokio::test]
async fn token_actions_unknown_strings_are_ignored_not_fatal() {
    let reg = external_registry();
    let bearer = |actions: serde_json::Value| {
        let grant =
            serde_json::json!([{"type": "repository", "name": "ext/app", "actions": actions}]);
        format!("Bearer {}", external_token(300, grant))
    };
    let star = bearer(serde_json::json!(["*"]));
    assert_eq!(push_as(&reg, "ext/app", &star).await, StatusCode::CREATED);
    let pull = |auth: String| {
        let reg = &reg;
        async move {
            reg.req(
                Method::GET,
                "/v2/ext/app/manifests/v1",
                &[("authorization", &auth)],
                "",
            )
            .await
            .status
        }
    };
    let mixed = bearer(serde_json::json!(["pull", "bogus"]));
    assert_eq!(pull(mixed.clone()).await, StatusCode::OK, "pull honoured");
    assert_eq!(
        push_as(&reg, "ext/app", &mixed).await,
        StatusCode::UNAUTHORIZED,
        "an unknown action is not push"
    );
    let bogus = bearer(serde_json::json!(["bogus", "PULL"]));
    assert_eq!(pull(bogus).await, StatusCode::UNAUTHORIZED);
    let star_and_bogus = bearer(serde_json::json!(["bogus", "*"]));
    assert_eq!(
        push_as(&reg, "ext/app", &star_and_bogus).await,
        StatusCode::CREATED
    );
}

/// The built-in issuer trims a requested scope the same way: the known
/// actions are granted (policy permitting), unknown ones dropped.
#[tokio::test]
async fn builtin_issuer_keeps_known_actions_of_a_scope() {
    let dir = users();
    let mut access = AccessConfig::default();
    access
        .users
        .insert("alice".into(), vec![rule(&["a/*"], &["pull", "push"])]);
    let reg = TestRegistry::memory_with(token_config(&dir, Some(access)));
    let (status, tok) = get_token(
        &reg,
        Some(&basic("alice", "alicepw")),
        "repository:a/x:pull,push,bogus",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let bearer = format!("Bearer {tok}");
    assert_eq!(push_as(&reg, "a/x", &bearer).await, StatusCode::CREATED);
}
