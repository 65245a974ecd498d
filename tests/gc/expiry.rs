//! Pull-through cache expiry by the collector: `ttl` (manifests not pulled
//! within it go, with their tags), `maxsize` (least recently pulled first),
//! local repositories and other prefixes untouched, dry runs, and the
//! online grace period. Cache content is pushed into a registry without
//! mirrors (the collector only looks at names and `lastpulled` files), and
//! `lastpulled` files are written in the past.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use berth::oci::digest::Digest;
use berth::oci::name::RepoName;
use berth::registry::gc::expiry::CachePolicy;
use berth::registry::gc::GcOptions;
use berth::storage::paths::StoragePath;
use bytes::Bytes;

use crate::harness::{index_manifest, Fixture, Image, OCI_INDEX};

const HOUR: u64 = 3600;

/// Writes the revision's `lastpulled` file: `ago` seconds before now.
async fn pulled(f: &Fixture, repo: &str, digest: &Digest, ago: u64) {
    let name: RepoName = repo.parse().unwrap();
    let dir = StoragePath::ManifestRevisionDir {
        name: &name,
        digest,
    }
    .to_key();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    f.driver
        .put_content(
            &format!("{dir}/{}", berth::registry::pull_through::LAST_PULLED_FILE),
            Bytes::from((now - ago).to_string()),
        )
        .await
        .unwrap();
}

fn policy(prefix: Option<&str>, ttl_hours: u64, maxsize: Option<u64>) -> GcOptions {
    GcOptions {
        cache: vec![CachePolicy {
            prefix: prefix.map(str::to_string),
            ttl: Duration::from_secs(ttl_hours * HOUR),
            maxsize,
        }],
        ..GcOptions::default()
    }
}

async fn status(f: &Fixture, uri: &str) -> StatusCode {
    f.get(uri).await.status
}

/// Bytes of an image's blobs as stored.
async fn stored_size(f: &Fixture, img: &Image) -> u64 {
    let mut n = 0;
    for d in img.all_blobs() {
        n += f
            .driver
            .stat(&StoragePath::BlobData { digest: &d }.to_key())
            .await
            .unwrap()
            .size;
    }
    n
}

#[tokio::test]
async fn ttl_expires_cached_manifests_and_their_tags_not_local_ones() {
    for f in Fixture::all() {
        let shared: &[u8] = b"base layer shared by old and new";
        let old = f
            .push_image(
                "hub/library/alpine",
                Some("3.19"),
                "old",
                &[shared, b"only old"],
                None,
            )
            .await;
        let new = f
            .push_image(
                "hub/library/alpine",
                Some("3.20"),
                "new",
                &[shared, b"only new"],
                None,
            )
            .await;
        // Same age, but not cached content: a local repository and a name
        // that only starts with the prefix's letters.
        let local = f
            .push_image(
                "library/alpine",
                Some("3.19"),
                "local",
                &[b"local layer"],
                None,
            )
            .await;
        let lookalike = f
            .push_image(
                "hubx/alpine",
                Some("1"),
                "lookalike",
                &[b"lookalike layer"],
                None,
            )
            .await;
        pulled(&f, "hub/library/alpine", &old.manifest, 48 * HOUR).await;
        pulled(&f, "hub/library/alpine", &new.manifest, HOUR).await;
        pulled(&f, "library/alpine", &local.manifest, 480 * HOUR).await;
        pulled(&f, "hubx/alpine", &lookalike.manifest, 480 * HOUR).await;

        let mut opts = policy(Some("hub"), 24, None);
        opts.dry_run = true;
        let dry = f.gc(&opts).await;
        assert_eq!(dry.manifests_expired, 1, "{}", f.kind);
        assert_eq!(dry.manifests_removed[0].digest, old.manifest);
        assert!(dry.blobs_removed.iter().any(|b| b.digest == old.layers[1]));
        assert!(f.blob_stored(&old.layers[1]).await, "dry run deleted");
        assert_eq!(
            status(&f, "/v2/hub/library/alpine/manifests/3.19").await,
            StatusCode::OK
        );

        opts.dry_run = false;
        let report = f.gc(&opts).await;
        assert_eq!(report.manifests_expired, 1, "{}", f.kind);
        for uri in [
            "/v2/hub/library/alpine/manifests/3.19".to_string(),
            format!("/v2/hub/library/alpine/manifests/{}", old.manifest),
        ] {
            assert_eq!(status(&f, &uri).await, StatusCode::NOT_FOUND, "{uri}");
        }
        let tags = f.get("/v2/hub/library/alpine/tags/list").await;
        let tags: serde_json::Value = serde_json::from_slice(&tags.body).unwrap();
        assert_eq!(tags["tags"], serde_json::json!(["3.20"]), "{}", f.kind);
        // Blobs only the expired manifest used are swept in the same run.
        for d in [&old.manifest, &old.config, &old.layers[1]] {
            assert!(!f.blob_stored(d).await, "{}: {d} kept", f.kind);
        }
        for d in new.all_blobs().iter().chain(local.all_blobs().iter()) {
            assert!(f.blob_stored(d).await, "{}: {d} removed", f.kind);
        }
        for d in lookalike.all_blobs() {
            assert!(f.blob_stored(&d).await);
        }
        for uri in [
            "/v2/hub/library/alpine/manifests/3.20",
            "/v2/library/alpine/manifests/3.19",
            "/v2/hubx/alpine/manifests/1",
        ] {
            assert_eq!(status(&f, uri).await, StatusCode::OK, "{uri}");
        }
        // A second run finds nothing more.
        assert_eq!(f.gc(&opts).await.manifests_removed.len(), 0);
    }
}

