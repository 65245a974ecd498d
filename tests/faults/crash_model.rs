//! The crash tests' workload and its model: what the registry acknowledged
//! (and so must serve after any crash), what was in flight when the server
//! died (may or may not be there, but never partial), and the checks run
//! after each restart.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::Rng;

use super::support::{digest_of, manifest, Api, Sent};

const REPOS: [&str; 2] = ["crash/a", "crash/b"];
const TAGS: [&str; 3] = ["t0", "t1", "t2"];

/// A manifest the registry acknowledged and has not deleted since.
#[derive(Clone)]
struct Man {
    bytes: Vec<u8>,
    blobs: Vec<String>,
}

/// A chunked upload cut by the crash, to resume after the restart.
pub struct Cut {
    repo: String,
    loc: String,
    data: Vec<u8>,
    acked: u64,
    finishing: bool,
}

/// A write whose answer never came.
enum Pending {
    Blob(String, String),
    Manifest {
        repo: String,
        digest: String,
        man: Man,
        tag: Option<String>,
    },
    Delete {
        repo: String,
        digest: String,
    },
}

/// Counters reported at the end of a run.
#[derive(Debug, Default)]
pub struct Figures {
    pub rounds: u32,
    pub acked_blobs: u32,
    pub acked_manifests: u32,
    pub acked_tags: u32,
    pub acked_deletes: u32,
    pub cut: BTreeMap<&'static str, u32>,
    pub resumed_uploads: u32,
    pub uploads_gone: u32,
    pub refused: u32,
    pub checked_blobs: u32,
}

/// The workload's state: what must be true after every restart.
pub struct Model {
    /// With online GC, unreferenced blobs may be collected: they are then
    /// checked only if still there.
    gc: bool,
    acked_blobs: Vec<(String, String)>,
    new_blobs: usize,
    manifests: BTreeMap<(String, String), Man>,
    deleted: Vec<(String, String)>,
    tags: BTreeMap<(String, String), Option<String>>,
    pending: Vec<Pending>,
    pub cut: Option<Cut>,
    note: u64,
    /// When set, the kill is fired as the next request of this kind goes
    /// out (then cleared), so short writes get cut as often as long ones.
    pub trigger: Option<(Kind, Box<dyn FnOnce() + Send>)>,
    pub figures: Figures,
}

/// Requests a round can aim its kill at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Patch,
    Put,
    Manifest,
    Delete,
}

/// Why an operation stopped early.
pub enum Stop {
    /// No answer: the server is gone.
    Lost,
}

impl Model {
    pub fn new(gc: bool) -> Model {
        Model {
            gc,
            acked_blobs: Vec::new(),
            new_blobs: 0,
            manifests: BTreeMap::new(),
            deleted: Vec::new(),
            tags: BTreeMap::new(),
            pending: Vec::new(),
            cut: None,
            note: 0,
            trigger: None,
            figures: Figures::default(),
        }
    }

    /// One random operation; `Err(Stop::Lost)` once the server is gone.
    pub async fn step(&mut self, api: &Api, rng: &mut StdRng) -> Result<(), Stop> {
        let repo = REPOS[rng.gen_range(0..REPOS.len())].to_string();
        match rng.gen_range(0..10) {
            0..=1 => {
                let data = random_blob(rng);
                self.monolithic(api, &repo, data).await.map(|_| ())
            }
            2..=3 => {
                let data = random_blob(rng);
                self.chunked(api, &repo, data, rng).await.map(|_| ())
            }
            4..=6 => self.image(api, &repo, rng).await,
            7 => self.retag(api, rng).await,
            _ => self.delete(api, rng).await,
        }
    }

    /// Fires the armed kill if it aims at `kind`.
    fn about_to(&mut self, kind: Kind) {
        if self.trigger.as_ref().is_some_and(|(k, _)| *k == kind) {
            if let Some((_, fire)) = self.trigger.take() {
                fire();
            }
        }
    }

    fn refused(&mut self, what: &str, sent: &Sent) {
        // With online GC a blob unreferenced for longer than the grace
        // period may go between its upload and the manifest: the manifest
        // is then refused, as docs/gc.md says. Nothing else may fail.
        let ok = self.gc && sent.status() == Some(400) && sent.text().contains("BLOB_UNKNOWN");
        assert!(ok, "{what} refused by a live server: {}", sent.text());
        self.figures.refused += 1;
    }

