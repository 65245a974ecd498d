//! Real S3 servers for tests: a single-node Garage and a moto server, each
//! started once per test binary on free 127.0.0.1 ports, with one bucket
//! that every test shares under its own random prefix.
//!
//! A shared server must outlive the test that happened to start it, and die
//! with the test binary: it is spawned by a thread that parks forever, with
//! `setpriv --pdeathsig` (the signal comes when that thread, i.e. the
//! process, ends). Garage runs under a small `sh` that removes its data
//! directory when it is told to stop.
//!
//! [`GarageCluster`] (`garage_cluster.rs`, re-exported) is different: a
//! 3-node Garage cluster owned by one test (for failure tests), whose nodes
//! can be killed and restarted.
//!
//! Needs `crate::procs` (tests/common/procs.rs) in the test binary.
#![allow(dead_code)]

use std::process::Command;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use berth::config::s3::S3Config;
use berth::storage::object_store::ObjectStoreDriver;
use object_store::aws::{AwsAuthorizer, AwsCredential};

use crate::procs::{daemon_command, find_tool, free_port, require_tool, wait_until};

#[path = "garage_cluster.rs"]
mod garage_cluster;
#[allow(unused_imports)] // only the failure tests use it
pub use garage_cluster::GarageCluster;

/// The bucket every test uses (Garage creates it at start; moto by PUT).
pub const BUCKET: &str = "registry";

/// A running S3 server and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Server {
    /// "garage" or "moto".
    pub kind: &'static str,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub region: &'static str,
    pub access_key: String,
    pub secret_key: String,
    /// Seconds from spawn to ready (reported by the tests).
    pub startup_secs: f64,
}

static GARAGE: OnceLock<Option<S3Server>> = OnceLock::new();
static MOTO: OnceLock<Option<S3Server>> = OnceLock::new();

/// The shared Garage, started on first use. `None` when `garage` is not
/// installed outside CI (the caller skips); under `CI=true` that panics.
pub fn garage() -> Option<&'static S3Server> {
    GARAGE
        .get_or_init(|| require_tool("garage").then(|| start_parked(start_garage)))
        .as_ref()
}

/// The shared moto server; see [`garage`].
pub fn moto() -> Option<&'static S3Server> {
    MOTO.get_or_init(|| require_tool("moto_server").then(|| start_parked(start_moto)))
        .as_ref()
}

/// Runs `start` on a thread that then parks for the life of the process, so
/// the server's parent-death signal fires only when the test binary exits.
pub fn start_parked<T: Send + 'static>(start: fn() -> T) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(start);
        let failed = result.is_err();
        let _ = tx.send(result);
        if !failed {
            loop {
                std::thread::park();
            }
        }
    });
    match rx.recv() {
        Ok(Ok(server)) => server,
        _ => panic!("test server failed to start (see the output above)"),
    }
}

fn random_hex(bytes: usize) -> String {
    hex::encode(
        (0..bytes)
            .map(|_| rand::random::<u8>())
            .collect::<Vec<u8>>(),
    )
}

/// A Garage node's configuration: sqlite metadata and data under `dir`,
/// RPC and S3 API on the given 127.0.0.1 ports.
fn garage_toml(dir: &std::path::Path, replication: u8, rpc: u16, api: u16, secret: &str) -> String {
    format!(
        "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
         replication_factor = {replication}\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
         rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
         [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{api}\"\n\
         root_domain = \".s3.garage\"\n",
        d = dir.display(),
    )
}

fn start_garage() -> S3Server {
    let started = std::time::Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("berth-garage-")
        .tempdir_in("/tmp")
        .expect("garage dir")
        .keep();
    let ports = crate::procs::free_ports(2);
    let (rpc, api) = (ports[0], ports[1]);
    let config = dir.join("garage.toml");
    std::fs::write(&config, garage_toml(&dir, 1, rpc, api, &random_hex(32)))
        .expect("write garage.toml");
    let access_key = format!("GK{}", random_hex(12));
    let secret_key = random_hex(32);
    let garage = find_tool("garage").expect("garage");
    // sh stops garage and removes its directory when signalled.
    let script = "\"$1\" -c \"$2/garage.toml\" server --single-node --default-bucket \
                  >\"$2/garage.log\" 2>&1 & child=$!; \
                  trap 'kill $child 2>/dev/null; wait $child; rm -rf \"$2\"; exit 0' TERM INT; \
                  wait $child";
    let mut cmd = daemon_command("sh");
    cmd.args(["-c", script, "sh"])
        .arg(&garage)
        .arg(&dir)
        .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key)
        .env("GARAGE_DEFAULT_SECRET_KEY", &secret_key)
        .env("GARAGE_DEFAULT_BUCKET", BUCKET)
        .env("RUST_LOG", "garage=warn")
        .stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn garage");
    wait_until(
        "garage to serve bucket info",
        Duration::from_secs(60),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("garage.log")).unwrap_or_default();
                panic!("garage exited early ({status}):\n{log}");
            }
            Command::new(&garage)
                .arg("-c")
                .arg(&config)
                .args(["bucket", "info", BUCKET])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        },
    );
    std::mem::forget(child);
    S3Server {
        kind: "garage",
        endpoint: format!("http://127.0.0.1:{api}"),
        region: "garage",
        access_key,
        secret_key,
        startup_secs: started.elapsed().as_secs_f64(),
    }
}

