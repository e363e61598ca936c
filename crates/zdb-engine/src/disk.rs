//! The space left on the disk of the data folder, and the part of it kept back.
//!
//! An append-only store needs space to give space back: a DEL appends a tombstone, compaction
//! copies live records before it truncates, a filesystem on top rewrites metadata to unlink a
//! file. So writes of new values stop while `reserve` bytes are still free (a clear
//! [`Error::DiskFull`] with the numbers), and deletes, compaction and namespaces allowed to
//! (a filesystem's metadata, [`crate::Namespace::use_reserve`]) go on into the reserve.
//! Reads never depend on free space.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Free space is asked of the kernel at least this often while writes come in.
const RECHECK: Duration = Duration::from_secs(1);
/// ... and at every write once fewer than this many bytes above the reserve seem left.
const NEAR: u64 = 64 << 20;

/// The reserve of an engine whose configuration leaves it to the engine: 64 MiB, at most 5 %
/// of the disk (a small test disk still takes writes).
pub const DEFAULT_RESERVE: u64 = 64 << 20;

/// Free-space accounting for one data folder, shared by its namespaces.
#[derive(Debug)]
pub struct DiskGuard {
    path: PathBuf,
    reserve: u64,
    /// Bytes available as last asked, minus what was admitted since, and when asked.
    estimate: Mutex<(u64, Instant)>,
}

impl DiskGuard {
    /// Keep `reserve` bytes free on the disk holding `path` (capped at 5 % of that disk).
    pub fn new(path: &Path, reserve: u64) -> Result<DiskGuard> {
        let (available, total) = statvfs(path)?;
        Ok(DiskGuard {
            path: path.to_path_buf(),
            reserve: reserve.min(total / 20),
            estimate: Mutex::new((available, Instant::now())),
        })
    }

    /// The bytes kept back.
    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    /// Bytes a new value may still take (free space above the reserve), asked of the kernel.
    pub fn available(&self) -> Result<u64> {
        let (available, _) = statvfs(&self.path)?;
        *self.estimate.lock() = (available, Instant::now());
        Ok(available.saturating_sub(self.reserve))
    }

    /// Admit `len` more bytes, or refuse them if they would eat into the reserve; with
    /// `into_reserve`, only a disk with no room at all refuses.
    pub fn admit(&self, len: u64, into_reserve: bool) -> Result<()> {
        let keep = if into_reserve { 0 } else { self.reserve };
        let mut est = self.estimate.lock();
        if est.0 < keep + len + NEAR || est.1.elapsed() >= RECHECK {
            let (available, _) = statvfs(&self.path)?;
            *est = (available, Instant::now());
        }
        if est.0 < keep + len {
            return Err(Error::DiskFull {
                path: self.path.clone(),
                available: est.0,
                reserve: self.reserve,
            });
        }
        est.0 -= len;
        Ok(())
    }
}

/// Bytes available to unprivileged writers and the size of the file system holding `path`.
fn statvfs(path: &Path) -> Result<(u64, u64)> {
    let st = rustix::fs::statvfs(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let unit = st.f_frsize.max(1);
    Ok((
        st.f_bavail.saturating_mul(unit),
        st.f_blocks.saturating_mul(unit),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_into_the_reserve_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let probe = DiskGuard::new(dir.path(), 0).unwrap();
        let free = probe.available().unwrap();
        // A reserve of everything but 512 MiB: 768 MiB is refused, 1 MiB admitted, and the
        // reserve itself stays open to deletes and compaction (margins for other writers).
        let g = DiskGuard {
            reserve: free.saturating_sub(512 << 20),
            ..probe
        };
        match g.admit(768 << 20, false) {
            Err(Error::DiskFull {
                available, reserve, ..
            }) => assert!(available >= reserve),
            other => panic!("expected DiskFull, got {other:?}"),
        }
        g.admit(1 << 20, false).unwrap();
        g.admit(768 << 20, true).unwrap();
    }
}
