//! Quotas: the bytes an account keeps in its home folder, against its quota. An upload or a
//! save that would go past the quota is refused with 507 and the numbers, before its body is
//! read when its length is announced, else as soon as it grows too large (nothing of it is
//! kept). The bytes used are counted by walking the home folder (regular files; links are
//! not followed), remembered for [`FRESH`] and moved by what the drive itself writes and
//! deletes meanwhile, so a stream of uploads walks the folder once.
//!
//! Owns: the count and the refusal's text. Must not touch: accounts ([`crate::users`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cap_std::fs::Dir;

use crate::error::ApiError;

/// How long a count of a home folder is trusted (changes made outside the drive show up
/// within it).
const FRESH: Duration = Duration::from_secs(30);

/// Bytes used per account, as last counted and moved since.
#[derive(Default)]
pub struct Usage {
    counted: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u64)>> {
        self.counted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes under `home`, the folder of account `name` (blocking: may walk the folder).
    pub fn used(&self, name: &str, home: &Dir) -> std::io::Result<u64> {
        if let Some(&(at, bytes)) = self.lock().get(name) {
            if at.elapsed() < FRESH {
                return Ok(bytes);
            }
        }
        let bytes = bytes_under(home)?;
        self.lock()
            .insert(name.to_string(), (Instant::now(), bytes));
        Ok(bytes)
    }

    /// The drive wrote `added` bytes and removed `removed` for account `name`.
    pub fn moved(&self, name: &str, added: u64, removed: u64) {
        if let Some((_, bytes)) = self.lock().get_mut(name) {
            *bytes = bytes.saturating_add(added).saturating_sub(removed);
        }
    }

    /// Count again next time (after a deletion of unknown size).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }
}

/// Bytes of the regular files under `dir`, every level down (links are not followed).
pub(crate) fn bytes_under(dir: &Dir) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.try_clone()?];
    while let Some(d) = stack.pop() {
        for entry in d.entries()? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.open_dir()?);
            } else if kind.is_file() {
                total = total.saturating_add(entry.metadata()?.len());
            }
        }
    }
    Ok(total)
}

/// The refusal of a write of `needed` bytes by account `name`, which uses `used` of `quota`.
pub fn exceeded(name: &str, used: u64, quota: u64, needed: u64) -> ApiError {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    ApiError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        format!(
            "over the quota of {name}: {:.1} MiB used of {:.1} MiB, {:.1} MiB free; this needs {:.1} MiB",
            mib(used),
            mib(quota),
            mib(quota.saturating_sub(used)),
            mib(needed)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_every_level_down_and_follows_writes() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::write(tmp.path().join("one"), vec![0u8; 1000]).unwrap();
        std::fs::write(tmp.path().join("a/b/two"), vec![0u8; 234]).unwrap();
        std::os::unix::fs::symlink("/usr", tmp.path().join("a/link")).unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let usage = Usage::default();
        assert_eq!(usage.used("alice", &dir).unwrap(), 1234);
        std::fs::write(tmp.path().join("three"), vec![0u8; 10]).unwrap();
        assert_eq!(usage.used("alice", &dir).unwrap(), 1234, "remembered");
        usage.moved("alice", 10, 0);
        assert_eq!(usage.used("alice", &dir).unwrap(), 1244);
        usage.forget("alice");
        assert_eq!(usage.used("alice", &dir).unwrap(), 1244, "counted again");
    }
}