#[tokio::test]
async fn maxsize_evicts_least_recently_pulled_first() {
    for f in Fixture::all() {
        let repo = "mirror/app";
        // Pushed a, b, c; pulled last c (oldest), a, b (newest).
        let a = f
            .push_image(repo, Some("a"), "a", &[&[b'a'; 1000]], None)
            .await;
        let b = f
            .push_image(repo, Some("b"), "b", &[&[b'b'; 1000]], None)
            .await;
        let c = f
            .push_image(repo, Some("c"), "c", &[&[b'c'; 1000]], None)
            .await;
        pulled(&f, repo, &c.manifest, 3 * HOUR).await;
        pulled(&f, repo, &a.manifest, 2 * HOUR).await;
        pulled(&f, repo, &b.manifest, HOUR).await;
        let (sa, sb, sc) = (
            stored_size(&f, &a).await,
            stored_size(&f, &b).await,
            stored_size(&f, &c).await,
        );

        // Everything fits: nothing goes (ttl 0: forever).
        let r = f.gc(&policy(Some("mirror"), 0, Some(sa + sb + sc))).await;
        assert_eq!(r.manifests_expired, 0, "{}", f.kind);

        // One byte too many: the least recently pulled (c) goes, alone.
        let r = f
            .gc(&policy(Some("mirror"), 0, Some(sa + sb + sc - 1)))
            .await;
        assert_eq!(r.manifests_expired, 1, "{}", f.kind);
        assert_eq!(r.manifests_removed[0].digest, c.manifest);
        assert!(!f.blob_stored(&c.layers[0]).await);
        assert_eq!(
            status(&f, "/v2/mirror/app/manifests/c").await,
            StatusCode::NOT_FOUND
        );

        // Room for one: a goes next, b (pulled last) stays.
        let r = f.gc(&policy(Some("mirror"), 0, Some(sb))).await;
        assert_eq!(r.manifests_expired, 1, "{}", f.kind);
        assert_eq!(r.manifests_removed[0].digest, a.manifest);
        assert_eq!(
            status(&f, "/v2/mirror/app/manifests/b").await,
            StatusCode::OK
        );
        for d in b.all_blobs() {
            assert!(f.blob_stored(&d).await);
        }
    }
}

#[tokio::test]
async fn a_manifest_under_two_tags_and_in_a_local_repo() {
    let f = Fixture::filesystem();
    let repo = "hub/library/busybox";
    let img = f
        .push_image(repo, Some("1.36"), "bb", &[b"busybox layer"], None)
        .await;
    f.put_manifest(repo, "latest", crate::harness::OCI_MANIFEST, &img.body)
        .await;
    // The same manifest pushed into a local repository.
    f.push_image(
        "team/busybox",
        Some("1.36"),
        "bb",
        &[b"busybox layer"],
        None,
    )
    .await;
    pulled(&f, repo, &img.manifest, 200 * HOUR).await;

    let report = f.gc(&policy(Some("hub"), 168, None)).await;
    assert_eq!(report.manifests_expired, 1);
    for reference in ["1.36", "latest", &img.manifest.to_string()] {
        assert_eq!(
            status(&f, &format!("/v2/{repo}/manifests/{reference}")).await,
            StatusCode::NOT_FOUND,
            "{reference}"
        );
    }
    // Still needed by the local repository: nothing swept.
    assert!(
        report.blobs_removed.is_empty(),
        "{:?}",
        report.blobs_removed
    );
    assert_eq!(
        status(&f, "/v2/team/busybox/manifests/1.36").await,
        StatusCode::OK
    );
    // The emptied cache repository leaves the catalog.
    let cat = f.get("/v2/_catalog").await;
    let cat: serde_json::Value = serde_json::from_slice(&cat.body).unwrap();
    assert_eq!(cat["repositories"], serde_json::json!(["team/busybox"]));
}

