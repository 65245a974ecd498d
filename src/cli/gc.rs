//! `berth garbage-collect`: the offline collector's command line.

use anyhow::Context;

use super::{configuration_path_from_env, load, print_warnings, GcArgs};

/// `berth garbage-collect`: one offline mark and sweep; removals on stdout,
/// a progress counter on stderr when it is a terminal.
pub(super) async fn garbage_collect(args: GcArgs) -> anyhow::Result<()> {
    use crate::registry::gc::{run_once, GcEvent, GcOptions};
    use std::io::{IsTerminal, Write};

    let path = args
        .config
        .or(args.config_file)
        .or_else(configuration_path_from_env);
    let (mut config, warnings) = load(path.as_deref())?;
    print_warnings(&warnings);
    if let Some(root) = args.root {
        config.set_filesystem_root(root);
    }
    config.validate().context("invalid configuration")?;
    let driver = crate::app::open_storage(&config)?;
    let registry = crate::app::registry_for(&config, driver);
    let opts = GcOptions {
        dry_run: args.dry_run,
        delete_untagged: args.delete_untagged,
        grace: std::time::Duration::ZERO,
        cache: crate::registry::gc::expiry::CachePolicy::from_config(&config),
    };
    let tty = std::io::stderr().is_terminal();
    let progress_shown = std::sync::atomic::AtomicBool::new(false);
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let on_event = |event: GcEvent<'_>| {
        let clear = |shown: &std::sync::atomic::AtomicBool| {
            if shown.swap(false, std::sync::atomic::Ordering::Relaxed) {
                eprint!("\r\x1b[K");
            }
        };
        match event {
            GcEvent::Progress { phase, done, total } if tty => {
                if total > 0 {
                    eprint!("\r{phase} {done}/{total}\x1b[K");
                } else {
                    eprint!("\r{phase}...\x1b[K");
                }
                let _ = std::io::stderr().flush();
                progress_shown.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            GcEvent::Progress { .. } => {}
            GcEvent::ManifestRemoved(m) => {
                clear(&progress_shown);
                println!("{verb} manifest {}@{}", m.repository, m.digest);
            }
            GcEvent::ManifestExpired { manifest, reason } => {
                clear(&progress_shown);
                println!(
                    "{verb} manifest {}@{} (expired: {reason})",
                    manifest.repository, manifest.digest
                );
            }
            GcEvent::BlobRemoved(b) => {
                clear(&progress_shown);
                println!("{verb} blob {} ({} bytes)", b.digest, b.size);
            }
        }
    };
    let report = run_once(&registry, &opts, &on_event).await;
    if progress_shown.load(std::sync::atomic::Ordering::Relaxed) {
        eprint!("\r\x1b[K");
    }
    let report = report.context("garbage collection failed")?;
    println!(
        "{} repositories, {} manifests and {} blobs marked; {} of {} blobs and {} manifests {}; {} {} in {:.1}s",
        report.repositories,
        report.manifests_marked,
        report.blobs_marked,
        report.blobs_removed_total,
        report.blobs_scanned,
        report.manifests_removed_total,
        if args.dry_run { "eligible for deletion" } else { "deleted" },
        human_bytes(report.bytes_freed),
        if args.dry_run { "would be freed" } else { "freed" },
        report.duration.as_secs_f64()
    );
    Ok(())
}

/// `1234567` -> `1.2 MiB (1234567 bytes)`.
fn human_bytes(n: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {} ({n} bytes)", units[u])
    }
}
