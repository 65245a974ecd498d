//! Two berth instances on one storage behind nginx round robin, as replicas
//! behind a load balancer: uploads hop between instances and complete. The
//! storage is a shared directory, or one Garage bucket and rootdirectory.

use std::path::Path;
use std::time::Duration;

use crate::clients::http;
use crate::procs::{
    daemon_command, find_tool, free_port, require_tools, tempdir, wait_until, write_tar, Dockerd,
    Entry, Proc, Registry, Server,
};
use crate::s3::fresh_root;
use crate::{RegistryOpts, MIB};

/// nginx in front of `upstreams`, logging which upstream took each request.
pub(super) struct Nginx {
    pub(super) port: u16,
    pub(super) log: std::path::PathBuf,
    _proc: Proc,
}

impl Nginx {
    pub(super) fn start(dir: &Path, upstreams: &[u16]) -> Nginx {
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

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A request with a body and headers; returns status and headers.
pub(super) fn send(
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

impl Nginx {
    /// The upstreams (`127.0.0.1:PORT`) that took requests whose URI
    /// contains `needle`, from the access log.
    pub(super) fn upstreams_for(&self, needle: &str) -> std::collections::BTreeSet<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|u| u.contains(needle))
            })
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect()
    }
}

/// A chunked upload through `lb`: POST, one PATCH per chunk, PUT. Each
/// chunk is over the 5 MiB S3 part size, so on S3 every PATCH, whichever
/// instance takes it, sends at least one multipart part. `between(i)` runs
/// after PATCH `i` (0-based). Returns (upload uuid, digest, content).
pub(super) fn chunked_upload(
    lb: &Nginx,
    repo: &str,
    chunks: u8,
    mut between: impl FnMut(u8),
) -> (String, String, Vec<u8>) {
    let (status, h) = send(
        "POST",
        &lb.url(&format!("/v2/{repo}/blobs/uploads/")),
        &[],
        vec![],
    );
    assert_eq!(status, 202);
    let uuid = h["docker-upload-uuid"].to_str().unwrap().to_string();
    let mut loc = h["location"].to_str().unwrap().to_string();
    let mut all = Vec::new();
    for i in 0..chunks {
        let c = crate::procs::random_bytes(5 * MIB as usize + 512 * 1024 + i as usize);
        let range = format!("{}-{}", all.len(), all.len() + c.len() - 1);
        let (status, h) = send("PATCH", &loc, &[("content-range", range)], c.clone());
        assert_eq!(status, 202, "PATCH {i}");
        all.extend_from_slice(&c);
        assert_eq!(h["range"].to_str().unwrap(), format!("0-{}", all.len() - 1));
        loc = h["location"].to_str().unwrap().to_string();
        between(i);
    }
    let digest = berth::oci::digest::Digest::sha256_of(&all).to_string();
    let (status, h) = send("PUT", &format!("{loc}?digest={digest}"), &[], vec![]);
    assert_eq!(status, 201, "PUT completes the upload");
    assert_eq!(h["docker-content-digest"].to_str().unwrap(), digest);
    (uuid, digest, all)
}

/// Every host in `hosts` serves the blob, byte for byte.
pub(super) fn blob_everywhere(hosts: &[String], repo: &str, digest: &str, content: &[u8]) {
    for host in hosts {
        let url = format!("http://{host}/v2/{repo}/blobs/{digest}");
        let r = http("GET", &url).unwrap();
        assert_eq!(r.status, 200, "GET {url}");
        assert!(r.body == content, "blob bytes from {host}");
    }
}

/// The scenario on two running replicas `hosts` (`127.0.0.1:PORT`): a
/// chunked upload through nginx whose requests went to both, then docker
/// push through nginx and pull from each replica directly.
fn hop_and_push(tmp: &Path, hosts: [String; 2]) -> Nginx {
    let ports: Vec<u16> = hosts
        .iter()
        .map(|h| h.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let lb = Nginx::start(tmp, &ports);

    // Round robin sends consecutive requests to alternating instances.
    let (uuid, digest, all) = chunked_upload(&lb, "ha/app", 4, |_| {});
    let hops = lb.upstreams_for(&uuid);
    let expected: std::collections::BTreeSet<String> = hosts.iter().cloned().collect();
    assert_eq!(
        hops,
        expected,
        "upload requests went to both replicas:\n{}",
        std::fs::read_to_string(&lb.log).unwrap()
    );
    blob_everywhere(&hosts, "ha/app", &digest, &all);

    // docker through the balancer, pull back from each replica directly.
    let dk = Dockerd::start();
    let rootfs = tmp.join("rootfs.tar");
    write_tar(
        &rootfs,
        &[
            Entry::Random("big.bin", 12 * MIB),
            Entry::Bytes("hello", b"replicas\n"),
        ],
    );
    let image = format!("127.0.0.1:{}/ha/docker:v1", lb.port);
    dk.run(&["import", rootfs.to_str().unwrap(), &image]);
    let id = dk.inspect(&image, "{{.Id}}");
    let (digest, _) = dk.push(&image);
    assert_eq!(lb.upstreams_for("/v2/ha/docker/").len(), 2, "push hopped");
    dk.run(&["rmi", "-f", &id]);
    for host in &hosts {
        let r = http("HEAD", &format!("http://{host}/v2/ha/docker/manifests/v1")).unwrap();
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
        let direct = format!("{host}/ha/docker:v1");
        let out = dk.run(&["pull", &direct]);
        assert!(out.contains(&digest), "{out}");
        assert_eq!(dk.inspect(&direct, "{{.Id}}"), id, "image ID from {host}");
        dk.run(&["rmi", "-f", &id]);
    }
    lb
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
    hop_and_push(tmp.path(), [a.host(), b.host()]);
}

/// The same with both replicas configured with `storage.s3` on one Garage
/// bucket and rootdirectory (redirects off, so blob bytes come through
/// berth); afterwards no multipart upload is left open in the bucket.
#[test]
fn replicas_on_one_garage_bucket_behind_nginx() {
    if !require_tools(&["nginx", "docker", "dockerd", "garage"]) {
        return;
    }
    let Some(garage) = crate::s3::garage() else {
        return;
    };
    let tmp = tempdir("berth-replicas-s3-");
    let root = fresh_root("replicas");
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        replicas.push(super::s3::serve_on_garage(garage, &root, false, &dir));
    }
    let hosts = [0, 1].map(|i| format!("127.0.0.1:{}", replicas[i].1));
    hop_and_push(tmp.path(), hosts);
    assert!(
        garage.multipart_uploads(&root).is_empty(),
        "multipart uploads left: {:?}",
        garage.multipart_uploads(&root)
    );
}
