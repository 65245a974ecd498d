//! Small filesystems for the resource tests: a size-limited tmpfs (or, where
//! tmpfs cannot be mounted, an ext4 image on a loop device), and a
//! read-only remount of a directory; each is unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::procs::{in_ci, output, require_tools};

/// A mounted filesystem, lazily unmounted on drop.
pub struct Mount {
    pub dir: PathBuf,
    loopdev: Option<String>,
}

impl Mount {
    /// A filesystem of `mib` MiB at `dir`: tmpfs, else an ext4 loop device.
    /// `None` (skip) when neither works outside CI; under `CI=true` that
    /// panics, so the test fails.
    pub fn small(dir: &Path, mib: u32) -> Option<Mount> {
        if !require_tools(&["mount", "umount", "losetup", "mkfs.ext4"]) {
            return None;
        }
        std::fs::create_dir_all(dir).expect("mount point");
        let tmpfs = output(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
                .arg(dir),
        );
        if tmpfs.status.success() {
            return Some(Mount {
                dir: dir.to_path_buf(),
                loopdev: None,
            });
        }
        let why_tmpfs = String::from_utf8_lossy(&tmpfs.stderr).into_owned();
        match Self::loop_ext4(dir, mib) {
            Ok(m) => Some(m),
            Err(why_loop) => {
                let msg = format!(
                    "cannot mount a small filesystem: tmpfs: {why_tmpfs}; loop device: {why_loop}"
                );
                assert!(!in_ci(), "{msg} (CI=true: run as root)");
                eprintln!("SKIPPED: {msg}");
                None
            }
        }
    }

    fn loop_ext4(dir: &Path, mib: u32) -> Result<Mount, String> {
        let image = dir.with_extension("img");
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(u64::from(mib) << 20)
            .map_err(|e| e.to_string())?;
        let run = |cmd: &mut Command| {
            let out = output(cmd);
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
        let dev = run(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image))?;
        let mount = Mount {
            dir: dir.to_path_buf(),
            loopdev: Some(dev.clone()),
        };
        run(Command::new("mount").arg(&dev).arg(dir))?;
        Ok(mount)
    }

    /// Makes the mount read-only (`true`) or writable again, in place.
    pub fn set_read_only(&self, ro: bool) {
        let opt = if ro { "remount,ro" } else { "remount,rw" };
        let out = output(Command::new("mount").args(["-o", opt]).arg(&self.dir));
        assert!(
            out.status.success(),
            "mount -o {opt}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = output(Command::new("umount").arg("-l").arg(&self.dir));
        if let Some(dev) = &self.loopdev {
            let _ = output(Command::new("losetup").args(["-d", dev]));
        }
    }
}
