//! The crash tests' checks after a restart: what was in flight is settled
//! from what the server serves, the cut upload is resumed, and everything
//! acknowledged is checked against the model.

use super::crash_model::{Cut, Model, Pending};
use super::support::{digest_of, Api};

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
