//! Entry points for the fuzz targets in `fuzz/` (scripts/fuzz.sh): one per
//! parser that reads untrusted input. Each takes arbitrary bytes, must never
//! panic, and asserts what the parser promises (accepted values round-trip,
//! answers stay in bounds). Kept in the crate so the parsers can stay
//! private; the HTTP edge's live in [`crate::http::fuzz`].

use std::path::Path;

use crate::oci::digest::{Algorithm, Digest, Hasher};
use crate::oci::manifest::{self, ManifestKind};
use crate::oci::name::{Reference, RepoName, Tag, UploadId};
use crate::oci::sha256_state::{Sha256State, MARSHALLED_LEN};

pub use crate::http::fuzz::{content_range, endpoint, range};

/// Content-Types a manifest fuzz input picks from (its first byte).
const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some(manifest::OCI_MANIFEST),
    Some(manifest::OCI_INDEX),
    Some(manifest::DOCKER_MANIFEST),
    Some(manifest::DOCKER_MANIFEST_LIST),
    Some(manifest::DOCKER_MANIFEST_V1_SIGNED),
    Some("application/json"),
    Some("text/plain"),
];

/// Manifest and index parsing (byte 0 picks the Content-Type). An accepted
/// manifest is one thing (an image has a config and no children, an index
/// children and no config) and every descriptor it names has a valid digest.
pub fn manifest(data: &[u8]) {
    let Some((&ct, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(ct) % CONTENT_TYPES.len()];
    let Ok(parsed) = manifest::parse(content_type, body) else {
        return;
    };
    match parsed.kind {
        ManifestKind::Image => {
            assert!(parsed.config.is_some(), "an image without a config");
            assert!(parsed.manifests.is_empty(), "an image with children");
        }
        ManifestKind::Index => {
            assert!(parsed.config.is_none(), "an index with a config");
            assert!(parsed.blobs.is_empty(), "an index with blobs");
        }
    }
    for d in parsed.blobs.iter().chain(&parsed.manifests) {
        assert!(d.digest.to_string().parse::<Digest>().is_ok());
    }
    // The same bytes parse the same way again (no hidden state).
    assert_eq!(
        manifest::parse(content_type, body)
            .map(|p| p.media_type)
            .ok(),
        Some(parsed.media_type)
    );
}

/// The digest, repository name, tag, reference and upload id grammars:
/// whatever parses prints back to the same text and parses again.
pub fn grammars(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.parse::<Digest>() {
        assert_eq!(d.to_string(), text);
        assert_eq!(d.to_string().parse::<Digest>().ok(), Some(d));
    }
    if let Ok(n) = text.parse::<RepoName>() {
        assert_eq!(n.as_str(), text);
        assert!(!text.contains("..") || text.split('/').all(|c| c != ".."));
        assert!(!text.starts_with('/') && !text.contains('\\') && !text.contains('\0'));
    }
    if let Ok(t) = text.parse::<Tag>() {
        assert_eq!(t.as_str(), text);
        assert!(!text.contains('/') && !text.starts_with('.'));
    }
    if let Ok(r) = text.parse::<Reference>() {
        assert_eq!(r.to_string(), text);
    }
    if let Ok(id) = text.parse::<UploadId>() {
        assert_eq!(id.as_str(), text);
        assert!(!text.contains('/') && !text.contains('.') && !text.contains('\\'));
    }
}

/// The hashstate decoder (`_uploads/<id>/hashstates/sha256/<offset>`, which
/// another replica or registry:2 wrote): the first 108 bytes are the state,
/// the rest is fed to it. A decoded state marshals back to a state that
/// decodes to the same thing, and hashing on never panics.
pub fn hashstate(data: &[u8]) {
    let (state, rest) = data.split_at(data.len().min(MARSHALLED_LEN));
    let Some(s) = Sha256State::unmarshal(state) else {
        return;
    };
    let again = Sha256State::unmarshal(&s.marshal()).map(|t| t.marshal());
    assert_eq!(again, Some(s.marshal()));
    let mut h = s;
    h.update(rest);
    let _ = h.finish();
    if let Some(mut hasher) = Hasher::restore_state(Algorithm::Sha256, state) {
        hasher.update(rest);
        let _ = hasher.finish();
    }
}

/// The YAML configuration with `REGISTRY_*` overrides: the input is the
/// file, then after a NUL byte one `NAME=value` override per line. Loading
/// never panics; a loaded configuration validates and prints.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (yaml, env) = text.split_once('\0').unwrap_or((&text, ""));
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Ok((cfg, _warnings)) = crate::config::Config::load_str(yaml, "fuzz.yml", vars) {
        assert!(cfg.validate().is_ok());
        let _ = cfg.to_yaml();
        let _ = cfg.listen_addr();
    }
}

/// The htpasswd parser (what `auth.htpasswd.path` holds): never panics;
/// accepted files hold only bcrypt entries.
pub fn htpasswd(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(entries) = crate::auth::htpasswd::parse(Path::new("fuzz.htpasswd"), &text) {
        assert!(entries.hashes.values().all(|h| h.starts_with("$2")));
    }
}

