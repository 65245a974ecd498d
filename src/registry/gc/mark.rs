//! Mark phase: which manifests each repository keeps, and every blob they
//! need. Roots are the linked revisions (only the tagged ones with
//! `delete_untagged`); from each kept manifest the closure follows index
//! children and referrers (manifests whose `subject` is kept).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::oci::digest::Digest;
use crate::storage::paths::{parse_link, StoragePath};
use crate::storage::StorageDriver;

use super::super::RegistryResult;
use super::refs::{manifest_refs, ManifestRefs};
use super::scan::Layout;

/// Parsed references of manifests by digest, shared by every repository and
/// by both mark passes of an online run (manifests are immutable).
#[derive(Default)]
pub struct RefCache {
    refs: HashMap<Digest, Option<ManifestRefs>>,
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
        self.refs.insert(digest.clone(), r.clone());
        Ok(r)
    }
}

/// What the mark phase decided.
#[derive(Debug, Default, Clone)]
pub struct Marks {
    /// Every blob digest that must stay (manifests, configs, layers).
    pub blobs: HashSet<Digest>,
    /// Number of (repository, manifest) pairs kept.
    pub manifests_kept: usize,
    /// Revisions not kept (only with `delete_untagged`): (repository, digest).
    pub untagged: BTreeSet<(String, Digest)>,
}

/// Marks everything `layout` keeps. `protected` revisions are roots even
/// when untagged (an online run protects young or recently used ones).
pub async fn mark(
    driver: &dyn StorageDriver,
    layout: &Layout,
    delete_untagged: bool,
    protected: &HashSet<(String, Digest)>,
    cache: &mut RefCache,
) -> RegistryResult<Marks> {
    let mut marks = Marks::default();
    for (name, repo) in &layout.repos {
        let revisions: HashSet<&Digest> = repo.revisions.keys().collect();
        let roots: Vec<Digest> = if delete_untagged {
            let mut tagged: Vec<Digest> = repo
                .revisions
                .keys()
                .filter(|d| protected.contains(&(name.clone(), (*d).clone())))
                .cloned()
                .collect();
            for key in repo.tags.values() {
                let digest = match driver.get_content(key).await {
                    Ok(c) => parse_link(&c),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e.into()),
                };
                if let Some(d) = digest.filter(|d| revisions.contains(d)) {
                    tagged.push(d);
                }
            }
            tagged
        } else {
            repo.revisions.keys().cloned().collect()
        };

        // Who refers to whom, from the manifests themselves and from the
        // referrers index (a referrer counts only while it is linked).
        let mut referrers: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for d in repo.revisions.keys() {
            if let Some(subject) = cache.get(driver, d).await?.and_then(|r| r.subject) {
                referrers.entry(subject).or_default().push(d.clone());
            }
        }
        for (subject, referrer, _) in &repo.referrers {
            if revisions.contains(referrer) {
                referrers
                    .entry(subject.clone())
                    .or_default()
                    .push(referrer.clone());
            }
        }

        let mut kept: HashSet<Digest> = HashSet::new();
        let mut queue = roots;
        while let Some(m) = queue.pop() {
            if !kept.insert(m.clone()) {
                continue;
            }
            marks.blobs.insert(m.clone());
            if let Some(refs) = cache.get(driver, &m).await? {
                marks.blobs.extend(refs.blobs.iter().cloned());
                queue.extend(refs.children.iter().cloned());
            }
            if let Some(rs) = referrers.get(&m) {
                queue.extend(rs.iter().cloned());
            }
        }
        marks.manifests_kept += kept.iter().filter(|d| revisions.contains(d)).count();
        for d in repo.revisions.keys() {
            if !kept.contains(d) {
                marks.untagged.insert((name.clone(), d.clone()));
            }
        }
    }
    Ok(marks)
}

/// Marks one manifest and everything it needs (its blob, its blobs, its
/// children, recursively): used for manifests a run decided to keep after
/// all (too young, or touched during the run).
pub async fn mark_closure(
    driver: &dyn StorageDriver,
    root: &Digest,
    cache: &mut RefCache,
    blobs: &mut HashSet<Digest>,
) -> RegistryResult<()> {
    let mut seen = HashSet::new();
    let mut queue = vec![root.clone()];
    while let Some(m) = queue.pop() {
        if !seen.insert(m.clone()) {
            continue;
        }
        blobs.insert(m.clone());
        if let Some(refs) = cache.get(driver, &m).await? {
            blobs.extend(refs.blobs.iter().cloned());
            queue.extend(refs.children.iter().cloned());
        }
    }
    Ok(())
}