#[tokio::test]
async fn index_children_count_as_pulled_with_their_index() {
    let f = Fixture::memory();
    let repo = "hub/library/multi";
    let child = f
        .push_image(repo, None, "amd64", &[b"amd64 layer"], None)
        .await;
    let stale = f
        .push_image(repo, None, "stale", &[b"stale layer"], None)
        .await;
    let body = index_manifest(&[(child.manifest.clone(), child.body.len())]);
    let index = f.put_manifest(repo, "latest", OCI_INDEX, &body).await;
    pulled(&f, repo, &index.clone(), HOUR).await;
    pulled(&f, repo, &child.manifest, 300 * HOUR).await;
    pulled(&f, repo, &stale.manifest, 300 * HOUR).await;

    let report = f.gc(&policy(Some("hub"), 24, None)).await;
    let gone: Vec<&Digest> = report.manifests_removed.iter().map(|m| &m.digest).collect();
    assert_eq!(gone, vec![&stale.manifest]);
    assert_eq!(
        status(&f, &format!("/v2/{repo}/manifests/{}", child.manifest)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn proxy_mode_expires_every_repository() {
    let f = Fixture::memory();
    let a = f
        .push_image("library/a", Some("1"), "a", &[b"a"], None)
        .await;
    let b = f.push_image("x/b", Some("1"), "b", &[b"b"], None).await;
    pulled(&f, "library/a", &a.manifest, 200 * HOUR).await;
    pulled(&f, "x/b", &b.manifest, 1).await;
    let report = f.gc(&policy(None, 168, None)).await;
    assert_eq!(report.manifests_expired, 1);
    assert_eq!(report.manifests_removed[0].repository, "library/a");
    assert!(!f.blob_stored(&a.layers[0]).await);
    assert!(f.blob_stored(&b.layers[0]).await);
}

#[tokio::test]
async fn online_runs_keep_expired_content_linked_within_the_grace_period() {
    let f = Fixture::memory();
    let img = f
        .push_image("hub/library/new", Some("1"), "n", &[b"n"], None)
        .await;
    pulled(&f, "hub/library/new", &img.manifest, 200 * HOUR).await;
    let mut opts = policy(Some("hub"), 168, None);
    opts.grace = Duration::from_secs(HOUR);
    let report = f.gc(&opts).await;
    assert_eq!(report.manifests_expired, 0);
    assert!(report.kept_recent >= 1);
    assert_eq!(
        status(&f, "/v2/hub/library/new/manifests/1").await,
        StatusCode::OK
    );
    // Offline (no grace period), it goes.
    opts.grace = Duration::ZERO;
    assert_eq!(f.gc(&opts).await.manifests_expired, 1);
}

#[test]
fn policies_come_from_proxy_or_mirrors() {
    let mut c = berth::config::Config::default();
    assert!(CachePolicy::from_config(&c).is_empty());
    let mut m = berth::config::mirror::MirrorConfig {
        prefix: "hub".into(),
        remoteurl: "https://registry-1.docker.io".into(),
        maxsize: Some(10 << 30),
        ..Default::default()
    };
    m.ttl = Duration::from_secs(HOUR);
    c.mirrors.push(m);
    let p = CachePolicy::from_config(&c);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].prefix.as_deref(), Some("hub"));
    assert_eq!(p[0].maxsize, Some(10 << 30));
    assert!(p[0].covers("hub/library/alpine"));
    assert!(!p[0].covers("hub"));
    assert!(!p[0].covers("hubx/alpine"));
}

#[tokio::test]
async fn offline_garbage_collect_expires_by_the_configured_mirrors() {
    let f = Fixture::filesystem();
    let cached = f
        .push_image(
            "hub/library/old",
            Some("1"),
            "old",
            &[b"old cached layer"],
            None,
        )
        .await;
    let local = f
        .push_image("team/app", Some("1"), "local", &[b"local layer"], None)
        .await;
    pulled(&f, "hub/library/old", &cached.manifest, 30 * 24 * HOUR).await;
    pulled(&f, "team/app", &local.manifest, 30 * 24 * HOUR).await;
    let root = f.root.clone().unwrap();
    let cfg = root.join("gc.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             mirrors:\n  - prefix: hub\n    remoteurl: http://127.0.0.1:9\n    ttl: 24h\n",
            root.display()
        ),
    )
    .unwrap();
    let gc = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("garbage-collect")
            .arg(&cfg)
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let dry = gc(&["--dry-run"]);
    let line = format!(
        "would delete manifest hub/library/old@{} (expired:",
        cached.manifest
    );
    assert!(dry.contains(&line), "{dry}");
    assert!(!dry.contains("team/app"), "{dry}");
    assert!(f.blob_stored(&cached.layers[0]).await);
    let real = gc(&[]);
    assert!(
        real.contains(&format!("deleted blob {}", cached.layers[0])),
        "{real}"
    );
    assert!(!f.blob_stored(&cached.layers[0]).await);
    for d in local.all_blobs() {
        assert!(f.blob_stored(&d).await);
    }
}
