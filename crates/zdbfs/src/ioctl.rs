//! 0-db-fs's ioctls, answered on any file or folder of the mount so that tools written for
//! ThreeFold's zdbfs (0-stor v2's zstor polls the statistics every second) work unchanged:
//! - `ZDBFS_IOCTL_SNAPSHOT` = `_IOR('E', 0, uint64_t)`: flush everything to the store, answer
//!   the unix time;
//! - `ZDBFS_IOCTL_STATISTICS` = `_IOR('E', 1, stats_t)`: the counters as `stats_t` version 2,
//!   native-endian 64-bit integers (the layout is `stack_abi::zdbfs_stats`, shared with the
//!   reader in zstor). Counters of 0-db-fs's own
//!   cache design that this zdbfs has no equivalent for (full cache, linear/random flushes,
//!   branches, entries) are 0.

use crate::metrics::Snapshot;

use stack_abi::zdbfs_stats::{Stats, LEN};
pub use stack_abi::zdbfs_stats::{IOCTL_SNAPSHOT, IOCTL_STATISTICS};

/// `stats_t` bytes for a snapshot of the counters.
pub fn encode_stats(s: &Snapshot, cached_blocks: u64, block_size: u64) -> [u8; LEN] {
    Stats::from_fn(|name| match name {
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
    })
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_fields_land_where_0db_fs_reads_them() {
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
