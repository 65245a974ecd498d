//! Real-client interoperability tests: docker (a private dockerd), skopeo,
//! buildah, podman and CNCF distribution 2.8.2 against a live `berth serve`
//! on 127.0.0.1. See docs/testing.md.
//!
//! The registry under test is berth; `BERTH_INTEROP_SERVER=distribution`
//! points the client tests at distribution instead, to check the tests
//! themselves against the reference implementation.

#![allow(clippy::unwrap_used)]

#[path = "common/azure.rs"]
mod azure;
#[path = "common/clients.rs"]
mod clients;
#[path = "common/procs.rs"]
mod procs;
#[path = "common/s3.rs"]
mod s3;

mod interop {
    mod auth;
    mod azure;
    mod buildah;
    mod containerd;
    mod deploy;
    mod distribution;
    mod docker;
    mod garage_cluster;
    mod object_stores;
    mod oras;
    mod podman;
    mod replicas;
    mod s3;
    mod skopeo;
}

use procs::{require_tools, tempdir, Registry, RegistryOpts, Server};

/// Everything a client test needs: a scratch directory and the registry
/// under test serving storage inside it. `None` (test skipped) when a tool
/// is missing outside CI.
pub struct Setup {
    // Field order is drop order: the registry stops before its dir goes.
    pub reg: Registry,
    pub tmp: tempfile::TempDir,
}

/// Checks `tools` (plus what the server needs) and starts `server`.
pub fn setup_with(server: Server, tools: &[&str], opts: RegistryOpts) -> Option<Setup> {
    if !require_tools(&[tools, server.tools()].concat()) {
        return None;
    }
    let tmp = tempdir("berth-it-");
    let reg = Registry::start(server, &tmp.path().join("storage"), opts);
    Some(Setup { reg, tmp })
}

/// [`setup_with`] for the registry under test, default options.
pub fn setup(tools: &[&str]) -> Option<Setup> {
    setup_with(
        Server::under_test(),
        tools,
        RegistryOpts {
            delete_enabled: false,
        },
    )
}

const MIB: u64 = 1024 * 1024;