    async fn monolithic(&mut self, api: &Api, repo: &str, data: Vec<u8>) -> Result<String, Stop> {
        let digest = digest_of(&data);
        self.about_to(Kind::Put);
        let sent = api.push_blob(repo, &data).await;
        match sent.status() {
            Some(201) => {
                self.ack_blob(repo, &digest);
                Ok(digest)
            }
            None => {
                self.pending.push(Pending::Blob(repo.into(), digest));
                self.count_cut("monolithic upload");
                Err(Stop::Lost)
            }
            _ => panic!("monolithic push refused: {}", sent.text()),
        }
    }

    async fn chunked(
        &mut self,
        api: &Api,
        repo: &str,
        data: Vec<u8>,
        rng: &mut StdRng,
    ) -> Result<String, Stop> {
        let digest = digest_of(&data);
        let loc = match api.open_upload(repo).await {
            Ok(loc) => loc,
            Err(Sent::Lost(_)) => {
                self.count_cut("upload start");
                return Err(Stop::Lost);
            }
            Err(other) => panic!("upload start refused: {}", other.text()),
        };
        let chunks = rng.gen_range(2..=5);
        let size = data.len().div_ceil(chunks).max(1);
        let mut at = 0usize;
        while at + size < data.len() {
            self.about_to(Kind::Patch);
            let sent = api.patch(&loc, at as u64, &data[at..at + size]).await;
            match sent.status() {
                Some(202) => at += size,
                None => {
                    self.cut_upload(repo, &loc, data, at as u64, false);
                    self.count_cut("chunk (PATCH)");
                    return Err(Stop::Lost);
                }
                _ => panic!("PATCH refused: {}", sent.text()),
            }
        }
        self.about_to(Kind::Put);
        let sent = api.finish(&loc, &digest, Some(data[at..].to_vec())).await;
        match sent.status() {
            Some(201) => {
                self.ack_blob(repo, &digest);
                Ok(digest)
            }
            None => {
                self.pending.push(Pending::Blob(repo.into(), digest));
                self.cut_upload(repo, &loc, data, at as u64, true);
                self.count_cut("chunked upload's PUT");
                Err(Stop::Lost)
            }
            _ => panic!("chunked PUT refused: {}", sent.text()),
        }
    }

    fn cut_upload(&mut self, repo: &str, loc: &str, data: Vec<u8>, acked: u64, finishing: bool) {
        self.cut = Some(Cut {
            repo: repo.into(),
            loc: loc.into(),
            data,
            acked,
            finishing,
        });
    }

    /// Config and one or two layers, then the manifest under a tag.
    async fn image(&mut self, api: &Api, repo: &str, rng: &mut StdRng) -> Result<(), Stop> {
        let mut layers = Vec::new();
        for _ in 0..rng.gen_range(1..=2) {
            let data = random_blob(rng);
            let len = data.len();
            let digest = if rng.gen_bool(0.5) {
                self.monolithic(api, repo, data).await?
            } else {
                self.chunked(api, repo, data, rng).await?
            };
            layers.push((digest, len));
        }
        self.note += 1;
        let config = format!("{{\"note\":{}}}", self.note).into_bytes();
        let config_digest = self.monolithic(api, repo, config.clone()).await?;
        let bytes = manifest(
            (&config_digest, config.len()),
            &layers,
            &format!("{}", self.note),
        );
        let man = Man {
            bytes,
            blobs: std::iter::once(config_digest)
                .chain(layers.into_iter().map(|l| l.0))
                .collect(),
        };
        let tag = TAGS[rng.gen_range(0..TAGS.len())].to_string();
        self.put_manifest(api, repo, man, &tag).await
    }

    async fn put_manifest(
        &mut self,
        api: &Api,
        repo: &str,
        man: Man,
        tag: &str,
    ) -> Result<(), Stop> {
        let digest = digest_of(&man.bytes);
        self.about_to(Kind::Manifest);
        let sent = api.put_manifest(repo, tag, &man.bytes).await;
        match sent.status() {
            Some(201) => {
                self.figures.acked_manifests += 1;
                self.figures.acked_tags += 1;
                self.manifests.insert((repo.into(), digest.clone()), man);
                self.tags.insert((repo.into(), tag.into()), Some(digest));
                Ok(())
            }
            None => {
                self.pending.push(Pending::Manifest {
                    repo: repo.into(),
                    digest,
                    man,
                    tag: Some(tag.into()),
                });
                self.count_cut("manifest/tag write");
                Err(Stop::Lost)
            }
            _ => {
                self.refused("manifest PUT", &sent);
                Ok(())
            }
        }
    }

