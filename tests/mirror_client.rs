//! The mirror's upstream client (`berth::mirror::HttpUpstream`) against
//! real registries on 127.0.0.1: berth itself (anonymous, htpasswd, its
//! own token issuer) and CNCF distribution 2.8.2 (`docker-registry`, with
//! htpasswd and with berth's issuer as its token server), plus small
//! scripted servers for what real registries will not do on demand: a
//! recording token realm on another host, 503/429, redirects to another
//! host, stalled bodies.

#![allow(clippy::unwrap_used)]

#[path = "common/clients.rs"]
mod clients;
#[path = "common/procs.rs"]
mod procs;

mod mirror_client {
    pub mod berth;
    pub mod distribution;
    pub mod failures;
    pub mod fake;
    pub mod realm;
    pub mod support;
    pub mod tls;
}
