//! Table tests of what a collection keeps: one registry holding every kind
//! of reference, collected with and without `delete_untagged` (and dry run),
//! each row saying whether a blob survives in each mode.

use berth::oci::digest::Digest;
use berth::registry::gc::GcOptions;

use crate::harness::{index_manifest, Fixture, Image, OCI_INDEX};

/// Everything the scenario pushed, by role.
struct Scenario {
    tagged: Image,
    moved_away: Image,
    retagged: Image,
    child_a: Image,
    child_b: Image,
    index: Digest,
    referrer_of_tagged: Image,
    referrer_of_untagged: Image,
    tagged_referrer_of_deleted: Image,
    deleted: Image,
    other_repo: Image,
    orphan: Digest,
    lone: Image,
    base: Digest,
}

async fn build(f: &Fixture) -> Scenario {
    let base: &[u8] = b"shared base layer";
    // A tagged image; its base layer is shared by several images.
    let tagged = f
        .push_image("app", Some("v1"), "tagged", &[base, b"l1"], None)
        .await;
    // `v2` first names one image, then moves to another: the first is untagged.
    let moved_away = f
        .push_image("app", Some("v2"), "moved", &[b"l2"], None)
        .await;
    let retagged = f
        .push_image("app", Some("v2"), "retagged", &[base, b"l3"], None)
        .await;
    // A tagged index whose children were pushed by digest (untagged).
    let child_a = f
        .push_image("app", None, "child-a", &[base, b"l4"], None)
        .await;
    let child_b = f.push_image("app", None, "child-b", &[b"l5"], None).await;
    let index_body = index_manifest(&[
        (child_a.manifest.clone(), child_a.body.len()),
        (child_b.manifest.clone(), child_b.body.len()),
    ]);
    let index = f.put_manifest("app", "multi", OCI_INDEX, &index_body).await;
    // Referrers: of a tagged manifest, of an untagged one (both untagged).
    let referrer_of_tagged = f
        .push_image("app", None, "sig-1", &[b"s1"], Some(&tagged))
        .await;
    let referrer_of_untagged = f
        .push_image("app", None, "sig-2", &[b"s2"], Some(&moved_away))
        .await;
    // Deleted through the API; one of its layers is also used by another
    // repository, one only by it.
    let deleted = f
        .push_image("app", Some("gone"), "deleted", &[base, b"l8", b"l10"], None)
        .await;
    let other_repo = f
        .push_image("other", Some("latest"), "other", &[b"l8"], None)
        .await;
    // A tagged referrer whose subject is deleted.
    let tagged_referrer_of_deleted = f
        .push_image("app", Some("sig"), "sig-3", &[b"s3"], Some(&deleted))
        .await;
    f.delete_manifest("app", &deleted.manifest).await;
    // A blob uploaded and never referenced.
    let orphan = f.push_blob("app", b"orphan").await;
    // A repository whose only manifest is deleted.
    let lone = f
        .push_image("lone", Some("x"), "lone", &[b"lone layer"], None)
        .await;
    f.delete_manifest("lone", &lone.manifest).await;

    Scenario {
        tagged,
        moved_away,
        retagged,
        child_a,
        child_b,
        index,
        referrer_of_tagged,
        referrer_of_untagged,
        tagged_referrer_of_deleted,
        deleted,
        other_repo,
        orphan,
        lone,
        base: Digest::sha256_of(base),
    }
}

/// (what, blobs, kept by a plain run, kept with delete_untagged)
fn table(s: &Scenario) -> Vec<(&'static str, Vec<Digest>, bool, bool)> {
    let d = |b: &[u8]| Digest::sha256_of(b);
    vec![
        ("tagged image", s.tagged.all_blobs(), true, true),
        ("shared base layer", vec![s.base.clone()], true, true),
        (
            "image whose tag moved away",
            s.moved_away.all_blobs(),
            true,
            false,
        ),
        ("image the tag moved to", s.retagged.all_blobs(), true, true),
        (
            "untagged child of a tagged index",
            s.child_a.all_blobs(),
            true,
            true,
        ),
        (
            "other child of a tagged index",
            s.child_b.all_blobs(),
            true,
            true,
        ),
        ("the index", vec![s.index.clone()], true, true),
        (
            "referrer of a tagged manifest",
            s.referrer_of_tagged.all_blobs(),
            true,
            true,
        ),
        (
            "untagged referrer of an untagged manifest",
            s.referrer_of_untagged.all_blobs(),
            true,
            false,
        ),
        (
            "tagged referrer of a deleted manifest",
            s.tagged_referrer_of_deleted.all_blobs(),
            true,
            true,
        ),
        (
            "deleted manifest, its config and unique layer",
            vec![
                s.deleted.manifest.clone(),
                s.deleted.config.clone(),
                d(b"l10"),
            ],
            false,
            false,
        ),
        (
            "layer shared with another repository",
            vec![d(b"l8")],
            true,
            true,
        ),
        (
            "image in the other repository",
            s.other_repo.all_blobs(),
            true,
            true,
        ),
        (
            "blob never referenced",
            vec![s.orphan.clone()],
            false,
            false,
        ),
        (
            "deleted repository's image",
            s.lone.all_blobs(),
            false,
            false,
        ),
    ]
}

