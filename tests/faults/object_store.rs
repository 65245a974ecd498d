//! Item 3 of issue 18: berth's S3 driver behind a fault-injecting proxy
//! (503 SlowDown, 500, resets, stalls, cut bodies, by a seeded schedule),
//! an outage where every request fails, and Garage nodes killed (-9):
//! retries are bounded, errors reach the client as 5xx in the spec's
//! format, nothing acknowledged is corrupt, and pushes work again when the
//! store comes back.

use std::time::Instant;

use rand::Rng;

use super::disk_full::assert_clear_5xx;
use super::proxy::{Fault, FaultProxy};
use super::support::{digest_of, s3_storage, seeded_rng, Api, Berth, Sent};
use crate::procs::tempdir;
use crate::s3::S3Server;

/// The S3 server under the proxy: Garage (required under CI);
/// `BERTH_FAULTS_S3=moto` runs the same against moto while developing.
pub(super) fn upstream() -> Option<&'static S3Server> {
    if std::env::var("BERTH_FAULTS_S3").as_deref() == Ok("moto") {
        let moto = crate::s3::moto()?;
        // moto needs its bucket made (Garage's is made at start).
        let _ = moto.signed("PUT", &format!("/{}", crate::s3::BUCKET));
        return Some(moto);
    }
    if !crate::procs::require_tool("garage") {
        return None;
    }
    crate::s3::garage()
}

/// `server` as seen through `proxy`.
pub(super) fn via(server: &S3Server, proxy: &FaultProxy) -> S3Server {
    S3Server {
        endpoint: proxy.endpoint(),
        ..server.clone()
    }
}

pub(super) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A monolithic or chunked push; `Ok(digest)` on 201, else the answer,
/// which must be a clear 5xx (`assert_clear_5xx` is applied by the caller).
async fn push(api: &Api, repo: &str, data: &[u8], chunked: bool) -> Result<String, Sent> {
    let digest = digest_of(data);
    if !chunked {
        let sent = api.push_blob(repo, data).await;
        return if sent.status() == Some(201) {
            Ok(digest)
        } else {
            Err(sent)
        };
    }
    let loc = api.open_upload(repo).await?;
    let third = data.len() / 3;
    let mut at = 0;
    for end in [third, 2 * third] {
        let sent = api.patch(&loc, at as u64, &data[at..end]).await;
        if sent.status() != Some(202) {
            return Err(sent);
        }
        at = end;
    }
    let sent = api.finish(&loc, &digest, Some(data[at..].to_vec())).await;
    if sent.status() == Some(201) {
        Ok(digest)
    } else {
        Err(sent)
    }
}

#[test]
fn s3_faults_are_retried_boundedly_reported_clearly_and_corrupt_nothing() {
    let Some(server) = upstream() else {
        return;
    };
    let mut rng = seeded_rng("object-store/faults");
    let proxy = FaultProxy::start(&server.endpoint, rng.gen(), 250);
    let tmp = tempdir("berth-s3-faults-");
    let root = crate::s3::fresh_root("faults");
    let mut berth = Berth::start(
        &tmp.path().join("berth"),
        &s3_storage(&via(server, &proxy), &root),
    );
    let api = Api::new(berth.url(""));
    let rt = rt();
    let mut acked = Vec::new();
    let mut failed = 0;
    rt.block_on(async {
        // A quarter of all S3 requests fail one way or another.
        for i in 0..10 {
            // Some past the 5 MiB part size: multipart uploads too.
            let len = if i % 3 == 0 {
                rng.gen_range(6 << 20..9 << 20)
            } else {
                rng.gen_range(1024..1 << 20)
            };
            let mut data = vec![0u8; len];
            rng.fill(&mut data[..]);
            match push(&api, "faults/app", &data, i % 2 == 1).await {
                Ok(d) => acked.push((d, data)),
                Err(sent) => {
                    assert_clear_5xx("push through a failing store", &sent, "");
                    failed += 1;
                }
            }
        }
    });
    let during = proxy.counts(true);
    eprintln!(
        "object-store/faults: {} pushes acknowledged, {failed} failed cleanly; proxy: {:?}, {} retried requests, at most {} attempts of one",
        acked.len(),
        during.by_fault,
        during.retries,
        during.most_attempts
    );
    assert!(during.retries > 0, "no request was retried");
    // object_store retries 10 times at most: 11 attempts of one request.
    assert!(
        during.most_attempts <= 11,
        "unbounded retries: {}",
        during.most_attempts
    );
    assert!(!acked.is_empty(), "nothing got through a 25% fault rate");

    rt.block_on(async {
        // Reads with faults still on: an answer that completes is whole.
        let mut cut_reads = 0;
        for (d, data) in &acked {
            match api.send("GET", &format!("/v2/faults/app/blobs/{d}"), &[], None).await {
                Sent::Answer(s, _, body) if s.as_u16() == 200 => {
                    assert_eq!(body.len(), data.len(), "a 200 with a short body completed");
                    assert_eq!(&digest_of(&body), d, "corrupt read");
                }
                other => {
                    cut_reads += 1;
                    eprintln!("  read under faults: {}", other.text().chars().take(120).collect::<String>());
                }
            }
        }
        eprintln!("object-store/faults: {cut_reads} of {} reads under faults failed (cleanly)", acked.len());
        // The store healthy again: everything acknowledged reads back.
        proxy.set_rate(0);
        for (d, data) in &acked {
            let (status, body) = api.get(&format!("/v2/faults/app/blobs/{d}")).await;
            assert_eq!(status, 200, "acknowledged {d} lost");
            assert!(body == data[..], "acknowledged {d} corrupt");
        }

        // An outage: every request fails. The push fails with a clear
        // 5xx once retries run out (bounded, not a hang), then works again.
        for fault in [Fault::SlowDown, Fault::Reset] {
            proxy.force(Some(fault));
            let started = Instant::now();
            let sent = push(&api, "faults/app", b"during an outage", false).await.expect_err("pushed during an outage");
            assert_clear_5xx("push during an outage", &sent, "storage unavailable");
            let tries = proxy.counts(true);
            eprintln!(
                "object-store/outage ({fault:?}): {} after {:.1}s; {} requests, at most {} attempts of one",
                sent.status().unwrap_or(0),
                started.elapsed().as_secs_f64(),
                tries.requests,
                tries.most_attempts
            );
            assert!(tries.most_attempts <= 11, "unbounded retries");
            proxy.force(None);
            proxy.set_rate(0);
            let data = format!("after the {fault:?} outage").into_bytes();
            let sent = push(&api, "faults/app", &data, false).await;
            assert!(sent.is_ok(), "push after the outage: {}", sent.err().map(|s| s.text()).unwrap_or_default());
        }
    });
    berth.stop();
}