/// Bearer token (JWT) verification and scope parsing: a token made of
/// arbitrary bytes is refused (never a panic, never accepted), with a
/// verifier holding a real ES256 key so the signature path runs; the same
/// input as a `scope` parameter never panics.
pub fn token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(verifier) = token_verifier() {
        assert!(
            verifier.verify(&text).is_err(),
            "an unsigned token was accepted: {text:?}"
        );
    }
    let _ = crate::auth::token::parse_scopes(&text);
}

/// The mirror's `WWW-Authenticate` parser (an upstream, or anyone between
/// it and berth, writes the header): never panics; the output is bounded,
/// schemes and parameter names are lowercase tokens, a name appears once
/// per challenge; printing the challenges canonically and parsing that
/// gives the same challenges; and a Bearer realm the client would use is
/// an absolute URL that realm pinning sends credentials only to on the
/// upstream's own host, and never with user information in it.
pub fn challenge(data: &[u8]) {
    use crate::mirror::challenge::{parse_challenges, MAX_CHALLENGES, MAX_PARAMS};
    use crate::mirror::realm::{realm_decision, RealmDecision};
    let text = String::from_utf8_lossy(data);
    let parsed = parse_challenges(&text);
    assert!(parsed.len() <= MAX_CHALLENGES);
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b))
    };
    for ch in &parsed {
        assert!(token(&ch.scheme) && ch.scheme == ch.scheme.to_ascii_lowercase());
        assert!(ch.params.len() <= MAX_PARAMS);
        assert!(ch.token68.is_none() || ch.params.is_empty());
        for (i, (name, _)) in ch.params.iter().enumerate() {
            assert!(
                token(name) && *name == name.to_ascii_lowercase(),
                "{name:?}"
            );
            assert!(
                ch.params[..i].iter().all(|(n, _)| n != name),
                "{name:?} twice"
            );
        }
    }
    let printed = print_challenges(&parsed);
    assert_eq!(parse_challenges(&printed), parsed, "{printed:?}");
    let upstream = reqwest::Url::parse("https://registry.example").ok();
    for realm in parsed
        .iter()
        .filter(|c| c.scheme == "bearer")
        .filter_map(|c| c.param("realm"))
    {
        let (Some(upstream), Ok(url)) = (upstream.as_ref(), reqwest::Url::parse(realm)) else {
            continue;
        };
        match realm_decision(upstream, &url, &[]) {
            RealmDecision::Credentials => {
                assert_eq!(url.scheme(), "https", "{realm:?}");
                assert_eq!(url.host_str(), Some("registry.example"), "{realm:?}");
                assert!(url.username().is_empty() && url.password().is_none());
            }
            RealmDecision::AnonymousOnly => {
                assert_eq!(url.scheme(), "https", "{realm:?}");
                assert!(url.username().is_empty() && url.password().is_none());
                assert!(url.host_str().is_some_and(|h| !h.is_empty()));
            }
            RealmDecision::Refused(_) => {}
        }
    }
}

/// Challenges as one canonical header value: `scheme p="v", q="w"`, or
/// `scheme token68`, joined by `, `.
fn print_challenges(challenges: &[crate::mirror::challenge::Challenge]) -> String {
    let quote = |v: &str| {
        let mut out = String::from("\"");
        for c in v.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    };
    let mut parts = Vec::new();
    for ch in challenges {
        let mut s = ch.scheme.clone();
        if let Some(t) = &ch.token68 {
            s.push(' ');
            s.push_str(t);
        }
        for (i, (name, value)) in ch.params.iter().enumerate() {
            s.push_str(if i == 0 { " " } else { ", " });
            s.push_str(name);
            s.push('=');
            s.push_str(&quote(value));
        }
        parts.push(s);
    }
    parts.join(", ")
}

/// One verifier per process (key generation is slow).
fn token_verifier() -> Option<&'static crate::auth::token::TokenVerifier> {
    static VERIFIER: std::sync::OnceLock<Option<crate::auth::token::TokenVerifier>> =
        std::sync::OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let cfg = crate::config::auth::TokenAuthConfig {
                builtin: true,
                ..Default::default()
            };
            crate::auth::token::TokenIssuer::from_config(&cfg)
                .ok()
                .map(|i| i.verifier())
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    /// Every committed seed (and every crash input kept as a seed) runs
    /// through its target in the ordinary test suite too, on stable.
    #[test]
    fn every_seed_passes_its_target() {
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 10] = [
            ("endpoint", super::endpoint),
            ("manifest", super::manifest),
            ("grammars", super::grammars),
            ("range", super::range),
            ("content_range", super::content_range),
            ("config", super::config),
            ("htpasswd", super::htpasswd),
            ("token", super::token),
            ("hashstate", super::hashstate),
            ("challenge", super::challenge),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, run) in targets {
            let dir = root.join(name);
            let mut seen = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = entry.map(|e| e.path()).unwrap_or_default();
                let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                run(&data);
                seen += 1;
            }
            assert!(seen > 0, "no seeds for {name}");
        }
    }
}
