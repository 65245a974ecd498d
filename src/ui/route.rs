//! Paths under `/ui/r/`: a repository (`<name>`), one of its manifests
//! (`<name>/-/m/<reference>`) or its delete form (`<name>/-/delete`).

use crate::oci::name::{Reference, RepoName};

/// What a `/ui/r/...` path names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    Repo(RepoName),
    Manifest(RepoName, Reference),
    Delete(RepoName),
}

/// Splits `<name>[/-/m/<reference>|/-/delete]` (percent-decoded). `-` is
/// never a name component, so it separates unambiguously.
pub(super) fn parse_target(rest: &str) -> Option<Target> {
    let (name, tail) = match rest.split_once("/-/") {
        Some((n, t)) => (n, Some(t)),
        None => (rest.trim_end_matches('/'), None),
    };
    let name: RepoName = name.parse().ok()?;
    match tail {
        None => Some(Target::Repo(name)),
        Some("delete") => Some(Target::Delete(name)),
        Some(t) => {
            let r = t.strip_prefix("m/")?.parse().ok()?;
            Some(Target::Manifest(name, r))
        }
    }
}

/// The path part after `/ui/r/`, percent-decoded.
pub(super) fn rest_of(path: &str, prefix: &str) -> Option<String> {
    // Under `http.prefix` the router may or may not have stripped it.
    let path = path
        .strip_prefix(prefix)
        .filter(|p| !prefix.is_empty() && p.starts_with("/ui/"))
        .unwrap_or(path);
    let rest = path.strip_prefix("/ui/r/")?;
    let decoded = crate::http::form_pairs(&format!("x={}", rest.replace('+', "%2B")))
        .next()
        .map(|(_, v)| v)?;
    Some(decoded)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let n = |s: &str| s.parse::<RepoName>().unwrap();
        assert_eq!(parse_target("a/b/c"), Some(Target::Repo(n("a/b/c"))));
        assert_eq!(parse_target("a/b/"), Some(Target::Repo(n("a/b"))));
        assert_eq!(parse_target("a/-/delete"), Some(Target::Delete(n("a"))));
        assert_eq!(
            parse_target("a/b/-/m/v1.0"),
            Some(Target::Manifest(n("a/b"), "v1.0".parse().unwrap()))
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse_target(&format!("x/-/m/{d}")),
            Some(Target::Manifest(n("x"), d.parse().unwrap()))
        );
        for bad in ["", "A", "a/-/x", "a/-/m/", "a/-/m/bad tag", "../x"] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
        assert_eq!(rest_of("/p/ui/r/a%2Fb", "/p").as_deref(), Some("a/b"));
        assert_eq!(rest_of("/ui/r/a/-/m/v+1", "").as_deref(), Some("a/-/m/v+1"));
        assert_eq!(rest_of("/other", ""), None);
    }
}
