//! Upload purging: an upload started long ago goes, a fresh one stays, a dry
//! run removes nothing.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use berth::registry::gc::purge::{purge_uploads, purge_uploads_at, PurgeOptions};

use crate::harness::Fixture;

/// Starts an upload and returns its storage directory key.
async fn start(f: &Fixture, repo: &str) -> String {
    let r = f
        .req(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", f.kind);
    let id = r.headers["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_string();
    format!("/docker/registry/v2/repositories/{repo}/_uploads/{id}")
}

async fn exists(f: &Fixture, dir: &str) -> bool {
    f.driver.stat(&format!("{dir}/data")).await.is_ok()
}

#[tokio::test]
async fn old_uploads_are_purged_fresh_ones_kept() {
    for f in Fixture::all() {
        let old = start(&f, "p/one").await;
        let fresh = start(&f, "p/two").await;
        // Rewrite the start time into the past, as an abandoned upload has.
        f.driver
            .put_content(
                &format!("{old}/startedat"),
                bytes::Bytes::from_static(b"2020-01-02T03:04:05Z"),
            )
            .await
            .unwrap();
        let week = Duration::from_secs(168 * 3600);

        let dry = purge_uploads(
            &f.registry,
            &PurgeOptions {
                age: week,
                dry_run: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(dry.removed, vec![old.clone()], "{}", f.kind);
        assert!(exists(&f, &old).await, "{}: dry run removed", f.kind);

        let report = purge_uploads(
            &f.registry,
            &PurgeOptions {
                age: week,
                dry_run: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(report.uploads_scanned, 2, "{}", f.kind);
        assert_eq!(report.removed, vec![old.clone()], "{}", f.kind);
        assert!(!exists(&f, &old).await, "{}", f.kind);
        assert!(exists(&f, &fresh).await, "{}", f.kind);
        // The fresh upload still completes.
        let id = fresh.rsplit('/').next().unwrap();
        let d = berth::oci::digest::Digest::sha256_of(b"abc");
        let r = f
            .req(
                Method::PUT,
                &format!("/v2/p/two/blobs/uploads/{id}?digest={d}"),
                None,
                b"abc".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", f.kind);
    }
}

/// berth writes no `startedat`: its uploads are aged by their data's mtime,
/// so one idle for longer than `age` is purged and a moving one is not. No
/// window on the real clock: the purge runs as of the moving upload's own
/// storage time plus `age`, so the cutoff falls exactly between the two.
#[tokio::test]
async fn uploads_without_startedat_age_by_their_data() {
    let mtime = |f: &Fixture, dir: String| {
        let driver = f.driver.clone();
        async move {
            driver
                .stat(&format!("{dir}/data"))
                .await
                .unwrap()
                .modified
                .expect("an upload's data has a modification time")
        }
    };
    for f in Fixture::all() {
        let idle = start(&f, "p/idle").await;
        assert!(
            f.driver.stat(&format!("{idle}/startedat")).await.is_err(),
            "{}: berth wrote a startedat",
            f.kind
        );
        let idle_at = mtime(&f, idle.clone()).await;
        // Uploads started before the storage clock ticks share the idle
        // one's time: they are as old as it is.
        let mut older = vec![idle];
        let (moving, moving_at) = loop {
            let u = start(&f, "p/moving").await;
            let at = mtime(&f, u.clone()).await;
            if at > idle_at {
                break (u, at);
            }
            older.push(u);
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let age = Duration::from_secs(3600);
        let report = purge_uploads_at(
            &f.registry,
            &PurgeOptions {
                age,
                dry_run: false,
            },
            moving_at + age,
        )
        .await
        .unwrap();
        let mut removed = report.removed.clone();
        removed.sort();
        older.sort();
        assert_eq!(removed, older, "{}", f.kind);
        assert!(exists(&f, &moving).await, "{}", f.kind);
    }
}

#[tokio::test]
async fn no_maintenance_workers_in_read_only_mode() {
    let f = Fixture::memory();
    let mut cfg = berth::config::Config::default();
    cfg.storage.maintenance.gc.enabled = true;
    let m = berth::app::Maintenance::start(&cfg, &f.registry);
    assert_eq!(m.running(), 2, "purge and gc");
    m.stop().await;
    cfg.storage.maintenance.readonly.enabled = true;
    let m = berth::app::Maintenance::start(&cfg, &f.registry);
    assert_eq!(m.running(), 0);
    m.stop().await;
}

#[test]
fn gc_config_keys_and_env_overrides() {
    use berth::config::Config;
    let yaml = "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    gc:\n      enabled: true\n      interval: 30m\n      deleteuntagged: true\n";
    let env = vec![(
        "REGISTRY_STORAGE_MAINTENANCE_GC_GRACEPERIOD".to_string(),
        "2h".to_string(),
    )];
    let (c, warnings) = Config::load_str(yaml, "test.yml", env).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let gc = &c.storage.maintenance.gc;
    assert!(gc.enabled && gc.deleteuntagged && !gc.dryrun);
    assert_eq!(gc.interval, Duration::from_secs(1800));
    assert_eq!(gc.graceperiod, Duration::from_secs(7200));
    c.validate().unwrap();

    let zero = "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    gc:\n      enabled: true\n      graceperiod: 0s\n";
    let err = match Config::load_str(zero, "test.yml", Vec::new()) {
        Ok((c, _)) => c.validate().unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("storage.maintenance.gc.graceperiod"), "{err}");
    // Off by default.
    let (c, _) =
        Config::load_str("version: 0.1\nstorage: inmemory\n", "test.yml", Vec::new()).unwrap();
    assert!(!c.storage.maintenance.gc.enabled);
}

#[tokio::test]
async fn online_worker_reports_its_runs_in_metrics() {
    let f = Fixture::memory();
    let orphan = f.push_blob("m/x", b"nobody references me").await;
    let mut cfg = berth::config::Config::default();
    cfg.storage.maintenance.gc.enabled = true;
    cfg.storage.maintenance.gc.interval = std::time::Duration::from_millis(50);
    cfg.storage.maintenance.gc.graceperiod = std::time::Duration::from_millis(1);
    let m = berth::app::Maintenance::start(&cfg, &f.registry);
    // Bounded wait for the worker to collect the orphan and finish its run
    // (the blob goes in the sweep, before the run is counted).
    let finished = || {
        let mut text = String::new();
        f.registry.gc_stats().render(&mut text);
        !text.contains("berth_gc_runs_total 0\n")
    };
    for _ in 0..200 {
        if !f.blob_stored(&orphan).await && finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    m.stop().await;
    assert!(
        !f.blob_stored(&orphan).await,
        "the online worker collected the orphan"
    );
    let mut text = String::new();
    f.registry.gc_stats().render(&mut text);
    let runs = text
        .lines()
        .find_map(|l| l.strip_prefix("berth_gc_runs_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(runs >= 1.0, "{text}");
    assert!(text.contains("berth_gc_blobs_removed_total 1\n"), "{text}");
}