fn start_moto() -> S3Server {
    let started = std::time::Instant::now();
    let port = free_port();
    let mut cmd = daemon_command(find_tool("moto_server").expect("moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn().expect("spawn moto_server");
    std::mem::forget(child);
    let server = S3Server {
        kind: "moto",
        endpoint: format!("http://127.0.0.1:{port}"),
        region: "us-east-1",
        access_key: "testing".into(),
        secret_key: "testing".into(),
        startup_secs: 0.0,
    };
    wait_until(
        "moto_server to create the bucket",
        Duration::from_secs(60),
        || {
            server
                .signed("PUT", &format!("/{BUCKET}"))
                .is_ok_and(|(status, _)| status == 200 || status == 409)
        },
    );
    S3Server {
        startup_secs: started.elapsed().as_secs_f64(),
        ..server
    }
}

impl S3Server {
    /// A `storage.s3` section for this server under `root`, with the
    /// smallest part size so multipart code runs on modest objects.
    pub fn config(&self, root: &str) -> S3Config {
        S3Config {
            accesskey: self.access_key.clone(),
            secretkey: self.secret_key.clone(),
            region: self.region.into(),
            regionendpoint: self.endpoint.clone(),
            bucket: BUCKET.into(),
            rootdirectory: root.into(),
            forcepathstyle: Some(true),
            chunksize: 5 << 20,
            ..S3Config::default()
        }
    }

    /// A driver for this server under `root`.
    pub fn driver(&self, root: &str, redirect: bool) -> ObjectStoreDriver {
        berth::storage::object_store::s3::build(&self.config(root), redirect).expect("s3 driver")
    }

    /// One SigV4-signed request with an empty body, for what object_store
    /// has no call for (creating buckets, listing multipart uploads).
    /// Returns (status, body).
    pub fn signed(&self, method: &str, path_and_query: &str) -> Result<(u16, String), String> {
        let url = format!("{}{path_and_query}", self.endpoint);
        let cred = AwsCredential {
            key_id: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            token: None,
        };
        let mut req: object_store::client::HttpRequest = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(object_store::client::HttpRequestBody::from(Vec::<u8>::new()))
            .map_err(|e| e.to_string())?;
        AwsAuthorizer::new(&cred, "s3", self.region).authorize(&mut req, None);
        // A private runtime on a private thread: callers may be inside one.
        let headers = req.headers().clone();
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let r = reqwest::Client::new()
                    .request(method, &url)
                    .headers(headers)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = r.status().as_u16();
                let body = r.text().await.map_err(|e| e.to_string())?;
                Ok((status, body))
            })
        })
        .join()
        .map_err(|_| "request thread panicked".to_string())?
    }

    /// Keys of the multipart uploads in progress under `prefix` (no leading
    /// slash), from ListMultipartUploads.
    pub fn multipart_uploads(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self
            .signed("GET", &format!("/{BUCKET}?prefix={prefix}&uploads="))
            .expect("ListMultipartUploads");
        assert_eq!(status, 200, "ListMultipartUploads: {body}");
        keys_in(&body, "<Upload>")
    }

    /// Keys of the objects under `prefix` (no leading slash), the driver's
    /// own `~` names included, from ListObjectsV2 (first 1,000).
    pub fn object_keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self
            .signed("GET", &format!("/{BUCKET}?list-type=2&prefix={prefix}"))
            .expect("ListObjectsV2");
        assert_eq!(status, 200, "ListObjectsV2: {body}");
        keys_in(&body, "<Contents>")
    }
}

/// The `<Key>` of every `element` in an S3 XML listing.
fn keys_in(body: &str, element: &str) -> Vec<String> {
    body.split(element)
        .skip(1)
        .filter_map(|u| {
            let start = u.find("<Key>")? + "<Key>".len();
            let end = u[start..].find("</Key>")? + start;
            Some(u[start..end].to_string())
        })
        .collect()
}

/// A fresh random prefix (a `rootdirectory`) for one test or registry.
pub fn fresh_root(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}
