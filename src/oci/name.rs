//! Repository names, tags, references and upload ids: the distribution spec's
//! grammars, checked once at the edge so inner layers never see invalid input.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, DigestError};

/// Longest repository name accepted, as in distribution.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name, tag or reference was refused; mapped to NAME_INVALID,
/// TAG_INVALID / MANIFEST_INVALID or DIGEST_INVALID at the HTTP edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid repository name: {0:?}")]
    Name(String),
    #[error("invalid tag: {0:?}")]
    Tag(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("invalid upload id: {0:?}")]
    UploadId(String),
}

/// A repository name such as `library/ubuntu` or `a/b/c/d/e/f/g/h`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > MAX_NAME_LEN || !s.split('/').all(valid_component) {
            return Err(NameError::Name(s.to_string()));
        }
        Ok(RepoName(s.to_string()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'));
        if ok {
            Ok(Tag(s.to_string()))
        } else {
            Err(NameError::Tag(s.to_string()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `<reference>` of a manifest URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// An upload session id: a UUID in distribution's format, which is also what
/// names its `_uploads/<id>` directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        UploadId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match uuid::Uuid::parse_str(s) {
            Ok(u) if u.hyphenated().to_string() == s => Ok(UploadId(s.to_string())),
            _ => Err(NameError::UploadId(s.to_string())),
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        let table = [
            ("ubuntu", true),
            ("library/ubuntu", true),
            ("a/b/c/d/e/f/g/h", true),
            ("my-app.v2/sub_dir/x__y", true),
            ("a--b", true),
            ("a---b", true),
            ("0/1", true),
            ("", false),
            ("Ubuntu", false),
            ("a//b", false),
            ("/a", false),
            ("a/", false),
            ("a/../b", false),
            ("..", false),
            ("a..b", false),
            ("a___b", false),
            ("-a", false),
            ("a-", false),
            ("a_.b", false),
            ("a%2fb", false),
            ("a b", false),
        ];
        for (input, ok) in table {
            assert_eq!(input.parse::<RepoName>().is_ok(), ok, "{input:?}");
        }
        assert!("a".repeat(255).parse::<RepoName>().is_ok());
        assert!("a".repeat(256).parse::<RepoName>().is_err());
    }

    #[test]
    fn tags() {
        let table = [
            ("latest", true),
            ("v1.2.3-rc_1", true),
            ("_x", true),
            ("A", true),
            ("", false),
            (".x", false),
            ("-x", false),
            ("a/b", false),
            ("a:b", false),
        ];
        for (input, ok) in table {
            assert_eq!(input.parse::<Tag>().is_ok(), ok, "{input:?}");
        }
        assert!("a".repeat(128).parse::<Tag>().is_ok());
        assert!("a".repeat(129).parse::<Tag>().is_err());
    }

    #[test]
    fn references() {
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!(matches!(
            "sha256:xyz".parse::<Reference>(),
            Err(NameError::Digest(_))
        ));
    }

    #[test]
    fn upload_ids() {
        let id = UploadId::new_random();
        assert_eq!(id.as_str().parse::<UploadId>().expect("round trip"), id);
        for bad in ["", "x", "../etc", "6F9619FF-8B86-D011-B42D-00C04FC964FF"] {
            assert!(bad.parse::<UploadId>().is_err(), "{bad}");
        }
    }
}
