//! One pass over the repositories tree with `walk`, sorting every key into
//! the links the collector cares about. A single recursive listing is cheap
//! on a filesystem and is one paginated LIST on object stores.

use std::collections::{BTreeMap, BTreeSet};

use crate::oci::digest::Digest;
use crate::storage::paths::StoragePath;
use crate::storage::StorageDriver;

use super::super::RegistryResult;

/// The links of one repository, with their keys (for `stat` and deletes).
#[derive(Debug, Default, Clone)]
pub struct RepoLinks {
    /// Linked manifest revisions: digest -> link key.
    pub revisions: BTreeMap<Digest, String>,
    /// Tags: name -> key of `current/link` (read during marking).
    pub tags: BTreeMap<String, String>,
    /// Tag history entries: (tag, digest, directory key of the entry).
    pub tag_index: Vec<(String, Digest, String)>,
    /// Layer links: digest -> link key.
    pub layers: BTreeMap<Digest, String>,
    /// Referrers index: (subject, referrer, directory key of the entry).
    pub referrers: Vec<(Digest, Digest, String)>,
    /// Upload session directories.
    pub uploads: BTreeSet<String>,
}

/// Every repository found, by name.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// Repositories in lexical order.
    pub repos: BTreeMap<String, RepoLinks>,
}

fn digest(alg: &str, hex: &str) -> Option<Digest> {
    format!("{alg}:{hex}").parse().ok()
}

impl Layout {
    /// Walks `repositories/`. A missing root is an empty registry.
    pub async fn scan(driver: &dyn StorageDriver) -> RegistryResult<Layout> {
        let root = StoragePath::RepositoriesRoot.to_key();
        let keys = match driver.walk(&root).await {
            Ok(k) => k,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut layout = Layout::default();
        for key in keys {
            layout.add(&root, key);
        }
        Ok(layout)
    }

    /// Sorts one object key into its repository's links; keys that mean
    /// nothing to the collector are ignored.
    fn add(&mut self, root: &str, key: String) {
        let Some(rest) = key.strip_prefix(root).and_then(|r| r.strip_prefix('/')) else {
            return;
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let Some(at) = segs.iter().position(|s| s.starts_with('_')) else {
            return;
        };
        if at == 0 {
            return;
        }
        let name = segs[..at].join("/");
        let dir_of = |n: usize| segs[..n].join("/");
        let repo = self.repos.entry(name).or_default();
        match &segs[at..] {
            ["_manifests", "revisions", alg, hex, "link"] => {
                if let Some(d) = digest(alg, hex) {
                    repo.revisions.insert(d, key.clone());
                }
            }
            ["_manifests", "tags", tag, "current", "link"] => {
                repo.tags.insert((*tag).to_string(), key.clone());
            }
            ["_manifests", "tags", tag, "index", alg, hex, "link"] => {
                if let Some(d) = digest(alg, hex) {
                    let dir = format!("{root}/{}", dir_of(at + 6));
                    repo.tag_index.push(((*tag).to_string(), d, dir));
                }
            }
            ["_layers", alg, hex, "link"] => {
                if let Some(d) = digest(alg, hex) {
                    repo.layers.insert(d, key.clone());
                }
            }
            ["_referrers", salg, shex, ralg, rhex, "link"] => {
                if let (Some(s), Some(r)) = (digest(salg, shex), digest(ralg, rhex)) {
                    let dir = format!("{root}/{}", dir_of(at + 5));
                    repo.referrers.push((s, r, dir));
                }
            }
            ["_uploads", _id, ..] => {
                repo.uploads.insert(format!("{root}/{}", dir_of(at + 2)));
            }
            _ => {}
        }
    }
}

/// The digest of a blob data key (`blobs/<alg>/<xx>/<hex>/data`).
pub fn blob_digest(blobs_root: &str, key: &str) -> Option<Digest> {
    let rest = key.strip_prefix(blobs_root)?.strip_prefix('/')?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [alg, prefix, hex, "data"] if hex.starts_with(prefix) => digest(alg, hex),
        _ => None,
    }
}

/// Every blob in global storage: (digest, data key). A missing root is none.
pub async fn all_blobs(driver: &dyn StorageDriver) -> RegistryResult<Vec<(Digest, String)>> {
    let root = StoragePath::BlobsRoot.to_key();
    let keys = match driver.walk(&root).await {
        Ok(k) => k,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(keys
        .into_iter()
        .filter_map(|k| Some((blob_digest(&root, &k)?, k)))
        .collect())
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
        let r = format!("{ROOT}/repositories");
        let mut l = Layout::default();
        for k in [
            format!("{r}/a/b/_manifests/revisions/sha256/{h}/link"),
            format!("{r}/a/b/_manifests/tags/v1/current/link"),
            format!("{r}/a/b/_manifests/tags/v1/index/sha256/{h}/link"),
            format!("{r}/a/b/_layers/sha256/{h}/link"),
            format!("{r}/a/b/_referrers/sha256/{sh}/sha256/{h}/link"),
            format!("{r}/a/b/_uploads/u1/data"),
            format!("{r}/a/b/_uploads/u1/startedat"),
            format!("{r}/c/_layers/sha256/nothex/link"),
            format!("{r}/c/_other/x"),
        ] {
            l.add(&r, k);
        }
        let ab = &l.repos["a/b"];
        assert_eq!(ab.revisions.keys().collect::<Vec<_>>(), vec![&d]);
        assert_eq!(ab.tags.keys().collect::<Vec<_>>(), vec!["v1"]);
        assert_eq!(
            ab.tag_index,
            vec![(
                "v1".to_string(),
                d.clone(),
                format!("{r}/a/b/_manifests/tags/v1/index/sha256/{h}")
            )]
        );
        assert!(ab.layers.contains_key(&d));
        assert_eq!(
            ab.referrers,
            vec![(
                s.clone(),
                d.clone(),
                format!("{r}/a/b/_referrers/sha256/{sh}/sha256/{h}")
            )]
        );
        assert_eq!(
            ab.uploads.iter().collect::<Vec<_>>(),
            vec![&format!("{r}/a/b/_uploads/u1")]
        );
        assert!(l.repos["c"].layers.is_empty());
        let b = format!("{ROOT}/blobs");
        assert_eq!(
            blob_digest(&b, &format!("{b}/sha256/{}/{h}/data", &h[..2])),
            Some(d)
        );
        assert_eq!(blob_digest(&b, &format!("{b}/sha256/zz/{h}/data")), None);
    }
}
