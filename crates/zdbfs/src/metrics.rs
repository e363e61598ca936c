//! Operation counters: cheap atomics bumped by the filesystem, read as a [`Snapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one mounted filesystem.
#[derive(Debug, Default)]
pub struct Metrics {
    ops: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    blocks_stored: AtomicU64,
    block_bytes_stored: AtomicU64,
    flushes: AtomicU64,
    errors: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Metadata operations (create, unlink, rename, setattr, …).
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
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
    /// Operations answered with an error other than ENOENT.
    pub errors: u64,
}

impl Metrics {
    pub(crate) fn count_op(&self) {
        self.ops.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_read(&self, bytes: u64, (hits, misses): (u64, u64)) {
        self.reads.fetch_add(1, Relaxed);
        self.bytes_read.fetch_add(bytes, Relaxed);
        self.cache_hits.fetch_add(hits, Relaxed);
        self.cache_misses.fetch_add(misses, Relaxed);
    }
    pub(crate) fn count_write(&self, bytes: u64, (hits, misses): (u64, u64)) {
        self.writes.fetch_add(1, Relaxed);
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
    pub(crate) fn count_error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            ops: self.ops.load(Relaxed),
            reads: self.reads.load(Relaxed),
            writes: self.writes.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            blocks_stored: self.blocks_stored.load(Relaxed),
            block_bytes_stored: self.block_bytes_stored.load(Relaxed),
            flushes: self.flushes.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }
}
