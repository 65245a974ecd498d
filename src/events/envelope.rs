//! distribution's event envelope (`notifications/event.go`), field for
//! field: the same names, the same fields omitted when empty (Go's
//! `omitempty`), `length` repeating `size`, and `request.id`, `method` and
//! `useragent` always present. Bodies are indented like registry:2's.

use serde::{Deserialize, Serialize};

use super::{ManifestTarget, RegistryEvent, RequestContext};

/// `Content-Type` of every notification request.
pub const EVENTS_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// registry:2's media type for blobs in events (it knows no better).
const BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// One event as sent (and as journaled, one JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// A UUID per event.
    pub id: String,
    /// When it happened (RFC 3339 with nanoseconds).
    pub timestamp: String,
    /// `push`, `pull`, `mount`, `delete` (`mirror`: berth's pull-through cache).
    pub action: String,
    /// What the event is about.
    pub target: Target,
    /// The request that caused it.
    pub request: RequestRecord,
    /// Who made it.
    pub actor: ActorRecord,
    /// Which registry instance saw it.
    pub source: SourceRecord,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `target`: a descriptor plus where it lives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Media type (blobs: `application/octet-stream`, as registry:2).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Digest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// The same as `size` (registry:2 keeps it for old receivers).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub length: u64,
    /// Repository name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repository: String,
    /// Source repository of a mount.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_repository: String,
    /// Where the content can be fetched.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The tag, for manifests pushed or pulled by tag and tag deletes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// The manifest's references (with `includereferences`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// A descriptor in `target.references`, as distribution writes one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// Media type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Digest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
}

/// `request`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id (always present).
    #[serde(default)]
    pub id: String,
    /// Client address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub addr: String,
    /// Host the client asked for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// HTTP method (always present).
    #[serde(default)]
    pub method: String,
    /// User agent (always present).
    #[serde(default)]
    pub useragent: String,
}

/// `actor`: `{}` for anonymous requests, as registry:2 sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// The authenticated user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `source`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// `hostname:port` of this registry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub addr: String,
    /// A UUID made when this process started.
    #[serde(
        default,
        rename = "instanceID",
        skip_serializing_if = "String::is_empty"
    )]
    pub instance_id: String,
}

impl Event {
    /// The event registry:2 sends for `event`, as `ctx` made it.
    pub fn new(
        ctx: &RequestContext,
        event: RegistryEvent,
        source: &SourceRecord,
        include_references: bool,
    ) -> Event {
        let url = |repo: &str, kind: &str, digest: &str| {
            format!("{}/v2/{repo}/{kind}/{digest}", ctx.base_url)
        };
        let blob = |repository: String, digest: String, size: u64| Target {
            media_type: BLOB_MEDIA_TYPE.into(),
            size,
            length: size,
            url: url(&repository, "blobs", &digest),
            digest,
            repository,
            ..Target::default()
        };
        let manifest = |m: ManifestTarget| Target {
            url: url(&m.repository, "manifests", &m.digest),
            media_type: m.media_type,
            size: m.size,
            length: m.size,
            digest: m.digest,
            repository: m.repository,
            tag: m.tag.unwrap_or_default(),
            references: if include_references {
                m.references
            } else {
                Vec::new()
            },
            ..Target::default()
        };
        use RegistryEvent::*;
        let (action, target) = match event {
            BlobPushed {
                repository,
                digest,
                size,
            } => ("push", blob(repository, digest, size)),
            BlobPulled {
                repository,
                digest,
                size,
            } => ("pull", blob(repository, digest, size)),
            BlobMounted {
                repository,
                from,
                digest,
                size,
            } => (
                "mount",
                Target {
                    from_repository: from,
                    ..blob(repository, digest, size)
                },
            ),
            BlobDeleted { repository, digest } | ManifestDeleted { repository, digest } => (
                "delete",
                Target {
                    repository,
                    digest,
                    ..Target::default()
                },
            ),
            TagDeleted { repository, tag } => (
                "delete",
                Target {
                    repository,
                    tag,
                    ..Target::default()
                },
            ),
            ManifestPushed(m) => ("push", manifest(m)),
            ManifestPulled(m) => ("pull", manifest(m)),
            BlobFetched {
                repository,
                digest,
                size,
            } => ("fetch", blob(repository, digest, size)),
            ManifestFetched(m) => ("fetch", manifest(m)),
        };
        Event {
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: now_rfc3339(),
            action: action.into(),
            target,
            request: RequestRecord {
                id: ctx.id.clone(),
                addr: ctx.addr.clone(),
                host: ctx.host.clone(),
                method: ctx.method.clone(),
                useragent: ctx.useragent.clone(),
            },
            actor: ActorRecord {
                name: ctx.user.clone().unwrap_or_default(),
            },
            source: source.clone(),
        }
    }
}

