//! Reporting to the notifier ([`crate::events`]) what a handler did, once
//! it succeeded: the request's context (user, address, host, method, user
//! agent, request id) and the typed event. Free when nothing listens.

use super::Req;
use crate::events::{ManifestTarget, RegistryEvent, RequestContext};
use crate::oci::digest::Digest;
use crate::oci::name::{Reference as NameRef, RepoName};

/// True when events are wanted (callers skip work otherwise).
pub(super) fn enabled(req: Req<'_>) -> bool {
    req.st.events.enabled()
}

/// Sends `event`, made by a `method` request, to the notifier.
pub(super) fn emit(req: Req<'_>, method: &str, event: RegistryEvent) {
    if !enabled(req) {
        return;
    }
    let header = |n: &str| req.header(n).unwrap_or_default().to_string();
    let ctx = RequestContext {
        id: header(super::access::REQUEST_ID),
        // As distribution: `ip:port` of a direct client, the IP a trusted
        // proxy names otherwise.
        addr: match (req.client, req.peer) {
            (Some(ip), Some(peer)) if ip == peer.ip() => peer.to_string(),
            (Some(ip), _) => ip.to_string(),
            (None, Some(peer)) => peer.to_string(),
            (None, None) => String::new(),
        },
        host: header("host"),
        method: method.to_string(),
        useragent: header("user-agent"),
        user: req.identity.name().map(str::to_string),
        base_url: req.location(""),
    };
    req.st.events.record(&ctx, event);
}

/// The manifest part of a manifest event; references only when the
/// notifier wants them (parsing costs). `size` is the manifest's length:
/// `body` is empty for a HEAD the pull-through cache answered from upstream.
pub(super) fn manifest_target(
    req: Req<'_>,
    name: &RepoName,
    reference: &NameRef,
    digest: &Digest,
    media_type: &str,
    body: &[u8],
    size: u64,
) -> ManifestTarget {
    let references = if req.st.events.wants_references() {
        crate::events::references(media_type, body)
    } else {
        Vec::new()
    };
    ManifestTarget {
        repository: name.to_string(),
        digest: digest.to_string(),
        media_type: media_type.to_string(),
        size,
        tag: match reference {
            NameRef::Tag(t) => Some(t.to_string()),
            NameRef::Digest(_) => None,
        },
        references,
    }
}
