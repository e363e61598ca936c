//! The kernel's FUSE wire format (`include/uapi/linux/fuse.h`, protocol 7.45). Both
//! transports (`/dev/fuse` and io_uring) carry the same bytes; only their framing differs.
//!
//! Owns, here: opcodes and flag bits, the request header, how long each opcode's fixed
//! argument struct is (the transports split a request there), the reply writer and the
//! reply header. In [`structs`]: the kernel's request argument structs as typed structs.
//! In [`request`]: decoding a request's arguments once into one typed [`Operation`].
//!
//! Must not touch: what a request does (`ops`), the transports' buffers and system calls.

pub mod request;
pub mod structs;

pub use request::Operation;

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
    /// The header at the start of `b` (`None` if `b` is shorter than a header).
    pub fn parse(b: &[u8]) -> Option<InHeader> {
        let b = b.get(..IN_HEADER_LEN)?;
        let u32_at = |at: usize| b.get(at..at + 4)?.try_into().ok().map(u32::from_ne_bytes);
        let u64_at = |at: usize| b.get(at..at + 8)?.try_into().ok().map(u64::from_ne_bytes);
        // `fuse_in_header`: len, opcode, unique, nodeid, uid, gid, pid, total_extlen, padding.
        Some(InHeader {
            opcode: u32_at(4)?,
            unique: u64_at(8)?,
            nodeid: u64_at(16)?,
            uid: u32_at(24)?,
            gid: u32_at(28)?,
        })
    }
}

/// Length of the fixed argument struct of `opcode` (`in_args[0]`), 0 for names-only ops.
/// The io_uring transport delivers it apart from the rest (in the header buffer's `op_in`).
pub fn fixed_args_len(opcode: u32) -> usize {
    use structs::*;
    match opcode {
        op::FORGET => ForgetIn::SIZE,
        op::BATCH_FORGET => BatchForgetIn::SIZE,
        op::SETATTR => SetattrIn::SIZE,
        op::MKNOD => MknodIn::SIZE,
        op::MKDIR => MkdirIn::SIZE,
        op::RENAME => RenameIn::SIZE,
        op::RENAME2 => Rename2In::SIZE,
        op::LINK => LinkIn::SIZE,
        op::OPEN | op::OPENDIR => OpenIn::SIZE,
        op::READ | op::READDIR | op::READDIRPLUS => ReadIn::SIZE,
        op::WRITE => WriteIn::SIZE,
        op::RELEASE | op::RELEASEDIR => ReleaseIn::SIZE,
        op::SETXATTR => SetxattrIn::SIZE,
        op::GETXATTR | op::LISTXATTR => GetxattrIn::SIZE,
        op::ACCESS => AccessIn::SIZE,
        op::CREATE => CreateIn::SIZE,
        op::IOCTL => IoctlIn::SIZE,
        op::FALLOCATE => FallocateIn::SIZE,
        op::LSEEK => LseekIn::SIZE,
        // Carried but unread: `fuse_getattr_in`, `fuse_fsync_in`, `fuse_flush_in`,
        // `fuse_interrupt_in`.
        op::GETATTR | op::FSYNC | op::FSYNCDIR => 16,
        op::FLUSH => 24,
        op::INTERRUPT => 8,
        _ => 0,
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
    fn header_reads_back() {
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
        assert!(InHeader::parse(&[0; 39]).is_none());
    }

    /// The split point of every opcode, as it was before the structs were typed.
    #[test]
    fn fixed_args_lengths_are_the_kernels() {
        let lens: &[(&[u32], usize)] = &[
            (
                &[
                    op::GETATTR,
                    op::RENAME2,
                    op::MKNOD,
                    op::FSYNC,
                    op::FSYNCDIR,
                    op::CREATE,
                ],
                16,
            ),
            (&[op::SETATTR], 88),
            (
                &[
                    op::MKDIR,
                    op::RENAME,
                    op::LINK,
                    op::OPEN,
                    op::OPENDIR,
                    op::SETXATTR,
                ],
                8,
            ),
            (
                &[
                    op::GETXATTR,
                    op::LISTXATTR,
                    op::ACCESS,
                    op::FORGET,
                    op::BATCH_FORGET,
                ],
                8,
            ),
            (&[op::INTERRUPT], 8),
            (&[op::READ, op::READDIR, op::READDIRPLUS, op::WRITE], 40),
            (&[op::RELEASE, op::RELEASEDIR, op::FLUSH, op::LSEEK], 24),
            (&[op::IOCTL, op::FALLOCATE], 32),
            (
                &[op::LOOKUP, op::SYMLINK, op::UNLINK, op::RMDIR, op::READLINK],
                0,
            ),
            (&[op::STATFS, op::REMOVEXATTR, op::DESTROY, 7, 9999], 0),
        ];
        for (ops, len) in lens {
            for &o in *ops {
                assert_eq!(fixed_args_len(o), *len, "opcode {o}");
            }
        }
    }

    proptest! {
        /// Arbitrary bytes never panic the header reader.
        #[test]
        fn header_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            prop_assert_eq!(InHeader::parse(&bytes).is_some(), bytes.len() >= IN_HEADER_LEN);
        }
    }
}
