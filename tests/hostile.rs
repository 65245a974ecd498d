//! Hostile clients against a running berth (a real 127.0.0.1 socket, a
//! filesystem root): the limits of `limits:` under a flood, path traversal
//! sent byte for byte, and the known vulnerability classes of registries
//! (docs/reliability.md lists each test and the CVE it guards against).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "hostile/limits.rs"]
mod limits;
#[path = "hostile/live.rs"]
mod live;
#[path = "common/loopback.rs"]
mod loopback;
#[path = "common/oci_bodies.rs"]
mod oci_bodies;
#[path = "hostile/traversal.rs"]
mod traversal;
#[path = "hostile/vulns.rs"]
mod vulns;
