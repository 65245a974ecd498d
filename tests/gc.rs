//! Garbage collection and upload purging: mark-phase tables, online GC under
//! concurrent pushes, compatibility with distribution 2.8.2's
//! `garbage-collect`, and the upload purger. See docs/gc.md.

#![allow(clippy::unwrap_used)]

#[path = "common/clients.rs"]
mod clients;
#[path = "common/oneshot.rs"]
mod oneshot;
#[path = "common/procs.rs"]
mod procs;

mod gc {
    pub mod compat;
    pub mod expiry;
    pub mod mark;
    pub mod purge;
    pub mod stress;
}

#[path = "gc/harness.rs"]
mod harness;
