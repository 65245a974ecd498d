//! The web UI in a real browser: headless Chromium driven through
//! chromedriver (tests/common/webdriver.rs) against berth on a loopback
//! socket. Images are pushed through the API first (a multi-arch index, an
//! SBOM referring to one of its images, a private repository); then the
//! browser lists, searches, opens a repository, an index and a child, sees
//! the referrer, copies the pull line, logs in, deletes a tag, is refused a
//! form without its CSRF token and logs out. Screenshots of the main pages
//! go to `target/ui-screenshots/` for a reviewer to look at.
#![allow(clippy::unwrap_used)]

#[path = "common/clients.rs"]
mod clients;
#[path = "common/loopback.rs"]
mod loopback;
#[path = "common/procs.rs"]
mod procs;
#[path = "ui_browser/seed.rs"]
mod seed;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;

use base64::Engine;
use berth::config::auth::{AccessConfig, AccessRule, AuthConfig, HtpasswdAuthConfig};
use berth::config::Config;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// berth on a loopback port, stopped when dropped.
struct Live {
    base: String,
    host: String,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rule(repos: &[&str], actions: &[&str]) -> AccessRule {
    AccessRule {
        repositories: repos.iter().map(|s| s.to_string()).collect(),
        actions: actions.iter().map(|s| s.to_string()).collect(),
    }
}

/// htpasswd with alice (may do everything); anonymous may pull `public/**`.
async fn live() -> Live {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    berth::auth::htpasswd::add_user(&users, "alice", "alicepw", 4).unwrap();
    let mut cfg = Config::default();
    cfg.storage.delete.enabled = true;
    cfg.auth = Some(AuthConfig {
        htpasswd: Some(HtpasswdAuthConfig {
            realm: "berth".into(),
            path: users.display().to_string(),
        }),
        ..Default::default()
    });
    let mut access = AccessConfig {
        anonymous: vec![rule(&["public/**"], &["pull"])],
        ..Default::default()
    };
    access
        .users
        .insert("alice".into(), vec![rule(&["**"], &["*"])]);
    cfg.access = Some(access);
    let (addr, task) = loopback::serve_fs(cfg, &dir.path().join("data")).await;
    Live {
        base: format!("http://{addr}"),
        host: addr.to_string(),
        task,
        _dir: dir,
    }
}

fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("ui-screenshots")
}

