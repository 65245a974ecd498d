//! Pulls through a pull-through mirror make the same `pull` events as any
//! pull, cold (fetched from the upstream while served) and warm (from the
//! cache), as registry:2's proxy does: its notification listener wraps the
//! proxied repository, so every served manifest and blob is reported. What
//! the cache stored from the upstream is told once more, as berth's `fetch`
//! action, on the cold pull only.

use std::time::Duration;

use serde_json::Value;

use crate::api::{block, push_image};
use crate::procs::tempdir;
use crate::{endpoint, Berth, Receiver};

/// `(action, repository, digest, method)` of each event, sorted.
fn summary(events: &[Value]) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out: Vec<_> = events
        .iter()
        .map(|e| {
            (
                s(&e["action"]),
                s(&e["target"]["repository"]),
                s(&e["target"]["digest"]),
                s(&e["request"]["method"]),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn cold_and_warm_pulls_are_pull_events_and_cold_ones_fetch_events() {
    let tmp = tempdir("berth-ev-mirror-");
    let upstream = Berth::start(tmp.path(), &tmp.path().join("up"), "");
    let c = reqwest::Client::new();
    let (config, layers, manifest) = block(push_image(&c, &upstream.base(), "team/app", "v1", "m"));
    let rx = Receiver::start();
    let tail = format!(
        "mirrors:\n  - prefix: up\n    remoteurl: {}\n{}",
        upstream.base(),
        endpoint(&rx.url, "")
    );
    let mirror = Berth::start(tmp.path(), &tmp.path().join("mirror"), &tail);
    let repo = "up/team/app";
    let pull_all = || {
        block(async {
            let r = c
                .get(format!("{}/v2/{repo}/manifests/v1", mirror.base()))
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            for d in std::iter::once(&config).chain(&layers) {
                let r = c
                    .get(format!("{}/v2/{repo}/blobs/{d}", mirror.base()))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{d}");
                r.bytes().await.unwrap();
            }
        })
    };
    let events = |action: &str| {
        let mut v: Vec<_> = std::iter::once(&manifest)
            .chain(std::iter::once(&config))
            .chain(&layers)
            .map(|d| {
                (
                    action.to_string(),
                    repo.to_string(),
                    d.clone(),
                    "GET".to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let pulls = events("pull");
    let n = pulls.len();

    // Cold: everything comes from the upstream while it is served, and is
    // stored: a pull and a fetch event for each manifest and blob.
    pull_all();
    let cold = rx.wait_accepted(2 * n, Duration::from_secs(30));
    let mut want = events("fetch");
    want.extend(pulls.clone());
    want.sort();
    assert_eq!(summary(&cold), want, "{cold:#?}");
    // A fetch event has no client request or user behind it.
    for e in cold.iter().filter(|e| e["action"] == "fetch") {
        assert_eq!(
            e["request"]["addr"].as_str().unwrap_or_default(),
            "",
            "{e:#?}"
        );
        assert_eq!(
            e["actor"]["name"].as_str().unwrap_or_default(),
            "",
            "{e:#?}"
        );
        assert!(e["target"]["size"].as_u64().unwrap_or(0) > 0, "{e:#?}");
    }
    // Warm: from the cache, the same pull events again and no fetch.
    pull_all();
    let all = rx.wait_accepted(3 * n, Duration::from_secs(30));
    assert_eq!(summary(&all[2 * n..]), pulls, "{all:#?}");
    // Manifest events name the tag asked for (the fetch, the tag it stored).
    let tagged: Vec<_> = all
        .iter()
        .filter(|e| e["target"]["digest"] == manifest.as_str())
        .map(|e| e["target"]["tag"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(tagged, ["v1", "v1", "v1"]);
    // Nothing else.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.accepted().len(), 3 * n);
}
