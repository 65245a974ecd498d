//! Envelope compatibility: the same operations against Debian's
//! `docker-registry` (distribution 2.8.2) and berth, each posting to its
//! own receiver; the envelopes must match field by field (same keys, same
//! JSON types, same values except ids, times, addresses and ports).

use std::time::Duration;

use serde_json::Value;

use crate::api::{block, push_image};
use crate::procs::{daemon_command, find_tool, free_port, require_tool, tempdir, wait_until, Proc};
use crate::{Berth, Receiver};

/// The notifications section both registries get.
fn notifications(url: &str) -> String {
    format!(
        "notifications:\n  events:\n    includereferences: true\n  endpoints:\n    - name: cmp\n      url: {url}\n      timeout: 2s\n      threshold: 5\n      backoff: 1s\n"
    )
}

/// The operations: a push of a two-layer image, pulls, a mount, deletes.
fn operations(base: &str) {
    block(async {
        let c = reqwest::Client::new();
        let (_, layers, md) = push_image(&c, base, "cmp/app", "v1", "same").await;
        let get = |u: String| {
            let c = c.clone();
            async move {
                c.get(u)
                    .header("accept", "application/vnd.oci.image.manifest.v1+json")
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(get(format!("{base}/v2/cmp/app/manifests/v1")).await, 200);
        assert_eq!(get(format!("{base}/v2/cmp/app/manifests/{md}")).await, 200);
        assert_eq!(
            get(format!("{base}/v2/cmp/app/blobs/{}", layers[0])).await,
            200
        );
        let r = c
            .post(format!(
                "{base}/v2/cmp/other/blobs/uploads/?mount={}&from=cmp/app",
                layers[0]
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "mount");
        let r = c
            .delete(format!("{base}/v2/cmp/app/manifests/{md}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "manifest delete");
        let r = c
            .delete(format!("{base}/v2/cmp/other/blobs/{}", layers[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "blob delete");
    });
}

/// Fields whose values differ by nature between two registries.
const VARYING: &[&str] = &[
    "id",
    "timestamp",
    "request.id",
    "request.addr",
    "request.host",
    "request.useragent",
    "source.addr",
    "source.instanceID",
];

/// Compares `a` (distribution) and `b` (berth) at `path`; URLs compare
/// with their `host:port` cut off.
fn compare(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if kind(a) != kind(b) {
        out.push(format!("{path}: {} vs {}", kind(a), kind(b)));
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            if kx != ky {
                out.push(format!("{path}: keys {kx:?} vs {ky:?}"));
            }
            for (k, v) in x {
                if let Some(w) = y.get(k) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    compare(&p, v, w, out);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!("{path}: {} vs {} items", x.len(), y.len()));
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                compare(&format!("{path}[{i}]"), v, w, out);
            }
        }
        _ if VARYING.contains(&path) => {}
        (Value::String(x), Value::String(y)) if path.ends_with("url") => {
            let cut = |s: &str| s.splitn(4, '/').nth(3).unwrap_or_default().to_string();
            if cut(x) != cut(y) {
                out.push(format!("{path}: {x} vs {y}"));
            }
        }
        _ if a != b => out.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

#[test]
fn envelopes_match_distribution_field_by_field() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempdir("berth-evc-");
    let rx_dist = Receiver::start();
    let rx_berth = Receiver::start();
    // distribution 2.8.2 with the same notifications config.
    let port = free_port();
    let cfg = tmp.path().join("distribution.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n{}",
            tmp.path().join("dist").display(),
            notifications(&rx_dist.url)
        ),
    )
    .unwrap();
    let mut cmd = daemon_command(find_tool("docker-registry").unwrap());
    cmd.env_remove("AWS_CA_BUNDLE").arg("serve").arg(&cfg);
    let mut dist = Proc::spawn("docker-registry", cmd, &tmp.path().join("distribution.log"));
    let dist_base = format!("http://127.0.0.1:{port}");
    wait_until("docker-registry to answer", Duration::from_secs(30), || {
        dist.assert_running();
        crate::clients::http("GET", &format!("{dist_base}/v2/")).is_ok_and(|r| r.status == 200)
    });
    let berth = Berth::start(
        tmp.path(),
        &tmp.path().join("berth"),
        &notifications(&rx_berth.url),
    );
    operations(&dist_base);
    operations(&berth.base());
    // 4 pushes, 3 pulls, 1 mount, manifest + tag + blob deletes.
    let want = 11;
    rx_dist.wait_accepted(want, Duration::from_secs(60));
    rx_berth.wait_accepted(want, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let (a, b) = (rx_dist.accepted(), rx_berth.accepted());
    let actions = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["action"].as_str().unwrap_or_default(),
                    e["target"]["digest"]
                        .as_str()
                        .or(e["target"]["tag"].as_str())
                        .unwrap_or_default()
                )
            })
            .collect()
    };
    if std::env::var("EVDUMP").is_ok() {
        eprintln!(
            "DIST {}\nBERTH {}",
            serde_json::to_string_pretty(&a).unwrap(),
            serde_json::to_string_pretty(&b).unwrap()
        );
    }
    assert_eq!(
        actions(&a),
        actions(&b),
        "the same events in the same order"
    );
    let mut diffs = Vec::new();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let mut d = Vec::new();
        compare("", x, y, &mut d);
        diffs.extend(
            d.into_iter()
                .map(|m| format!("event {i} ({}): {m}", x["action"])),
        );
    }
    assert!(
        diffs.is_empty(),
        "differences:\n{}\n\ndistribution: {a:#?}",
        diffs.join("\n")
    );
    // Both name a direct client by `ip:port`.
    for e in a.iter().chain(&b) {
        let addr = e["request"]["addr"].as_str().unwrap_or_default();
        assert!(addr.parse::<std::net::SocketAddr>().is_ok(), "{addr}");
    }
    // The same request shape too.
    let ra = &rx_dist.requests()[0];
    let rb = &rx_berth.requests()[0];
    assert_eq!(
        ra.headers.get("content-type"),
        rb.headers.get("content-type")
    );
    drop(dist);
}
