//! Fault tests (issue 18, items 1-4): `berth serve` as a child process,
//! killed with SIGKILL mid-write, on a full or unwritable disk, behind a
//! failing object store, and as two replicas on one storage. See
//! docs/reliability.md.

#![allow(clippy::unwrap_used)]

#[path = "common/azure.rs"]
mod azure;
#[path = "common/clients.rs"]
mod clients;
#[path = "common/procs.rs"]
mod procs;
#[path = "common/s3.rs"]
mod s3;

mod faults {
    mod api;
    mod crash;
    mod crash_check;
    mod crash_gc;
    mod crash_model;
    mod disk_full;
    mod exhaustion;
    mod garage_nodes;
    mod mounts;
    mod object_store;
    mod proxy;
    mod replicas;
    mod stall;
    pub mod support;
}
