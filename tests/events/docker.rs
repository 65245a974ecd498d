//! docker push and pull of a two-layer image through a private dockerd,
//! with `docker login` (htpasswd): the events, their order and actor;
//! cross-repository mounts; deletes; `ignore.actions` and
//! `ignoredmediatypes` filtering on a second endpoint.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::clients::write_docker_archive;
use crate::procs::{require_tools, run, tempdir, Dockerd, Entry};
use crate::{Berth, Receiver};

fn s(e: &Value, path: &[&str]) -> String {
    let mut v = e;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or_default().to_string()
}

fn login(dk: &Dockerd, host: &str) {
    assert!(dk.login(host, "evuser", "evpass"), "docker login");
}

#[test]
fn docker_push_pull_mount_delete_produce_registry2_events() {
    if !require_tools(&["docker", "dockerd", "htpasswd"]) {
        return;
    }
    let tmp = tempdir("berth-evd-");
    let users = tmp.path().join("htpasswd");
    let line = run(Command::new("htpasswd").args(["-Bbn", "evuser", "evpass"]));
    std::fs::write(&users, line.trim()).unwrap();
    let all = Receiver::start();
    let filtered = Receiver::start();
    let config = format!(
        "auth:\n  htpasswd:\n    realm: r\n    path: {}\nnotifications:\n  endpoints:\n\
         \x20   - name: all\n      url: {}\n\
         \x20   - name: filtered\n      url: {}\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        actions: [pull]\n",
        users.display(),
        all.url,
        filtered.url
    );
    let berth = Berth::start(tmp.path(), &tmp.path().join("storage"), &config);
    let host = berth.host();
    let dk = Dockerd::start();
    let archive = tmp.path().join("image.tar");
    let image = write_docker_archive(
        &archive,
        "evt:latest",
        &[
            vec![Entry::Random("one.bin", 300 * 1024)],
            vec![Entry::Random("two.bin", 200 * 1024)],
        ],
    );
    dk.run(&["load", "-i", archive.to_str().unwrap()]);
    let app = format!("{host}/evt/app:v1");
    dk.run(&["tag", "evt:latest", &app]);
    login(&dk, &host);
    let (manifest, _) = dk.push(&app);

    // The push: both layers and the config, then the tagged manifest.
    // Between them docker HEADs each blob it pushed: registry:2 reports
    // those as pulls too, and so does berth.
    let manifest_push = |events: &[Value], tag: &str| {
        events
            .iter()
            .position(|e| e["action"] == "push" && s(e, &["target", "tag"]) == tag)
    };
    crate::procs::wait_until("the manifest push event", Duration::from_secs(60), || {
        manifest_push(&all.accepted(), "v1").is_some()
    });
    let accepted = all.accepted();
    let at = manifest_push(&accepted, "v1").unwrap();
    let before = &accepted[..at];
    let blob_pushes: Vec<&Value> = before.iter().filter(|e| e["action"] == "push").collect();
    assert_eq!(blob_pushes.len(), 3, "{before:#?}");
    let blobs: BTreeSet<String> = blob_pushes
        .iter()
        .map(|e| s(e, &["target", "digest"]))
        .collect();
    assert!(
        blobs.contains(&image.image_id),
        "config pushed: {before:#?}"
    );
    for e in &blob_pushes {
        assert_eq!(s(e, &["target", "mediaType"]), "application/octet-stream");
        assert_eq!(s(e, &["request", "method"]), "PUT");
    }
    for e in before.iter().filter(|e| e["action"] != "push") {
        assert_eq!(s(e, &["action"]), "pull", "{e:#}");
        assert_eq!(s(e, &["request", "method"]), "HEAD", "{e:#}");
    }
    let pushed = accepted[..=at].to_vec();
    let m = &pushed[at];
    assert_eq!(s(m, &["action"]), "push");
    assert_eq!(s(m, &["target", "digest"]), manifest);
    assert_eq!(s(m, &["target", "tag"]), "v1");
    assert_eq!(s(m, &["target", "repository"]), "evt/app");
    assert_eq!(
        s(m, &["target", "mediaType"]),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(m["target"]["size"], m["target"]["length"]);
    assert_eq!(
        s(m, &["target", "url"]),
        format!("http://{host}/v2/evt/app/manifests/{manifest}")
    );
    for e in &pushed {
        assert_eq!(s(e, &["actor", "name"]), "evuser", "{e:#}");
        assert!(s(e, &["request", "useragent"]).contains("docker/"), "{e:#}");
        assert_eq!(s(e, &["request", "host"]), host);
    }

    // The pull: the manifest by tag, then the config and layers (GETs).
    dk.run(&["rmi", "-f", &image.image_id]);
    let seen = all.accepted().len();
    dk.run(&["pull", &app]);
    let gets = |events: &[Value]| -> Vec<Value> {
        events[seen..]
            .iter()
            .filter(|e| e["action"] == "pull" && s(e, &["request", "method"]) == "GET")
            .cloned()
            .collect()
    };
    crate::procs::wait_until("the pull's events", Duration::from_secs(60), || {
        gets(&all.accepted()).len() >= 4
    });
    let pulls = gets(&all.accepted());
    // docker resolves the tag, then fetches by digest: the pull by tag
    // carries the tag.
    let by_tag = all.accepted()[seen..]
        .iter()
        .find(|e| {
            e["action"] == "pull"
                && s(e, &["target", "digest"]) == manifest
                && s(e, &["target", "tag"]) == "v1"
        })
        .cloned()
        .expect("a manifest pull by tag");
    assert_eq!(s(&by_tag, &["actor", "name"]), "evuser");
    assert!(pulls
        .iter()
        .any(|e| s(e, &["target", "digest"]) == manifest));
    let pulled: BTreeSet<String> = pulls.iter().map(|e| s(e, &["target", "digest"])).collect();
    assert!(blobs.is_subset(&pulled), "every blob pulled: {pulls:#?}");

    // Another repository of the same registry: docker mounts the layers.
    let other = format!("{host}/evt/other:v2");
    dk.run(&["tag", &app, &other]);
    let seen = all.accepted().len();
    dk.push(&other);
    crate::procs::wait_until(
        "the second push's manifest",
        Duration::from_secs(60),
        || {
            all.accepted()[seen..]
                .iter()
                .any(|e| e["action"] == "push" && s(e, &["target", "tag"]) == "v2")
        },
    );
    let second = all.accepted()[seen..].to_vec();
    let mounts: Vec<&Value> = second.iter().filter(|e| e["action"] == "mount").collect();
    assert!(!mounts.is_empty(), "docker mounted layers: {second:#?}");
    for mt in &mounts {
        assert_eq!(s(mt, &["target", "fromRepository"]), "evt/app");
        assert_eq!(s(mt, &["target", "repository"]), "evt/other");
        assert_eq!(s(mt, &["request", "method"]), "POST");
    }

    // Deletes: the manifest (and with it its tag), then a blob.
    crate::procs::wait_until("quiet", Duration::from_secs(30), || {
        let n = all.accepted().len();
        std::thread::sleep(Duration::from_millis(300));
        all.accepted().len() == n
    });
    let seen2 = all.accepted().len();
    let layer = mounts[0]["target"]["digest"].as_str().unwrap().to_string();
    crate::api::block(async {
        let c = reqwest::Client::new();
        let r = c
            .delete(format!("{}/v2/evt/app/manifests/{manifest}", berth.base()))
            .basic_auth("evuser", Some("evpass"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = c
            .delete(format!("{}/v2/evt/other/blobs/{layer}", berth.base()))
            .basic_auth("evuser", Some("evpass"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    });
    crate::procs::wait_until("delete events", Duration::from_secs(30), || {
        all.accepted().len() >= seen2 + 3
    });
    let deletes: Vec<Value> = all.accepted()[seen2..]
        .iter()
        .filter(|e| e["action"] == "delete")
        .cloned()
        .collect();
    let d: Vec<(String, String, String)> = deletes
        .iter()
        .map(|e| {
            (
                s(e, &["target", "repository"]),
                s(e, &["target", "digest"]),
                s(e, &["target", "tag"]),
            )
        })
        .collect();
    assert_eq!(
        d,
        vec![
            ("evt/app".to_string(), manifest.clone(), String::new()),
            ("evt/app".to_string(), String::new(), "v1".to_string()),
            ("evt/other".to_string(), layer.clone(), String::new()),
        ]
    );
    for e in &deletes {
        assert!(e["target"].get("mediaType").is_none(), "{e:#}");
        assert_eq!(s(e, &["request", "method"]), "DELETE");
    }

    // The filtered endpoint: no pulls, no blob events; manifest pushes and
    // deletes only.
    crate::procs::wait_until(
        "filtered endpoint caught up",
        Duration::from_secs(30),
        || {
            filtered
                .accepted()
                .iter()
                .filter(|e| e["action"] == "delete")
                .count()
                >= 3
        },
    );
    let f = filtered.accepted();
    assert!(f.iter().all(|e| e["action"] != "pull"), "{f:#?}");
    assert!(
        f.iter()
            .all(|e| e["target"]["mediaType"] != "application/octet-stream"),
        "{f:#?}"
    );
    let pushes: Vec<String> = f
        .iter()
        .filter(|e| e["action"] == "push")
        .map(|e| s(e, &["target", "tag"]))
        .collect();
    assert_eq!(pushes, ["v1", "v2"], "{f:#?}");
}
