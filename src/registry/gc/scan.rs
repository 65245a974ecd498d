//! Listings the collector works from, one repository or one blob prefix
//! at a time so that memory follows the largest repository, not the
//! registry: a repository's manifest links (`_manifests`, `_referrers`,
//! walked), its layer links (`_layers`, listed), and the blobs under one
//! `blobs/<alg>/<xx>/` prefix.

use std::collections::BTreeMap;

use crate::oci::digest::Digest;
use crate::storage::paths::StoragePath;
use crate::storage::StorageDriver;

use super::super::RegistryResult;

/// The manifest links of one repository, with their keys (for `stat` and
/// deletes).
#[derive(Debug, Default, Clone)]
pub struct RepoLinks {
    /// Linked manifest revisions: digest -> link key.
    pub revisions: BTreeMap<Digest, String>,
    /// Tags: name -> key of `current/link` (read during marking).
    pub tags: BTreeMap<String, String>,
    /// Tag history entries: (tag, digest, directory key of the entry).
    pub tag_index: Vec<(String, Digest, String)>,
    /// Referrers index: (subject, referrer, directory key of the entry).
    pub referrers: Vec<(Digest, Digest, String)>,
}

/// Repositories by name (pull-through cache expiry, which needs every
/// cache repository of a mirror at once).
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// Repositories in lexical order.
    pub repos: BTreeMap<String, RepoLinks>,
}

fn digest(alg: &str, hex: &str) -> Option<Digest> {
    format!("{alg}:{hex}").parse().ok()
}

