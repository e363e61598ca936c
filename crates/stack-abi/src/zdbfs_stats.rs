//! 0-db-fs's ioctls on any file or folder of a mount (`src/zdbfs.h` of 0-db-fs):
//! - `ZDBFS_IOCTL_SNAPSHOT` = `_IOR('E', 0, uint64_t)`: flush everything, answer the time;
//! - `ZDBFS_IOCTL_STATISTICS` = `_IOR('E', 1, stats_t)`: `stats_t` version 2, the [`FIELDS`]
//!   as native-endian 64-bit integers in that order (240 bytes on 64-bit Linux).

/// `stats_t`'s fields, in order (`ZDBFS_STATS_VERSION` 2).
pub const FIELDS: [&str; 30] = [
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

/// The `version` field's value for this layout.
pub const VERSION: u64 = 2;
/// `sizeof(stats_t)`.
pub const LEN: usize = FIELDS.len() * 8;

/// Linux `_IOR(ty, nr, size)`.
const fn ior(ty: u8, nr: u8, size: usize) -> u32 {
    (2 << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

pub const IOCTL_SNAPSHOT: u32 = ior(b'E', 0, 8);
pub const IOCTL_STATISTICS: u32 = ior(b'E', 1, LEN);

/// The counters of one `stats_t`, by field position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats(pub [u64; 30]);

impl Stats {
    /// From a value per field name (names not known to `value` are 0); `version` is set.
    pub fn from_fn(mut value: impl FnMut(&str) -> u64) -> Stats {
        let mut out = [0; 30];
        for (v, name) in out.iter_mut().zip(FIELDS) {
            *v = if name == "version" {
                VERSION
            } else {
                value(name)
            };
        }
        Stats(out)
    }

    /// The value of field `name` (0 for a name that is not a field).
    pub fn get(&self, name: &str) -> u64 {
        FIELDS
            .iter()
            .position(|f| *f == name)
            .map_or(0, |i| self.0[i])
    }

    /// The bytes the ioctl answers.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        for (chunk, v) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        out
    }

    /// Read an answer; `None` unless it is `LEN` bytes of version [`VERSION`].
    pub fn decode(bytes: &[u8]) -> Option<Stats> {
        if bytes.len() != LEN {
            return None;
        }
        let mut out = [0u64; 30];
        for (v, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *v = u64::from_ne_bytes(chunk.try_into().ok()?);
        }
        (out[0] == VERSION).then_some(Stats(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_layout_match_0db_fs() {
        assert_eq!(LEN, 240);
        assert_eq!(IOCTL_SNAPSHOT, 0x8008_4500);
        assert_eq!(IOCTL_STATISTICS, 0x80f0_4501);
        let s = Stats::from_fn(|n| if n == "read_bytes" { 300 } else { 0 });
        let b = s.encode();
        assert_eq!(u64::from_ne_bytes(b[0..8].try_into().unwrap()), 2);
        assert_eq!(
            u64::from_ne_bytes(b[27 * 8..28 * 8].try_into().unwrap()),
            300
        );
        assert_eq!(Stats::decode(&b), Some(s));
        assert_eq!(s.get("read_bytes"), 300);
        assert_eq!(Stats::decode(&b[1..]), None);
        let mut old = b;
        old[0] = 1;
        assert_eq!(Stats::decode(&old), None, "other versions are refused");
    }
}
