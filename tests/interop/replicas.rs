//! Two berth instances on one storage behind nginx round robin, as replicas
//! behind a load balancer: uploads hop between instances and complete.

use std::path::Path;
use std::time::Duration;

use crate::clients::http;
use crate::procs::{
    daemon_command, find_tool, free_port, require_tools, tempdir, wait_until, write_tar, Dockerd,
    Entry, Proc, Registry, Server,
};
use crate::{RegistryOpts, MIB};

/// nginx in front of `upstreams`, logging which upstream took each request.
struct Nginx {
    port: u16,
    log: std::path::PathBuf,
    _proc: Proc,
}

impl Nginx {
    fn start(dir: &Path, upstreams: &[u16]) -> Nginx {
        let port = free_port();
        let d = dir.display();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("server 127.0.0.1:{p};\n"))
            .collect();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  log_format hop '$request_method $request_uri $upstream_addr $status';\n\
                 access_log {d}/access.log hop;\n\
                 client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
                 uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
                 upstream berth {{\n{servers}  }}\n\
                 server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 0;\n\
                 proxy_request_buffering off;\n    proxy_buffering off;\n\
                 location / {{\n      proxy_pass http://berth;\n      proxy_http_version 1.1;\n\
                 proxy_set_header Host $http_host;\n      proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let mut cmd = daemon_command(find_tool("nginx").expect("nginx"));
        cmd.arg("-c").arg(&conf).arg("-p").arg(dir);
        let mut proc = Proc::spawn("nginx", cmd, &dir.join("nginx.out"));
        let url = format!("http://127.0.0.1:{port}/v2/");
        wait_until("nginx to proxy /v2/", Duration::from_secs(20), || {
            proc.assert_running();
            http("GET", &url).is_ok_and(|r| r.status == 200)
        });
        Nginx {
            port,
            log: dir.join("access.log"),
            _proc: proc,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A request with a body and headers; returns status and headers.
fn send(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.headers().clone())
    })
}

#[test]
fn chunked_uploads_hop_between_replicas_behind_nginx() {
    if !require_tools(&["nginx", "docker", "dockerd"]) {
        return;
    }
    let tmp = tempdir("berth-replicas-");
    let root = tmp.path().join("storage");
    let opts = RegistryOpts {
        delete_enabled: false,
    };
    let a = Registry::start(Server::Berth, &root, opts);
    let b = Registry::start(Server::Berth, &root, opts);
    let lb = Nginx::start(tmp.path(), &[a.port, b.port]);

    // A chunked upload through the balancer: round robin sends consecutive
    // requests to alternating instances.
    let (status, h) = send("POST", &lb.url("/v2/ha/app/blobs/uploads/"), &[], vec![]);
    assert_eq!(status, 202);
    let uuid = h["docker-upload-uuid"].to_str().unwrap().to_string();
    let mut loc = h["location"].to_str().unwrap().to_string();
    let chunks: Vec<Vec<u8>> = (0..4u8)
        .map(|i| vec![i; 3 * 1024 * 1024 + i as usize])
        .collect();
    let mut offset = 0;
    for c in &chunks {
        let range = format!("{}-{}", offset, offset + c.len() - 1);
        let (status, h) = send("PATCH", &loc, &[("content-range", range)], c.clone());
        assert_eq!(status, 202);
        offset += c.len();
        loc = h["location"].to_str().unwrap().to_string();
    }
    let all = chunks.concat();
    let digest = berth::oci::digest::Digest::sha256_of(&all);
    let (status, _) = send("PUT", &format!("{loc}?digest={digest}"), &[], vec![]);
    assert_eq!(status, 201);
    // Each instance took part of this upload.
    let log = std::fs::read_to_string(&lb.log).unwrap();
    let hops: std::collections::BTreeSet<&str> = log
        .lines()
        .filter(|l| l.contains(&uuid))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        hops.len(),
        2,
        "upload requests went to both replicas:\n{log}"
    );
    for reg in [&a, &b] {
        let r = http("GET", &reg.url(&format!("/v2/ha/app/blobs/{digest}"))).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), all.len());
    }

    // docker through the balancer, pull back from each replica directly.
    let dk = Dockerd::start();
    let rootfs = tmp.path().join("rootfs.tar");
    write_tar(
        &rootfs,
        &[
            Entry::Random("big.bin", 12 * MIB),
            Entry::Bytes("hello", b"replicas\n"),
        ],
    );
    let image = format!("127.0.0.1:{}/ha/docker:v1", lb.port);
    dk.run(&["import", rootfs.to_str().unwrap(), &image]);
    let (digest, _) = dk.push(&image);
    for reg in [&a, &b] {
        let r = http("HEAD", &reg.url("/v2/ha/docker/manifests/v1")).unwrap();
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
        let direct = format!("{}/ha/docker:v1", reg.host());
        let out = dk.run(&["pull", &direct]);
        assert!(out.contains(&digest), "{out}");
    }
}