async fn check(delete_untagged: bool) {
    for f in Fixture::all() {
        let s = build(&f).await;
        let rows = table(&s);
        let opts = GcOptions {
            dry_run: true,
            delete_untagged,
            ..GcOptions::default()
        };
        let dry = f.gc(&opts).await;
        for (what, blobs, _, _) in &rows {
            for b in blobs {
                assert!(
                    f.blob_stored(b).await,
                    "{}: dry run removed {what} {b}",
                    f.kind
                );
            }
        }
        let report = f
            .gc(&GcOptions {
                dry_run: false,
                ..opts.clone()
            })
            .await;
        let mut want_removed = 0;
        for (what, blobs, plain, untagged) in &rows {
            let kept = if delete_untagged { *untagged } else { *plain };
            for b in blobs {
                assert_eq!(
                    f.blob_stored(b).await,
                    kept,
                    "{} delete_untagged={delete_untagged}: {what} {b}",
                    f.kind
                );
                if !kept {
                    want_removed += 1;
                }
            }
        }
        assert_eq!(report.blobs_removed.len(), want_removed, "{}", f.kind);
        let mut dry_list: Vec<_> = dry.blobs_removed.iter().map(|b| &b.digest).collect();
        let mut real_list: Vec<_> = report.blobs_removed.iter().map(|b| &b.digest).collect();
        dry_list.sort();
        real_list.sort();
        assert_eq!(
            dry_list, real_list,
            "{}: dry run lists what the run removes",
            f.kind
        );
        assert_eq!(
            report.bytes_freed,
            report.blobs_removed.iter().map(|b| b.size).sum::<u64>()
        );

        // Manifests: unlinked only with delete_untagged, and only those.
        let unlinked: Vec<_> = report
            .manifests_removed
            .iter()
            .map(|m| (m.repository.as_str(), m.digest.clone()))
            .collect();
        if delete_untagged {
            let mut want = vec![
                ("app", s.moved_away.manifest.clone()),
                ("app", s.referrer_of_untagged.manifest.clone()),
            ];
            want.sort();
            let mut got = unlinked.clone();
            got.sort();
            assert_eq!(got, want, "{}", f.kind);
        } else {
            assert!(unlinked.is_empty(), "{}: {unlinked:?}", f.kind);
        }
        for (m, served) in [
            (&s.child_a.manifest, true),
            (&s.referrer_of_tagged.manifest, true),
            (&s.moved_away.manifest, !delete_untagged),
        ] {
            let r = f.get(&format!("/v2/app/manifests/{m}")).await;
            assert_eq!(r.status.is_success(), served, "{}: GET {m}", f.kind);
        }
        // Referrers of a kept manifest are still listed.
        let r = f
            .get(&format!("/v2/app/referrers/{}", s.tagged.manifest))
            .await;
        assert!(
            String::from_utf8_lossy(&r.body).contains(&s.referrer_of_tagged.manifest.to_string()),
            "{}",
            f.kind
        );
        // Every kept tag still pulls completely.
        for tag in ["v1", "v2", "multi", "sig"] {
            let r = f.get(&format!("/v2/app/manifests/{tag}")).await;
            assert!(r.status.is_success(), "{}: {tag}", f.kind);
        }
        // A second run finds nothing more to do.
        let again = f.gc(&opts.clone()).await;
        assert!(again.blobs_removed.is_empty(), "{}", f.kind);
        assert!(again.manifests_removed.is_empty(), "{}", f.kind);
        // The repository with no manifest left is not in the catalog.
        let cat = f.get("/v2/_catalog").await;
        let cat: serde_json::Value = serde_json::from_slice(&cat.body).expect("json");
        assert_eq!(
            cat["repositories"],
            serde_json::json!(["app", "other"]),
            "{}",
            f.kind
        );
    }
}

#[tokio::test]
async fn plain_run_keeps_every_linked_manifest() {
    check(false).await;
}

#[tokio::test]
async fn delete_untagged_keeps_index_children_and_referrers() {
    check(true).await;
}
