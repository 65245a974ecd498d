//! The status page's sections about berth's outside connections: one per
//! pull-through mirror (its upstream, retention and the counters `/metrics`
//! shows) and one per notification endpoint (the counters `/debug/events`
//! shows). URLs lose user information and query values
//! ([`crate::config::redact::url`]); values are escaped by the page.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::html;
use super::status::{yes_no, Section};
use crate::config::duration::format_go_duration;
use crate::config::redact;
use crate::http::HttpState;

/// One section per configured mirror (`proxy:` or `mirrors:` entry).
pub(super) fn mirrors(st: &HttpState) -> Vec<Section> {
    let Some(mirrors) = st.registry.mirrors() else {
        return Vec::new();
    };
    mirrors
        .entries()
        .into_iter()
        .map(|e| {
            // Retention lives in the configuration (the garbage collector
            // enforces it); the entry is matched by its prefix.
            let (title, mode, ttl, maxsize) = if e.prefix.is_empty() {
                let ttl = st.config.proxy.as_ref().map(|p| p.ttl);
                (
                    "Mirror (proxy)".to_string(),
                    "proxy: every repository".to_string(),
                    ttl,
                    None,
                )
            } else {
                let m = st.config.mirrors.iter().find(|m| m.prefix == e.prefix);
                (
                    format!("Mirror {}", e.prefix),
                    format!("prefix: {}/…", e.prefix),
                    m.map(|m| m.ttl),
                    m.and_then(|m| m.maxsize),
                )
            };
            let s = &e.stats;
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            let fetched = load(&s.bytes_fetched);
            Section {
                title,
                rows: vec![
                    ("Mode", mode),
                    ("Upstream", redact::url(&e.remote)),
                    ("TTL", ttl.map_or_else(|| "—".to_string(), describe_ttl)),
                    (
                        "Max size",
                        maxsize.map_or_else(|| "no limit".to_string(), html::size),
                    ),
                    ("Tags rechecked after", format_go_duration(e.tag_revalidate)),
                    ("Hits", load(&s.hits).to_string()),
                    ("Misses", load(&s.misses).to_string()),
                    ("Upstream errors", load(&s.upstream_errors).to_string()),
                    (
                        "Fetched",
                        format!("{} ({fetched} bytes)", html::size(fetched)),
                    ),
                ],
            }
        })
        .collect()
}

fn describe_ttl(d: Duration) -> String {
    if d.is_zero() {
        "0 (kept forever)".to_string()
    } else {
        format_go_duration(d)
    }
}

/// One section per enabled notification endpoint.
pub(super) fn notifications(st: &HttpState) -> Vec<Section> {
    st.events
        .status()
        .into_iter()
        .map(|e| Section {
            title: format!("Notifications {}", e.name),
            rows: vec![
                ("URL", redact::url(&e.url)),
                ("Queue depth", e.pending.to_string()),
                ("Delivered", e.sent.to_string()),
                ("Failed attempts", e.failed.to_string()),
                ("Dropped", e.dropped.to_string()),
                (
                    "Last error",
                    e.last_error.unwrap_or_else(|| "none".to_string()),
                ),
                (
                    "Backlog",
                    yes_no(e.durable, "journaled (survives restarts)", "in memory"),
                ),
            ],
        })
        .collect()
}
