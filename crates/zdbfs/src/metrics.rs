//! Operation counters: cheap atomics bumped by the filesystem, read as a [`Snapshot`].
//! Per-request counts ([`Call`]) are those 0-db-fs keeps in its `stats_t` (`crate::ioctl`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The kernel requests 0-db-fs counts one by one (its `syscall_*` statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Getattr,
    Setattr,
    /// `create` and `mknod`.
    Create,
    /// `readdir` and `readdirplus`.
    Readdir,
    /// `open` and `opendir`.
    Open,
    Read,
    Write,
    Mkdir,
    Unlink,
    Rmdir,
    Rename,
    Link,
    Symlink,
    Statfs,
    Ioctl,
}

impl Call {
    const COUNT: usize = Call::Ioctl as usize + 1;
}

/// Counters of one mounted filesystem.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Every kernel request answered.
    requests: AtomicU64,
    calls: [AtomicU64; Call::COUNT],
    ops: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    blocks_stored: AtomicU64,
    block_bytes_stored: AtomicU64,
    flushes: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
}

/// Per-request counts at one instant (see [`Call`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Calls {
    pub getattr: u64,
    pub setattr: u64,
    pub create: u64,
    pub readdir: u64,
    pub open: u64,
    pub read: u64,
    pub write: u64,
    pub mkdir: u64,
    pub unlink: u64,
    pub rmdir: u64,
    pub rename: u64,
    pub link: u64,
    pub symlink: u64,
    pub statfs: u64,
    pub ioctl: u64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Kernel requests answered, of every kind.
    pub requests: u64,
    pub calls: Calls,
    /// Metadata operations (create, unlink, rename, setattr, …).
    pub ops: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Block lookups served from the cache / from the store.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Blocks written to the data namespace, and their bytes.
    pub blocks_stored: u64,
    pub block_bytes_stored: u64,
    /// Metadata transactions committed.
    pub flushes: u64,
    /// Operations that failed: the filesystem could not do what it should (EIO, ENOSPC, …).
    pub errors: u64,
    /// Operations refused as asked: unsupported (ACL xattrs, file clones), not allowed,
    /// already there, not empty, … (see [`Metrics::count_errno`]). Misses (ENOENT, ENODATA)
    /// are answers and count in neither.
    pub refused: u64,
}

impl Metrics {
    /// A kernel request arrived; `call` says which counted kind it is, if any.
    pub(crate) fn count_request(&self, call: Option<Call>) {
        self.requests.fetch_add(1, Relaxed);
        if let Some(c) = call {
            self.calls[c as usize].fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn count_op(&self) {
        self.ops.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_read(&self, bytes: u64, (hits, misses): (u64, u64)) {
        self.bytes_read.fetch_add(bytes, Relaxed);
        self.cache_hits.fetch_add(hits, Relaxed);
        self.cache_misses.fetch_add(misses, Relaxed);
    }
    pub(crate) fn count_write(&self, bytes: u64, (hits, misses): (u64, u64)) {
        self.bytes_written.fetch_add(bytes, Relaxed);
        self.cache_hits.fetch_add(hits, Relaxed);
        self.cache_misses.fetch_add(misses, Relaxed);
    }
    pub(crate) fn count_block_write(&self, bytes: u64) {
        self.blocks_stored.fetch_add(1, Relaxed);
        self.block_bytes_stored.fetch_add(bytes, Relaxed);
    }
    pub(crate) fn count_flush(&self) {
        self.flushes.fetch_add(1, Relaxed);
    }
    /// Count an operation answered with `errno`: a refusal, a failure, or a miss.
    pub(crate) fn count_errno(&self, errno: i32) {
        match errno {
            libc::ENOENT | libc::ENODATA => {}
            libc::EOPNOTSUPP
            | libc::ENOTTY
            | libc::ENOSYS
            | libc::EPERM
            | libc::EACCES
            | libc::EEXIST
            | libc::ENOTEMPTY
            | libc::EINVAL
            | libc::ERANGE
            | libc::ENAMETOOLONG
            | libc::EISDIR
            | libc::ENOTDIR
            | libc::EXDEV
            | libc::EFBIG
            | libc::EMLINK
            | libc::ELOOP
            | libc::EBADF => {
                self.refused.fetch_add(1, Relaxed);
            }
            _ => {
                self.errors.fetch_add(1, Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let c = |k: Call| self.calls[k as usize].load(Relaxed);
        Snapshot {
            requests: self.requests.load(Relaxed),
            calls: Calls {
                getattr: c(Call::Getattr),
                setattr: c(Call::Setattr),
                create: c(Call::Create),
                readdir: c(Call::Readdir),
                open: c(Call::Open),
                read: c(Call::Read),
                write: c(Call::Write),
                mkdir: c(Call::Mkdir),
                unlink: c(Call::Unlink),
                rmdir: c(Call::Rmdir),
                rename: c(Call::Rename),
                link: c(Call::Link),
                symlink: c(Call::Symlink),
                statfs: c(Call::Statfs),
                ioctl: c(Call::Ioctl),
            },
            ops: self.ops.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            blocks_stored: self.blocks_stored.load(Relaxed),
            block_bytes_stored: self.block_bytes_stored.load(Relaxed),
            flushes: self.flushes.load(Relaxed),
            errors: self.errors.load(Relaxed),
            refused: self.refused.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_misses_are_not_failures() {
        let m = Metrics::default();
        for e in [libc::EOPNOTSUPP, libc::ENOTTY, libc::EEXIST, libc::EACCES] {
            m.count_errno(e);
        }
        m.count_errno(libc::ENOENT);
        m.count_errno(libc::ENODATA);
        m.count_errno(libc::EIO);
        m.count_errno(libc::ENOSPC);
        let s = m.snapshot();
        assert_eq!((s.errors, s.refused), (2, 4));
    }
}
