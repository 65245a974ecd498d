//! berth served in this process on a free 127.0.0.1 port, through the same
//! accept loop and connection settings `berth serve` uses: for the tests
//! that need a real socket (slow clients, h2c, hostile floods, a browser).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use berth::config::Config;
use berth::storage::filesystem::FilesystemDriver;

/// Serves `cfg` over a filesystem root at `root` until the returned task
/// is aborted (or the runtime ends); returns the address it listens on.
pub async fn serve_fs(cfg: Config, root: &Path) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let settings = berth::http::server::ConnSettings::from_config(&cfg.http);
    let app = berth::app::build_app(cfg, Arc::new(FilesystemDriver::new(root))).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(berth::http::server::serve_plain(
        listener,
        app,
        settings,
        std::future::pending(),
    ));
    (addr, task)
}
