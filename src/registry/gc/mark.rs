//! Mark phase: which manifests a repository keeps, and every blob they
//! need, marked into one compact [`DigestSet`] shared by all repositories
//! (a repository's own data is dropped once it is marked). Roots are the
//! linked revisions (only the tagged ones with `delete_untagged`); from each
//! kept manifest the closure follows index children and referrers
//! (manifests whose `subject` is kept).

use std::collections::{HashMap, HashSet};

use crate::oci::digest::Digest;
use crate::storage::paths::{parse_link, StoragePath};
use crate::storage::StorageDriver;

use super::super::RegistryResult;
use super::digests::DigestSet;
use super::refs::{manifest_refs, ManifestRefs};
use super::scan::RepoLinks;

/// Most bytes of parsed references kept between lookups; past it the cache
/// starts over (manifests are then read again: a cost in reads, not in
/// correctness).
const REF_CACHE_BYTES: usize = 4 << 20;

/// Parsed references of manifests by digest, shared by every repository and
/// by both mark passes of an online run (manifests are immutable), up to
/// [`REF_CACHE_BYTES`].
#[derive(Default)]
pub struct RefCache {
    refs: HashMap<Digest, Option<ManifestRefs>>,
    bytes: usize,
}

/// What an entry costs, roughly: a digest is ~100 bytes with its table slot.
fn entry_bytes(r: &Option<ManifestRefs>) -> usize {
    let n = r.as_ref().map_or(0, |r| {
        r.blobs.len() + r.children.len() + usize::from(r.subject.is_some())
    });
    (n + 1) * 104
}

impl RefCache {
    /// References of the manifest stored as blob `digest`; `None` when the
    /// blob is missing or not a JSON manifest.
    pub async fn get(
        &mut self,
        driver: &dyn StorageDriver,
        digest: &Digest,
    ) -> RegistryResult<Option<ManifestRefs>> {
        if let Some(r) = self.refs.get(digest) {
            return Ok(r.clone());
        }
        let r = match driver
            .get_content(&StoragePath::BlobData { digest }.to_key())
            .await
        {
            Ok(body) => manifest_refs(&body),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let cost = entry_bytes(&r);
        if self.bytes + cost > REF_CACHE_BYTES {
            self.refs = HashMap::new();
            self.bytes = 0;
        }
        self.bytes += cost;
        self.refs.insert(digest.clone(), r.clone());
        Ok(r)
    }
}

/// What marking one repository decided (its blobs went into the shared set).
#[derive(Debug, Default, Clone)]
pub struct RepoMarks {
    /// Manifests of the repository kept.
    pub kept: usize,
    /// Revisions not kept (only with `delete_untagged`).
    pub untagged: Vec<Digest>,
}

/// Marks everything repository `name` (with manifest links `repo`) keeps
/// into `blobs`. `protected` revisions are roots even when untagged (an
/// online run protects young or recently used ones).
pub async fn mark_repo(
    driver: &dyn StorageDriver,
    name: &str,
    repo: &RepoLinks,
    delete_untagged: bool,
    protected: &HashSet<(String, Digest)>,
    cache: &mut RefCache,
    blobs: &mut DigestSet,
) -> RegistryResult<RepoMarks> {
    let revisions = &repo.revisions;
    let roots: Vec<Digest> = if delete_untagged {
        let mut tagged: Vec<Digest> = revisions
            .keys()
            .filter(|d| protected.contains(&(name.to_string(), (*d).clone())))
            .cloned()
            .collect();
        for key in repo.tags.values() {
            let digest = match driver.get_content(key).await {
                Ok(c) => parse_link(&c),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(d) = digest.filter(|d| revisions.contains_key(d)) {
                tagged.push(d);
            }
        }
        tagged
    } else {
        revisions.keys().cloned().collect()
    };

    // Who refers to whom, from the manifests themselves and from the
    // referrers index (a referrer counts only while it is linked).
    let mut referrers: HashMap<Digest, Vec<Digest>> = HashMap::new();
    for d in revisions.keys() {
        if let Some(subject) = cache.get(driver, d).await?.and_then(|r| r.subject) {
            referrers.entry(subject).or_default().push(d.clone());
        }
    }
    for (subject, referrer, _) in &repo.referrers {
        if revisions.contains_key(referrer) {
            referrers
                .entry(subject.clone())
                .or_default()
                .push(referrer.clone());
        }
    }

    let mut kept = DigestSet::default();
    let mut queue = roots;
    while let Some(m) = queue.pop() {
        if !kept.insert(&m) {
            continue;
        }
        blobs.insert(&m);
        if let Some(refs) = cache.get(driver, &m).await? {
            for b in &refs.blobs {
                blobs.insert(b);
            }
            queue.extend(refs.children.iter().cloned());
        }
        if let Some(rs) = referrers.get(&m) {
            queue.extend(rs.iter().cloned());
        }
    }
    Ok(RepoMarks {
        kept: revisions.keys().filter(|d| kept.contains(d)).count(),
        untagged: revisions
            .keys()
            .filter(|d| !kept.contains(d))
            .cloned()
            .collect(),
    })
}

/// Marks one manifest and everything it needs (its blob, its blobs, its
/// children, recursively): used for manifests a run decided to keep after
/// all (too young, or touched during the run).
pub async fn mark_closure(
    driver: &dyn StorageDriver,
    root: &Digest,
    cache: &mut RefCache,
    blobs: &mut DigestSet,
) -> RegistryResult<()> {
    let mut seen = DigestSet::default();
    let mut queue = vec![root.clone()];
    while let Some(m) = queue.pop() {
        if !seen.insert(&m) {
            continue;
        }
        blobs.insert(&m);
        if let Some(refs) = cache.get(driver, &m).await? {
            for b in &refs.blobs {
                blobs.insert(b);
            }
            queue.extend(refs.children.iter().cloned());
        }
    }
    Ok(())
}
