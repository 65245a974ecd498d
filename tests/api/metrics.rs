//! Issue 14 item 5: `/metrics` counts requests, bytes and storage calls,
//! and parses as Prometheus text.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use prometheus_parse::{Sample, Scrape, Value};

use crate::support::TestRegistry;

/// `/metrics`, parsed by a real Prometheus text parser.
async fn scrape(reg: &TestRegistry) -> Scrape {
    let r = reg.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels`
/// (counters, gauges; histograms: their count).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = s
        .samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .collect();
    matching
        .iter()
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

fn stream_body(chunks: Vec<&'static [u8]>) -> Body {
    Body::from_stream(futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from_static(c))),
    ))
}

#[tokio::test]
async fn counters_move_with_pushes_and_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let on = |c: &mut berth::config::Config| c.http.debug.prometheus.enabled = true;
    for (reg, driver) in [
        (TestRegistry::memory_with(on), "inmemory"),
        (TestRegistry::filesystem_at(dir.path(), on), "filesystem"),
    ] {
        let (manifest, _) = reg.push_image("app/web", "v1", "metrics").await;
        let blob = reg.push_blob("app/web", b"a blob to pull").await;
        // A chunked upload: a body of unknown length, counted by frames.
        let r = reg
            .req(Method::POST, "/v2/app/web/blobs/uploads/", &[], "")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let loc = crate::support::path_of(r.header("location").unwrap());
        let r = reg
            .req(
                Method::PATCH,
                &loc,
                &[],
                stream_body(vec![b"01234", b"56789"]),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{driver}");
        for _ in 0..3 {
            let r = reg.get("/v2/app/web/manifests/v1").await;
            assert_eq!(r.body.as_ref(), manifest.as_slice());
        }
        assert_eq!(
            reg.get(&format!("/v2/app/web/blobs/{blob}"))
                .await
                .body
                .as_ref(),
            b"a blob to pull"
        );
        let r = reg.head("/v2/app/web/manifests/v1").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            reg.get("/v2/app/web/manifests/nope").await.status,
            StatusCode::NOT_FOUND
        );

        let s = scrape(&reg).await;
        let req = |route, method, code| {
            value(
                &s,
                "berth_http_requests_total",
                &[("route", route), ("method", method), ("code", code)],
            )
        };
        assert_eq!(req("manifest", "GET", "200"), 3.0, "{driver}");
        assert_eq!(req("manifest", "HEAD", "200"), 1.0, "{driver}");
        assert_eq!(req("manifest", "GET", "404"), 1.0, "{driver}");
        assert_eq!(req("manifest", "PUT", "201"), 1.0, "{driver}");
        assert_eq!(req("blob", "GET", "200"), 1.0, "{driver}");
        assert_eq!(req("upload", "POST", "201"), 3.0, "{driver}");
        assert_eq!(req("upload", "PATCH", "202"), 1.0, "{driver}");
        assert_eq!(
            value(
                &s,
                "berth_http_request_duration_seconds",
                &[("route", "manifest")]
            ),
            6.0,
            "{driver}"
        );
        // Bytes: the manifest thrice plus the blob out (HEAD sends none);
        // the chunked PATCH's 10 bytes in.
        let sent = |route| {
            value(
                &s,
                "berth_http_response_body_bytes_total",
                &[("route", route)],
            )
        };
        let got_manifest = sent("manifest");
        assert!(
            got_manifest >= 3.0 * manifest.len() as f64,
            "{driver}: {got_manifest}"
        );
        assert_eq!(sent("blob"), 14.0, "{driver}");
        let received = |route| {
            value(
                &s,
                "berth_http_request_body_bytes_total",
                &[("route", route)],
            )
        };
        // The image's config and layer (as push_image makes them), the
        // blob, and the chunked PATCH.
        let config = r#"{"architecture":"amd64","os":"linux","seed":"metrics"}"#;
        let pushed = config.len() + "layer of metrics".len() + 14 + 10;
        assert_eq!(received("upload"), pushed as f64, "{driver}");
        assert_eq!(received("manifest"), manifest.len() as f64, "{driver}");
        assert_eq!(value(&s, "berth_http_uploads_in_flight", &[]), 0.0);
        // Storage calls, by this driver.
        let ops = |op, outcome| {
            value(
                &s,
                "berth_storage_operations_total",
                &[("driver", driver), ("operation", op), ("outcome", outcome)],
            )
        };
        assert!(ops("get_content", "ok") >= 1.0, "{driver}");
        assert!(ops("writer_write", "ok") >= 1.0, "{driver}");
        assert!(
            value(
                &s,
                "berth_storage_operation_duration_seconds",
                &[("driver", driver)]
            ) >= 1.0,
            "{driver}"
        );
        assert!(value(&s, "berth_process_resident_memory_bytes", &[]) > 0.0);
        assert!(value(&s, "berth_process_open_fds", &[]) > 0.0);
        reg.refresh_index().await;
        let s = scrape(&reg).await;
        assert_eq!(value(&s, "berth_repository_index_repositories", &[]), 1.0);
        // The scrapes count too, as `other`.
        assert_eq!(
            value(
                &scrape(&reg).await,
                "berth_http_requests_total",
                &[("route", "other"), ("method", "GET"), ("code", "200")]
            ),
            2.0
        );
        // Every series has HELP and TYPE.
        for sample in &s.samples {
            let base = sample
                .metric
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                s.docs.contains_key(&sample.metric) || s.docs.contains_key(base),
                "{} has no HELP",
                sample.metric
            );
        }
    }
}

#[tokio::test]
async fn uploads_in_flight_counts_a_patch_until_it_ends() {
    let reg = TestRegistry::memory_with(|c| c.http.debug.prometheus.enabled = true);
    let r = reg
        .req(Method::POST, "/v2/app/blobs/uploads/", &[], "")
        .await;
    let loc = crate::support::path_of(r.header("location").unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(1);
    let body = Body::from_stream(tokio_stream_from(rx));
    let patch = reg.req(Method::PATCH, &loc, &[], body);
    let watch = async {
        tx.send(Ok(bytes::Bytes::from_static(b"part")))
            .await
            .unwrap();
        // The PATCH is now inside the handler, waiting for more body.
        let mut seen = 0.0;
        for _ in 0..1000 {
            seen = value(&scrape(&reg).await, "berth_http_uploads_in_flight", &[]);
            if seen == 1.0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(tx);
        seen
    };
    let (r, seen) = tokio::join!(patch, watch);
    assert_eq!(seen, 1.0);
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let s = scrape(&reg).await;
    assert_eq!(value(&s, "berth_http_uploads_in_flight", &[]), 0.0);
    assert_eq!(
        value(
            &s,
            "berth_http_request_body_bytes_total",
            &[("route", "upload")]
        ),
        4.0
    );
}

/// A receiver as a stream (no tokio-stream dependency).
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

#[tokio::test]
async fn nothing_is_measured_when_metrics_are_off() {
    let reg = TestRegistry::memory_with(|_| {});
    reg.push_image("app", "v1", "off").await;
    reg.get("/v2/app/manifests/v1").await;
    let m = reg.registry().metrics();
    use berth::metrics::storage::{Outcome, StorageOp};
    assert_eq!(m.storage.count(StorageOp::GetContent, Outcome::Ok), 0);
    assert_eq!(m.storage.count(StorageOp::PutContent, Outcome::Ok), 0);
}
