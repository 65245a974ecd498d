//! Item 3 of issue 18, continued: a 3-node Garage cluster (replication 3).
//! One node killed with SIGKILL (no SIGTERM first): berth keeps serving
//! pushes and pulls. Then the very node berth talks to is killed mid-push
//! and started again: the push completes through berth's retries or fails
//! as a clean 5xx, and everything acknowledged reads back intact.

use std::time::{Duration, Instant};

use super::disk_full::assert_clear_5xx;
use super::support::{digest_of, kill9, metric, s3_storage, Api, Berth};
use crate::procs::tempdir;
use crate::s3::GarageCluster;

/// SIGKILL to node `i`'s `garage server` (found by its config path), then
/// the cluster's guard is told it is gone.
fn kill9_node(cluster: &mut GarageCluster, i: usize) {
    let cmd = cluster.garage(i);
    let config = cmd
        .get_args()
        .nth(1)
        .expect("garage -c CONFIG")
        .to_string_lossy()
        .into_owned();
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_node = args.iter().any(|a| a == &config) && args.iter().any(|a| a == "server");
        if is_node && args.first().is_some_and(|a| a.ends_with("garage")) {
            kill9(pid);
            killed += 1;
        }
    }
    assert_eq!(killed, 1, "garage node {i} ({config}) not found to kill");
    // Reaps it (its SIGTERM goes to a process already gone).
    cluster.kill(i);
}

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

async fn chunked(api: &Api, repo: &str, data: &[u8]) -> super::support::Sent {
    let loc = match api.open_upload(repo).await {
        Ok(l) => l,
        Err(sent) => return sent,
    };
    let third = data.len() / 3;
    let mut at = 0;
    for end in [third, 2 * third] {
        let sent = api.patch(&loc, at as u64, &data[at..end]).await;
        if sent.status() != Some(202) {
            return sent;
        }
        at = end;
    }
    api.finish(&loc, &digest_of(data), Some(data[at..].to_vec()))
        .await
}

#[test]
fn a_killed_garage_node_leaves_berth_serving_and_a_killed_endpoint_recovers() {
    if !crate::procs::require_tool("garage") {
        return;
    }
    let mut cluster = GarageCluster::start(3);
    let tmp = tempdir("berth-gnodes-");
    let root = crate::s3::fresh_root("nodes");
    let mut berth = Berth::start(
        &tmp.path().join("berth"),
        &s3_storage(&cluster.s3(0), &root),
    );
    let api = Api::new(berth.url(""));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let first = blob(7 << 20, 1);
    rt.block_on(async {
        assert_eq!(chunked(&api, "nodes/app", &first).await.status(), Some(201));
    });
    acked.push(first);

    // One node of three gone for good (SIGKILL): quorum stays.
    kill9_node(&mut cluster, 2);
    rt.block_on(async {
        let second = blob(12 << 20, 2);
        let sent = chunked(&api, "nodes/app", &second).await;
        assert_eq!(
            sent.status(),
            Some(201),
            "push with a node down: {}",
            sent.text()
        );
        acked.push(second);
        let small = blob(300_000, 3);
        assert_eq!(api.push_blob("nodes/app", &small).await.status(), Some(201));
        acked.push(small);
        for data in &acked {
            assert_eq!(
                api.blob_intact("nodes/app", &digest_of(data)).await,
                Some(data.len())
            );
        }
    });
    eprintln!(
        "garage-nodes: {} blobs pushed and read with node 2 killed",
        acked.len()
    );
    cluster.restart(2);
    cluster.wait_healthy();

    // The node berth talks to dies mid-push and comes back.
    let third = blob(15 << 20, 4);
    let started = Instant::now();
    let sent = rt.block_on(async {
        let push = {
            let (api, third) = (api.clone(), third.clone());
            tokio::spawn(async move { chunked(&api, "nodes/app", &third).await })
        };
        for _ in 0..400 {
            if metric(&api, "berth_http_uploads_in_flight").await >= 1.0 || push.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        kill9_node(&mut cluster, 0);
        cluster.restart(0);
        push.await.expect("push task")
    });
    eprintln!(
        "garage-nodes: push across the endpoint's kill and restart: {} after {:.1}s; {} retries logged by berth",
        sent.status().unwrap_or(0),
        started.elapsed().as_secs_f64(),
        berth.logs().matches("backing off").count()
    );
    if sent.status() != Some(201) {
        assert_clear_5xx("push while the store restarts", &sent, "");
    }
    cluster.wait_healthy();
    rt.block_on(async {
        // Recovered: the push goes through now (again, if it failed).
        let again = chunked(&api, "nodes/app", &third).await;
        assert_eq!(
            again.status(),
            Some(201),
            "push after the restart: {}",
            again.text()
        );
        acked.push(third);
        for data in &acked {
            assert_eq!(
                api.blob_intact("nodes/app", &digest_of(data)).await,
                Some(data.len())
            );
        }
    });
    berth.stop();
}
