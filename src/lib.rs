//! berth: a container image registry speaking the OCI distribution spec v1.1
//! and the Docker Registry HTTP API V2, on distribution's storage layout.
//!
//! Layers, one direction only: `http` -> `registry` -> `storage`.

pub mod app;
pub mod auth;
pub mod cert;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod healthcheck;
pub mod http;
pub mod logfields;
pub mod memtrim;
pub mod metrics;
pub mod mirror;
pub mod oci;
pub mod registry;
pub mod rlimit;
pub mod storage;
pub mod tls;
pub mod ui;
