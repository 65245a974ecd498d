//! Item 1 of issue 18: `berth serve` killed with SIGKILL at random moments
//! (seeded) during blob uploads (monolithic and chunked), manifest and tag
//! writes, deletes and online GC sweeps, then restarted on the same storage:
//! every acknowledged write is served intact, nothing partial is visible, a
//! cut chunked upload resumes from the offset the server reports.

use std::time::Duration;

use rand::Rng;

use super::crash_model::{Kind, Model};
use super::support::{kill9, scan_fs_blobs, seeded_rng, temp_files, Api, Berth};
use crate::procs::tempdir;

/// Rounds per run: each is a start, a random workload, a kill at a random
/// moment, a restart and the checks (bounded for CI).
const ROUNDS: u32 = 16;

/// Online GC every second with a 2 s grace period: sweeps run during the
/// workload and get killed too.
const GC: &str =
    "  maintenance:\n    gc:\n      enabled: true\n      interval: 1s\n      graceperiod: 2s\n";

/// Runs the crash rounds against storage `storage`; `after_round` checks
/// the storage itself (the filesystem scan).
pub fn run(test: &str, dir: &std::path::Path, storage: &str, gc: bool, after_round: &dyn Fn()) {
    let mut rng = seeded_rng(test);
    let storage = if gc {
        format!("{storage}{GC}")
    } else {
        storage.to_string()
    };
    let mut berth = Berth::start(&dir.join("berth"), &storage);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let api = Api::new(berth.url(""));
    let mut model = Model::new(gc);
    for _ in 0..ROUNDS {
        let pid = berth.pid();
        let (fire, fired) = std::sync::mpsc::channel::<Duration>();
        let killer = std::thread::spawn(move || {
            if let Ok(delay) = fired.recv() {
                std::thread::sleep(delay);
            }
            kill9(pid);
        });
        // A fifth of the rounds kill at a random moment of the workload
        // (mostly inside blob uploads, the longest requests); the others aim at
        // one kind of request, killed 0-4 ms after it goes out.
        let target = [
            None,
            Some(Kind::Patch),
            Some(Kind::Put),
            Some(Kind::Manifest),
            Some(Kind::Delete),
        ][rng.gen_range(0..5)];
        let pause = Duration::from_micros(rng.gen_range(0..4000));
        match target {
            Some(kind) => {
                let fire = fire.clone();
                model.trigger = Some((
                    kind,
                    Box::new(move || {
                        let _ = fire.send(pause);
                    }),
                ));
            }
            None => fire
                .send(Duration::from_millis(rng.gen_range(0..1500)))
                .expect("killer waits"),
        }
        rt.block_on(async {
            let mut steps = 0;
            while model.step(&api, &mut rng).await.is_ok() {
                steps += 1;
                // Nothing of the aimed kind yet (no manifest to delete):
                // kill now rather than run on.
                if steps == 30 {
                    if let Some((_, fire)) = model.trigger.take() {
                        fire();
                    }
                }
            }
        });
        drop(fire);
        model.trigger = None;
        killer.join().expect("killer thread");
        berth.kill9();
        berth.restart();
        rt.block_on(model.check(&api, false));
        after_round();
        model.figures.rounds += 1;
    }
    rt.block_on(model.check(&api, true));
    after_round();
    let sweeps = berth.logs().matches("garbage collection finished").count();
    eprintln!("{test}: {:?}; GC runs finished: {sweeps}", model.figures);
    berth.stop();
}

fn fs_storage(root: &std::path::Path) -> String {
    format!("  filesystem:\n    rootdirectory: {}\n", root.display())
}

fn fs_run(test: &str, gc: bool) {
    let tmp = tempdir("berth-crash-");
    let root = tmp.path().join("storage");
    run(test, tmp.path(), &fs_storage(&root), gc, &|| {
        let n = scan_fs_blobs(&root);
        // Temp files of cut writes may stay (nothing reads them); they are
        // counted, not hidden.
        let stray = temp_files(&root);
        eprintln!(
            "  {n} blob files hash to their names; {} temp files",
            stray.len()
        );
    });
}

#[test]
fn kill9_during_writes_on_filesystem_loses_nothing_acknowledged() {
    fs_run("crash/filesystem", false);
}

#[test]
fn kill9_during_writes_and_online_gc_on_filesystem_exposes_nothing_partial() {
    fs_run("crash/filesystem+gc", true);
}

#[test]
fn kill9_during_writes_on_garage_loses_nothing_acknowledged() {
    if !crate::procs::require_tool("garage") {
        return;
    }
    let Some(garage) = crate::s3::garage() else {
        return;
    };
    let tmp = tempdir("berth-crash-s3-");
    let root = crate::s3::fresh_root("crash");
    let storage = super::support::s3_storage(garage, &root);
    run("crash/garage+gc", tmp.path(), &storage, true, &|| {});
}
