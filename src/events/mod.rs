//! Notifications (registry:2's webhooks): the HTTP layer reports what
//! happened ([`RegistryEvent`]) with a small [`RequestContext`] to an
//! [`EventSink`]; the [`Notifier`] turns each into distribution's envelope,
//! queues it per endpoint (bounded; journaled on filesystem storage) and
//! delivers it in the background. Nothing here sees an HTTP server type,
//! and nothing here ever blocks or fails a request.

mod backlog;
mod deliver;
pub mod envelope;
mod fetched;
mod journal;
mod notifier;
mod status;

pub use envelope::{Event, Reference};
pub use fetched::FetchEvents;
pub use notifier::Notifier;
pub use status::EndpointStatus;

use crate::config::Config;

/// What happened in the registry, as the request handlers saw it succeed.
/// Digests are `algorithm:hex` strings; sizes are byte counts.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryEvent {
    /// An upload completed (monolithic or chunked).
    BlobPushed {
        repository: String,
        digest: String,
        size: u64,
    },
    /// A blob was served (GET or HEAD, as registry:2 reports both).
    BlobPulled {
        repository: String,
        digest: String,
        size: u64,
    },
    /// A blob was linked from another repository (`?mount=&from=`).
    BlobMounted {
        repository: String,
        from: String,
        digest: String,
        size: u64,
    },
    /// A blob was unlinked from a repository.
    BlobDeleted { repository: String, digest: String },
    /// A manifest was stored (by tag when `tag` is set).
    ManifestPushed(ManifestTarget),
    /// A manifest was served (GET or HEAD, as registry:2 reports both).
    ManifestPulled(ManifestTarget),
    /// A manifest revision was deleted.
    ManifestDeleted { repository: String, digest: String },
    /// A tag was deleted (on its own, or with the manifest it pointed at).
    TagDeleted { repository: String, tag: String },
    /// The pull-through cache stored a blob fetched from an upstream
    /// (berth's `fetch` action; clients' pulls are `pull` events).
    BlobFetched {
        repository: String,
        digest: String,
        size: u64,
    },
    /// The pull-through cache stored a manifest fetched from an upstream.
    ManifestFetched(ManifestTarget),
}

/// The manifest an event is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestTarget {
    /// Repository name.
    pub repository: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest media type.
    pub media_type: String,
    /// Manifest length in bytes.
    pub size: u64,
    /// The tag used in the request, if it was one.
    pub tag: Option<String>,
    /// Config and layers (images) or child manifests (indexes); sent only
    /// with `notifications.events.includereferences`.
    pub references: Vec<Reference>,
}

/// Who asked, from where: the `request` and `actor` records of an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestContext {
    /// The request id (`X-Request-Id`).
    pub id: String,
    /// The client's address.
    pub addr: String,
    /// The `Host` the client used.
    pub host: String,
    /// The HTTP method.
    pub method: String,
    /// The client's `User-Agent`.
    pub useragent: String,
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// Scheme, host and prefix URLs in events start with (`http://h:5000`).
    pub base_url: String,
}

/// Where the HTTP layer sends events. Implementations never block.
pub trait EventSink: Send + Sync {
    /// True when anything listens: handlers skip building events otherwise.
    fn enabled(&self) -> bool;
    /// True when manifest events list references (`includereferences`).
    fn wants_references(&self) -> bool {
        false
    }
    /// Accepts one event; never blocks, never fails the request.
    fn record(&self, ctx: &RequestContext, event: RegistryEvent);
    /// Per-endpoint counters, for `/debug/events`.
    fn status(&self) -> Vec<EndpointStatus> {
        Vec::new()
    }
    /// Appends the counters in Prometheus text format.
    fn render_metrics(&self, _out: &mut String) {}
}

/// The sink when no endpoint is configured.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn enabled(&self) -> bool {
        false
    }
    fn record(&self, _ctx: &RequestContext, _event: RegistryEvent) {}
}

/// One line per configured endpoint for `berth config check`: name, URL
/// without credentials, header names (never values).
pub fn describe_endpoints(config: &Config) -> Vec<String> {
    let Some(n) = &config.notifications else {
        return Vec::new();
    };
    n.endpoints
        .iter()
        .map(|e| {
            let headers: Vec<&str> = e.headers.keys().map(String::as_str).collect();
            format!(
                "notifications endpoint {:?}{}: {} (timeout {:?}, threshold {}, backoff {:?}{}{})",
                e.name,
                if e.disabled { " (disabled)" } else { "" },
                e.redacted_url(),
                e.timeout(),
                e.threshold(),
                e.backoff(),
                if headers.is_empty() {
                    String::new()
                } else {
                    format!(", headers {}", headers.join(", "))
                },
                if e.hmacsecret.is_empty() {
                    ""
                } else {
                    ", signed"
                },
            )
        })
        .collect()
}

/// Builds each enabled endpoint's client once (header values, `cafile`),
/// so `config check` and start-up fail on what delivery would fail on.
pub fn check_endpoints(config: &Config) -> anyhow::Result<()> {
    let Some(n) = &config.notifications else {
        return Ok(());
    };
    for e in n.endpoints.iter().filter(|e| !e.disabled) {
        deliver::Sender::new(e)
            .map_err(|err| anyhow::anyhow!("notifications endpoint {:?}: {err}", e.name))?;
    }
    Ok(())
}

/// distribution's `Manifest.References()`: config then layers of an
/// image, the child manifests of an index.
pub fn references(media_type: &str, body: &[u8]) -> Vec<Reference> {
    let Ok(parsed) = crate::oci::manifest::parse(Some(media_type), body) else {
        return Vec::new();
    };
    let descriptors = match parsed.kind {
        crate::oci::manifest::ManifestKind::Image => parsed.blobs,
        crate::oci::manifest::ManifestKind::Index => parsed.manifests,
    };
    descriptors
        .into_iter()
        .map(|d| Reference {
            media_type: d.media_type,
            size: d.size,
            digest: d.digest.to_string(),
        })
        .collect()
}