async fn manifest_status(base: &str, repo: &str, reference: &str) -> u16 {
    reqwest::Client::new()
        .head(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice:alicepw")
            ),
        )
        .header("accept", format!("{OCI_INDEX}, {OCI_MANIFEST}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_log_in_delete_and_log_out_in_chromium() {
    if !procs::require_tools(&["chromium", "chromedriver"]) {
        return;
    }
    let reg = live().await;
    let arm = seed::seed(&reg.base).await;
    let shots = shots();
    let driver = webdriver::Driver::start().await;
    let b = driver.browser(&[], (1280, 900)).await;

    // Anonymous: `/` in a browser is the repository list; public only.
    b.goto(&format!("{}/", reg.base)).await;
    assert!(b.url().await.ends_with("/ui/"), "{}", b.url().await);
    b.wait_for("#repositories").await;
    let text = b.body_text().await;
    assert!(text.contains("public/multi"), "{text}");
    assert!(!text.contains("private/secret"), "{text}");
    b.screenshot(&shots.join("repositories-anonymous.png"))
        .await;
    b.goto(&format!("{}/ui/r/private/secret", reg.base)).await;
    b.wait_for_text("No such repository, or you must log in")
        .await;

    // Search.
    b.goto(&format!("{}/ui/", reg.base)).await;
    let q = b.find("#q").await;
    b.type_into(&q, "multi\n").await;
    b.wait_for_text("public/multi").await;
    assert!(b.url().await.contains("q=multi"));

    // The repository: tags with platforms; copy the pull line.
    let link = b.find("#repositories a[href$='/ui/r/public/multi']").await;
    b.click(&link).await;
    b.wait_for("#tags").await;
    let text = b.body_text().await;
    assert!(text.contains("linux/amd64, linux/arm64/v8"), "{text}");
    assert!(text.contains("latest") && text.contains("old"));
    let copy = b.find("#tags button.copy").await;
    let line = b.attribute(&copy, "data-copy").await.unwrap();
    assert!(
        line.starts_with(&format!("docker pull {}/public/multi:", reg.host)),
        "{line}"
    );
    b.click(&copy).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.attribute(&copy, "data-copied").await.as_deref() != Some("true") {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy button did not copy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // What the clipboard holds, where the browser lets a page read it.
    let pasted = b
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             navigator.clipboard.readText().then(done, () => done(null));",
            json!([]),
        )
        .await;
    if let Some(p) = pasted.as_str() {
        assert_eq!(p, line);
    }
    b.screenshot(&shots.join("repository.png")).await;

    // The index, then its arm64 child and the SBOM referring to it.
    let latest = b.find("#tags a[href$='/-/m/latest']").await;
    b.click(&latest).await;
    b.wait_for("#platforms").await;
    b.screenshot(&shots.join("index.png")).await;
    let child = b.find(&format!("#platforms a[href$='/-/m/{arm}']")).await;
    b.click(&child).await;
    b.wait_for("#layers").await;
    let text = b.body_text().await;
    assert!(text.contains("/bin/server"), "{text}");
    assert!(text.contains("linux/arm64"));
    assert!(text.contains("COPY server /bin/server"));
    assert!(text.contains("application/spdx+json"), "{text}");
    b.screenshot(&shots.join("manifest.png")).await;
    let sbom = b.find("#referrers a").await;
    b.click(&sbom).await;
    b.wait_for_text("Subject").await;
    assert!(b.body_text().await.contains(&arm.to_string()));

    // No delete buttons for anonymous users.
    b.goto(&format!("{}/ui/r/public/multi", reg.base)).await;
    assert!(b.try_find("form[action$='/-/delete']").await.is_none());

    // Log in.
    let login = b.find("#login-link").await;
    b.click(&login).await;
    let user = b.wait_for("#username").await;
    b.type_into(&user, "alice").await;
    let pw = b.find("#password").await;
    b.type_into(&pw, "alicepw").await;
    b.screenshot(&shots.join("login.png")).await;
    let submit = b.find("#login-submit").await;
    b.click(&submit).await;
    b.wait_for_text("Signed in as alice").await;
    b.goto(&format!("{}/ui/", reg.base)).await;
    b.wait_for_text("private/secret").await;
    b.screenshot(&shots.join("repositories-signed-in.png"))
        .await;
    b.goto(&format!("{}/ui/status", reg.base)).await;
    b.wait_for_text("Garbage collection").await;
    assert!(b.body_text().await.contains("filesystem"));
    b.screenshot(&shots.join("status.png")).await;

    // A form without its CSRF token (same origin) is refused.
    b.goto(&format!("{}/ui/r/public/multi", reg.base)).await;
    b.wait_for("#tags").await;
    b.execute(
        "const f = document.createElement('form');\
         f.method = 'post'; f.action = arguments[0];\
         for (const [k, v] of [['reference', 'latest'], ['confirmed', 'yes']]) {\
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);\
         }\
         document.body.appendChild(f); f.submit();",
        json!([format!("{}/ui/r/public/multi/-/delete", reg.base)]),
    )
    .await;
    b.wait_for_text("Form refused").await;
    assert!(b.body_text().await.contains("CSRF"));
    assert_eq!(
        manifest_status(&reg.base, "public/multi", "latest").await,
        200
    );

    // Delete the tag `old`: a dialog asks, then the page says so.
    b.goto(&format!("{}/ui/r/public/multi", reg.base)).await;
    let del = b
        .find("form[data-confirm^='Delete tag public/multi:old'] button")
        .await;
    b.click(&del).await;
    let asked = b.accept_alert().await;
    assert!(asked.contains("public/multi:old"), "{asked}");
    b.wait_for_text("Deleted tag old").await;
    b.screenshot(&shots.join("deleted.png")).await;
    assert_eq!(manifest_status(&reg.base, "public/multi", "old").await, 404);
    assert_eq!(
        manifest_status(&reg.base, "public/multi", "latest").await,
        200
    );

    // Phone width.
    b.set_size(390, 844).await;
    b.goto(&format!("{}/ui/r/public/multi", reg.base)).await;
    b.wait_for("#tags").await;
    let overflow = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            json!([]),
        )
        .await;
    assert_eq!(overflow, json!(true), "the page is wider than a phone");
    b.screenshot(&shots.join("repository-phone.png")).await;
    b.set_size(1280, 900).await;

    // Log out: back to what anonymous users see.
    let out = b.find("#logout").await;
    b.click(&out).await;
    b.wait_for("#login-link").await;
    let text = b.body_text().await;
    assert!(!text.contains("private/secret"), "{text}");
    assert!(text.contains("public/multi"));
    b.quit().await;

    // Dark theme, as a browser preferring it renders the same page.
    let dark = driver
        .browser(
            &[
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ],
            (1280, 900),
        )
        .await;
    dark.goto(&format!("{}/ui/r/public/multi/-/m/latest", reg.base))
        .await;
    dark.wait_for("#platforms").await;
    let bg = dark
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            json!([]),
        )
        .await;
    dark.screenshot(&shots.join("index-dark.png")).await;
    assert_eq!(bg, json!("rgb(13, 17, 23)"), "dark theme background");
    dark.quit().await;
}
