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
pub(super) struct Man {
    pub(super) bytes: Vec<u8>,
    pub(super) blobs: Vec<String>,
}

/// A chunked upload cut by the crash, to resume after the restart.
pub struct Cut {
    pub(super) repo: String,
    pub(super) loc: String,
    pub(super) data: Vec<u8>,
    pub(super) acked: u64,
    pub(super) finishing: bool,
}

/// A write whose answer never came.
pub(super) enum Pending {
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
    pub(super) gc: bool,
    pub(super) acked_blobs: Vec<(String, String)>,
    pub(super) new_blobs: usize,
    pub(super) manifests: BTreeMap<(String, String), Man>,
    pub(super) deleted: Vec<(String, String)>,
    pub(super) tags: BTreeMap<(String, String), Option<String>>,
    pub(super) pending: Vec<Pending>,
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
    /// An empty model; `gc` when online GC may collect unreferenced blobs.
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

    pub(super) fn forget_manifest(&mut self, repo: &str, digest: &str) {
        self.manifests.remove(&(repo.into(), digest.into()));
        self.deleted.push((repo.into(), digest.into()));
        for ((r, _), d) in self.tags.iter_mut() {
            if r == repo && d.as_deref() == Some(digest) {
                *d = None;
            }
        }
    }

    pub(super) fn ack_blob(&mut self, repo: &str, digest: &str) {
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
