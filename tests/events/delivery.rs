//! Delivery: retries until accepted (once each, in order), bounds with a
//! dead endpoint, durability across kill -9, signing and header privacy.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::api::{block, push_image};
use crate::procs::{free_port, tempdir, wait_until};
use crate::{endpoint, Berth, Receiver};

fn target(e: &Value, k: &str) -> String {
    e["target"][k].as_str().unwrap_or_default().to_string()
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                target(e, "digest"),
            )
        })
        .collect()
}

#[test]
fn a_failing_endpoint_gets_every_event_once_in_order_when_it_recovers() {
    let tmp = tempdir("berth-ev-");
    let rx = Receiver::start();
    // A redirect is a failure: berth follows none.
    rx.answer(307);
    let extra = "      hmacsecret: s3cret\n      headers:\n        Authorization: [Bearer tok-123]\n        X-Team: [infra]\n";
    let berth = Berth::start(
        tmp.path(),
        &tmp.path().join("storage"),
        &endpoint(&rx.url, extra),
    );
    let c = reqwest::Client::new();
    let (cd, layers, md) = block(push_image(&c, &berth.base(), "team/app", "v1", "a"));
    let pulled = block(async {
        c.get(format!("{}/v2/team/app/manifests/v1", berth.base()))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(pulled, 200);
    wait_until("redirects refused", Duration::from_secs(30), || {
        rx.requests().len() >= 2
    });
    rx.answer(500);
    wait_until("failed attempts", Duration::from_secs(30), || {
        rx.requests().len() >= 4 && berth.status()["pending"] == 5
    });
    let s = berth.status();
    assert!(s["failed"].as_u64().unwrap() >= 4, "{s}");
    assert!(s["retried"].as_u64().unwrap() >= 4, "{s}");
    assert_eq!(s["sent"], 0, "{s}");
    rx.answer(200);
    let got = rx.wait_accepted(5, Duration::from_secs(60));
    wait_until("all sent", Duration::from_secs(30), || {
        berth.status()["pending"] == 0
    });
    let s = berth.status();
    assert_eq!(s["sent"], 5, "{s}");
    assert_eq!(s["dropped"], 0, "{s}");
    let got_now = rx.accepted();
    assert_eq!(got_now.len(), 5, "each event accepted once: {got_now:#?}");
    let want = vec![
        ("push".to_string(), cd),
        ("push".to_string(), layers[0].clone()),
        ("push".to_string(), layers[1].clone()),
        ("push".to_string(), md.clone()),
        ("pull".to_string(), md),
    ];
    assert_eq!(summary(&got), want);
    assert_eq!(target(&got[3], "tag"), "v1");
    assert_eq!(
        target(&got[3], "mediaType"),
        "application/vnd.oci.image.manifest.v1+json"
    );
    let mut ids: Vec<_> = got
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    // Every attempt carried the media type, the configured headers and the
    // signature of its exact body.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
    for r in rx.requests() {
        let h = |n: &str| {
            r.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            h("content-type"),
            "application/vnd.docker.distribution.events.v1+json"
        );
        assert_eq!(h("authorization"), "Bearer tok-123");
        assert_eq!(h("x-team"), "infra");
        let sig = format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&key, &r.body).as_ref())
        );
        assert_eq!(h("x-berth-signature"), sig);
    }
    // One log line per failure, naming the endpoint and status; never the
    // header values.
    let log = berth.proc.log_tail(10_000);
    assert!(
        log.contains("notification delivery failed: status 500"),
        "{log}"
    );
    assert!(log.contains("hook"), "{log}");
    assert!(!log.contains("tok-123"), "{log}");
    assert!(!log.contains("s3cret"), "{log}");
    // The same counters in the metrics.
    let m = berth.metrics();
    assert!(
        m.contains("berth_notifications_sent_total{endpoint=\"hook\"} 5"),
        "{m}"
    );
    assert!(
        m.contains("berth_notifications_pending{endpoint=\"hook\"} 0"),
        "{m}"
    );
    let failed = s["failed"].as_u64().unwrap();
    assert!(
        m.contains(&format!(
            "berth_notifications_failed_total{{endpoint=\"hook\"}} {failed}"
        )),
        "{m}"
    );
}

