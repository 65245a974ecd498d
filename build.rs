//! Build script: records the git commit the binary is built from, for
//! `berth --version` (issue 14 item 4). Outside a git checkout (a source
//! tarball, a container build without `.git`) the commit is "unknown";
//! `BERTH_GIT_COMMIT` in the environment overrides it (image builds).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BERTH_GIT_COMMIT");
    let commit = std::env::var("BERTH_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_string())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it
    // names (a commit) and packed refs. In a worktree these live in the
    // worktree's git dir, which `--git-path` resolves.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    if !std::path::Path::new(".git").exists() {
        // Not a checkout: nothing to watch but this script.
        println!("cargo:rerun-if-changed=build.rs");
    }
    println!("cargo:rustc-env=BERTH_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=BERTH_LONG_VERSION={} ({commit})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}
