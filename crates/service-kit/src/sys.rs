//! System calls the daemons share, through `rustix` (no `unsafe` but in [`detach`]).

use std::fs::File;
use std::path::Path;

use rustix::fs::FlockOperation;

pub mod detach;

/// Open (creating) `path` and hold an exclusive lock on it for the life of the returned
/// file. A lock another process holds fails at once with `ErrorKind::WouldBlock`.
pub fn lock_exclusive(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive)?;
    Ok(file)
}

/// Ask the file system holding `path` for its statistics: for a FUSE mount this always
/// reaches the daemon (a dead one answers `ENOTCONN`), where `stat` may be answered from
/// the kernel's attribute cache.
pub fn probe_fs(path: &Path) -> std::io::Result<()> {
    rustix::fs::statfs(path).map(drop).map_err(Into::into)
}

/// Sizes of the file system holding a path, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    /// Free, including the blocks reserved for root.
    pub free: u64,
    /// Free for an unprivileged user.
    pub available: u64,
}

/// The space of the file system holding `path`.
pub fn space(path: &Path) -> std::io::Result<Space> {
    Ok(Space::of(&rustix::fs::statvfs(path)?))
}

/// The space of the file system holding the open file or folder `fd`.
pub fn space_of(fd: impl std::os::fd::AsFd) -> std::io::Result<Space> {
    Ok(Space::of(&rustix::fs::fstatvfs(fd)?))
}

impl Space {
    fn of(st: &rustix::fs::StatVfs) -> Space {
        let unit = st.f_frsize.max(1);
        Space {
            total: st.f_blocks.saturating_mul(unit),
            free: st.f_bfree.saturating_mul(unit),
            available: st.f_bavail.saturating_mul(unit),
        }
    }
}

/// Whether `path` is listed as a mount point in /proc/self/mountinfo.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // Field 5 is the mount point, with spaces and such escaped as octal.
    let want = abs.to_string_lossy().replace(' ', "\\040");
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = lock_exclusive(&path).unwrap();
        let again = lock_exclusive(&path).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::WouldBlock);
        drop(held);
        lock_exclusive(&path).unwrap();
    }

    #[test]
    fn space_and_mountpoints() {
        let s = space(Path::new("/")).unwrap();
        assert!(s.total > 0 && s.free <= s.total && s.available <= s.free);
        probe_fs(Path::new("/")).unwrap();
        assert!(is_mountpoint(Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mountpoint(dir.path()) || dir.path() == Path::new("/"));
    }
}