/// Every object under `dir`; nothing when it does not exist.
async fn walk_or_empty(driver: &dyn StorageDriver, dir: &str) -> RegistryResult<Vec<String>> {
    match driver.walk(dir).await {
        Ok(k) => Ok(k),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The children of `dir`; nothing when it does not exist.
pub(super) async fn list_or_empty(
    driver: &dyn StorageDriver,
    dir: &str,
) -> RegistryResult<Vec<String>> {
    match driver.list(dir).await {
        Ok(mut k) => {
            k.sort();
            Ok(k)
        }
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The last segment of a key.
fn leaf(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or_default()
}

/// The key of repository `name`'s directory.
pub fn repo_key(name: &str) -> String {
    format!("{}/{name}", StoragePath::RepositoriesRoot.to_key())
}

impl RepoLinks {
    /// Reads repository `name`'s manifest links (revisions, tags, tag
    /// history, referrers); nested repositories are not included.
    pub async fn scan(driver: &dyn StorageDriver, name: &str) -> RegistryResult<RepoLinks> {
        let dir = repo_key(name);
        let mut links = RepoLinks::default();
        for sub in ["_manifests", "_referrers"] {
            for key in walk_or_empty(driver, &format!("{dir}/{sub}")).await? {
                links.add(&dir, key);
            }
        }
        Ok(links)
    }

    /// Sorts one object key under the repository directory `dir` into its
    /// links; keys that mean nothing to the collector are ignored.
    fn add(&mut self, dir: &str, key: String) {
        let Some(rest) = key.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) else {
            return;
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let dir_of = |n: usize| format!("{dir}/{}", segs[..n].join("/"));
        match segs.as_slice() {
            ["_manifests", "revisions", alg, hex, "link"] => {
                if let Some(d) = digest(alg, hex) {
                    self.revisions.insert(d, key.clone());
                }
            }
            ["_manifests", "tags", tag, "current", "link"] => {
                self.tags.insert((*tag).to_string(), key.clone());
            }
            ["_manifests", "tags", tag, "index", alg, hex, "link"] => {
                if let Some(d) = digest(alg, hex) {
                    self.tag_index.push(((*tag).to_string(), d, dir_of(6)));
                }
            }
            ["_referrers", salg, shex, ralg, rhex, "link"] => {
                if let (Some(s), Some(r)) = (digest(salg, shex), digest(ralg, rhex)) {
                    self.referrers.push((s, r, dir_of(5)));
                }
            }
            _ => {}
        }
    }
}

impl Layout {
    /// Scans every repository `keep` accepts (see [`super::repos`]).
    pub async fn scan_where(
        driver: &dyn StorageDriver,
        keep: impl Fn(&str) -> bool,
    ) -> RegistryResult<Layout> {
        let mut layout = Layout::default();
        let mut names = super::repos::RepoNames::default();
        while let Some(name) = names.next(driver).await? {
            if keep(&name) {
                let links = RepoLinks::scan(driver, &name).await?;
                layout.repos.insert(name, links);
            }
        }
        Ok(layout)
    }
}

/// The layer links of repository `name`: (digest, link key), listed per
/// algorithm directory (one `list`, not a walk into every link's directory).
pub async fn layer_links(
    driver: &dyn StorageDriver,
    name: &str,
) -> RegistryResult<Vec<(Digest, String)>> {
    let root = format!("{}/_layers", repo_key(name));
    let mut out = Vec::new();
    for alg_dir in list_or_empty(driver, &root).await? {
        let alg = leaf(&alg_dir).to_string();
        for dir in list_or_empty(driver, &alg_dir).await? {
            if let Some(d) = digest(&alg, leaf(&dir)) {
                out.push((d, format!("{dir}/link")));
            }
        }
    }
    Ok(out)
}

/// The `blobs/<alg>/<xx>` directories, in order: the sweep lists one at a
/// time.
pub async fn blob_prefixes(driver: &dyn StorageDriver) -> RegistryResult<Vec<String>> {
    let root = StoragePath::BlobsRoot.to_key();
    let mut out = Vec::new();
    for alg_dir in list_or_empty(driver, &root).await? {
        out.extend(list_or_empty(driver, &alg_dir).await?);
    }
    Ok(out)
}

/// The blobs under one prefix directory (`blobs/<alg>/<xx>`).
pub async fn blobs_under(driver: &dyn StorageDriver, prefix: &str) -> RegistryResult<Vec<Digest>> {
    let blobs_root = StoragePath::BlobsRoot.to_key();
    let mut out = Vec::new();
    for dir in list_or_empty(driver, prefix).await? {
        if let Some(d) = blob_digest(&blobs_root, &format!("{dir}/data")) {
            out.push(d);
        }
    }
    Ok(out)
}

/// The digest of a blob data key (`blobs/<alg>/<xx>/<hex>/data`).
pub fn blob_digest(blobs_root: &str, key: &str) -> Option<Digest> {
    let rest = key.strip_prefix(blobs_root)?.strip_prefix('/')?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [alg, prefix, hex, "data"] if hex.starts_with(prefix) => digest(alg, hex),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::paths::ROOT;

    #[test]
    fn keys_are_sorted_into_links() {
        let d = Digest::sha256_of(b"x");
        let s = Digest::sha256_of(b"s");
        let (h, sh) = (d.hex().to_string(), s.hex().to_string());
        let r = format!("{ROOT}/repositories/a/b");
        let mut l = RepoLinks::default();
        for k in [
            format!("{r}/_manifests/revisions/sha256/{h}/link"),
            format!("{r}/_manifests/tags/v1/current/link"),
            format!("{r}/_manifests/tags/v1/index/sha256/{h}/link"),
            format!("{r}/_manifests/revisions/sha256/nothex/link"),
            format!("{r}/_referrers/sha256/{sh}/sha256/{h}/link"),
            format!("{r}/_other/x"),
        ] {
            l.add(&r, k);
        }
        assert_eq!(l.revisions.keys().collect::<Vec<_>>(), vec![&d]);
        assert_eq!(l.tags.keys().collect::<Vec<_>>(), vec!["v1"]);
        assert_eq!(
            l.tag_index,
            vec![(
                "v1".to_string(),
                d.clone(),
                format!("{r}/_manifests/tags/v1/index/sha256/{h}")
            )]
        );
        assert_eq!(
            l.referrers,
            vec![(
                s.clone(),
                d.clone(),
                format!("{r}/_referrers/sha256/{sh}/sha256/{h}")
            )]
        );
        let b = format!("{ROOT}/blobs");
        assert_eq!(
            blob_digest(&b, &format!("{b}/sha256/{}/{h}/data", &h[..2])),
            Some(d)
        );
        assert_eq!(blob_digest(&b, &format!("{b}/sha256/zz/{h}/data")), None);
    }
}
