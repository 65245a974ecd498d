//! Pull-through cache expiry, the first step of a collection: which cached
//! manifests go because they were not pulled within their entry's `ttl`,
//! or because the entry's cache is over its `maxsize` (least recently
//! pulled first). Only repositories under a mirror's prefix (every one in
//! `proxy` mode) are ever looked at. A manifest's last pull is its
//! revision's `lastpulled` file (Unix seconds, written by the pull-through
//! cache), else its revision link's mtime; an index's children count as
//! pulled whenever the index is. `apply` (in `expire`) then unlinks what was
//! chosen, and the ordinary mark and sweep remove the blobs only they used.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::oci::digest::Digest;
use crate::storage::paths::StoragePath;
use crate::storage::StorageDriver;

use super::super::RegistryResult;
use super::mark::RefCache;
use super::scan::Layout;

/// The bounds of one mirror's cache, from `proxy.ttl` or a `mirrors:`
/// entry's `ttl` and `maxsize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    /// The cache repositories: names under `<prefix>/`; `None` in `proxy`
    /// mode, where every repository is cached content.
    pub prefix: Option<String>,
    /// A manifest not pulled for this long goes; zero keeps it forever.
    pub ttl: Duration,
    /// Most bytes of blobs the cache repositories may reference.
    pub maxsize: Option<u64>,
}

impl CachePolicy {
    /// One policy per configured mirror (none when nothing is mirrored).
    pub fn from_config(config: &crate::config::Config) -> Vec<CachePolicy> {
        if let Some(p) = config.proxy.as_ref().filter(|p| !p.remoteurl.is_empty()) {
            return vec![CachePolicy {
                prefix: None,
                ttl: p.ttl,
                maxsize: None,
            }];
        }
        config
            .mirrors
            .iter()
            .map(|m| CachePolicy {
                prefix: Some(m.prefix.clone()),
                ttl: m.ttl,
                maxsize: m.maxsize,
            })
            .collect()
    }

    /// True when `repo` holds this mirror's cached content.
    pub fn covers(&self, repo: &str) -> bool {
        match &self.prefix {
            None => true,
            Some(p) => repo
                .strip_prefix(p.as_str())
                .is_some_and(|r| r.starts_with('/')),
        }
    }
}

/// Why a cached manifest is expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExpiryReason {
    /// Not pulled within the entry's `ttl`.
    Ttl,
    /// Least recently pulled while the entry was over its `maxsize`.
    MaxSize,
}

impl ExpiryReason {
    /// For the CLI and logs.
    pub fn describe(self) -> &'static str {
        match self {
            ExpiryReason::Ttl => "not pulled within the mirror's ttl",
            ExpiryReason::MaxSize => "least recently pulled over the mirror's maxsize",
        }
    }
}

/// One cached manifest chosen for expiry.
pub(super) type Choice = ((String, Digest), ExpiryReason);

