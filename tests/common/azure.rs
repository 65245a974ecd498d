//! Azurite (Microsoft's Azure Storage emulator, npm `azurite`) for tests:
//! `azurite-blob` started once per test binary on a free 127.0.0.1 port,
//! in memory, with telemetry off, and one container every test shares under
//! its own random prefix. Like the S3 servers (tests/common/s3.rs), it is
//! spawned by a parked thread with a parent-death signal, so it dies with
//! the test binary.
//!
//! Needs `crate::procs` and `crate::s3` in the test binary.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use berth::config::azure::AzureConfig;
use berth::storage::object_store::ObjectStoreDriver;
use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};

use crate::procs::{daemon_command, find_tool, free_port, require_tool, wait_until};

/// Azurite's well-known development account and key.
pub const ACCOUNT: &str = "devstoreaccount1";
/// The development account's key (public, documented by Microsoft).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The container every test uses.
pub const CONTAINER: &str = "registry";

/// A running Azurite and how to reach it.
#[derive(Debug, Clone)]
pub struct Azurite {
    /// Account URL, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub endpoint: String,
    /// Seconds from spawn to ready (reported by the tests).
    pub startup_secs: f64,
}

static AZURITE: OnceLock<Option<Azurite>> = OnceLock::new();

/// The shared Azurite, started on first use. `None` when `azurite-blob` is
/// not installed outside CI (the caller skips); under `CI=true` that panics.
pub fn azurite() -> Option<&'static Azurite> {
    AZURITE
        .get_or_init(|| require_tool("azurite-blob").then(|| crate::s3::start_parked(start)))
        .as_ref()
}

fn start() -> Azurite {
    let started = std::time::Instant::now();
    let port = free_port();
    let tool = find_tool("azurite-blob").expect("azurite-blob");
    let mut cmd = daemon_command(tool);
    cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args([
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ])
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn().expect("spawn azurite-blob");
    std::mem::forget(child);
    let server = Azurite {
        endpoint: format!("http://127.0.0.1:{port}/{ACCOUNT}"),
        startup_secs: 0.0,
    };
    wait_until(
        "azurite to create the container",
        Duration::from_secs(60),
        || {
            server
                .signed("PUT", &format!("/{CONTAINER}?restype=container"))
                .is_ok_and(|(status, _)| status == 201 || status == 409)
        },
    );
    Azurite {
        startup_secs: started.elapsed().as_secs_f64(),
        ..server
    }
}

impl Azurite {
    /// A `storage.azure` section for Azurite under `root`, with 5 MiB
    /// blocks as for the S3 servers, so the suite's objects above that go
    /// through block uploads (the Azure cases use 1 MiB blocks).
    pub fn config(&self, root: &str) -> AzureConfig {
        AzureConfig {
            accountname: ACCOUNT.into(),
            accountkey: KEY.into(),
            container: CONTAINER.into(),
            serviceurl: self.endpoint.clone(),
            rootdirectory: root.into(),
            chunksize: 5 << 20,
            ..AzureConfig::default()
        }
    }

    /// A driver for Azurite under `root`.
    pub fn driver(&self, root: &str, redirect: bool) -> ObjectStoreDriver {
        berth::storage::object_store::azure::build(&self.config(root), redirect)
            .expect("azure driver")
    }

    /// A driver with 1 MiB blocks (the smallest berth accepts), so block
    /// uploads run on objects of a few MiB.
    pub fn small_block_driver(&self, root: &str, redirect: bool) -> ObjectStoreDriver {
        let cfg = AzureConfig {
            chunksize: 1 << 20,
            ..self.config(root)
        };
        berth::storage::object_store::azure::build(&cfg, redirect).expect("azure driver")
    }

    /// One SharedKey-signed request with an empty body, for what
    /// object_store has no call for (creating the container, listing a
    /// blob's uncommitted blocks). Returns (status, body).
    pub fn signed(&self, method: &str, path_and_query: &str) -> Result<(u16, String), String> {
        let url = format!("{}{path_and_query}", self.endpoint);
        let key = AzureAccessKey::try_new(KEY).map_err(|e| e.to_string())?;
        let cred = AzureCredential::AccessKey(key);
        let mut req: object_store::client::HttpRequest = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-length", "0")
            .body(object_store::client::HttpRequestBody::from(Vec::<u8>::new()))
            .map_err(|e| e.to_string())?;
        AzureAuthorizer::new(&cred, ACCOUNT).authorize(&mut req);
        let headers = req.headers().clone();
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        // A private runtime on a private thread: callers may be inside one.
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

    /// How many uncommitted blocks the blob `name` (no leading slash) has,
    /// from Get Block List; 0 when the blob name is unknown.
    pub fn uncommitted_blocks(&self, name: &str) -> usize {
        let (status, body) = self
            .signed(
                "GET",
                &format!("/{CONTAINER}/{name}?comp=blocklist&blocklisttype=uncommitted"),
            )
            .expect("Get Block List");
        if status == 404 {
            return 0;
        }
        assert_eq!(status, 200, "Get Block List: {body}");
        body.split("<UncommittedBlocks>")
            .nth(1)
            .and_then(|s| s.split("</UncommittedBlocks>").next())
            .map_or(0, |s| s.matches("<Block>").count())
    }
}
