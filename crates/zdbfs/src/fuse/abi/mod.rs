//! The kernel's FUSE wire format (`include/uapi/linux/fuse.h`, protocol 7.45): opcodes, the
//! request header, readers for request arguments and writers for replies. Both transports
//! (`/dev/fuse` and io_uring) carry the same bytes; only their framing differs.

use crate::error::{Errno, FsResult};

/// Request opcodes this server answers (others get ENOSYS).
pub mod op {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const SYMLINK: u32 = 6;
    pub const MKNOD: u32 = 8;
    pub const MKDIR: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const RMDIR: u32 = 11;
    pub const RENAME: u32 = 12;
    pub const LINK: u32 = 13;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const WRITE: u32 = 16;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const FSYNC: u32 = 20;
    pub const SETXATTR: u32 = 21;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const REMOVEXATTR: u32 = 24;
    pub const FLUSH: u32 = 25;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const FSYNCDIR: u32 = 30;
    pub const ACCESS: u32 = 34;
    pub const CREATE: u32 = 35;
    pub const INTERRUPT: u32 = 36;
    pub const DESTROY: u32 = 38;
    pub const IOCTL: u32 = 39;
    pub const BATCH_FORGET: u32 = 42;
    pub const FALLOCATE: u32 = 43;
    pub const READDIRPLUS: u32 = 44;
    pub const RENAME2: u32 = 45;
    pub const LSEEK: u32 = 46;
}

/// SETATTR `valid` bits.
pub mod fattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    pub const FH: u32 = 1 << 6;
    pub const ATIME_NOW: u32 = 1 << 7;
    pub const MTIME_NOW: u32 = 1 << 8;
    pub const CTIME: u32 = 1 << 10;
    pub const KILL_SUIDGID: u32 = 1 << 11;
}

pub const FOPEN_KEEP_CACHE: u32 = 1 << 1;
pub const FOPEN_CACHE_DIR: u32 = 1 << 3;
pub const WRITE_KILL_SUIDGID: u32 = 1 << 2;
pub const RENAME_NOREPLACE: u32 = 1 << 0;
pub const RENAME_EXCHANGE: u32 = 1 << 1;

/// Length of `fuse_in_header`.
pub const IN_HEADER_LEN: usize = 40;
/// Length of `fuse_out_header`.
pub const OUT_HEADER_LEN: usize = 16;

/// The header of every request.
#[derive(Debug, Clone, Copy)]
pub struct InHeader {
    pub opcode: u32,
    pub unique: u64,
    pub nodeid: u64,
    pub uid: u32,
    pub gid: u32,
}

impl InHeader {
    pub fn parse(b: &[u8]) -> Option<InHeader> {
        let mut a = Args::new(b.get(..IN_HEADER_LEN)?);
        let _len = a.u32().ok()?;
        Some(InHeader {
            opcode: a.u32().ok()?,
            unique: a.u64().ok()?,
            nodeid: a.u64().ok()?,
            uid: a.u32().ok()?,
            gid: a.u32().ok()?,
        })
    }
}

/// Length of the fixed argument struct of `opcode` (`in_args[0]`), 0 for names-only ops.
/// The io_uring transport delivers it apart from the rest (in the header buffer's `op_in`).
pub fn fixed_args_len(opcode: u32) -> usize {
    match opcode {
        op::GETATTR | op::RENAME2 | op::MKNOD | op::FSYNC | op::FSYNCDIR | op::CREATE => 16,
        op::SETATTR => 88,
        op::MKDIR | op::RENAME | op::LINK | op::OPEN | op::OPENDIR | op::SETXATTR => 8,
        op::GETXATTR | op::LISTXATTR | op::ACCESS | op::FORGET | op::BATCH_FORGET => 8,
        op::INTERRUPT => 8,
        op::READ | op::READDIR | op::READDIRPLUS | op::WRITE => 40,
        op::RELEASE | op::RELEASEDIR | op::FLUSH | op::LSEEK => 24,
        op::IOCTL | op::FALLOCATE => 32,
        _ => 0,
    }
}

/// A cursor over request argument bytes; every read is bounds-checked, and a request too
/// short for what its opcode carries is EINVAL.
pub struct Args<'a> {
    b: &'a [u8],
}

impl<'a> Args<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Args { b }
    }

    fn take(&mut self, n: usize) -> FsResult<&'a [u8]> {
        if self.b.len() < n {
            return Err(Errno::EINVAL);
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    pub fn u32(&mut self) -> FsResult<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_ne_bytes(b))
    }

    pub fn u64(&mut self) -> FsResult<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_ne_bytes(b))
    }

    pub fn skip(&mut self, n: usize) -> FsResult<()> {
        self.take(n).map(|_| ())
    }

    /// A NUL-terminated string (without its NUL).
    pub fn cstr(&mut self) -> FsResult<&'a [u8]> {
        let end = self.b.iter().position(|&c| c == 0).ok_or(Errno::EINVAL)?;
        let s = self.take(end)?;
        self.take(1)?;
        Ok(s)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> FsResult<&'a [u8]> {
        self.take(n)
    }
}

/// A reply body being built.
#[derive(Default)]
pub struct Reply(pub Vec<u8>);

impl Reply {
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Pad with zeros to a multiple of 8 (directory entries are 8-aligned).
    pub fn align8(&mut self) -> &mut Self {
        let n = self.0.len().next_multiple_of(8);
        self.0.resize(n, 0);
        self
    }
}

/// `fuse_out_header` for a reply of `body_len` bytes (`error` = 0 or a negative errno).
pub fn out_header(unique: u64, error: i32, body_len: usize) -> [u8; OUT_HEADER_LEN] {
    let mut h = [0u8; OUT_HEADER_LEN];
    h[0..4].copy_from_slice(&((OUT_HEADER_LEN + body_len) as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&error.to_ne_bytes());
    h[8..16].copy_from_slice(&unique.to_ne_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_and_args_read_back() {
        let mut b = Reply::default();
        b.u32(56)
            .u32(op::LOOKUP)
            .u64(7)
            .u64(1)
            .u32(1000)
            .u32(100)
            .u32(42)
            .u32(0);
        let h = InHeader::parse(&b.0).unwrap();
        assert_eq!(
            (h.opcode, h.unique, h.nodeid, h.uid, h.gid),
            (1, 7, 1, 1000, 100)
        );
        let mut a = Args::new(b"name\0target\0tail");
        assert_eq!(a.cstr(), Ok(&b"name"[..]));
        assert_eq!(a.cstr(), Ok(&b"target"[..]));
        assert_eq!(
            a.cstr(),
            Err(Errno::EINVAL),
            "an unterminated string is malformed"
        );
        assert_eq!(a.bytes(4), Ok(&b"tail"[..]));
        assert_eq!(a.bytes(1), Err(Errno::EINVAL), "nothing is left");
        assert!(InHeader::parse(&[0; 39]).is_none());
    }

    proptest! {
        /// Arbitrary bytes never panic a reader: every field is read or refused.
        #[test]
        fn readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = InHeader::parse(&bytes);
            let mut a = Args::new(&bytes);
            while a.u32().is_ok() {}
            let mut a = Args::new(&bytes);
            while a.cstr().is_ok() {}
            let mut a = Args::new(&bytes);
            let _ = (a.u64(), a.skip(3), a.bytes(5));
        }
    }
}