/// Go's `time.Time` JSON form (RFC 3339, nanoseconds as needed).
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The request body for `events`: `{"events":[...]}`, indented with three
/// spaces as registry:2 indents it.
pub fn body(events: &[Event]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        events: &'a [Event],
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serializing plain strings and numbers cannot fail.
    let _ = Envelope { events }.serialize(&mut ser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            id: "rid".into(),
            addr: "10.0.0.1".into(),
            host: "reg:5000".into(),
            method: "PUT".into(),
            useragent: "docker/27".into(),
            user: None,
            base_url: "http://reg:5000".into(),
        }
    }

    fn json(e: &Event) -> serde_json::Value {
        serde_json::to_value(e).unwrap_or_default()
    }

    #[test]
    fn blob_push_has_registry2s_shape() {
        let src = SourceRecord {
            addr: "host:5000".into(),
            instance_id: "i".into(),
        };
        let e = Event::new(
            &ctx(),
            RegistryEvent::BlobPushed {
                repository: "a/b".into(),
                digest: "sha256:00".into(),
                size: 12,
            },
            &src,
            false,
        );
        let v = json(&e);
        assert_eq!(v["action"], "push");
        assert_eq!(v["target"]["mediaType"], BLOB_MEDIA_TYPE);
        assert_eq!(v["target"]["size"], 12);
        assert_eq!(v["target"]["length"], 12);
        assert_eq!(v["target"]["url"], "http://reg:5000/v2/a/b/blobs/sha256:00");
        assert!(v["target"].get("tag").is_none());
        assert_eq!(v["actor"], serde_json::json!({}));
        assert_eq!(v["source"]["instanceID"], "i");
        assert_eq!(v["request"]["useragent"], "docker/27");
    }

    #[test]
    fn deletes_carry_only_repository_and_digest_or_tag() {
        let e = Event::new(
            &ctx(),
            RegistryEvent::TagDeleted {
                repository: "r".into(),
                tag: "t".into(),
            },
            &SourceRecord::default(),
            false,
        );
        assert_eq!(
            json(&e)["target"],
            serde_json::json!({"repository": "r", "tag": "t"})
        );
        // Empty request fields that Go always writes stay.
        let mut c = ctx();
        c.useragent.clear();
        let e = Event::new(
            &c,
            RegistryEvent::BlobDeleted {
                repository: "r".into(),
                digest: "sha256:1".into(),
            },
            &SourceRecord::default(),
            false,
        );
        assert_eq!(json(&e)["request"]["useragent"], "");
    }

    #[test]
    fn references_only_when_enabled_and_body_round_trips() {
        let m = ManifestTarget {
            repository: "r".into(),
            digest: "sha256:m".into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 5,
            tag: Some("v1".into()),
            references: vec![Reference {
                media_type: "x".into(),
                size: 1,
                digest: "sha256:c".into(),
            }],
        };
        let off = Event::new(
            &ctx(),
            RegistryEvent::ManifestPushed(m.clone()),
            &SourceRecord::default(),
            false,
        );
        assert!(json(&off)["target"].get("references").is_none());
        let on = Event::new(
            &ctx(),
            RegistryEvent::ManifestPushed(m),
            &SourceRecord::default(),
            true,
        );
        assert_eq!(json(&on)["target"]["references"][0]["digest"], "sha256:c");
        assert_eq!(json(&on)["target"]["tag"], "v1");
        let b = body(std::slice::from_ref(&on));
        assert!(b.starts_with(b"{\n   \"events\": ["));
        let back: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(back["events"][0], json(&on));
    }
}
