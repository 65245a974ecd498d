//! The web UI's sign-in and refusals through the router: who sees which
//! repository (anonymous, htpasswd users, built-in token issuer users),
//! login and logout with session cookies, CSRF and origin checks on forms,
//! deletes and their permissions.

use axum::http::{Method, StatusCode};
use berth::config::auth::AccessConfig;

use crate::auth::{basic, htpasswd_config, push_as, rule, users};
use crate::auth_token::{alice_a_bob_b, token_config};
use crate::support::*;
use crate::ui::{assert_security_headers, cookie, csrf, login_post, text};

fn policy() -> Option<AccessConfig> {
    let mut access = AccessConfig {
        anonymous: vec![rule(&["public/**"], &["pull"])],
        ..Default::default()
    };
    access
        .users
        .insert("alice".into(), vec![rule(&["**"], &["*"])]);
    Some(access)
}

#[tokio::test]
async fn anonymous_users_see_only_what_they_may_pull_and_login_shows_the_rest() {
    let dir = users();
    let reg = TestRegistry::memory_with(htpasswd_config(&dir, policy()));
    let alice = basic("alice", "alicepw");
    assert_eq!(
        push_as(&reg, "public/app", &alice).await,
        StatusCode::CREATED
    );
    assert_eq!(
        push_as(&reg, "private/secret", &alice).await,
        StatusCode::CREATED
    );
    reg.refresh_index().await;

    let anon = reg.get("/ui/").await;
    let page = text(&anon);
    assert!(page.contains("public/app"), "{page}");
    assert!(!page.contains("private/secret"), "{page}");
    assert!(!text(&reg.get("/ui/?q=secret").await).contains("private/secret"));
    let r = reg.get("/ui/r/private/secret").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Same answer as a repository that does not exist.
    let none = reg.get("/ui/r/private/nothing").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(text(&r).contains("No such repository, or you must log in"));
    assert_eq!(
        reg.get("/ui/r/private/secret/-/m/v1").await.status,
        StatusCode::NOT_FOUND
    );
    // The status page wants a login when auth is on.
    assert_eq!(reg.get("/ui/status").await.status, StatusCode::UNAUTHORIZED);

    // Browser basic auth works as the API's does; a wrong password is refused.
    let r = reg
        .req(Method::GET, "/ui/", &[("authorization", &alice)], "")
        .await;
    assert!(text(&r).contains("private/secret"));
    let bad = basic("alice", "nope");
    let r = reg
        .req(Method::GET, "/ui/", &[("authorization", &bad)], "")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The login form: session cookie + CSRF token first, then the post.
    let form = reg.get("/ui/login?next=/ui/r/private/secret").await;
    assert_eq!(form.status, StatusCode::OK);
    let (c, token) = (cookie(&form), csrf(&text(&form)));
    let post = |body: String, c: String| {
        let reg = &reg;
        async move { login_post(reg, &c, body).await }
    };
    let r = post(
        format!("csrf={token}&username=alice&password=wrong&next=%2Fui%2F"),
        c.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(text(&r).contains("Wrong user name or password"));
    let r = post(
        format!("csrf={token}&username=alice&password=alicepw&next=%2Fui%2Fr%2Fprivate%2Fsecret"),
        c.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    assert_eq!(r.header("location"), Some("/ui/r/private/secret"));
    let set = r.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"));
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag");
    let session = cookie(&r);
    let r = reg
        .req(Method::GET, "/ui/", &[("cookie", &session)], "")
        .await;
    let page = text(&r);
    assert!(
        page.contains("private/secret") && page.contains("Signed in as"),
        "{page}"
    );
    assert_eq!(
        reg.req(
            Method::GET,
            "/ui/r/private/secret",
            &[("cookie", &session)],
            ""
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        reg.req(Method::GET, "/ui/status", &[("cookie", &session)], "")
            .await
            .status,
        StatusCode::OK
    );
    // A tampered cookie is an anonymous visitor.
    let forged = format!("{}x", session);
    let r = reg
        .req(Method::GET, "/ui/", &[("cookie", &forged)], "")
        .await;
    assert!(!text(&r).contains("private/secret"));

    // Logout needs the session's token; then the cookie is cleared.
    let token = csrf(&page);
    let out = |body: &str| {
        let (reg, session, body) = (&reg, session.clone(), body.to_string());
        async move {
            reg.req(
                Method::POST,
                "/ui/logout",
                &[
                    ("cookie", &session),
                    ("origin", "http://registry.test"),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                body,
            )
            .await
        }
    };
    assert_eq!(out("").await.status, StatusCode::FORBIDDEN);
    let r = out(&format!("csrf={token}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn login_over_tls_sets_a_secure_cookie() {
    let dir = users();
    let reg = TestRegistry::memory_with(|c| {
        htpasswd_config(&dir, None)(c);
        c.http.trustedproxies = vec!["127.0.0.1".into()];
    });
    let form = reg
        .req(
            Method::GET,
            "/ui/login",
            &[("x-forwarded-proto", "https")],
            "",
        )
        .await;
    assert!(form.header("set-cookie").unwrap().contains("; Secure"));
    let body = format!("csrf={}&username=bob&password=bobpw", csrf(&text(&form)));
    let r = reg
        .req(
            Method::POST,
            "/ui/login",
            &[
                ("cookie", &cookie(&form)),
                ("x-forwarded-proto", "https"),
                ("referer", "https://registry.test/ui/login"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
}

/// POSTs a delete form with these parts; returns the response.
async fn delete_post(reg: &TestRegistry, cookie: &str, origin: Option<&str>, body: &str) -> Resp {
    let mut h = vec![
        ("cookie", cookie),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    if let Some(o) = origin {
        h.push(("origin", o));
    }
    reg.req(
        Method::POST,
        "/ui/r/team/app/-/delete",
        &h,
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn deletes_need_the_csrf_token_the_origin_and_a_confirmation() {
    let reg = TestRegistry::memory_with(|c| c.storage.delete.enabled = true);
    reg.push_image("team/app", "v1", "a").await;
    reg.push_image("team/app", "v2", "b").await;
    let page = reg.get("/ui/r/team/app").await;
    let page_text = text(&page);
    assert!(
        page_text.contains("data-confirm=\"Delete tag team/app:v1?"),
        "{page_text}"
    );
    let (c, token) = (cookie(&page), csrf(&page_text));
    let origin = Some("http://registry.test");

    for (why, origin, body) in [
        ("no token", origin, "reference=v1&confirmed=yes".to_string()),
        (
            "wrong token",
            origin,
            format!("csrf=x{token}&reference=v1&confirmed=yes"),
        ),
        (
            "other origin",
            Some("http://evil.test"),
            format!("csrf={token}&reference=v1&confirmed=yes"),
        ),
        (
            "no origin",
            None,
            format!("csrf={token}&reference=v1&confirmed=yes"),
        ),
    ] {
        let r = delete_post(&reg, &c, origin, &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{why}");
        assert!(text(&r).contains("Form refused"), "{why}");
        assert_security_headers(&r, why);
    }
    // Another session's cookie with this token: refused too.
    let other = cookie(&reg.get("/ui/").await);
    let r = delete_post(
        &reg,
        &other,
        origin,
        &format!("csrf={token}&reference=v1&confirmed=yes"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reg.get("/v2/team/app/manifests/v1").await.status,
        StatusCode::OK
    );

    // Without the script's confirmation: a confirmation page, nothing deleted.
    let r = delete_post(&reg, &c, origin, &format!("csrf={token}&reference=v1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(text(&r).contains("id=\"confirm-delete\""));
    assert_eq!(
        reg.get("/v2/team/app/manifests/v1").await.status,
        StatusCode::OK
    );

    let r = delete_post(
        &reg,
        &c,
        origin,
        &format!("csrf={token}&reference=v1&confirmed=yes"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    assert_eq!(
        r.header("location"),
        Some("/ui/r/team/app?deleted=tag%20v1")
    );
    assert_eq!(
        reg.get("/v2/team/app/manifests/v1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reg.get("/v2/team/app/manifests/v2").await.status,
        StatusCode::OK
    );
    // The registry's refusal is a message, not JSON.
    let r = delete_post(
        &reg,
        &c,
        origin,
        &format!("csrf={token}&reference=v1&confirmed=yes"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(text(&r).contains("Nothing to delete") && !text(&r).contains("\"errors\""));
}

#[tokio::test]
async fn no_delete_buttons_when_deletes_are_off_or_not_allowed() {
    let reg = TestRegistry::memory_with(|_| {});
    reg.push_image("team/app", "v1", "a").await;
    let page = reg.get("/ui/r/team/app").await;
    assert!(!text(&page).contains("/-/delete"));
    let body = format!("csrf={}&reference=v1&confirmed=yes", csrf(&text(&page)));
    let r = delete_post(&reg, &cookie(&page), Some("http://registry.test"), &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(text(&r).contains("Deletes are disabled"));
    assert_eq!(
        reg.get("/v2/team/app/manifests/v1").await.status,
        StatusCode::OK
    );

    // htpasswd: bob may pull but not delete.
    let dir = users();
    let mut access = AccessConfig::default();
    access
        .users
        .insert("bob".into(), vec![rule(&["**"], &["pull"])]);
    access
        .users
        .insert("alice".into(), vec![rule(&["**"], &["*"])]);
    let reg = TestRegistry::memory_with(htpasswd_config(&dir, Some(access)));
    assert_eq!(
        push_as(&reg, "team/app", &basic("alice", "alicepw")).await,
        StatusCode::CREATED
    );
    let bob = basic("bob", "bobpw");
    let r = reg
        .req(
            Method::GET,
            "/ui/r/team/app",
            &[("authorization", &bob)],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!text(&r).contains("/-/delete"));
    let alice = basic("alice", "alicepw");
    let r = reg
        .req(
            Method::GET,
            "/ui/r/team/app",
            &[("authorization", &alice)],
            "",
        )
        .await;
    assert!(text(&r).contains("/-/delete"));
}

#[tokio::test]
async fn builtin_token_issuer_users_log_in_and_see_their_repositories() {
    let dir = users();
    let reg = TestRegistry::memory_with(token_config(&dir, Some(alice_a_bob_b())));
    assert_eq!(
        push_as(&reg, "a/one", &basic("alice", "alicepw")).await,
        StatusCode::CREATED
    );
    assert_eq!(
        push_as(&reg, "b/two", &basic("bob", "bobpw")).await,
        StatusCode::CREATED
    );
    reg.refresh_index().await;
    let anon = text(&reg.get("/ui/").await);
    assert!(!anon.contains("a/one") && !anon.contains("b/two"), "{anon}");
    let form = reg.get("/ui/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let r = login_post(
        &reg,
        &cookie(&form),
        format!(
            "csrf={}&username=alice&password=alicepw",
            csrf(&text(&form))
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let session = cookie(&r);
    let page = text(
        &reg.req(Method::GET, "/ui/", &[("cookie", &session)], "")
            .await,
    );
    assert!(page.contains("a/one") && !page.contains("b/two"), "{page}");
    let r = reg
        .req(Method::GET, "/ui/r/b/two", &[("cookie", &session)], "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn login_form_failures_hit_the_api_login_throttle() {
    let dir = users();
    let reg = TestRegistry::memory_with(htpasswd_config(&dir, None));
    let form = reg.get("/ui/login").await;
    let (c, token) = (cookie(&form), csrf(&text(&form)));
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = login_post(
            &reg,
            &c,
            format!("csrf={token}&username=alice&password=wrong"),
        )
        .await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(text(&r).contains("Too many failed"));
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses[..statuses.len() - 1]
        .iter()
        .all(|s| *s == StatusCode::UNAUTHORIZED));
    // The API's basic auth from the same address is throttled too: one throttle.
    let r = reg
        .req(
            Method::GET,
            "/v2/",
            &[("authorization", &basic("alice", "alicepw"))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}
