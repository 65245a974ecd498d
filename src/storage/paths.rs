//! Storage keys, identical to distribution's (`registry/storage/paths.go`), so
//! a directory or bucket written by registry:2 is served in place and back.
//!
//! ```text
//! /docker/registry/v2/
//!   blobs/<alg>/<first 2 hex>/<hex>/data
//!   repositories/<name>/
//!     _layers/<alg>/<hex>/link                        "sha256:<hex>" (no newline)
//!     _manifests/revisions/<alg>/<hex>/link
//!     _manifests/tags/<tag>/current/link
//!     _manifests/tags/<tag>/index/<alg>/<hex>/link
//!     _uploads/<uuid>/data | startedat | hashstates/<alg>/<offset>
//!     _referrers/<alg>/<hex>/<alg>/<hex>/link         berth only: subject -> referrer
//! ```
//! distribution skips any `_`-prefixed directory it does not know, so the
//! `_referrers` index (rebuildable from the manifests) does not disturb it.

use crate::oci::digest::{Algorithm, Digest};
use crate::oci::name::{RepoName, Tag, UploadId};

/// The fixed prefix of every key.
pub const ROOT: &str = "/docker/registry/v2";

/// Every kind of key the registry layer reads or writes. One `to_key` turns
/// each into its string, so the layout lives in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoragePath<'a> {
    /// Directory of all blobs.
    BlobsRoot,
    /// Directory holding one blob's `data`.
    BlobDir { digest: &'a Digest },
    /// The bytes of one blob.
    BlobData { digest: &'a Digest },
    /// Directory of all repositories.
    RepositoriesRoot,
    /// One repository's directory.
    Repository { name: &'a RepoName },
    /// Directory of a repository's layer links.
    LayersDir { name: &'a RepoName },
    /// Link making a blob part of a repository.
    LayerLink {
        name: &'a RepoName,
        digest: &'a Digest,
    },
    /// Directory of a repository's manifest revisions.
    ManifestRevisionsDir { name: &'a RepoName },
    /// Directory of one manifest revision.
    ManifestRevisionDir {
        name: &'a RepoName,
        digest: &'a Digest,
    },
    /// Link making a manifest part of a repository.
    ManifestRevisionLink {
        name: &'a RepoName,
        digest: &'a Digest,
    },
    /// Directory of all tags of a repository.
    TagsDir { name: &'a RepoName },
    /// Directory of one tag.
    TagDir { name: &'a RepoName, tag: &'a Tag },
    /// The manifest a tag points at now.
    TagCurrentLink { name: &'a RepoName, tag: &'a Tag },
    /// Directory of every manifest a tag ever pointed at.
    TagIndexDir { name: &'a RepoName, tag: &'a Tag },
    /// One entry of a tag's history.
    TagIndexLink {
        name: &'a RepoName,
        tag: &'a Tag,
        digest: &'a Digest,
    },
    /// Directory of a repository's upload sessions.
    UploadsDir { name: &'a RepoName },
    /// Directory of one upload session.
    UploadDir {
        name: &'a RepoName,
        id: &'a UploadId,
    },
    /// The bytes received so far for an upload.
    UploadData {
        name: &'a RepoName,
        id: &'a UploadId,
    },
    /// An upload's bytes being verified by one request without a running
    /// hash: moved out of `data` first, so no other writer of the upload
    /// can change what is hashed and then published.
    UploadVerifying {
        name: &'a RepoName,
        id: &'a UploadId,
        nonce: &'a str,
    },
    /// When the upload started (RFC 3339): written by registry:2 (berth
    /// ages its own uploads by `data`'s mtime), read by upload purging.
    UploadStartedAt {
        name: &'a RepoName,
        id: &'a UploadId,
    },
    /// Directory of saved hash states of an upload.
    UploadHashStatesDir {
        name: &'a RepoName,
        id: &'a UploadId,
        alg: Algorithm,
    },
    /// Saved hash state of an upload at a byte offset.
    UploadHashState {
        name: &'a RepoName,
        id: &'a UploadId,
        alg: Algorithm,
        offset: u64,
    },
    /// Directory of a repository's referrers index (berth only).
    ReferrersDir { name: &'a RepoName },
    /// Directory of the referrers of one subject (berth only).
    SubjectReferrersDir {
        name: &'a RepoName,
        subject: &'a Digest,
    },
    /// Link recording that `referrer` has `subject` (berth only).
    ReferrerLink {
        name: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
    },
}

impl StoragePath<'_> {
    /// The key string for this path.
    pub fn to_key(&self) -> String {
        use StoragePath::*;
        let repo = |name: &RepoName| format!("{ROOT}/repositories/{name}");
        let flat = |d: &Digest| format!("{}/{}", d.algorithm().as_str(), d.hex());
        match self {
            BlobsRoot => format!("{ROOT}/blobs"),
            BlobDir { digest } => format!(
                "{ROOT}/blobs/{}/{}/{}",
                digest.algorithm().as_str(),
                &digest.hex()[..2],
                digest.hex()
            ),
            BlobData { digest } => format!("{}/data", BlobDir { digest }.to_key()),
            RepositoriesRoot => format!("{ROOT}/repositories"),
            Repository { name } => repo(name),
            LayersDir { name } => format!("{}/_layers", repo(name)),
            LayerLink { name, digest } => format!("{}/_layers/{}/link", repo(name), flat(digest)),
            ManifestRevisionsDir { name } => format!("{}/_manifests/revisions", repo(name)),
            ManifestRevisionDir { name, digest } => {
                format!("{}/_manifests/revisions/{}", repo(name), flat(digest))
            }
            ManifestRevisionLink { name, digest } => {
                format!("{}/_manifests/revisions/{}/link", repo(name), flat(digest))
            }
            TagsDir { name } => format!("{}/_manifests/tags", repo(name)),
            TagDir { name, tag } => format!("{}/_manifests/tags/{tag}", repo(name)),
            TagCurrentLink { name, tag } => {
                format!("{}/_manifests/tags/{tag}/current/link", repo(name))
            }
            TagIndexDir { name, tag } => format!("{}/_manifests/tags/{tag}/index", repo(name)),
            TagIndexLink { name, tag, digest } => format!(
                "{}/_manifests/tags/{tag}/index/{}/link",
                repo(name),
                flat(digest)
            ),
            UploadsDir { name } => format!("{}/_uploads", repo(name)),
            UploadDir { name, id } => format!("{}/_uploads/{id}", repo(name)),
            UploadData { name, id } => format!("{}/_uploads/{id}/data", repo(name)),
            UploadVerifying { name, id, nonce } => {
                format!("{}/_uploads/{id}/verifying-{nonce}", repo(name))
            }
            UploadStartedAt { name, id } => format!("{}/_uploads/{id}/startedat", repo(name)),
            UploadHashStatesDir { name, id, alg } => {
                format!("{}/_uploads/{id}/hashstates/{}", repo(name), alg.as_str())
            }
            UploadHashState {
                name,
                id,
                alg,
                offset,
            } => format!(
                "{}/_uploads/{id}/hashstates/{}/{offset}",
                repo(name),
                alg.as_str()
            ),
            ReferrersDir { name } => format!("{}/_referrers", repo(name)),
            SubjectReferrersDir { name, subject } => {
                format!("{}/_referrers/{}", repo(name), flat(subject))
            }
            ReferrerLink {
                name,
                subject,
                referrer,
            } => format!(
                "{}/_referrers/{}/{}/link",
                repo(name),
                flat(subject),
                flat(referrer)
            ),
        }
    }
}

/// Parses the content of a link file (`sha256:<hex>`, possibly with trailing
/// whitespace written by other tools) into a digest.
pub fn parse_link(content: &[u8]) -> Option<Digest> {
    std::str::from_utf8(content).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_distribution() {
        let name: RepoName = "foo/bar".parse().expect("name");
        let tag: Tag = "thetag".parse().expect("tag");
        let d: Digest = "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
            .parse()
            .expect("digest");
        let s: Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
            .parse()
            .expect("digest");
        let id: UploadId = "d0a3e4b5-1c2d-4e5f-8a9b-0c1d2e3f4a5b".parse().expect("id");
        let hexd = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
        let r = "/docker/registry/v2/repositories/foo/bar";
        let table: Vec<(StoragePath, String)> = vec![
            (StoragePath::BlobsRoot, "/docker/registry/v2/blobs".into()),
            (
                StoragePath::BlobData { digest: &d },
                format!("/docker/registry/v2/blobs/sha256/ab/{hexd}/data"),
            ),
            (
                StoragePath::BlobDir { digest: &d },
                format!("/docker/registry/v2/blobs/sha256/ab/{hexd}"),
            ),
            (
                StoragePath::RepositoriesRoot,
                "/docker/registry/v2/repositories".into(),
            ),
            (StoragePath::Repository { name: &name }, r.into()),
            (
                StoragePath::LayersDir { name: &name },
                format!("{r}/_layers"),
            ),
            (
                StoragePath::LayerLink {
                    name: &name,
                    digest: &d,
                },
                format!("{r}/_layers/sha256/{hexd}/link"),
            ),
            (
                StoragePath::ManifestRevisionsDir { name: &name },
                format!("{r}/_manifests/revisions"),
            ),
            (
                StoragePath::ManifestRevisionDir {
                    name: &name,
                    digest: &d,
                },
                format!("{r}/_manifests/revisions/sha256/{hexd}"),
            ),
            (
                StoragePath::ManifestRevisionLink {
                    name: &name,
                    digest: &d,
                },
                format!("{r}/_manifests/revisions/sha256/{hexd}/link"),
            ),
            (
                StoragePath::TagsDir { name: &name },
                format!("{r}/_manifests/tags"),
            ),
            (
                StoragePath::TagDir {
                    name: &name,
                    tag: &tag,
                },
                format!("{r}/_manifests/tags/thetag"),
            ),
            (
                StoragePath::TagCurrentLink {
                    name: &name,
                    tag: &tag,
                },
                format!("{r}/_manifests/tags/thetag/current/link"),
            ),
            (
                StoragePath::TagIndexDir {
                    name: &name,
                    tag: &tag,
                },
                format!("{r}/_manifests/tags/thetag/index"),
            ),
            (
                StoragePath::TagIndexLink {
                    name: &name,
                    tag: &tag,
                    digest: &d,
                },
                format!("{r}/_manifests/tags/thetag/index/sha256/{hexd}/link"),
            ),
            (
                StoragePath::UploadsDir { name: &name },
                format!("{r}/_uploads"),
            ),
            (
                StoragePath::UploadDir {
                    name: &name,
                    id: &id,
                },
                format!("{r}/_uploads/{id}"),
            ),
            (
                StoragePath::UploadData {
                    name: &name,
                    id: &id,
                },
                format!("{r}/_uploads/{id}/data"),
            ),
            (
                StoragePath::UploadStartedAt {
                    name: &name,
                    id: &id,
                },
                format!("{r}/_uploads/{id}/startedat"),
            ),
            (
                StoragePath::UploadHashStatesDir {
                    name: &name,
                    id: &id,
                    alg: Algorithm::Sha256,
                },
                format!("{r}/_uploads/{id}/hashstates/sha256"),
            ),
            (
                StoragePath::UploadHashState {
                    name: &name,
                    id: &id,
                    alg: Algorithm::Sha256,
                    offset: 1024,
                },
                format!("{r}/_uploads/{id}/hashstates/sha256/1024"),
            ),
            (
                StoragePath::ReferrersDir { name: &name },
                format!("{r}/_referrers"),
            ),
            (
                StoragePath::SubjectReferrersDir {
                    name: &name,
                    subject: &s,
                },
                format!("{r}/_referrers/sha256/{}", s.hex()),
            ),
            (
                StoragePath::ReferrerLink {
                    name: &name,
                    subject: &s,
                    referrer: &d,
                },
                format!("{r}/_referrers/sha256/{}/sha256/{hexd}/link", s.hex()),
            ),
        ];
        for (path, want) in table {
            assert_eq!(path.to_key(), want, "{path:?}");
            assert!(crate::storage::validate_path(&want).is_ok(), "{want}");
        }
    }

    #[test]
    fn link_content() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(parse_link(d.to_string().as_bytes()), Some(d.clone()));
        assert_eq!(parse_link(format!("{d}\n").as_bytes()), Some(d));
        assert_eq!(parse_link(b"garbage"), None);
        assert_eq!(parse_link(&[0xff, 0xfe]), None);
    }
}