/// Seconds since the epoch of `t` (0 before it).
fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// When the revision at `link` was last pulled: its `lastpulled` file, else
/// the link's mtime, else "now" (unknown age keeps it).
async fn last_pulled(driver: &dyn StorageDriver, link: &str, now: u64) -> RegistryResult<u64> {
    let dir = link.trim_end_matches("/link");
    let file = format!("{dir}/{}", super::super::pull_through::LAST_PULLED_FILE);
    match driver.get_content(&file).await {
        Ok(body) => {
            if let Some(t) = std::str::from_utf8(&body)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                return Ok(t);
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    match driver.stat(link).await {
        Ok(info) => Ok(info.modified.map_or(now, secs)),
        Err(e) if e.is_not_found() => Ok(now),
        Err(e) => Err(e.into()),
    }
}

/// The revisions of one cache repository with their last pulls (children
/// inheriting their indexes') and child links.
struct RepoState {
    pulled: BTreeMap<Digest, u64>,
    children: BTreeMap<Digest, Vec<Digest>>,
}

async fn repo_state(
    driver: &dyn StorageDriver,
    revisions: &BTreeMap<Digest, String>,
    now: u64,
    cache: &mut RefCache,
) -> RegistryResult<RepoState> {
    let mut pulled = BTreeMap::new();
    let mut children: BTreeMap<Digest, Vec<Digest>> = BTreeMap::new();
    for (d, link) in revisions {
        pulled.insert(d.clone(), last_pulled(driver, link, now).await?);
        let kids = cache
            .get(driver, d)
            .await?
            .map(|r| r.children)
            .unwrap_or_default();
        let kids: Vec<Digest> = kids
            .into_iter()
            .filter(|k| revisions.contains_key(k) && k != d)
            .collect();
        children.insert(d.clone(), kids);
    }
    // Indexes nest a few levels at most; a bounded number of rounds
    // propagates each index's pull time down to its children.
    for _ in 0..8 {
        let mut changed = false;
        for (parent, kids) in &children {
            let t = pulled.get(parent).copied().unwrap_or(now);
            for k in kids {
                if let Some(kt) = pulled.get_mut(k) {
                    if *kt < t {
                        *kt = t;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(RepoState { pulled, children })
}

/// One unit of `maxsize` eviction: a manifest no other cached manifest of
/// its repository lists, with the children it reaches.
struct Group {
    pulled: u64,
    repo: String,
    root: Digest,
    revisions: Vec<Digest>,
    blobs: HashSet<Digest>,
}

/// The cached manifests `policies` expire in `layout`, at time `now`.
pub(super) async fn select(
    driver: &dyn StorageDriver,
    layout: &Layout,
    policies: &[CachePolicy],
    now: SystemTime,
    cache: &mut RefCache,
) -> RegistryResult<Vec<Choice>> {
    let now = secs(now);
    let mut out = Vec::new();
    for policy in policies {
        let mut groups = Vec::new();
        for (name, repo) in layout.repos.iter().filter(|(n, _)| policy.covers(n)) {
            let state = repo_state(driver, &repo.revisions, now, cache).await?;
            let mut expired = HashSet::new();
            if !policy.ttl.is_zero() {
                let limit = now.saturating_sub(policy.ttl.as_secs());
                for (d, t) in &state.pulled {
                    if *t < limit {
                        expired.insert(d.clone());
                        out.push(((name.clone(), d.clone()), ExpiryReason::Ttl));
                    }
                }
            }
            if policy.maxsize.is_some() {
                groups.extend(repo_groups(driver, name, &state, &expired, cache).await?);
            }
        }
        if let Some(max) = policy.maxsize {
            out.extend(evict(driver, groups, max).await?);
        }
    }
    Ok(out)
}

/// Splits a repository's surviving manifests into eviction groups.
async fn repo_groups(
    driver: &dyn StorageDriver,
    name: &str,
    state: &RepoState,
    expired: &HashSet<Digest>,
    cache: &mut RefCache,
) -> RegistryResult<Vec<Group>> {
    let live = |d: &Digest| !expired.contains(d);
    let listed: HashSet<&Digest> = state
        .children
        .iter()
        .filter(|(p, _)| live(p))
        .flat_map(|(_, kids)| kids.iter())
        .collect();
    let mut groups = Vec::new();
    for root in state
        .pulled
        .keys()
        .filter(|d| live(d) && !listed.contains(d))
    {
        let mut revisions = Vec::new();
        let mut blobs = HashSet::new();
        let mut pulled = 0;
        let mut seen = HashSet::new();
        let mut queue = vec![root.clone()];
        while let Some(m) = queue.pop() {
            if !seen.insert(m.clone()) || !live(&m) {
                continue;
            }
            pulled = pulled.max(state.pulled.get(&m).copied().unwrap_or(0));
            blobs.insert(m.clone());
            if let Some(r) = cache.get(driver, &m).await? {
                blobs.extend(r.blobs.iter().cloned());
            }
            queue.extend(state.children.get(&m).into_iter().flatten().cloned());
            revisions.push(m);
        }
        groups.push(Group {
            pulled,
            repo: name.to_string(),
            root: root.clone(),
            revisions,
            blobs,
        });
    }
    Ok(groups)
}

/// Evicts the least recently pulled groups until the distinct blobs the
/// rest reference fit in `max` bytes.
async fn evict(
    driver: &dyn StorageDriver,
    mut groups: Vec<Group>,
    max: u64,
) -> RegistryResult<Vec<Choice>> {
    let mut sizes: HashMap<Digest, u64> = HashMap::new();
    let mut blob_refs: HashMap<Digest, usize> = HashMap::new();
    let mut rev_refs: HashMap<(String, Digest), usize> = HashMap::new();
    for g in &groups {
        for b in &g.blobs {
            *blob_refs.entry(b.clone()).or_default() += 1;
            if !sizes.contains_key(b) {
                let size = match driver
                    .stat(&StoragePath::BlobData { digest: b }.to_key())
                    .await
                {
                    Ok(info) => info.size,
                    Err(e) if e.is_not_found() => 0,
                    Err(e) => return Err(e.into()),
                };
                sizes.insert(b.clone(), size);
            }
        }
        for r in &g.revisions {
            *rev_refs.entry((g.repo.clone(), r.clone())).or_default() += 1;
        }
    }
    let mut total: u64 = blob_refs
        .keys()
        .map(|b| sizes.get(b).copied().unwrap_or(0))
        .sum();
    groups.sort_by(|a, b| (a.pulled, &a.repo, &a.root).cmp(&(b.pulled, &b.repo, &b.root)));
    let mut out = BTreeSet::new();
    for g in groups {
        if total <= max {
            break;
        }
        for b in &g.blobs {
            if let Some(n) = blob_refs.get_mut(b) {
                *n -= 1;
                if *n == 0 {
                    total = total.saturating_sub(sizes.get(b).copied().unwrap_or(0));
                }
            }
        }
        for r in g.revisions {
            let key = (g.repo.clone(), r);
            if let Some(n) = rev_refs.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    out.insert(key);
                }
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|k| (k, ExpiryReason::MaxSize))
        .collect())
}
