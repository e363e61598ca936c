//! Mount points: whether a path is one (per `/proc/self/mountinfo`), waiting for it to
//! become or stop being one (detaching one is `zdbfs::lazy_umount`); a small disk that fills.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a mount or unmount may take to show.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);

/// `path` as given and with its parent resolved (the mount point itself is not touched: a
/// dead FUSE mount fails every stat with ENOTCONN).
fn spellings(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
        if let Ok(parent) = std::fs::canonicalize(parent) {
            out.push(parent.join(name));
        }
    }
    out
}

/// The `/proc/self/mountinfo` line of the mount at `path`, if one is listed.
pub fn entry(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want: Vec<String> = spellings(path)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    info.lines()
        .find(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| want.iter().any(|w| w == m))
        })
        .map(str::to_owned)
}

/// Whether `path` is a mount point (listed, even if its server died).
pub fn is_mounted(path: &Path) -> bool {
    entry(path).is_some()
}

/// Whether `path` is a mount whose line names `kind` (e.g. `zdbfs`) and that answers a
/// `stat` (a dead one left by a crash fails it with ENOTCONN).
pub fn is_live(path: &Path, kind: &str) -> bool {
    entry(path).is_some_and(|l| l.contains(kind)) && std::fs::metadata(path).is_ok()
}

/// Poll (bounded by [`MOUNT_TIMEOUT`]) until `path` is (or is no longer) a mount point.
#[track_caller]
pub fn wait_mounted(path: &Path, want: bool) {
    crate::wait::until(
        &format!("the mount state of {path:?} to become {want}"),
        MOUNT_TIMEOUT,
        || is_mounted(path) == want,
    );
}

/// A tmpfs of `mib` MiB mounted on a fresh folder, unmounted when dropped: a disk that
/// fills up (tests run as root).
pub struct SmallDisk {
    _dir: tempfile::TempDir,
    /// The mounted folder.
    pub path: PathBuf,
}

impl SmallDisk {
    pub fn new(mib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { _dir: dir, path }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_mounted_and_a_temp_dir_is_not() {
        assert!(is_mounted(Path::new("/")));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_mounted(dir.path()));
        assert!(!is_live(dir.path(), "zdbfs"));
        wait_mounted(dir.path(), false);
    }
}
