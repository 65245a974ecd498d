//! Which local names are mirrored, and under which upstream name: `proxy`
//! mode maps every name 1:1 to its one upstream; `mirrors:` mode maps
//! `<prefix>/<name>` to that prefix's upstream (Docker Hub's one-component
//! names get `library/`) and leaves every other name local. containerd's
//! `?ns=<host>` folds into the same local names, so both share one cache.

use std::sync::Arc;

use super::{MirrorEntry, Mirrors};
use crate::oci::name::RepoName;
use crate::registry::RegistryError;

/// How the registry mirrors.
pub enum Mode {
    /// registry:2's `proxy:`: the whole registry is one upstream's mirror;
    /// pushes and deletes are refused (405 UNSUPPORTED, as registry:2).
    Proxy(Arc<MirrorEntry>),
    /// berth's `mirrors:`: upstreams under prefixes beside local names.
    Prefixes(Vec<Arc<MirrorEntry>>),
}

/// A mirrored name: its upstream and the name on the upstream.
#[derive(Clone)]
pub struct Route {
    pub entry: Arc<MirrorEntry>,
    pub upstream_name: String,
}

/// The kinds of write a mirror refuses or allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Upload start, cross-repository mount into the name, manifest PUT.
    Push,
    /// Manifest, tag or blob delete.
    Delete,
}

impl Mirrors {
    /// The upstream and upstream name of a local name, `None` for a local
    /// repository.
    pub fn route(&self, name: &RepoName) -> Option<Route> {
        match &self.mode {
            Mode::Proxy(entry) => Some(Route {
                entry: entry.clone(),
                upstream_name: name.as_str().to_string(),
            }),
            Mode::Prefixes(entries) => {
                let (first, rest) = name.as_str().split_once('/')?;
                let entry = entries.iter().find(|e| e.prefix == first)?;
                let upstream_name = if entry.docker_hub && !rest.contains('/') {
                    format!("library/{rest}")
                } else {
                    rest.to_string()
                };
                Some(Route {
                    entry: entry.clone(),
                    upstream_name,
                })
            }
        }
    }

    /// The local cache name for a containerd request with `?ns=<host>`:
    /// `<prefix>/<name>` when an entry lists the host, else `None` (the
    /// name is used as it is).
    pub fn ns_name(&self, host: &str, name: &RepoName) -> Option<RepoName> {
        let Mode::Prefixes(entries) = &self.mode else {
            return None;
        };
        let host = host.trim().to_ascii_lowercase();
        let entry = entries.iter().find(|e| e.hosts.contains(&host))?;
        format!("{}/{}", entry.prefix, name).parse().ok()
    }

    /// Refuses writes the mirror does not take: in `proxy` mode every push
    /// and delete (405 UNSUPPORTED, as registry:2); under a mirrored prefix
    /// pushes (403 DENIED naming the prefix); deletes of cached content
    /// there work as local deletes.
    pub fn check_write(&self, name: &RepoName, kind: WriteKind) -> Result<(), RegistryError> {
        match (&self.mode, kind) {
            (Mode::Proxy(_), _) => Err(RegistryError::Unsupported(
                "The operation is unsupported.",
            )),
            (Mode::Prefixes(_), WriteKind::Delete) => Ok(()),
            (Mode::Prefixes(_), WriteKind::Push) => match self.route(name) {
                Some(route) => Err(RegistryError::Denied(format!(
                    "{}/ is a pull-through mirror of {}: pushes into it are refused; push to a name outside it",
                    route.entry.prefix, route.entry.remote
                ))),
                None => Ok(()),
            },
        }
    }
}