    /// A live manifest under another tag.
    async fn retag(&mut self, api: &Api, rng: &mut StdRng) -> Result<(), Stop> {
        let Some(((repo, _), man)) = pick(&self.manifests, rng) else {
            return Ok(());
        };
        let tag = TAGS[rng.gen_range(0..TAGS.len())];
        self.put_manifest(api, &repo, man, tag).await
    }

    /// Deletes a live manifest by digest (its tags go with it).
    async fn delete(&mut self, api: &Api, rng: &mut StdRng) -> Result<(), Stop> {
        let Some(((repo, digest), _)) = pick(&self.manifests, rng) else {
            return Ok(());
        };
        self.about_to(Kind::Delete);
        let sent = api
            .send(
                "DELETE",
                &format!("/v2/{repo}/manifests/{digest}"),
                &[],
                None,
            )
            .await;
        match sent.status() {
            Some(202) => {
                self.figures.acked_deletes += 1;
                self.forget_manifest(&repo, &digest);
                Ok(())
            }
            None => {
                self.pending.push(Pending::Delete { repo, digest });
                self.count_cut("manifest delete");
                Err(Stop::Lost)
            }
            _ => panic!("DELETE refused: {}", sent.text()),
        }
    }

    fn forget_manifest(&mut self, repo: &str, digest: &str) {
        self.manifests.remove(&(repo.into(), digest.into()));
        self.deleted.push((repo.into(), digest.into()));
        for ((r, _), d) in self.tags.iter_mut() {
            if r == repo && d.as_deref() == Some(digest) {
                *d = None;
            }
        }
    }

    fn ack_blob(&mut self, repo: &str, digest: &str) {
        self.figures.acked_blobs += 1;
        self.acked_blobs.push((repo.into(), digest.into()));
    }

    fn count_cut(&mut self, what: &'static str) {
        *self.figures.cut.entry(what).or_default() += 1;
    }
}

