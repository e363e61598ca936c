//! 0-db-fs's ioctls, answered on any file or folder of the mount so that tools written for
//! ThreeFold's zdbfs (0-stor v2's zstor polls the statistics every second) work unchanged:
//! - `ZDBFS_IOCTL_SNAPSHOT` = `_IOR('E', 0, uint64_t)`: flush everything to the store, answer
//!   the unix time;
//! - `ZDBFS_IOCTL_STATISTICS` = `_IOR('E', 1, stats_t)`: the counters as `stats_t` version 2,
//!   [`STATS_FIELDS`] native-endian 64-bit integers in that order. Counters of 0-db-fs's own
//!   cache design that this zdbfs has no equivalent for (full cache, linear/random flushes,
//!   branches, entries) are 0.

use crate::metrics::Snapshot;

/// `stats_t`'s fields, in order (0-db-fs `src/zdbfs.h`, `ZDBFS_STATS_VERSION` 2).
pub const STATS_FIELDS: [&str; 30] = [
    "version",
    "fuse_reqs",
    "cache_hit",
    "cache_miss",
    "cache_full",
    "cache_linear_flush",
    "cache_random_flush",
    "cache_branches",
    "cache_branches_allocated",
    "cache_entries",
    "cache_blocks",
    "cache_blocksize",
    "syscall_getattr",
    "syscall_setattr",
    "syscall_create",
    "syscall_readdir",
    "syscall_open",
    "syscall_read",
    "syscall_write",
    "syscall_mkdir",
    "syscall_unlink",
    "syscall_rmdir",
    "syscall_rename",
    "syscall_link",
    "syscall_symlink",
    "syscall_statsfs",
    "syscall_ioctl",
    "read_bytes",
    "write_bytes",
    "errors",
];

pub const STATS_VERSION: u64 = 2;
pub const STATS_LEN: usize = STATS_FIELDS.len() * 8;

/// Linux `_IOR(ty, nr, size)`.
const fn ior(ty: u8, nr: u8, size: usize) -> u32 {
    (2 << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

pub const IOCTL_SNAPSHOT: u32 = ior(b'E', 0, 8);
pub const IOCTL_STATISTICS: u32 = ior(b'E', 1, STATS_LEN);

/// `stats_t` bytes for a snapshot of the counters.
pub fn encode_stats(s: &Snapshot, cached_blocks: u64, block_size: u64) -> [u8; STATS_LEN] {
    let value = |name: &str| -> u64 {
        match name {
            "version" => STATS_VERSION,
            "fuse_reqs" => s.requests,
            "cache_hit" => s.cache_hits,
            "cache_miss" => s.cache_misses,
            "cache_blocks" => cached_blocks,
            "cache_blocksize" => block_size,
            "syscall_getattr" => s.calls.getattr,
            "syscall_setattr" => s.calls.setattr,
            "syscall_create" => s.calls.create,
            "syscall_readdir" => s.calls.readdir,
            "syscall_open" => s.calls.open,
            "syscall_read" => s.calls.read,
            "syscall_write" => s.calls.write,
            "syscall_mkdir" => s.calls.mkdir,
            "syscall_unlink" => s.calls.unlink,
            "syscall_rmdir" => s.calls.rmdir,
            "syscall_rename" => s.calls.rename,
            "syscall_link" => s.calls.link,
            "syscall_symlink" => s.calls.symlink,
            "syscall_statsfs" => s.calls.statfs,
            "syscall_ioctl" => s.calls.ioctl,
            "read_bytes" => s.bytes_read,
            "write_bytes" => s.bytes_written,
            "errors" => s.errors,
            _ => 0,
        }
    };
    let mut out = [0u8; STATS_LEN];
    for (chunk, name) in out.chunks_exact_mut(8).zip(STATS_FIELDS) {
        chunk.copy_from_slice(&value(name).to_ne_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_layout_match_0db_fs() {
        // sizeof(stats_t) = 30 size_t on 64-bit Linux.
        assert_eq!(STATS_LEN, 240);
        assert_eq!(IOCTL_SNAPSHOT, 0x8008_4500);
        assert_eq!(IOCTL_STATISTICS, 0x80f0_4501);
        let s = Snapshot {
            calls: crate::metrics::Calls {
                read: 3,
                ..Default::default()
            },
            bytes_read: 300,
            errors: 1,
            ..Default::default()
        };
        let b = encode_stats(&s, 5, 131072);
        let field = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(field(0), 2);
        assert_eq!(field(10), 5);
        assert_eq!(field(11), 131072);
        assert_eq!(field(17), 3);
        assert_eq!(field(27), 300);
        assert_eq!(field(29), 1);
    }
}