/// `n` blob HEADs (each a pull event, as in registry:2), 32 at a time.
fn heads(base: &str, repo: &str, digest: &str, n: usize) {
    block(async {
        let c = reqwest::Client::new();
        let url = format!("{base}/v2/{repo}/blobs/{digest}");
        let statuses: Vec<u16> = futures::stream::iter(0..n)
            .map(|_| {
                let c = c.clone();
                let url = url.clone();
                async move {
                    c.head(&url)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "every HEAD answered 200"
        );
    });
}

fn counts(s: &Value) -> (u64, u64, u64) {
    (
        s["pending"].as_u64().unwrap(),
        s["dropped"].as_u64().unwrap(),
        s["sent"].as_u64().unwrap(),
    )
}

#[test]
fn a_dead_endpoint_keeps_memory_within_the_queue_bound() {
    let tmp = tempdir("berth-ev-");
    // Nothing listens on this port.
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let berth = Berth::start_with(
        tmp.path(),
        "  inmemory:\n",
        &endpoint(&dead, "      queuesize: 100\n"),
    );
    let c = reqwest::Client::new();
    let (cd, _, _) = block(push_image(&c, &berth.base(), "r", "t", "d"));
    const N: u64 = 10_000;
    heads(&berth.base(), "r", &cd, N as usize);
    // Four pushes, N pulls: every event is pending or counted as dropped.
    wait_until("every event accounted for", Duration::from_secs(60), || {
        let (p, d, s) = counts(&berth.status());
        p + d + s == N + 4
    });
    let s = berth.status();
    let (pending, dropped, sent) = counts(&s);
    assert_eq!(sent, 0, "{s}");
    // In memory: at most the intake channel plus the backlog, 100 each.
    assert!(pending <= 200, "{s}");
    assert!(dropped >= N + 4 - 200, "{s}");
    assert_eq!(s["durable"], false, "{s}");
    let log = berth.proc.log_tail(10_000);
    assert!(log.contains("notification dropped"), "{log}");
}

#[test]
fn a_dead_endpoint_keeps_the_journal_within_its_bound() {
    let tmp = tempdir("berth-ev-");
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let root = tmp.path().join("storage");
    let berth = Berth::start(
        tmp.path(),
        &root,
        &endpoint(&dead, "      journalmaxsize: 60000\n"),
    );
    let c = reqwest::Client::new();
    let (cd, _, _) = block(push_image(&c, &berth.base(), "r", "t", "j"));
    const N: u64 = 2_000;
    heads(&berth.base(), "r", &cd, N as usize);
    wait_until("every event accounted for", Duration::from_secs(60), || {
        let (p, d, s) = counts(&berth.status());
        p + d + s == N + 4
    });
    let s = berth.status();
    let (pending, dropped, _) = counts(&s);
    assert_eq!(s["durable"], true, "{s}");
    assert!(dropped > 0 && pending > 0, "{s}");
    let journal = root.join("_berth/events/hook.journal");
    let len = std::fs::metadata(&journal).unwrap().len();
    assert!(len <= 60_000, "journal {len} bytes");
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count() as u64;
    assert_eq!(lines, pending, "{s}");
}

#[test]
fn pending_events_survive_kill_9_and_are_delivered_after_restart() {
    let tmp = tempdir("berth-ev-");
    let rx = Receiver::start();
    rx.answer(503);
    let root = tmp.path().join("storage");
    let cfg = endpoint(&rx.url, "");
    let berth = Berth::start(tmp.path(), &root, &cfg);
    let c = reqwest::Client::new();
    let (cd, layers, md) = block(push_image(&c, &berth.base(), "k/app", "v9", "k"));
    wait_until("events pending", Duration::from_secs(30), || {
        let s = berth.status();
        s["pending"] == 4 && s["failed"].as_u64().unwrap_or(0) >= 1
    });
    berth.kill9();
    rx.answer(200);
    let berth = Berth::start(tmp.path(), &root, &cfg);
    let got = rx.wait_accepted(4, Duration::from_secs(60));
    wait_until("all sent", Duration::from_secs(30), || {
        berth.status()["pending"] == 0
    });
    assert_eq!(berth.status()["sent"], 4);
    let want: Vec<(String, String)> = [cd, layers[0].clone(), layers[1].clone(), md]
        .into_iter()
        .map(|d| ("push".to_string(), d))
        .collect();
    assert_eq!(summary(&got), want);
    assert_eq!(target(&got[3], "tag"), "v9");
    // The journal is emptied once everything is delivered.
    let len = std::fs::metadata(root.join("_berth/events/hook.journal"))
        .unwrap()
        .len();
    assert_eq!(len, 0);
}
