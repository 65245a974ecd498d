//! Wiring of the pull-through cache: `proxy:`/`mirrors:` entries become
//! upstream clients ([`crate::mirror`]) and the registry layer's
//! [`Mirrors`] table.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::mirror::{is_docker_hub, MirrorConfig, ProxyConfig};
use crate::config::Config;
use crate::mirror::{HttpUpstream, Upstream, UpstreamSettings};
use crate::registry::pull_through::{FetchLimits, MirrorEntry, Mirrors, Mode};
use crate::registry::Registry;

/// What one upstream client is built from.
struct EntrySettings<'a> {
    label: String,
    remoteurl: &'a str,
    username: &'a str,
    password: &'a str,
    tokenrealms: &'a [String],
    cafile: &'a str,
}

/// The cache the configuration describes, `None` without `proxy:` or
/// `mirrors:`. Fails when an upstream client cannot be set up (a CA file
/// that does not read), naming the entry.
pub fn mirrors_for(config: &Config) -> anyhow::Result<Option<Mirrors>> {
    let limits = FetchLimits {
        max_concurrent: config.mirrorfetch.maxconcurrent.max(1),
        spool_dir: if config.mirrorfetch.spooldir.is_empty() {
            std::env::temp_dir()
        } else {
            PathBuf::from(&config.mirrorfetch.spooldir)
        },
        ..FetchLimits::default()
    };
    if let Some(p) = config.proxy.as_ref().filter(|p| !p.remoteurl.is_empty()) {
        let entry = proxy_entry(p)?;
        return Ok(Some(Mirrors::new(Mode::Proxy(entry), limits)));
    }
    if config.mirrors.is_empty() {
        return Ok(None);
    }
    let entries = config
        .mirrors
        .iter()
        .map(mirror_entry)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Mirrors::new(Mode::Prefixes(entries), limits)))
}

/// `registry` pulling through the configured mirrors, if any.
pub fn attach(config: &Config, registry: Registry) -> anyhow::Result<Registry> {
    Ok(match mirrors_for(config)? {
        Some(m) => registry.with_mirrors(m),
        None => registry,
    })
}

fn proxy_entry(p: &ProxyConfig) -> anyhow::Result<Arc<MirrorEntry>> {
    let upstream = connect(&EntrySettings {
        label: "proxy".into(),
        remoteurl: &p.remoteurl,
        username: &p.username,
        password: &p.password,
        tokenrealms: &[],
        cafile: "",
    })?;
    Ok(Arc::new(MirrorEntry {
        prefix: String::new(),
        remote: p.remoteurl.clone(),
        // registry:2's proxy maps names 1:1 (clients send `library/`).
        docker_hub: false,
        hosts: Vec::new(),
        tag_revalidate: p.tagrevalidate,
        upstream,
        stats: Default::default(),
    }))
}

fn mirror_entry(m: &MirrorConfig) -> anyhow::Result<Arc<MirrorEntry>> {
    let upstream = connect(&EntrySettings {
        label: m.prefix.clone(),
        remoteurl: &m.remoteurl,
        username: &m.username,
        password: &m.password,
        tokenrealms: &m.tokenrealms,
        cafile: &m.cafile,
    })?;
    Ok(Arc::new(MirrorEntry {
        prefix: m.prefix.clone(),
        remote: m.remoteurl.clone(),
        docker_hub: is_docker_hub(&m.remoteurl),
        hosts: m
            .hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        tag_revalidate: m.tagrevalidate,
        upstream,
        stats: Default::default(),
    }))
}

/// The upstream client of one entry.
fn connect(s: &EntrySettings<'_>) -> anyhow::Result<Arc<dyn Upstream>> {
    let non_empty = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let settings = UpstreamSettings {
        label: s.label.clone(),
        remote_url: s.remoteurl.to_string(),
        username: non_empty(s.username),
        password: non_empty(s.password),
        token_realm_hosts: s.tokenrealms.to_vec(),
        ca_file: non_empty(s.cafile).map(PathBuf::from),
        // The client's documented timeouts (docs/mirror.md, "Failures").
        ..UpstreamSettings::default()
    };
    Ok(Arc::new(HttpUpstream::new(settings)?))
}