/// 1 KiB .. 1.5 MiB of random bytes.
fn random_blob(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.gen_range(1024..1536 * 1024);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

fn pick<K: Clone, V: Clone>(map: &BTreeMap<K, V>, rng: &mut StdRng) -> Option<(K, V)> {
    if map.is_empty() {
        return None;
    }
    map.iter()
        .nth(rng.gen_range(0..map.len()))
        .map(|(k, v)| (k.clone(), v.clone()))
}

impl Model {
    /// After a restart: settles what was in flight from what is observed,
    /// resumes the cut upload, and checks everything acknowledged (`all`:
    /// every blob, else only those acknowledged since the last check).
    pub async fn check(&mut self, api: &Api, all: bool) {
        for p in std::mem::take(&mut self.pending) {
            match p {
                Pending::Blob(repo, digest) => {
                    // Either absent or whole; never partial.
                    if api.blob_intact(&repo, &digest).await.is_some() {
                        self.figures.checked_blobs += 1;
                    }
                }
                Pending::Manifest {
                    repo,
                    digest,
                    man,
                    tag,
                } => {
                    let (status, body) = api.get(&format!("/v2/{repo}/manifests/{digest}")).await;
                    match status {
                        200 => {
                            assert_eq!(body.as_ref(), &man.bytes[..], "manifest {digest} bytes");
                            self.manifests.insert((repo.clone(), digest.clone()), man);
                            if let Some(tag) = tag {
                                // The tag may or may not have moved.
                                let (s, b) = api.get(&format!("/v2/{repo}/manifests/{tag}")).await;
                                let now = (s == 200).then(|| digest_of(&b));
                                let before = self
                                    .tags
                                    .get(&(repo.clone(), tag.clone()))
                                    .cloned()
                                    .flatten();
                                assert!(
                                    now.as_ref() == Some(&digest) || now == before,
                                    "tag {repo}:{tag} is {now:?}: neither the cut write {digest} nor {before:?}"
                                );
                                self.tags.insert((repo, tag), now);
                            }
                        }
                        404 => {}
                        s => panic!("GET manifest {digest}: {s}"),
                    }
                }
                Pending::Delete { repo, digest } => {
                    let (status, _) = api.get(&format!("/v2/{repo}/manifests/{digest}")).await;
                    // A delete cut after its tags went but before the
                    // revision did leaves an untagged manifest: settle tags
                    // from what is served.
                    let keys: Vec<_> = self
                        .tags
                        .keys()
                        .filter(|(r, _)| r == &repo)
                        .cloned()
                        .collect();
                    for key in keys {
                        if self.tags[&key].as_deref() == Some(&digest) {
                            let (s, b) =
                                api.get(&format!("/v2/{}/manifests/{}", key.0, key.1)).await;
                            let now = (s == 200).then(|| digest_of(&b));
                            assert!(
                                now.is_none() || now.as_deref() == Some(&digest[..]),
                                "tag {key:?} moved to {now:?}"
                            );
                            self.tags.insert(key, now);
                        }
                    }
                    if status == 404 {
                        self.forget_manifest(&repo, &digest);
                    }
                }
            }
        }
        if let Some(cut) = self.cut.take() {
            self.resume(api, cut).await;
        }
        for ((repo, tag), want) in &self.tags {
            let (status, body) = api.get(&format!("/v2/{repo}/manifests/{tag}")).await;
            match want {
                Some(d) => {
                    assert_eq!(status, 200, "acknowledged tag {repo}:{tag} lost");
                    assert_eq!(&digest_of(&body), d, "tag {repo}:{tag} points elsewhere");
                }
                None => assert_eq!(status, 404, "deleted tag {repo}:{tag} is back"),
            }
        }
        let manifests: Vec<_> = self
            .manifests
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((repo, digest), man) in manifests {
            let (status, body) = api.get(&format!("/v2/{repo}/manifests/{digest}")).await;
            assert_eq!(status, 200, "acknowledged manifest {repo}@{digest} lost");
            assert_eq!(body.as_ref(), &man.bytes[..], "manifest {digest} bytes");
            for b in &man.blobs {
                assert!(
                    api.blob_intact(&repo, b).await.is_some(),
                    "blob {b} of live manifest {repo}@{digest} lost"
                );
                self.figures.checked_blobs += 1;
            }
        }
        for (repo, digest) in &self.deleted {
            let (status, _) = api.get(&format!("/v2/{repo}/manifests/{digest}")).await;
            assert_eq!(status, 404, "deleted manifest {repo}@{digest} is back");
        }
        let from = if all { 0 } else { self.new_blobs };
        for (repo, digest) in &self.acked_blobs[from..] {
            let found = api.blob_intact(repo, digest).await;
            assert!(
                self.gc || found.is_some(),
                "acknowledged blob {digest} in {repo} lost"
            );
            self.figures.checked_blobs += u32::from(found.is_some());
        }
        self.new_blobs = self.acked_blobs.len();
    }

    /// GET the cut upload's status, continue it from the offset the server
    /// reports, finish it: it completes intact, or is cleanly gone.
    async fn resume(&mut self, api: &Api, cut: Cut) {
        let status = api.send("GET", &cut.loc, &[], None).await;
        match status.status() {
            Some(204) => {
                let mut at = status.upload_size().expect("Range on upload status");
                assert!(
                    at >= cut.acked && at <= cut.data.len() as u64,
                    "upload reports {at} bytes; {} were acknowledged of {}",
                    cut.acked,
                    cut.data.len()
                );
                let digest = digest_of(&cut.data);
                let mut sent = api.patch(&cut.loc, at, &cut.data[at as usize..]).await;
                if sent.status() == Some(416) {
                    // `0-0` was one byte, not none.
                    at = 1;
                    sent = api.patch(&cut.loc, at, &cut.data[at as usize..]).await;
                }
                assert_eq!(sent.status(), Some(202), "resumed PATCH: {}", sent.text());
                let done = api.finish(&cut.loc, &digest, None).await;
                assert_eq!(done.status(), Some(201), "resumed PUT: {}", done.text());
                assert!(api.blob_intact(&cut.repo, &digest).await.is_some());
                self.ack_blob(&cut.repo, &digest);
                self.figures.resumed_uploads += 1;
            }
            Some(404) => {
                assert!(
                    status.text().contains("BLOB_UPLOAD_UNKNOWN"),
                    "gone upload: {}",
                    status.text()
                );
                // Only a PUT that was under way may have used the session up.
                assert!(cut.finishing, "upload lost before its PUT");
                self.figures.uploads_gone += 1;
            }
            _ => panic!("upload status after restart: {}", status.text()),
        }
    }
}
